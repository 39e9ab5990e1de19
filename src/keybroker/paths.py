"""Default locations, computed in a few lines that match platformdirs.

Importing platformdirs costs ~15 ms on every helper run; these rules are what it does for
``appname="keybroker"`` on Linux and macOS (tests compare both). Windows defers to it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path

APP = "keybroker"


def _xdg(env: Mapping[str, str], var: str, fallback: str) -> Path:
    value = env.get(var, "").strip()
    return Path(value) if value else Path.home() / fallback


def _platformdirs(kind: str) -> Path:
    import platformdirs  # noqa: PLC0415 - only on platforms the fast rules do not cover

    getter = getattr(platformdirs, f"user_{kind}_dir")
    return Path(getter(APP, appauthor=False))


def cache_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where cache entries, locks and the profile index live (``KEYBROKER_CACHE_DIR``)."""
    override = env.get("KEYBROKER_CACHE_DIR")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / APP
    if sys.platform == "win32":
        return _platformdirs("cache")
    return _xdg(env, "XDG_CACHE_HOME", ".cache") / APP


def config_file(env: Mapping[str, str] = os.environ) -> Path:
    """The TOML config (``KEYBROKER_CONFIG``)."""
    override = env.get("KEYBROKER_CONFIG")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP / "config.toml"
    if sys.platform == "win32":
        return _platformdirs("config") / "config.toml"
    return _xdg(env, "XDG_CONFIG_HOME", ".config") / APP / "config.toml"


def data_dir(env: Mapping[str, str] = os.environ) -> Path:
    """Where the cache's data key lives, apart from the cache (``KEYBROKER_DATA_DIR``)."""
    override = env.get("KEYBROKER_DATA_DIR")
    if override:
        return Path(override)
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Application Support" / APP
    if sys.platform == "win32":
        return _platformdirs("data")
    return _xdg(env, "XDG_DATA_HOME", ".local/share") / APP
