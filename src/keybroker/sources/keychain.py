"""``keychain``: the OS keychain through ``keyring`` (macOS Keychain, Secret Service, Windows).

keyring costs ~140 ms to import, so it is loaded only when a fetch is needed; the default
storage is the encrypted disk cache. A missing backend is reported by name with what to
install, not as a bare keyring exception.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keybroker.errors import (
    AccessDenied,
    SecretNotFound,
    Unreachable,
    UsageError,
)
from keybroker.keyrings import backend, load_keyring

__all__ = ["DEFAULT_USERNAME", "SOURCE", "KeychainSource", "backend", "load_keyring", "translate"]
from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, Check, FetchContext, NoIdentity, Setting

DEFAULT_USERNAME = "keybroker"


def _name(active: Any) -> str:
    return f"{type(active).__module__.rsplit('.', 1)[-1]}.{type(active).__name__}"


def translate(exc: Exception, what: str) -> Exception:
    """Map keyring/secretstorage/D-Bus errors to keybroker errors (no secret is in them)."""
    kind = type(exc).__name__
    module = type(exc).__module__
    if kind in ("KeyringLocked", "LockedException", "PromptDismissedException"):
        return AccessDenied(f"{what}: the keychain is locked", "unlock it and try again")
    if kind == "PasswordDeleteError":
        return SecretNotFound(f"{what}: no such keychain entry")
    if (
        kind in ("InitError", "NoKeyringError")
        or module.startswith(("jeepney", "dbus", "secretstorage"))
        or isinstance(exc, OSError)
    ):
        return Unreachable(
            f"{what}: the keychain service is not reachable ({kind})",
            "is a Secret Service running on this session's D-Bus (DBUS_SESSION_BUS_ADDRESS)?",
        )
    return Unreachable(f"{what}: keychain error ({kind})")


class KeychainSource(BaseSource):
    name = "keychain"
    default_storage = "disk"
    settings = (
        Setting("service", help="keychain service name", required=True),
        Setting("username", help=f"keychain account (default '{DEFAULT_USERNAME}')"),
    )

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        return {
            "service": settings["service"],
            "username": settings.get("username") or DEFAULT_USERNAME,
        }

    def describe(self, settings: Mapping[str, Any]) -> str:
        return f"{settings.get('service')}/{settings.get('username') or DEFAULT_USERNAME}"

    def identity_inputs(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> NoIdentity:
        return NoIdentity("the OS user's own keychain: whoever runs as this user can read it")

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        service = str(request.settings["service"])
        username = str(request.settings.get("username") or DEFAULT_USERNAME)
        keyring = load_keyring()
        try:
            active = backend(keyring, ctx.env)
            value = active.get_password(service, username)
        except UsageError:
            raise
        except Exception as exc:
            raise translate(exc, request.where()) from None
        if value is None:
            raise SecretNotFound(
                f"{request.where()}: no keychain entry for service '{service}', "
                f"user '{username}' ({_name(active)})",
                f"run: keybroker keychain set {service} {username}",
            )
        ctx.sensitive(value)
        return Secret(value.strip(), source=self.name, metadata={"backend": _name(active)})

    def doctor(self, request: Request, ctx: FetchContext) -> list[Check]:
        try:
            keyring = load_keyring()
            active = backend(keyring, ctx.env)
        except UsageError as exc:
            return [Check(False, "keychain backend", exc.message, exc.hint or "")]
        return [Check(True, "keychain backend", _name(active))]


SOURCE = KeychainSource()
