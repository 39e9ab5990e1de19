"""HTTP for the OIDC source: discovery (cached) and token-endpoint calls, errors mapped.

``requests`` (the ``oidc`` extra) is imported only when a call is made. Every request is
bounded by the step timeout and the call's deadline. Messages name the issuer, endpoint and
the provider's error code, never a request body: bodies carry client secrets, codes and
refresh tokens.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from keybroker import clock
from keybroker.errors import (
    AccessDenied,
    KeybrokerError,
    Unreachable,
    UsageError,
)
from keybroker.sources.base import AuxEntry, FetchContext

#: Discovery documents change rarely; refetched after this long (or when an endpoint fails).
DISCOVERY_TTL = 3600.0
DEFAULT_STEP_TIMEOUT = 10.0
#: Provider error descriptions are echoed (scrubbed) up to this length.
MAX_DESCRIPTION = 200
#: An OAuth error code is a short word; a longer one is cut.
MAX_ERROR = 60


@dataclass(frozen=True)
class Http:
    """How to talk to one provider: TLS trust and the per-request timeout."""

    ca_bundle: str | None = None
    step_timeout: float = DEFAULT_STEP_TIMEOUT


def requests_module() -> Any:
    """Import requests (heavy: only when a request is made), or exit 2 naming the command."""
    from keybroker.extras import require  # noqa: PLC0415

    return require("requests", "oidc", "the oidc source")


LOOPBACK = ("127.0.0.1", "::1", "localhost")
#: Discovery fields naming URLs keybroker sends secrets to or trusts keys from.
ENDPOINTS = (
    "token_endpoint",
    "device_authorization_endpoint",
    "authorization_endpoint",
    "jwks_uri",
    "revocation_endpoint",
    "introspection_endpoint",
    "userinfo_endpoint",
)


def transport_ok(url: str) -> bool:
    """https, or http to a loopback address: the only ways a token or secret may travel."""
    parts = urlsplit(url)
    if parts.scheme == "https":
        return bool(parts.hostname)
    return parts.scheme == "http" and (parts.hostname or "") in LOOPBACK


def check_issuer(issuer: str) -> str:
    """The issuer without a trailing slash; https only, except on a loopback address (exit 2)."""
    parts = urlsplit(issuer)
    host = parts.hostname or ""
    loopback = host in LOOPBACK
    if parts.scheme not in ("https", "http") or not host or parts.query or parts.fragment:
        raise UsageError(
            f"oidc: issuer '{issuer}' is not a valid issuer URL",
            "use the provider's issuer, e.g. https://login.example.com/realms/main",
        )
    if parts.scheme == "http" and not loopback:
        raise UsageError(
            f"oidc: issuer '{issuer}' uses http; tokens must only travel over https",
            "use the https issuer URL",
        )
    return issuer.rstrip("/")


def _send(
    method: str,
    url: str,
    ctx: FetchContext,
    http: Http,
    what: str,
    **kwargs: Any,
) -> Any:
    requests = requests_module()
    from keybroker.sources.httpsession import session  # noqa: PLC0415 - loads requests

    timeout = ctx.timeout(http.step_timeout)
    try:
        # redirects within the provider's own origin only; answers bounded in size and depth
        with session(ctx.timeout, what) as bounded:
            return bounded.request(
                method,
                url,
                timeout=(timeout, timeout),
                verify=http.ca_bundle or True,
                **kwargs,
            )
    except requests.exceptions.SSLError as exc:
        from keybroker.sources.httpsession import tls_failure  # noqa: PLC0415

        kind, reason = tls_failure(exc)
        shown = f" (SSL: {reason})" if ctx.debug and reason else ""
        if kind == "plain-http":
            raise Unreachable(
                f"{what}: {_host(url)} answered plain HTTP, not TLS{shown}",
                "check the issuer's scheme and port",
            ) from None
        if kind == "other":
            raise Unreachable(
                f"{what}: the TLS handshake with {_host(url)} failed (SSL: {reason})"
            ) from None
        raise Unreachable(
            f"{what}: TLS verification of {_host(url)} failed{shown}",
            "set ca_bundle to your company CA file if the provider uses a private CA",
        ) from None
    except requests.exceptions.Timeout:
        raise Unreachable(
            f"{what}: {_host(url)} did not answer in {timeout:.0f}s",
            "check the network or raise KEYBROKER_TIMEOUT",
        ) from None
    except requests.exceptions.ConnectionError:
        raise Unreachable(
            f"{what}: cannot connect to {_host(url)}",
            "check the network, proxy settings and the issuer URL",
        ) from None
    except requests.exceptions.RequestException as exc:
        raise Unreachable(
            f"{what}: request to {_host(url)} failed ({type(exc).__name__})"
        ) from None


def _host(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _json(response: Any) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def discover(issuer: str, ctx: FetchContext, http: Http, refresh: bool = False) -> dict[str, Any]:
    """The provider's metadata: from the side store when fresh, else ``.well-known``.

    The document is public; it is kept in the encrypted side store only because that is the
    one private, atomic store keybroker has. A document whose ``issuer`` differs from the
    configured one is refused (exit 2), as OpenID Connect Discovery requires.
    """
    name = f"discovery:{issuer}"
    if ctx.aux is not None and not refresh:
        cached = ctx.aux.get(name)
        if (
            cached is not None
            and cached.expires_at is not None
            and (cached.expires_at > clock.now())
        ):
            try:
                doc = json.loads(cached.value)
            except ValueError:
                doc = None
            if isinstance(doc, dict):
                check_endpoints(doc, issuer)
                return doc
    url = issuer + "/.well-known/openid-configuration"
    response = _send(
        "GET",
        url,
        ctx,
        http,
        f"oidc: discovery for {issuer}",
        headers={"Accept": "application/json"},
    )
    if response.status_code >= 500:
        raise Unreachable(
            f"oidc: discovery for {issuer} failed: HTTP {response.status_code}",
            "the provider is having problems; try again later",
        )
    doc = _json(response) if response.status_code == 200 else None
    if not isinstance(doc, dict) or "token_endpoint" not in doc:
        raise UsageError(
            f"oidc: {issuer} is not an OpenID Connect issuer "
            f"({url} answered HTTP {response.status_code}"
            f"{'' if response.status_code != 200 else ' without provider metadata'})",
            "check the issuer setting: it is the URL before /.well-known/openid-configuration",
        )
    if str(doc.get("issuer", "")).rstrip("/") != issuer:
        raise UsageError(
            f"oidc: {url} names issuer '{doc.get('issuer')}', not '{issuer}'",
            "set issuer to exactly the value the provider publishes",
        )
    check_endpoints(doc, issuer)
    if ctx.aux is not None:
        ctx.aux.put(name, AuxEntry(json.dumps(doc), expires_at=clock.now() + DISCOVERY_TTL))
    return doc


def check_endpoints(doc: Mapping[str, Any], issuer: str) -> None:
    """Refuse (exit 2) a document that sends secrets anywhere but https (or loopback http).

    An https issuer whose discovery names an http token endpoint would have the client
    secret, codes and refresh tokens travel in clear; the same rule as the issuer's.
    """
    for key in ENDPOINTS:
        url = doc.get(key)
        if isinstance(url, str) and url and not transport_ok(url):
            raise UsageError(
                f"oidc: {issuer} publishes {key} '{url}', which is not https; tokens and "
                "secrets must only travel over https",
                "ask the provider's admin to publish https endpoints",
            )


def endpoint(doc: Mapping[str, Any], key: str, issuer: str, purpose: str) -> str:
    url = doc.get(key)
    if not isinstance(url, str) or not url:
        raise UsageError(
            f"oidc: {issuer} does not publish a {key} ({purpose} is not supported there)",
            "choose another grant, or ask the provider's admin to enable it",
        )
    return url


class TokenError(KeybrokerError):
    """A token-endpoint refusal, before it is turned into the right exit code."""

    def __init__(self, error: str, description: str, status: int) -> None:
        super().__init__(f"{error}: {description}" if description else error)
        self.error = error
        self.description = description
        self.status = status


def post_form(
    url: str,
    data: Mapping[str, str],
    ctx: FetchContext,
    http: Http,
    what: str,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """POST a form to a token-style endpoint; JSON object back, or TokenError / Unreachable."""
    response = _send(
        "POST",
        url,
        ctx,
        http,
        what,
        data=dict(data),
        headers={"Accept": "application/json", **(headers or {})},
    )
    body = _json(response)
    if response.status_code == 200 and isinstance(body, dict):
        return body
    if response.status_code >= 500 or response.status_code == 429:
        raise Unreachable(
            f"{what}: {_host(url)} answered HTTP {response.status_code}",
            "the provider is busy or failing; try again later",
        )
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        raise TokenError(
            _clean(body["error"])[:MAX_ERROR],
            _clean(body.get("error_description")),
            response.status_code,
        )
    if response.status_code in (401, 403):
        raise AccessDenied(f"{what}: refused with HTTP {response.status_code}")
    raise UsageError(
        f"{what}: unexpected HTTP {response.status_code} from {url}",
        "check the issuer and the endpoint the provider publishes",
    )


def _clean(text: Any) -> str:
    """A provider's error_description made safe for one stderr line.

    Providers echo request fields back (a URL-encoded client secret, a token), so besides
    the registered secrets and their encodings any long opaque run is cut
    (:func:`~keybroker.redact.scrub_quoted`).
    """
    from keybroker.redact import scrub_quoted  # noqa: PLC0415

    if not isinstance(text, str):
        return ""
    cleaned = "".join(ch if ch.isprintable() else " " for ch in text).strip()
    return scrub_quoted(cleaned)[:MAX_DESCRIPTION]


def get_json(
    url: str, ctx: FetchContext, http: Http, what: str, headers: Mapping[str, str] | None = None
) -> Any:
    """GET a JSON document (JWKS, a CI token endpoint); Unreachable or AccessDenied on failure."""
    response = _send(
        "GET", url, ctx, http, what, headers={"Accept": "application/json", **(headers or {})}
    )
    if response.status_code >= 500 or response.status_code == 429:
        raise Unreachable(f"{what}: {_host(url)} answered HTTP {response.status_code}")
    if response.status_code in (401, 403):
        raise AccessDenied(f"{what}: refused with HTTP {response.status_code}")
    body = _json(response)
    if response.status_code != 200 or body is None:
        raise UsageError(f"{what}: unexpected HTTP {response.status_code} from {_host(url)}")
    return body
