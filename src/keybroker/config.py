"""Profiles from TOML, env and flags, turned into Requests (DESIGN section 5).

Precedence: flags > the profile's table > environment (``KEYBROKER_*``) > ``[defaults]`` >
built-in defaults. ``[defaults.<source>]`` tables give source settings every profile of that
source inherits. Every error names the file, the table and the key.

The hot path does not parse TOML: the validated profiles are kept in a small sealed index
next to the cache, reused while the config file's mtime, size and inode are unchanged.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keybroker import paths
from keybroker.cache.index import INDEX_VERSION, read_index, signature, write_index
from keybroker.errors import ConfigError, UsageError
from keybroker.model import Request
from keybroker.options import (  # re-exported: callers build options through this module
    OPTION_KEYS,
    REPEAT_CHOICES,
    STORAGE_CHOICES,
    build_options,
    helper_ttl,
)
from keybroker.options import parse_option as _option
from keybroker.record import field, record

__all__ = [
    "OPTION_KEYS",
    "REPEAT_CHOICES",
    "STORAGE_CHOICES",
    "Config",
    "Profile",
    "build_options",
    "helper_ttl",
    "load",
    "load_fast",
    "request_for",
]

PROFILE_META_KEYS = ("source", "description")

#: Available before anything is configured, so a new user can see keybroker work at once.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "demo": {
        "source": "demo",
        "settings": {},
        "options": {},
        "description": "built-in demo: a random key valid for 1 hour",
    },
}


@record
class Profile:
    name: str
    source: str
    settings: dict[str, Any]
    options: dict[str, Any]
    description: str = ""
    builtin: bool = False


@record
class Config:
    path: Path
    exists: bool
    defaults: dict[str, Any] = field(default_factory=dict)
    profiles: dict[str, Profile] = field(default_factory=dict)
    #: extra top-level tables other commands use (e.g. ``[mcp]`` server → profile)
    extra: dict[str, Any] = field(default_factory=dict)
    #: ``[defaults.SOURCE]`` settings, inherited by profiles and standalone calls
    source_defaults: dict[str, dict[str, Any]] = field(default_factory=dict)

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            where = str(self.path) if self.exists else f"{self.path} (not found)"
            raise UsageError(
                f"unknown profile '{name}' (config: {where}; profiles: {known})",
                f"add a [profiles.{name}] table, or run 'keybroker doctor'",
            ) from None


def validate_settings(
    source_name: str, raw: Mapping[str, Any], where: str, allow_options: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a profile table into (source settings, options), checking every key and type."""
    from keybroker.sources.base import coerce, get_source  # noqa: PLC0415

    try:
        source = get_source(source_name)
    except UsageError as exc:
        raise ConfigError(f"{where} key 'source': {exc.message}", exc.hint) from None
    known = {s.name: s for s in source.settings}
    settings: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in PROFILE_META_KEYS:
            continue
        if key in OPTION_KEYS and allow_options:
            options[key] = _option(key, value, where)
        elif key in known:
            try:
                settings[key] = coerce(known[key], value, f"{where} key '{key}'")
            except UsageError as exc:
                raise ConfigError(exc.message, exc.hint) from None
        else:
            names = sorted(list(known) + list(OPTION_KEYS))
            raise ConfigError(
                f"{where}: unknown key '{key}' for source '{source_name}'",
                f"known keys: {', '.join(names)}",
            )
    return settings, options


def parse_config(path: Path, text: str) -> Config:
    """Parse and validate the TOML text of ``path``."""
    import tomllib  # noqa: PLC0415 - only when the config changed

    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None
    config = Config(path=path, exists=True)
    for key, value in data.items():
        if key not in ("profiles", "defaults"):
            config.extra[key] = value
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{path}: 'defaults' must be a table")
    per_source: dict[str, dict[str, Any]] = {}
    for key, value in defaults.items():
        where = f"{path}: [defaults]"
        if isinstance(value, dict):
            settings, _ = validate_settings(key, value, f"{path}: [defaults.{key}]", False)
            per_source[key] = settings
            config.source_defaults[key] = settings
        elif key in OPTION_KEYS:
            config.defaults[key] = _option(key, value, where)
        else:
            raise ConfigError(
                f"{where}: unknown key '{key}'",
                f"known keys: {', '.join(OPTION_KEYS)}, or a [defaults.SOURCE] table",
            )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{path}: 'profiles' must be a table of [profiles.NAME] tables")
    for name, raw in BUILTIN_PROFILES.items():
        config.profiles[name] = Profile(
            name, raw["source"], dict(raw["settings"]), dict(raw["options"]),
            raw["description"], builtin=True,
        )
    for name, table in profiles.items():
        where = f"{path}: [profiles.{name}]"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        source_name = table.get("source")
        if not isinstance(source_name, str):
            raise ConfigError(
                f"{where}: missing key 'source'",
                "set source = \"vault\", \"aws\", \"keychain\", \"oidc\", \"command\", "
                "\"env\" or \"file\"",
            )
        settings, options = validate_settings(source_name, table, where)
        merged = dict(per_source.get(source_name, {}))
        merged.update(settings)
        description = table.get("description", "")
        config.profiles[name] = Profile(name, source_name, merged, options, str(description))
    return config


def empty_config(path: Path) -> Config:
    config = Config(path=path, exists=False)
    for name, raw in BUILTIN_PROFILES.items():
        config.profiles[name] = Profile(
            name, raw["source"], dict(raw["settings"]), dict(raw["options"]),
            raw["description"], builtin=True,
        )
    return config


def load(env: Mapping[str, str] = os.environ, path: Path | None = None) -> Config:
    """Read the config (parse and validate), without touching the index."""
    path = path or paths.config_file(env)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        if "KEYBROKER_CONFIG" in env and path == Path(env["KEYBROKER_CONFIG"]):
            raise ConfigError(
                f"config file {path} (from KEYBROKER_CONFIG) does not exist"
            ) from None
        return empty_config(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None
    return parse_config(path, text)


# --- the precompiled index, for the hot path ---


class RecordingEnv(Mapping[str, str]):
    """An environment that remembers which variables were looked up, and their values.

    A source's ``canonical()`` may depend on the environment (``VAULT_ADDR``); the index stores
    the entry id it computed together with those variables, and the hit path reuses the id only
    while they are unchanged.
    """

    def __init__(self, env: Mapping[str, str]) -> None:
        self._env = env
        self.seen: dict[str, str | None] = {}

    def __getitem__(self, key: str) -> str:
        self.seen[key] = self._env.get(key)
        return self._env[key]

    def get(self, key: str, default: Any = None) -> Any:
        self.seen[key] = self._env.get(key)
        return self._env.get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.seen[key] = self._env.get(key)
        return key in self._env

    def __iter__(self) -> Any:
        raise TypeError("a source's canonical() must look variables up by name")

    def __len__(self) -> int:
        return len(self._env)


def hot_entry(profile: Profile, env: Mapping[str, str]) -> dict[str, Any] | None:
    """What the hit path needs to serve ``profile`` without importing its source: the entry
    id, the environment it depends on, and the source's default storage."""
    from keybroker.cache.store import entry_id  # noqa: PLC0415
    from keybroker.sources.base import get_source  # noqa: PLC0415

    try:
        source = get_source(profile.source)
        recording = RecordingEnv(env)
        canonical = source.canonical(profile.settings, recording)
    except Exception:
        return None
    return {
        "id": entry_id(profile.source, canonical),
        "env": recording.seen,
        "storage": source.default_storage,
    }


def _to_index(
    config: Config, signature: list[int] | None, env: Mapping[str, str]
) -> dict[str, Any]:
    return {
        "v": INDEX_VERSION,
        "path": os.path.abspath(config.path),
        "sig": signature,
        "defaults": config.defaults,
        "extra": config.extra,
        "source_defaults": config.source_defaults,
        "profiles": {
            name: {
                "source": p.source,
                "settings": p.settings,
                "options": p.options,
                "description": p.description,
                "builtin": p.builtin,
                "hot": [v for v in (hot_entry(p, env),) if v is not None],
            }
            for name, p in config.profiles.items()
        },
    }


def _from_index(data: dict[str, Any], path: Path) -> Config:
    config = Config(path=path, exists=data["sig"] is not None, defaults=dict(data["defaults"]))
    config.extra = dict(data.get("extra") or {})
    config.source_defaults = dict(data.get("source_defaults") or {})
    for name, raw in data["profiles"].items():
        config.profiles[name] = Profile(
            name, raw["source"], dict(raw["settings"]), dict(raw["options"]),
            raw.get("description", ""), bool(raw.get("builtin")),
        )
    return config


def _index_key(env: Mapping[str, str]) -> Any:
    """The data key that seals the index, or None when it cannot be had (no index then)."""
    from keybroker.cache.crypto import key_store, load_data_key  # noqa: PLC0415
    from keybroker.errors import KeybrokerError  # noqa: PLC0415

    try:
        return load_data_key(paths.data_dir(env), create=True, store=key_store(env))
    except (KeybrokerError, OSError):
        return None


def load_fast(env: Mapping[str, str], cache_dir: Path | None) -> Config:
    """The config via the index when it is current; otherwise parse and refresh the index."""
    path = paths.config_file(env)
    key = _index_key(env) if cache_dir is not None else None
    if cache_dir is None or key is None:
        return load(env, path)
    data = read_index(str(cache_dir), str(path), key)
    if data is not None:
        with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
            return _from_index(data, path)
    config = load(env, path)
    write_index(str(cache_dir), str(path), key, _to_index(config, signature(path), env))
    return config


def request_for(
    config: Config,
    name: str,
    env: Mapping[str, str],
    flag_options: Mapping[str, Any] | None = None,
    flag_settings: Mapping[str, Any] | None = None,
) -> Request:
    """The Request for profile ``name`` with flags applied on top."""
    from keybroker.sources.base import get_source  # noqa: PLC0415

    profile = config.profile(name)
    source = get_source(profile.source)
    settings = dict(profile.settings)
    settings.update({k: v for k, v in (flag_settings or {}).items() if v is not None})
    options = build_options(
        source.default_storage, profile.options, config.defaults, env, flag_options
    )
    return Request(profile.source, settings, options, profile=name)


#: How many environment variants of a profile's entry id the index keeps.
HOT_VARIANTS = 4


def remember_hot(cache_dir: str, env: Mapping[str, str], name: str) -> None:
    """Add this environment's entry id for profile ``name`` to the index.

    Called after the hit path could not use the index because the environment a source's
    entry id depends on (``VAULT_ADDR`` …) differs from the one the index was built with.
    """
    config_path = str(paths.config_file(env))
    key = _index_key(env)
    data = None if key is None else read_index(cache_dir, config_path, key)
    if data is None:
        return
    with contextlib.suppress(KeyError, TypeError, ValueError, AttributeError):
        raw = data["profiles"][name]
        profile = Profile(name, raw["source"], dict(raw["settings"]), dict(raw["options"]))
        variant = hot_entry(profile, env)
        if variant is None or variant in raw["hot"]:
            return
        raw["hot"] = [variant, *raw["hot"]][:HOT_VARIANTS]
        write_index(cache_dir, config_path, key, data)
