"""A person's Vault login (``keybroker login PROFILE``): OIDC in a browser, userpass, LDAP.

Only ``keybroker login`` calls this; the helpers never prompt (they use the login cached here
and exit 8 without one). The Vault token lands in the encrypted side store like a machine
login (:meth:`Session.complete_login`), so later reads use it and renew it while renewable.

- ``oidc``: Vault's OIDC auth method. Vault hands out the provider's authorization URL for a
  loopback ``redirect_uri`` (``auth/MOUNT/oidc/auth_url``); the browser comes back to
  keybroker's listener with ``state`` and ``code``, which go to ``auth/MOUNT/oidc/callback``
  with the ``client_nonce`` only this process knows, so a code captured elsewhere is useless.
- ``userpass`` / ``ldap``: the password comes from the caller's reader (a no-echo terminal
  prompt, or one line of stdin); never from argv, the environment or the config.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import parse_qs, urlsplit

from keybroker.errors import AccessDenied, Unreachable, UsageError
from keybroker.sources.base import FetchContext
from keybroker.sources.oidc.flows import Progress, _Callback, wait_for_browser
from keybroker.sources.vault.auth import Login, Session
from keybroker.sources.vault.client import translate
from keybroker.sources.vault.spec import DEFAULT_OIDC_REDIRECT, PASSWORD_METHODS, Spec

#: Longest server-supplied URL shown to the person (a real one is a few hundred characters).
MAX_URL = 4096


def sign_in(
    spec: Spec,
    settings: Mapping[str, Any],
    ctx: FetchContext,
    ui: Progress,
    password: Callable[[], str],
    open_browser: bool = True,
) -> Login:
    """Log the person in with ``spec.auth_method``; the token is cached for the helpers."""
    session = Session(spec, settings, ctx)
    if spec.auth_method in PASSWORD_METHODS:
        return _password_login(session, password)
    return _oidc_login(session, ui, open_browser)


def _password_login(session: Session, password: Callable[[], str]) -> Login:
    spec = session.spec
    secret = password()
    if not secret:
        raise UsageError(f"{spec.label}: empty password", "type the password at the prompt")
    session.ctx.sensitive(secret)
    auth, mount, user = session.client.auth, spec.auth_mount, str(spec.username)
    if spec.auth_method == "ldap":

        def call() -> Any:
            return auth.ldap.login(user, secret, use_token=False, mount_point=mount)
    else:

        def call() -> Any:
            return auth.userpass.login(user, secret, use_token=False, mount_point=mount)

    return session.complete_login(f"auth/{mount}/login/{user}", call)


def _oidc_login(session: Session, ui: Progress, open_browser: bool) -> Login:
    spec, ctx, adapter = session.spec, session.ctx, session.client.adapter
    mount = spec.auth_mount
    callback = _Callback(
        str(session.settings.get("redirect_uri") or DEFAULT_OIDC_REDIRECT), spec.label
    )
    client_nonce = secrets.token_urlsafe(24)
    ctx.sensitive(client_nonce)
    try:
        url = _auth_url(session, callback.redirect_uri, client_nonce)
        state = parse_qs(urlsplit(url).query).get("state", [""])[0]
        if not state:
            raise Unreachable(
                f"{spec.label}: {spec.addr} gave a sign-in URL without a state",
                "is addr a Vault/OpenBao server?",
            )
        callback.expect(state)  # only the person's own redirect is taken
        wait_for_browser(callback, url, ui, ctx, open_browser)
    finally:
        callback.close()
    answer = callback.params or {}
    if "error" in answer:
        detail = _printable(answer.get("error_description", ""), 200)
        raise AccessDenied(
            f"{spec.label}: the sign-in failed: {_printable(answer['error'], 60)}"
            + (f" ({detail})" if detail else "")
        )
    code = answer.get("code", "")
    ctx.sensitive(code)
    params = {"state": answer.get("state", ""), "code": code, "client_nonce": client_nonce}
    path = f"auth/{mount}/oidc/callback"
    return session.complete_login(path, lambda: adapter.get(f"/v1/{path}", params=params))


def _auth_url(session: Session, redirect_uri: str, client_nonce: str) -> str:
    """Ask Vault for the provider's sign-in URL for this role and loopback redirect."""
    spec = session.spec
    path = f"auth/{spec.auth_mount}/oidc/auth_url"
    role = f" for role '{spec.role}'" if spec.role else " for the default role"
    body = {"role": spec.role or "", "redirect_uri": redirect_uri, "client_nonce": client_nonce}
    try:
        answer = session.client.adapter.post(f"/v1/{path}", json=body)
    except Exception as exc:
        raise translate(
            exc,
            spec,
            session.ctx,
            doing=f"asking {path} for the sign-in URL{role}",
            login=True,
            denied_hint=f"is {redirect_uri} in the role's allowed_redirect_uris?",
            missing=UsageError(
                f"{spec.label}: no oidc auth method at auth/{spec.auth_mount}",
                "set auth_mount to where it is enabled",
            ),
        ) from None
    data = answer.get("data") if isinstance(answer, dict) else None
    url = data.get("auth_url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url:
        raise UsageError(
            f"{spec.label}: {spec.addr} gave no sign-in URL{role} (redirect {redirect_uri})",
            "add that redirect to the role's allowed_redirect_uris, and set role (or the "
            "mount's default_role)",
        )
    if not url.startswith(("https://", "http://")) or not url.isprintable() or len(url) > MAX_URL:
        raise Unreachable(f"{spec.label}: {spec.addr} answered with an unusable sign-in URL")
    return url


def _printable(text: str, limit: int) -> str:
    return "".join(ch if ch.isprintable() else "?" for ch in str(text))[:limit]
