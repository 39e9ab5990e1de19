"""Profiles from TOML, env and flags, turned into Requests (DESIGN section 5).

Precedence: flags > the profile's table > environment (``KEYBROKER_*``) > ``[defaults]`` >
built-in defaults. ``[defaults.<source>]`` tables give source settings every profile of that
source inherits. Every error names the file, the table and the key.

The hot path does not parse TOML: the validated profiles are kept as JSON in a small index
next to the cache, reused while the config file's mtime, size and inode are unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keybroker import paths
from keybroker.durations import parse_duration
from keybroker.errors import ConfigError, UsageError
from keybroker.model import (
    DEFAULT_ADVISORY,
    DEFAULT_MARGIN,
    DEFAULT_MAX_STALE,
    DEFAULT_TIMEOUT,
    DEFAULT_TTL,
    Options,
    Request,
)

#: Keys every profile may set, whatever its source; everything else belongs to the source.
OPTION_KEYS = ("max_age", "margin", "advisory", "max_stale", "storage", "repeat", "timeout")
PROFILE_META_KEYS = ("source", "description")
STORAGE_CHOICES = ("disk", "none")
REPEAT_CHOICES = ("auto", "on", "off")
INDEX_VERSION = 1

#: Available before anything is configured, so a new user can see keybroker work at once.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "demo": {
        "source": "demo",
        "settings": {},
        "options": {},
        "description": "built-in demo: a random key valid for 1 hour",
    },
}


@dataclass
class Profile:
    name: str
    source: str
    settings: dict[str, Any]
    options: dict[str, Any]
    description: str = ""
    builtin: bool = False


@dataclass
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


def _option(key: str, value: Any, where: str) -> Any:
    """Validate one common option; durations become seconds."""
    if key in ("max_age", "margin", "advisory", "max_stale", "timeout"):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{where} key '{key}': {exc}") from None
    if key == "storage":
        if value not in STORAGE_CHOICES:
            raise ConfigError(f"{where} key 'storage': must be \"disk\" or \"none\", got {value!r}")
        return value
    if key == "repeat":
        if value not in REPEAT_CHOICES:
            raise ConfigError(f"{where} key 'repeat': must be auto, on or off, got {value!r}")
        return value
    raise ConfigError(f"{where}: unknown option '{key}'")  # pragma: no cover


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


def _signature(path: Path) -> list[int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns]


def _index_path(cache_dir: Path, config_path: Path) -> Path:
    digest = hashlib.sha256(str(config_path.absolute()).encode()).hexdigest()[:16]
    return cache_dir / f"index-{digest}.json"


def _to_index(config: Config, signature: list[int] | None) -> dict[str, Any]:
    return {
        "v": INDEX_VERSION,
        "path": str(config.path),
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


def load_fast(env: Mapping[str, str], cache_dir: Path | None) -> Config:
    """The config via the index when it is current; otherwise parse and refresh the index."""
    path = paths.config_file(env)
    signature = _signature(path)
    if cache_dir is None:
        return load(env, path)
    index = _index_path(cache_dir, path)
    with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
        raw = index.read_bytes()
        data = json.loads(raw)
        if data.get("v") == INDEX_VERSION and data.get("sig") == signature and data.get(
            "path"
        ) == str(path):
            return _from_index(data, path)
    config = load(env, path)
    from keybroker.cache.files import atomic_write  # noqa: PLC0415

    with contextlib.suppress(OSError):
        atomic_write(index, json.dumps(_to_index(config, signature)).encode())
    return config


# --- options: flags > profile > env > [defaults] > built-in ---

_ENV_OPTIONS = {
    "KEYBROKER_TIMEOUT": "timeout",
    "KEYBROKER_MARGIN": "margin",
    "KEYBROKER_ADVISORY": "advisory",
    "KEYBROKER_MAX_STALE": "max_stale",
    "KEYBROKER_REPEAT": "repeat",
}


def helper_ttl(env: Mapping[str, str]) -> float:
    """Claude Code's helper TTL in seconds, from CLAUDE_CODE_API_KEY_HELPER_TTL_MS."""
    raw = env.get("CLAUDE_CODE_API_KEY_HELPER_TTL_MS", "").strip()
    if not raw:
        return DEFAULT_TTL
    try:
        value = float(raw) / 1000.0
    except ValueError:
        raise UsageError(
            f"CLAUDE_CODE_API_KEY_HELPER_TTL_MS={raw!r} is not a number of milliseconds"
        ) from None
    if not value > 0 or value == float("inf"):
        raise UsageError("CLAUDE_CODE_API_KEY_HELPER_TTL_MS must be a positive number")
    return value


def build_options(
    source_default_storage: str,
    profile_options: Mapping[str, Any],
    defaults: Mapping[str, Any],
    env: Mapping[str, str],
    flags: Mapping[str, Any] | None = None,
) -> Options:
    """Merge option layers into Options."""
    merged: dict[str, Any] = {"storage": source_default_storage}
    merged.update(defaults)
    for var, key in _ENV_OPTIONS.items():
        if env.get(var):
            try:
                merged[key] = _option(key, env[var], f"environment variable {var}")
            except ConfigError as exc:
                raise UsageError(exc.message) from None
    merged.update(profile_options)
    merged.update({k: v for k, v in (flags or {}).items() if v is not None})
    return Options(
        ttl=helper_ttl(env),
        margin=float(merged.get("margin", DEFAULT_MARGIN)),
        advisory=float(merged.get("advisory", DEFAULT_ADVISORY)),
        max_age=merged.get("max_age"),
        max_stale=float(merged.get("max_stale", DEFAULT_MAX_STALE)),
        storage=str(merged["storage"]),
        repeat=str(merged.get("repeat", "auto")),
        timeout=float(merged.get("timeout", DEFAULT_TIMEOUT)),
    )


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
