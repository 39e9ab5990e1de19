"""Access to the OS keychain through ``keyring``, shared by the keychain source and the cache.

The cache can keep its data key in the keychain (``KEYBROKER_DATA_KEY_STORE=keychain``) and
the keychain source reads keys from it; both need keyring loaded the same way, with a clear
error naming what to install when it or a backend is missing. Neither may import the other
(``keybroker.cache`` never imports ``keybroker.sources``), so this lives on its own.
keyring costs ~140 ms to import: only ever imported when the keychain is actually used.
"""

from __future__ import annotations

from typing import Any

from keybroker.errors import SourceUnavailable


def load_keyring() -> Any:
    """Import keyring and return it, or raise exit 2 saying what to install."""
    try:
        import keyring  # noqa: PLC0415
    except ImportError:
        raise SourceUnavailable(
            "the keychain source needs the 'keyring' package",
            "install it: pip install 'keybroker[keychain]'",
        ) from None
    return keyring


def backend(keyring: Any) -> Any:
    """The active backend, or exit 2 naming what is missing (keyring's 'fail' backend)."""
    active = keyring.get_keyring()
    module = type(active).__module__
    if module.startswith("keyring.backends.fail") or module.startswith("keyring.backends.null"):
        raise SourceUnavailable(
            f"no OS keychain backend is available (keyring chose {type(active).__name__})",
            "on Linux install and unlock a Secret Service (gnome-keyring or KeePassXC) and "
            "pip install secretstorage; or set PYTHON_KEYRING_BACKEND",
        )
    return active
