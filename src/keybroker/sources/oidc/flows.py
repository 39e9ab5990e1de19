"""Interactive sign-in for people: device code (RFC 8628) and authorization code + PKCE on a
loopback port (RFC 8252). Only ``keybroker login`` runs these; helpers never prompt.

Both end with a token response whose refresh token is stored (under the login's lock)
before anything else uses it, so the next ``keybroker get`` refreshes silently.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

from keybroker.errors import AccessDenied, LoginRequired, Unreachable, UsageError
from keybroker.model import Request
from keybroker.sources.base import FetchContext

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
DEFAULT_INTERVAL = 5.0
SLOW_DOWN_STEP = 5.0
#: Bounds on what the provider says: poll every 1-60 s, give up after 30 min at most.
MIN_INTERVAL, MAX_INTERVAL = 1.0, 60.0
MAX_CODE_LIFETIME = 1800.0
#: How often the waiting indicator is redrawn while a person signs in.
TICK = 0.2


class Progress(Protocol):
    """How a flow talks to the person: whole lines, and a live waiting indicator."""

    def say(self, line: str) -> None: ...

    def waiting(self, what: str, elapsed: float) -> None: ...

    def done(self) -> None: ...


def login(
    request: Request,
    ctx: FetchContext,
    flow: str,
    ui: Progress,
    open_browser: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Sign in with ``flow`` (device | browser), store the refresh token, return the response."""
    from keybroker.sources.oidc.grants import normal_scope, provider  # noqa: PLC0415
    from keybroker.sources.oidc.http import discover  # noqa: PLC0415

    issuer, http = provider(request.settings)
    doc = discover(issuer, ctx, http, refresh=True)
    store_ = _store(request, ctx)
    if flow == "device":
        body = device_flow(request, ctx, doc, ui, sleep)
    elif flow == "browser":
        body = browser_flow(request, ctx, doc, ui, open_browser)
    else:  # pragma: no cover - click restricts the choice
        raise UsageError(f"unknown login flow '{flow}'")
    token = body.get("refresh_token")
    if isinstance(token, str) and token:
        with store_.locked():
            store_.save(token, body.get("refresh_expires_in"))
    else:
        scope = normal_scope(request.settings.get("scope"))
        hint = "" if "offline_access" in scope.split() else " (add offline_access to scope?)"
        ui.say(
            f"keybroker: warning: the provider issued no refresh token{hint}; helpers will "
            "need a new login when this access token expires"
        )
    return body


def _store(request: Request, ctx: FetchContext) -> Any:
    from keybroker.sources.oidc.grants import refresh_store  # noqa: PLC0415

    return refresh_store(request, ctx)


def _exchange(
    request: Request, ctx: FetchContext, data: dict[str, str], raw_errors: bool = False
) -> dict[str, Any]:
    from keybroker.sources.oidc.grants import token_request  # noqa: PLC0415

    return token_request(request, ctx, data, raw_errors=raw_errors)


# --- device code ---


def device_flow(
    request: Request,
    ctx: FetchContext,
    doc: dict[str, Any],
    ui: Progress,
    sleep: Callable[[float], None],
) -> dict[str, Any]:
    """RFC 8628: show the URL and code, poll (honouring slow_down) until approved."""
    from keybroker.sources.oidc.auth import client_auth  # noqa: PLC0415
    from keybroker.sources.oidc.grants import provider, target_params  # noqa: PLC0415
    from keybroker.sources.oidc.http import TokenError, endpoint, post_form  # noqa: PLC0415

    settings = request.settings
    where = request.where()
    issuer, http = provider(settings)
    url = endpoint(doc, "device_authorization_endpoint", issuer, "device login")
    auth = client_auth(settings, str(doc["token_endpoint"]), ctx, where)
    try:
        start = post_form(
            url,
            {**target_params(settings), **auth.data},
            ctx,
            http,
            f"{where}: device authorization",
            auth.headers,
        )
    except TokenError as exc:
        from keybroker.sources.oidc.grants import map_token_error  # noqa: PLC0415

        raise map_token_error(exc, request, DEVICE_GRANT) from None
    device_code = start.get("device_code")
    user_code = start.get("user_code")
    verify = start.get("verification_uri") or start.get("verification_url")
    if not all(isinstance(v, str) and v for v in (device_code, user_code, verify)):
        raise UsageError(f"{where}: the provider's device authorization answer is incomplete")
    assert isinstance(device_code, str)
    ctx.sensitive(device_code)
    interval = bounded(start.get("interval"), DEFAULT_INTERVAL, MIN_INTERVAL, MAX_INTERVAL)
    lifetime = bounded(start.get("expires_in"), 600.0, MIN_INTERVAL, MAX_CODE_LIFETIME)
    ui.say(f"keybroker: to sign in, open {verify}")
    ui.say(f"keybroker: and enter the code: {user_code}")
    complete = start.get("verification_uri_complete")
    if isinstance(complete, str) and complete:
        ui.say(f"keybroker: (or open {complete})")

    began = time.monotonic()
    give_up = began + lifetime
    while True:
        _wait(interval, began, ui, "waiting for you to approve the sign-in", sleep)
        if time.monotonic() >= give_up:
            ui.done()
            raise LoginRequired(
                f"{where}: the sign-in code expired before it was approved",
                f"run: keybroker login {request.profile or 'PROFILE'} again",
            )
        data = {"grant_type": DEVICE_GRANT, "device_code": device_code}
        try:
            body = _exchange(request, ctx, data, raw_errors=True)
        except TokenError as exc:
            if exc.error == "authorization_pending":
                continue
            if exc.error == "slow_down":
                interval = min(interval + SLOW_DOWN_STEP, MAX_INTERVAL)
                continue
            ui.done()
            if exc.error == "access_denied":
                raise AccessDenied(f"{where}: the sign-in was declined") from None
            if exc.error in ("expired_token", "invalid_grant"):
                raise LoginRequired(
                    f"{where}: the sign-in code expired or was already used",
                    f"run: keybroker login {request.profile or 'PROFILE'} again",
                ) from None
            from keybroker.sources.oidc.grants import map_token_error  # noqa: PLC0415

            raise map_token_error(exc, request, DEVICE_GRANT) from None
        except Unreachable:
            # A blip while a person is approving should not throw the login away.
            if time.monotonic() + interval >= give_up:
                ui.done()
                raise
            continue
        ui.done()
        return body


def bounded(value: Any, default: float, low: float, high: float) -> float:
    """A provider's number of seconds, within ``low``..``high``; ``default`` if not a number.

    NaN, infinities and non-positive values count as absent: ``interval: Infinity`` must
    not become a wait that never ends.
    """
    if (
        isinstance(value, int | float)
        and not isinstance(value, bool)
        and (math.isfinite(value) and value > 0)
    ):
        return min(max(float(value), low), high)
    return default


def _wait(
    seconds: float, began: float, ui: Progress, what: str, sleep: Callable[[float], None]
) -> None:
    """Sleep ``seconds`` while keeping the indicator alive."""
    end = time.monotonic() + seconds
    while True:
        now = time.monotonic()
        ui.waiting(what, now - began)
        if now >= end:
            return
        sleep(min(TICK, end - now))


# --- authorization code + PKCE on a loopback port ---


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class _Callback:
    """The one redirect the person's browser brings back, captured by a loopback HTTP server.

    Any local user can connect to a loopback port, so a request is taken only when it is the
    person's: its ``state`` is this login's (set with :meth:`expect` before the browser is
    sent), and, where the system says who owns the connecting socket (Linux, via
    :mod:`keybroker.sources.oidc.peer`), that is this process's user. Anything else is
    answered 400/403 and ignored: the wait goes on until the person's own redirect arrives
    or the login's deadline passes, so a stray ``?error=x`` cannot abort a sign-in and a
    forged redirect with another person's code cannot complete it.
    """

    def __init__(self, redirect: str, where: str) -> None:
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer  # noqa: PLC0415

        parts = urlsplit(redirect)
        if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost", "::1"):
            raise UsageError(
                f"{where}: redirect_uri must be a loopback http URL, got '{redirect}'",
                f"use e.g. {'http://127.0.0.1:8400/callback'}",
            )
        self.path = parts.path or "/"
        self.params: dict[str, str] | None = None
        self.state: str | None = None
        self.ignored = 0
        self.event = threading.Event()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlsplit(self.path)
                if url.path != owner.path or owner.event.is_set():
                    self.send_error(404)
                    return
                query = {k: v[0] for k, v in parse_qs(url.query).items()}
                refusal = owner.refusal(query, self.client_address, self.connection.getsockname())
                if refusal is not None:
                    owner.ignored += 1
                    self._answer(refusal[0], refusal[1])
                    return
                owner.params = query
                ok = "code" in query
                self._answer(
                    200 if ok else 400,
                    "Signed in. You can close this window and return to the terminal."
                    if ok
                    else "Sign-in failed. Return to the terminal for details.",
                )
                owner.event.set()

            def _answer(self, status: int, text: str) -> None:
                payload = f"<!doctype html><title>keybroker</title><p>{text}</p>".encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/html; charset=utf-8")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the query carries the code: never log it

        host = parts.hostname or "127.0.0.1"
        server_class = ThreadingHTTPServer
        if ":" in host:
            import socket  # noqa: PLC0415

            class Server6(ThreadingHTTPServer):
                address_family = socket.AF_INET6

            server_class = Server6
        try:
            self.server = server_class((host, parts.port or 0), Handler)
        except OSError as exc:
            raise UsageError(
                f"{where}: cannot listen on {host}:{parts.port or 0} for the browser redirect "
                f"({exc.strerror})",
                "free the port or set redirect_uri to another loopback port",
            ) from None
        port = self.server.server_address[1]
        self.redirect_uri = f"http://{host}:{port}{self.path}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def expect(self, state: str) -> None:
        """The ``state`` this login sent: only a redirect carrying it is taken."""
        self.state = state

    def refusal(self, query: dict[str, str], client: Any, server: Any) -> tuple[int, str] | None:
        """Why this request is not the person's redirect (status, page text), or None."""
        import hmac  # noqa: PLC0415
        import os  # noqa: PLC0415
        import sys  # noqa: PLC0415

        from keybroker.sources.oidc.peer import peer_uid  # noqa: PLC0415

        if not self.state or not hmac.compare_digest(query.get("state", ""), self.state):
            return 400, "This is not the sign-in keybroker is waiting for."
        uid = peer_uid((str(client[0]), int(client[1])), (str(server[0]), int(server[1])))
        if uid is None or sys.platform == "win32" or uid == os.getuid():
            return None  # ours (or the system cannot say who connected: state alone decides)
        return 403, "This sign-in belongs to another user of this computer."

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def wait_for_browser(
    callback: _Callback, url: str, ui: Progress, ctx: FetchContext, open_browser: bool
) -> None:
    """Show ``url`` (and open it), then wait for the redirect within the login's deadline.

    Shared by the OIDC source's browser login and Vault's OIDC auth method.
    """
    ui.say("keybroker: sign in in your browser; if it does not open, visit:")
    ui.say(url)
    if open_browser:
        import webbrowser  # noqa: PLC0415

        with contextlib.suppress(Exception):  # the URL is printed anyway
            webbrowser.open(url)
    began = time.monotonic()
    while not callback.event.wait(TICK):
        ui.waiting("waiting for the browser sign-in", time.monotonic() - began)
        ctx.timeout()  # raises once the login's deadline has passed
    ui.done()


def browser_flow(
    request: Request,
    ctx: FetchContext,
    doc: dict[str, Any],
    ui: Progress,
    open_browser: bool,
) -> dict[str, Any]:
    """Open the authorization URL; take the code on a loopback port; redeem it with PKCE."""
    from keybroker.sources.oidc.grants import DEFAULT_REDIRECT, provider, target_params  # noqa: PLC0415
    from keybroker.sources.oidc.http import endpoint  # noqa: PLC0415

    settings = request.settings
    where = request.where()
    issuer, _ = provider(settings)
    auth_url = endpoint(doc, "authorization_endpoint", issuer, "browser login")
    verifier = _b64(secrets.token_bytes(48))
    ctx.sensitive(verifier)
    challenge = _b64(hashlib.sha256(verifier.encode()).digest())
    state = _b64(secrets.token_bytes(18))
    callback = _Callback(str(settings.get("redirect_uri") or DEFAULT_REDIRECT), where)
    try:
        params = {
            "response_type": "code",
            "client_id": str(settings["client_id"]),
            "redirect_uri": callback.redirect_uri,
            "state": state,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            **target_params(settings),
        }
        nonce = None
        if "openid" in params.get("scope", "").split():
            nonce = params["nonce"] = _b64(secrets.token_bytes(18))
        sep = "&" if "?" in auth_url else "?"
        url = auth_url + sep + urlencode(params)
        callback.expect(state)
        wait_for_browser(callback, url, ui, ctx, open_browser)
    finally:
        callback.close()
    answer = callback.params or {}
    if "error" in answer:
        from keybroker.sources.oidc.http import _clean  # noqa: PLC0415

        detail = _clean(answer.get("error_description"))
        detail = f" ({detail})" if detail else ""
        raise AccessDenied(f"{where}: the sign-in failed: {_clean(answer['error'])[:60]}{detail}")
    code = answer.get("code", "")
    ctx.sensitive(code)
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": callback.redirect_uri,
        "code_verifier": verifier,
    }
    body = _exchange(request, ctx, data)
    check_nonce(body, nonce, where)
    return body


def check_nonce(body: dict[str, Any], nonce: str | None, where: str) -> None:
    """An ID token answering this sign-in must carry the ``nonce`` it sent (OpenID Connect
    Core 3.1.3.7): one minted for another sign-in (a replayed or injected code) is refused."""
    token = body.get("id_token")
    if nonce is None or not isinstance(token, str):
        return
    from keybroker.sources.oidc.tokens import jwt_claims  # noqa: PLC0415

    claims = jwt_claims(token) or {}
    got = claims.get("nonce")
    if not isinstance(got, str) or got != nonce:
        raise AccessDenied(
            f"{where}: the ID token does not answer this sign-in (its nonce is "
            f"{'missing' if got is None else 'another one'}); refused",
            "run the login again; if it repeats, report it to the provider's admin",
        )
