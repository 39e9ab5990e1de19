"""A requests session for talking to servers that hold credentials: bounded, never redirected away.

Used by the vault source (as hvac's session) and the oidc source (every discovery, JWKS and
token-endpoint call). Imported only when a request is made (it loads requests).

- Redirects are followed only within the origin the request went to (scheme, host and port
  all equal), at most :data:`MAX_REDIRECTS` times. requests would re-send ``X-Vault-Token``
  (or a client secret in a form) to whatever host a 307 names, https to http included; here
  any other redirect is refused (exit 3) before anything is sent there, naming both origins.
- Every body is read in chunks up to :data:`~keybroker.sources.answers.MAX_ANSWER` and a JSON
  body's nesting is checked (:mod:`keybroker.sources.answers`, exit 6), with the call's
  deadline checked between chunks: a server that drips its answer does not extend the call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

from keybroker.errors import Unreachable
from keybroker.sources import answers

#: Same-origin redirects followed per request (a Vault behind a path-rewriting proxy: one).
MAX_REDIRECTS = 3
#: OpenSSL's words when the other end answered something that is not TLS (plain HTTP).
_NOT_TLS = (
    "wrong version number",
    "wrong_version_number",
    "http request",
    "record layer failure",
    "unknown protocol",
    "packet length too long",
)
#: Longest OpenSSL reason shown (under --debug, or when nothing else explains the failure).
MAX_REASON = 200


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    if port is None:
        port = {"https": 443, "http": 80}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port


def show_origin(url: str) -> str:
    scheme, host, port = origin(url)
    return f"{scheme}://{host}:{port}" if port is not None else f"{scheme}://{host}"


def session(tick: Callable[[], object], what: str, limit: int = answers.MAX_ANSWER) -> Any:
    """A ``requests.Session`` whose requests follow only same-origin redirects and whose
    answers are bounded in size and depth. ``tick`` raises once the call's deadline passed;
    ``what`` names the server in messages (``profile 'x': vault: https://vault…``)."""
    import requests  # noqa: PLC0415 - only when a request is made

    class BoundedSession(requests.Session):
        def request(  # type: ignore[override]  # same call, every argument passed on
            self, method: str, url: str, *args: Any, **kwargs: Any
        ) -> Any:
            kwargs["stream"] = True
            kwargs["allow_redirects"] = False
            for _ in range(MAX_REDIRECTS + 1):
                response = super().request(method, url, *args, **kwargs)
                if not response.is_redirect:
                    return _bounded(response, what, limit, tick)
                target = urljoin(response.url or url, response.headers.get("location", ""))
                response.close()
                if origin(target) != origin(url):
                    raise Unreachable(
                        f"{what}: redirected to another origin ({show_origin(target)}); "
                        "refused, nothing was sent there",
                        "point the address at the server itself (the active node, or the "
                        "load balancer in front of all nodes), not at one that redirects",
                    )
                if response.status_code in (301, 302, 303) and method.upper() != "HEAD":
                    method = "GET"
                    kwargs.pop("data", None)
                    kwargs.pop("json", None)
                kwargs.pop("params", None)  # the Location carries the whole query
                url = target
            raise Unreachable(
                f"{what}: more than {MAX_REDIRECTS} redirects from {show_origin(url)}",
                "point the address at the server itself",
            )

    bounded = BoundedSession()
    # compressed answers would be inflated before the size bound sees them
    bounded.headers["Accept-Encoding"] = "identity"
    return bounded


def _bounded(response: Any, what: str, limit: int, tick: Callable[[], object]) -> Any:
    """Read the body (bounded), check its JSON depth, and hand the response back filled."""
    try:
        body = answers.read_capped(
            _chunks(response), what, limit, response.headers.get("content-length"), tick
        )
    except BaseException:
        response.close()  # not read to the end: the connection is dropped, not reused
        raise
    # requests' own way to hold a body already read (what Response.content fills in); read
    # to its end, the connection goes back to the pool
    response._content = body
    response._content_consumed = True
    response.close()
    if answers.looks_like_json(body):
        answers.check_depth(body, what)
    return response


def _chunks(response: Any) -> Iterator[bytes]:
    """The body's (decoded) chunks as they arrive: ``read1`` returns what is there, so a
    server that drips bytes is seen between chunks, not after a 64 KiB wait."""
    raw = response.raw
    read1 = getattr(raw, "read1", None)
    if read1 is None:  # pragma: no cover - urllib3 1.x
        yield from response.iter_content(answers.CHUNK)
        return
    while True:
        chunk = read1(answers.CHUNK, decode_content=True)
        if not chunk:
            return
        yield chunk


def ssl_reason(exc: BaseException) -> str:
    """OpenSSL's reason inside requests' wrapping (``[SSL: …] … (_ssl.c:1000)``), printable."""
    import ssl  # noqa: PLC0415

    seen: BaseException | None = exc
    text = str(exc)
    for _ in range(8):  # requests' SSLError → urllib3's MaxRetryError → ssl.SSLError
        if seen is None:
            break
        if isinstance(seen, ssl.SSLError):
            text = str(seen)
            break
        nested = [a for a in getattr(seen, "args", ()) if isinstance(a, BaseException)]
        seen = (
            getattr(seen, "reason", None)
            or (nested[0] if nested else None)
            or (seen.__cause__ or seen.__context__)
        )
    text = "".join(ch if ch.isprintable() else " " for ch in text)
    return " ".join(text.split())[:MAX_REASON]


def tls_failure(exc: BaseException) -> tuple[str, str]:
    """What kind of TLS failure ``exc`` is, and OpenSSL's reason: ``plain-http`` (the server
    answered without TLS: an https:// address of an http port), ``verify`` (the certificate is
    not trusted), or ``other``. Each needs different advice; "set ca_cert" fits only one."""
    reason = ssl_reason(exc)
    low = reason.lower()
    if any(word in low for word in _NOT_TLS):
        return "plain-http", reason
    if "certificate" in low or "verify" in low or not reason:
        return "verify", reason
    return "other", reason
