"""Profiles from TOML layers, env and flags, turned into Requests (DESIGN section 5).

Layers: the system config (``/etc/keybroker/config.toml``, ``KEYBROKER_SYSTEM_CONFIG``), which
an administrator ships once for every user of a machine, under the user's config
(``~/.config/keybroker/config.toml``, ``KEYBROKER_CONFIG``). A user's ``[profiles.NAME]``
with ``source`` replaces the system table of the same name whole; one without ``source`` adds
to it or overrides its keys (a person's ``username``); ``[defaults]`` keys and
``[defaults.SOURCE]`` settings merge key by key. Precedence of options: flags > the profile's
table > environment (``KEYBROKER_*``) > ``[defaults]`` > built-in defaults.

Both files are checked before they are read (:mod:`.trust`); every error names the file, the
line, the table and the key (:mod:`.schema`). After a successful load the narrow index the hit
path uses is refreshed (:mod:`.index`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keybroker import paths
from keybroker.config.schema import (
    PROFILE_META_KEYS,
    Where,
    check_top_level,
    suggest,
    validate_settings,
)
from keybroker.errors import ConfigError, UsageError
from keybroker.model import Request
from keybroker.options import (  # re-exported: callers build options through this module
    OPTION_KEYS,
    REPEAT_CHOICES,
    STORAGE_CHOICES,
    build_options,
    helper_ttl,
    parse_option,
)

__all__ = [
    "OPTION_KEYS",
    "PROFILE_META_KEYS",
    "REPEAT_CHOICES",
    "STORAGE_CHOICES",
    "Config",
    "Profile",
    "build_options",
    "helper_ttl",
    "load",
    "request_for",
]

#: Available before anything is configured, so a new user can see keybroker work at once.
BUILTIN_PROFILES: dict[str, dict[str, Any]] = {
    "demo": {
        "source": "demo",
        "settings": {},
        "options": {},
        "description": "built-in demo: a random key valid for 1 hour",
    },
}
BUILTIN_ORIGIN = "(built-in)"


@dataclass
class Profile:
    name: str
    source: str
    settings: dict[str, Any]
    options: dict[str, Any]
    description: str = ""
    builtin: bool = False
    #: the file the profile's table came from
    origin: str = ""


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
    #: the system layer, when one was read
    system_path: Path | None = None
    #: where each ``[defaults]`` option and source default came from
    origins: dict[str, str] = field(default_factory=dict)

    def profile(self, name: str) -> Profile:
        try:
            return self.profiles[name]
        except KeyError:
            known = ", ".join(sorted(self.profiles)) or "none"
            where = str(self.path) if self.exists else f"{self.path} (not found)"
            raise UsageError(
                f"unknown profile '{name}'{suggest(name, self.profiles)} "
                f"(config: {where}; profiles: {known})",
                f"add a [profiles.{name}] table, or run 'keybroker config show'",
            ) from None


def _builtins(config: Config) -> None:
    for name, raw in BUILTIN_PROFILES.items():
        config.profiles[name] = Profile(
            name,
            raw["source"],
            dict(raw["settings"]),
            dict(raw["options"]),
            raw["description"],
            builtin=True,
            origin=BUILTIN_ORIGIN,
        )


def _parse_toml(path: Path, text: str) -> dict[str, Any]:
    import tomllib  # noqa: PLC0415 - only on the full path

    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: arrays or tables nested too deeply") from None


def _apply_layer(config: Config, path: Path, text: str) -> None:
    """Validate one file's tables and merge them into ``config``."""
    data = _parse_toml(path, text)
    where = Where(path, text)
    check_top_level(data, where)
    for key, value in data.items():
        if key not in ("profiles", "defaults"):
            config.extra[key] = value
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise ConfigError(f"{where.at()}: 'defaults' must be a table")
    for key, value in defaults.items():
        table = where.sub("defaults")
        if isinstance(value, dict):
            settings, _ = validate_settings(key, value, where.sub(f"defaults.{key}"), False)
            config.source_defaults.setdefault(key, {}).update(settings)
            for name in settings:
                config.origins[f"defaults.{key}.{name}"] = str(path)
        elif key in OPTION_KEYS:
            config.defaults[key] = parse_option(key, value, table.at(key))
            config.origins[f"defaults.{key}"] = str(path)
        else:
            raise ConfigError(
                f"{table.at(key)}: unknown key '{key}'{suggest(key, OPTION_KEYS)}",
                f"known keys: {', '.join(OPTION_KEYS)}, or a [defaults.SOURCE] table",
            )
    profiles = data.get("profiles", {})
    if not isinstance(profiles, dict):
        raise ConfigError(f"{where.at()}: 'profiles' must be a table of [profiles.NAME] tables")
    for name, table in profiles.items():
        here = where.sub(f"profiles.{name}")
        if not isinstance(table, dict):
            raise ConfigError(f"{here.at()}: must be a table")
        if "source" not in table:
            _extend(config, name, table, here, path)
            continue
        source_name = table["source"]
        if not isinstance(source_name, str):
            raise ConfigError(
                f"{here.at('source')}: key 'source' must be a string", f"set source = {_SOURCES}"
            )
        settings, options = validate_settings(source_name, table, here)
        config.profiles[name] = Profile(
            name,
            source_name,
            settings,
            options,
            str(table.get("description", "")),
            origin=str(path),
        )


_SOURCES = '"vault", "aws", "keychain", "oidc", "command", "env" or "file"'


def _extend(config: Config, name: str, table: Mapping[str, Any], here: Where, path: Path) -> None:
    """A ``[profiles.NAME]`` without ``source``: it adds to (or overrides keys of) the profile
    of that name an earlier layer defined — a person's ``username`` or ``field`` on the
    system's shared profile (DESIGN section 5) — checked against that profile's source."""
    base = config.profiles.get(name)
    if base is None or base.builtin:
        shared = [n for n, p in config.profiles.items() if not p.builtin]
        hint = suggest(name, shared)
        raise ConfigError(
            f"{here.at()}: missing key 'source' (a profile without 'source' adds to the system "
            f"config's profile of that name, and there is no system profile '{name}'){hint}",
            f"set source = {_SOURCES}"
            + (f", or name a system profile ({', '.join(sorted(shared))})" if shared else ""),
        )
    settings, options = validate_settings(base.source, table, here)
    merged_settings = dict(base.settings)
    merged_settings.update(settings)
    merged_options = dict(base.options)
    merged_options.update(options)
    description = str(table.get("description", base.description))
    config.profiles[name] = Profile(
        name,
        base.source,
        merged_settings,
        merged_options,
        description,
        origin=f"{base.origin} + {path}",
    )


def _read(path: Path, system: bool) -> str | None:
    """The text of a trusted config file, or None when there is none.

    The file is opened once, checked on its descriptor with every directory above it
    (:mod:`.trust`), and parsed from the bytes read from that descriptor: no component of the
    path can be swapped between the check and the read.
    """
    from keybroker.config.trust import read_trusted  # noqa: PLC0415

    try:
        data, _ = read_trusted(path, system=system)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError(f"cannot read config {path}: {exc.strerror or exc}") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"cannot read config {path}: {exc}") from None


def _inherit(config: Config) -> None:
    """Profiles inherit ``[defaults.SOURCE]`` settings they do not set themselves."""
    for profile in config.profiles.values():
        merged = dict(config.source_defaults.get(profile.source, {}))
        merged.update(profile.settings)
        profile.settings = merged


def load(
    env: Mapping[str, str] = os.environ, path: Path | None = None, flag_path: bool = False
) -> Config:
    """Read the config layers (trust-checked, parsed, validated), without touching the index.

    ``flag_path``: the path came from ``--config`` (for the message when it does not exist).
    """
    path = path or paths.config_file(env)
    system = paths.system_config_str(env)
    config = Config(path=path, exists=False)
    _builtins(config)
    if system is not None:
        system_path = Path(system)
        text = _read(system_path, system=True)
        if text is not None:
            config.system_path = system_path
            _apply_layer(config, system_path, text)
    text = _read(path, system=False)
    if text is None:
        explicit = env.get("KEYBROKER_CONFIG")
        if explicit and Path(explicit) == path:
            origin = (
                "--config"
                if flag_path or env.get("KEYBROKER_CONFIG_FROM") == "flag"
                else ("KEYBROKER_CONFIG")
            )
            raise ConfigError(f"config file {path} (from {origin}) does not exist")
    else:
        config.exists = True
        _apply_layer(config, path, text)
    _inherit(config)
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
