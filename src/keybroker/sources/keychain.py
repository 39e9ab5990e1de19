"""``keychain``: the OS keychain through ``keyring`` (macOS Keychain, Secret Service, Windows).

keyring costs ~140 ms to import, so it is loaded only when a fetch is needed; the default
storage is the encrypted disk cache. A missing backend is reported by name with what to
install, not as a bare keyring exception.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from keybroker.errors import (
    AccessDenied,
    SecretNotFound,
    SourceUnavailable,
    Unreachable,
    UsageError,
)
from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, Check, FetchContext, Setting

DEFAULT_USERNAME = "keybroker"


def load_keyring() -> Any:
    """Import keyring and return it, or raise exit 2 naming the command that installs it."""
    from keybroker.extras import require  # noqa: PLC0415

    return require("keyring", "keychain", "the keychain source")


def backend(keyring: Any, env: Mapping[str, str] | None = None) -> Any:
    """The active backend, or exit 2 naming the placeholder keyring chose and what to do.

    keyring falls back to ``keyring.backends.fail.Keyring`` ("no recommended backend") when
    no keychain is reachable, and to ``null.Keyring`` when it was disabled; both answer every
    call with an error or nothing, so they are refused here with the class's full name.
    """
    active = keyring.get_keyring()
    module = type(active).__module__
    if module.startswith(("keyring.backends.fail", "keyring.backends.null")):
        path = f"{module}.{type(active).__name__}"
        why = "no recommended backend" if ".fail" in module else "keyring is disabled"
        raise SourceUnavailable(
            f"no OS keychain backend is available ({path}: {why})",
            no_backend_hint(module, os.environ if env is None else env),
        )
    return active


def no_backend_hint(module: str, env: Mapping[str, str]) -> str:
    """What to install or change, for this platform and this session."""
    chosen = env.get("PYTHON_KEYRING_BACKEND", "")
    if chosen:
        real = _PLATFORM_BACKEND.get(sys.platform, f"{_LINUX_BACKEND} (a Secret Service)")
        return (f"PYTHON_KEYRING_BACKEND={chosen} selects it: unset it, or name a real "
                f"backend such as {real}")
    if module.startswith("keyring.backends.null"):
        return ("'keyring --disable' turned keyring off: delete the default-keyring line "
                "from keyringrc.cfg (run 'keyring diagnose' to find it)")
    if sys.platform.startswith("linux"):
        if not env.get("DBUS_SESSION_BUS_ADDRESS"):
            return ("there is no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set): run "
                    "in a desktop session, or start dbus and a Secret Service such as "
                    "gnome-keyring (apt install gnome-keyring) or KeePassXC")
        return ("install and unlock a Secret Service on this D-Bus session: gnome-keyring "
                "(apt install gnome-keyring) or KeePassXC with Secret Service enabled")
    return "run 'keyring diagnose' to see why keyring found no backend"


_LINUX_BACKEND = "keyring.backends.SecretService.Keyring"
_PLATFORM_BACKEND = {
    "darwin": "keyring.backends.macOS.Keyring",
    "win32": "keyring.backends.Windows.WinVaultKeyring",
}


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
