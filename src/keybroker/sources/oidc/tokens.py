"""Token responses and stored logins: which token to print, when it expires, and where the
refresh token lives between calls.

Expiry comes from ``expires_in`` and, failing that, from the JWT's ``exp`` claim (read, not
verified: verifying is the gateway's job; keybroker only needs to know when to refresh).
Refresh tokens are kept encrypted in the cache directory (default) or in the OS keychain,
keyed by issuer, client and scope, so every profile of the same login shares them.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import math
from collections.abc import Iterator, Mapping
from typing import Any

from keybroker import clock
from keybroker.errors import InvalidSecret, UsageError
from keybroker.model import Secret
from keybroker.sources.answers import MAX_ANSWER, loads
from keybroker.sources.base import AuxEntry, FetchContext

KEYCHAIN_SERVICE = "keybroker-oidc"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a compact JWS, unverified; None when ``token`` is not a JWT."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        raw = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        if len(raw) > MAX_ANSWER:
            return None
        claims = loads(raw, "the token's claims")
    except (ValueError, UnicodeDecodeError, InvalidSecret):
        return None  # not a JWT keybroker can read (a broken or absurdly nested payload)
    return claims if isinstance(claims, dict) else None


#: A lifetime longer than this is not a real token's: treated as an invalid value.
MAX_LIFETIME = 10 * 365.25 * 86400


def jwt_exp(token: str) -> float | None:
    """The JWT's ``exp`` (may be NaN or infinite: :func:`to_secret` checks it)."""
    claims = jwt_claims(token)
    exp = None if claims is None else claims.get("exp")
    if isinstance(exp, int | float) and not isinstance(exp, bool):
        return float(exp)
    return None


def lifetime(value: Any) -> float | None:
    """``expires_in`` as seconds; None when absent or not a number; NaN when unusable."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        return None
    try:
        seconds = float(value)
    except (ValueError, OverflowError):
        return None
    if not math.isfinite(seconds) or seconds < 0 or seconds > MAX_LIFETIME:
        return math.nan
    return seconds


def register_tokens(body: Mapping[str, Any], ctx: FetchContext) -> None:
    """Every token in a response is a secret, whichever one is printed."""
    for key in ("access_token", "id_token", "refresh_token", "issued_token"):
        value = body.get(key)
        if isinstance(value, str):
            ctx.sensitive(value)


def to_secret(
    body: Mapping[str, Any], which: str, grant: str, where: str, received_at: float
) -> Secret:
    """The printed token from a token response, with its expiry and non-secret metadata."""
    value = body.get(which)
    if not isinstance(value, str) or not value:
        hint = (
            "add 'openid' to scope so the provider returns an ID token"
            if which == "id_token"
            else "check the grant and scope settings"
        )
        raise InvalidSecret(f"{where}: the token response has no {which}", hint)
    expires_at: float | None = None
    seconds = lifetime(body.get("expires_in")) if which == "access_token" else None
    if seconds is not None:
        expires_at = received_at + seconds
    if expires_at is None:
        expires_at = jwt_exp(value)
    if expires_at is not None and not (
        math.isfinite(expires_at) and expires_at <= received_at + MAX_LIFETIME
    ):
        # NaN, an infinity, a negative or a ten-year lifetime: cached, it would never expire
        raise InvalidSecret(
            f"{where}: the provider gave the {which} an impossible lifetime "
            "(expires_in / exp not a finite time within 10 years)",
            "the provider's token response is broken; report it to its admin",
        )
    metadata: dict[str, Any] = {"grant": grant, "token": which}
    for key in ("token_type", "scope", "issued_token_type"):
        if isinstance(body.get(key), str):
            metadata[key] = body[key]
    return Secret(value, expires_at=expires_at, source="oidc", metadata=metadata)


def login_key(issuer: str, client_id: str, scope: str) -> str:
    """The name a stored login has: one per issuer, client and scope (not per profile)."""
    digest = hashlib.sha256(f"{issuer}\0{client_id}\0{scope}".encode()).hexdigest()[:24]
    return f"refresh:{digest}"


class RefreshStore:
    """Where the refresh token of one login lives: the encrypted side store or the keychain."""

    def __init__(self, kind: str, key: str, ctx: FetchContext, where: str) -> None:
        self.kind = kind
        self.key = key
        self.ctx = ctx
        self.where = where

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Only one process at a time may present and rotate this login's refresh token."""
        if self.ctx.aux is None:
            yield
            return
        with self.ctx.aux.lock(self.key, self.ctx.deadline):
            yield

    def load(self) -> str | None:
        value: str | None = None
        if self.kind == "keychain":
            value = self._keychain("get")
        elif self.ctx.aux is not None:
            entry = self.ctx.aux.get(self.key)
            if entry is not None and (entry.expires_at is None or entry.expires_at > clock.now()):
                value = entry.value
        self.ctx.sensitive(value)
        return value or None

    def save(self, token: str, expires_in: Any = None) -> None:
        self.ctx.sensitive(token)
        if self.kind == "keychain":
            self._keychain("set", token)
            return
        if self.ctx.aux is None:
            raise UsageError(
                f"{self.where}: no cache directory to keep the login in",
                "fix the cache directory (keybroker doctor) or set refresh_token_store = "
                '"keychain"',
            )
        expires_at = None
        seconds = lifetime(expires_in)
        if seconds is not None and math.isfinite(seconds):  # else: no known end
            expires_at = clock.now() + seconds
        self.ctx.aux.put(self.key, AuxEntry(token, expires_at=expires_at))

    def delete(self) -> None:
        if self.kind == "keychain":
            with contextlib.suppress(Exception):
                self._keychain("delete")
        elif self.ctx.aux is not None:
            self.ctx.aux.delete(self.key)

    def _keychain(self, op: str, value: str | None = None) -> str | None:
        from keybroker.errors import KeybrokerError  # noqa: PLC0415
        from keybroker.sources.keychain import (  # noqa: PLC0415
            backend,
            load_keyring,
            translate,
        )

        active = backend(load_keyring())
        try:
            if op == "get":
                found = active.get_password(KEYCHAIN_SERVICE, self.key)
                return None if found is None else str(found)
            if op == "set":
                active.set_password(KEYCHAIN_SERVICE, self.key, value)
            else:
                active.delete_password(KEYCHAIN_SERVICE, self.key)
        except KeybrokerError:
            raise
        except Exception as exc:
            raise translate(exc, f"{self.where}: stored login") from None
        return None
