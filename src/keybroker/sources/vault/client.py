"""The vault source's HTTP side: an hvac client bounded by the deadline, and its errors.

Imported only when a fetch or doctor needs the server (it loads hvac and requests). Every
request carries a timeout bounded by the call's deadline (a custom hvac adapter), so an address
that accepts connections and never answers still ends with exit 3 in time. Errors become
keybroker errors built from names (address, API path, variable names), plus Vault's own error
strings when they say more than the status does (``invalid audience (aud) claim``): printable,
at most 200 characters, and scrubbed of every registered secret when printed.
"""

from __future__ import annotations

from typing import Any

from keybroker.errors import (
    AccessDenied,
    KeybrokerError,
    SecretNotFound,
    SourceUnavailable,
    Unreachable,
    UsageError,
)
from keybroker.sources import httpsession
from keybroker.sources.base import FetchContext
from keybroker.sources.vault.spec import Spec, env_first

#: Longest any single HTTP request may take (always also bounded by the call's deadline).
STEP_TIMEOUT = 10.0
SERVER_DETAIL = 200
INSTALL_HINT = "install it: pip install 'keybroker[vault]' (or: uv tool install 'keybroker[vault]')"
#: Vault's texts that only repeat the status: not worth a "server said".
_SAYS_NOTHING = frozenset({"", "permission denied", "1 error occurred: * permission denied"})


def load_hvac() -> Any:
    """Import hvac or say what to install (exit 2)."""
    try:
        import hvac  # noqa: PLC0415
        import requests  # noqa: PLC0415, F401
    except ImportError:
        raise SourceUnavailable("the vault source needs hvac", INSTALL_HINT) from None
    return hvac


# --- the client ---


def _adapter_class(ctx: FetchContext) -> Any:
    """hvac's JSON adapter with a per-request timeout taken from the call's deadline."""
    from hvac.adapters import JSONAdapter  # noqa: PLC0415

    class DeadlineAdapter(JSONAdapter):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            kwargs["timeout"] = ctx.timeout(STEP_TIMEOUT)
            return super().request(*args, **kwargs)

    return DeadlineAdapter


def make_client(spec: Spec, ctx: FetchContext) -> Any:
    """An hvac client with everything explicit: hvac must not read os.environ on its own."""
    hvac = load_hvac()

    if spec.verify is False:
        # The user turned verification off on purpose; urllib3's per-request warning on the
        # helper's stderr would only clutter Claude Code's /status (doctor says it instead).
        import urllib3  # noqa: PLC0415

        urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    cert = None
    client_cert = env_first(ctx.env, "VAULT_CLIENT_CERT", "BAO_CLIENT_CERT")
    client_key = env_first(ctx.env, "VAULT_CLIENT_KEY", "BAO_CLIENT_KEY")
    if client_cert and client_key:
        cert = (client_cert, client_key)
    # Same-origin redirects only and bounded answers (keybroker.sources.httpsession): the
    # token never follows a 307 to another host, and a 100 MB or absurdly nested answer is
    # exit 6. hvac takes TLS settings from a given session, so they are set on it.
    session = httpsession.session(ctx.timeout, f"{spec.label}: {spec.addr}")
    session.verify = spec.verify
    session.cert = cert
    return hvac.Client(
        url=spec.addr,
        token="",  # not None: hvac would read VAULT_TOKEN/~/.vault-token itself
        cert=cert,
        verify=spec.verify,
        timeout=int(STEP_TIMEOUT),
        namespace=spec.namespace,
        allow_redirects=False,
        session=session,
        adapter=_adapter_class(ctx),
    )


# --- errors ---


def server_said(exc: Exception) -> str:
    """`` (server said: …)``: Vault's error strings, printable and short, when they add anything.

    Vault's errors name the check that failed (a JWT's audience or bound claim, an unknown
    role, a bad password) and never carry a token; emit() still scrubs every registered secret.
    """
    errors = getattr(exc, "errors", None)
    if not errors:
        return ""
    text = "; ".join(str(e) for e in errors) if isinstance(errors, list) else str(errors)
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    if text.lower().strip(" .") in _SAYS_NOTHING:
        return ""
    if len(text) > SERVER_DETAIL:
        text = text[: SERVER_DETAIL - 1] + "…"
    return f" (server said: {text})"


def tls_error(exc: BaseException, where: str, doing: str, debug: bool) -> Unreachable:
    """A TLS failure, told apart: a plain-HTTP server, an untrusted certificate, the rest.

    The advice differs (an http:// address or the right port; ca_cert; the reason itself),
    and OpenSSL's reason is shown with --debug.
    """
    kind, reason = httpsession.tls_failure(exc)
    shown = f" (SSL: {reason})" if debug and reason else ""
    if kind == "plain-http":
        return Unreachable(
            f"{where}: the server answered plain HTTP, not TLS, while {doing}{shown}",
            "use an http:// address, or check the port (https is usually on another one)",
        )
    if kind == "verify":
        return Unreachable(
            f"{where}: TLS verification failed while {doing}{shown}",
            "set ca_cert (or VAULT_CACERT) to the CA that signed the server's certificate",
        )
    return Unreachable(
        f"{where}: the TLS handshake failed while {doing}{shown or f' (SSL: {reason})'}",
        "check the address and port, and that the server speaks TLS there",
    )


def translate(
    exc: Exception,
    spec: Spec,
    ctx: FetchContext,
    *,
    doing: str,
    login: bool = False,
    denied_hint: str = "",
    missing: KeybrokerError | None = None,
) -> KeybrokerError:
    """Map hvac/requests exceptions to the exit-code table; ``doing`` names the step."""
    if isinstance(exc, KeybrokerError):
        return exc
    import hvac.exceptions as hx  # noqa: PLC0415
    import requests  # noqa: PLC0415

    where = f"{spec.label}: {spec.addr}"
    detail = server_said(exc)
    if isinstance(exc, requests.exceptions.SSLError):
        return tls_error(exc, where, doing, ctx.debug)
    if isinstance(exc, requests.exceptions.Timeout):
        return Unreachable(
            f"{where} did not answer in time while {doing}",
            "is the server up and the address right? raise KEYBROKER_TIMEOUT if it is just slow",
        )
    if isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.InvalidSchema
        | requests.exceptions.MissingSchema,
    ):
        return UsageError(f"{spec.label}: addr {spec.addr!r} is not a usable URL")
    if isinstance(exc, requests.exceptions.RequestException):
        return Unreachable(
            f"{where}: cannot connect while {doing}",
            "check addr / VAULT_ADDR and that the server is running",
        )
    if isinstance(exc, hx.VaultDown):
        return Unreachable(
            f"{where} is sealed or unavailable (HTTP 503) while {doing}{detail}",
            "unseal it, or point addr at an active node",
        )
    if isinstance(exc, hx.Forbidden | hx.Unauthorized):
        if login:
            # Vault refuses a bad credential with 400; a 403 on a login path without a token
            # means nothing is mounted there (an unknown path is not public).
            denied_hint = (
                f"is the {spec.auth_method} auth method enabled at auth/{spec.auth_mount}? "
                "set auth_mount to where it is"
            )
        return AccessDenied(f"{spec.label}: permission denied {doing}{detail}", denied_hint)
    if isinstance(exc, hx.InvalidPath):
        if missing is not None:
            return missing
        return SecretNotFound(f"{spec.label}: nothing at the path used while {doing}{detail}")
    if isinstance(exc, hx.InvalidRequest):
        if login:
            return AccessDenied(f"{spec.label}: login refused while {doing}{detail}", denied_hint)
        return UsageError(f"{spec.label}: the server rejected the request while {doing}{detail}")
    if isinstance(exc, hx.RateLimitExceeded):
        return Unreachable(f"{where} is rate limiting (HTTP 429) while {doing}", "retry later")
    if isinstance(exc, hx.VaultError):
        return Unreachable(
            f"{where}: server error ({type(exc).__name__}) while {doing}{detail}",
            "check the server's health: 'keybroker doctor'",
        )
    if isinstance(exc, ValueError | KeyError | TypeError | AttributeError):
        return Unreachable(
            f"{where}: unexpected answer while {doing}",
            "is addr a Vault/OpenBao server (not a proxy page)?",
        )
    raise exc
