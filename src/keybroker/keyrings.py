"""Access to the OS keychain through ``keyring``, shared by the keychain source and the cache.

The cache can keep its data key in the keychain (``KEYBROKER_DATA_KEY_STORE=keychain``) and
the keychain source reads keys from it; both need keyring loaded the same way, with a clear
error naming what to install when it or a backend is missing. Neither may import the other
(``keybroker.cache`` never imports ``keybroker.sources``), so this lives on its own.
keyring costs ~140 ms to import: only ever imported when the keychain is actually used.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Any

from keybroker.errors import SourceUnavailable


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
        return (
            f"PYTHON_KEYRING_BACKEND={chosen} selects it: unset it, or name a real "
            f"backend such as {real}"
        )
    if module.startswith("keyring.backends.null"):
        return (
            "'keyring --disable' turned keyring off: delete the default-keyring line "
            "from keyringrc.cfg (run 'keyring diagnose' to find it)"
        )
    if sys.platform.startswith("linux"):
        if not env.get("DBUS_SESSION_BUS_ADDRESS"):
            return (
                "there is no D-Bus session (DBUS_SESSION_BUS_ADDRESS is not set): run "
                "in a desktop session, or start dbus and a Secret Service such as "
                "gnome-keyring (apt install gnome-keyring) or KeePassXC"
            )
        return (
            "install and unlock a Secret Service on this D-Bus session: gnome-keyring "
            "(apt install gnome-keyring) or KeePassXC with Secret Service enabled"
        )
    return "run 'keyring diagnose' to see why keyring found no backend"


_LINUX_BACKEND = "keyring.backends.SecretService.Keyring"
_PLATFORM_BACKEND = {
    "darwin": "keyring.backends.macOS.Keyring",
    "win32": "keyring.backends.Windows.WinVaultKeyring",
}
