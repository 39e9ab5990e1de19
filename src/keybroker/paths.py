"""Default locations, computed in a few lines that match platformdirs.

Importing platformdirs (and pathlib) costs ~15 ms on every helper run; these rules are what
platformdirs does for ``appname="keybroker"`` on Linux and macOS (tests compare both). Windows
defers to it. The ``*_str`` functions are for the cache-hit path, which avoids pathlib too.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

APP = "keybroker"


def _home() -> str:
    return os.path.expanduser("~")


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> str:
    value = env.get(var, "").strip()
    return value if value else os.path.join(_home(), fallback)


def _platformdirs(kind: str) -> str:
    import platformdirs  # noqa: PLC0415 - only on platforms the fast rules do not cover

    getter = getattr(platformdirs, f"user_{kind}_dir")
    return str(getter(APP, appauthor=False))


def cache_dir_str(env: Mapping[str, str] = os.environ) -> str:
    """Where cache entries, locks and the profile index live (``KEYBROKER_CACHE_DIR``)."""
    override = env.get("KEYBROKER_CACHE_DIR")
    if override:
        return override
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Caches", APP)
    if sys.platform == "win32":
        return _platformdirs("cache")
    return os.path.join(_xdg(env, "XDG_CACHE_HOME", ".cache"), APP)


def config_file_str(env: Mapping[str, str] = os.environ) -> str:
    """The TOML config (``KEYBROKER_CONFIG``)."""
    override = env.get("KEYBROKER_CONFIG")
    if override:
        return override
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", APP, "config.toml")
    if sys.platform == "win32":
        return os.path.join(_platformdirs("config"), "config.toml")
    return os.path.join(_xdg(env, "XDG_CONFIG_HOME", ".config"), APP, "config.toml")


def data_dir_str(env: Mapping[str, str] = os.environ) -> str:
    """Where the cache's data key lives, apart from the cache (``KEYBROKER_DATA_DIR``)."""
    override = env.get("KEYBROKER_DATA_DIR")
    if override:
        return override
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", APP)
    if sys.platform == "win32":
        return _platformdirs("data")
    return os.path.join(_xdg(env, "XDG_DATA_HOME", ".local/share"), APP)


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    from pathlib import Path  # noqa: PLC0415

    return Path(cache_dir_str(env))


def config_file(env: Mapping[str, str] = os.environ) -> Path:
    from pathlib import Path  # noqa: PLC0415

    return Path(config_file_str(env))


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    from pathlib import Path  # noqa: PLC0415

    return Path(data_dir_str(env))
