"""Shared steps of the helper commands: environment, cache, config, request."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from keybroker.cache.store import Cache
from keybroker.errors import CacheError
from keybroker.model import Request

if TYPE_CHECKING:
    from keybroker import config as configmod
    from keybroker.fastpath.main import Probe
    from keybroker.outcome import Outcome


def environment(config_path: str | None = None) -> dict[str, str]:
    """os.environ, with ``--config`` applied as KEYBROKER_CONFIG."""
    env = dict(os.environ)
    if config_path:
        env["KEYBROKER_CONFIG"] = config_path
        env["KEYBROKER_CONFIG_FROM"] = "flag"  # for the message when it does not exist
    return env


def open_cache(
    env: Mapping[str, str], probe: Probe | None = None
) -> tuple[Cache | None, CacheError | None]:
    """The cache, or the reason it cannot be used (raised later only if storage needs it).

    With the fast path's ``probe``, the data key it already loaded is used, not loaded again.
    """
    try:
        return Cache.open(env, probe.key if probe is not None else None), None
    except CacheError as exc:
        return None, exc


def flag_options(max_age: str | None, reject_repeats: bool) -> dict[str, Any]:
    """The serving options every helper command takes as flags (``--max-age``,
    ``--reject-repeats``), validated: shared by ``get`` and ``keybroker-<source>``."""
    from keybroker.durations import parse_duration  # noqa: PLC0415
    from keybroker.errors import UsageError  # noqa: PLC0415

    options: dict[str, Any] = {}
    if max_age is not None:
        try:
            options["max_age"] = parse_duration(max_age)
        except ValueError as exc:
            raise UsageError(f"--max-age: {exc}") from None
    if reject_repeats:
        options["repeat"] = "on"
    return options


def load_config(
    env: Mapping[str, str], cache: Cache | None, probe: Probe | None = None
) -> configmod.Config:
    """The config, parsed once for the call, and the hit path's index brought up to date.

    The index is rebuilt only when it is stale: not when the fast path's ``probe`` has just
    found it current for these config files.
    """
    from keybroker import config as configmod  # noqa: PLC0415 - a miss from the index needs none

    config = configmod.load(env)
    if cache is not None and (probe is None or probe.index is None):
        from keybroker.config.index import refresh  # noqa: PLC0415

        refresh(config, env, str(cache.root), cache.loaded_key)
    return config


def profile_request(
    env: Mapping[str, str],
    profile: str,
    cache: Cache | None,
    flag_options: Mapping[str, Any] | None = None,
    flag_settings: Mapping[str, Any] | None = None,
) -> Request:
    config = load_config(env, cache)
    from keybroker import config as configmod  # noqa: PLC0415

    return configmod.request_for(config, profile, env, flag_options, flag_settings)


def resolve_profiles(
    profiles: Sequence[str],
    config_path: str | None,
    *,
    no_cache: bool = False,
    debug: bool = False,
) -> tuple[dict[str, str], dict[str, Outcome]]:
    """Resolve each distinct profile once, like ``keybroker get``; warnings go to stderr.

    For every command that needs several keys or a key plus its metadata (``ci export``,
    ``exec``, ``headers``, ``credential``, ``aws-credentials``). Returns the environment used
    and profile → Outcome.
    """
    from keybroker.redact import emit  # noqa: PLC0415
    from keybroker.resolve import resolve  # noqa: PLC0415

    env = environment(config_path)
    cache, _ = open_cache(env)
    outcomes: dict[str, Outcome] = {}
    for profile in profiles:
        if profile in outcomes:
            continue
        request = profile_request(env, profile, cache)
        outcome = resolve(request, env, no_cache=no_cache, debug=debug, cache=cache)
        for warning in outcome.warnings:
            emit(f"keybroker: {warning}")
        outcomes[profile] = outcome
    return env, outcomes
