"""The cache-hit path of ``keybroker get PROFILE``: the common case, in as few imports as possible.

Every Claude Code session runs its helper every few minutes, so a hit should cost little more
than starting Python and importing cryptography's AES-GCM. This module answers a hit using only
the index the full path keeps next to the cache (profile → entry id, options) and the slim core
modules (no click, pathlib, dataclasses, TOML, hashlib, or source modules).

It never reports errors and never has side effects on a miss: whenever anything is not a plain
fresh hit — no index, a changed config or environment, a stale or missing entry, an unsafe
directory, a repeat under Claude Code — it returns why not, and the full path (which applies the
same rules through the same functions and reports problems properly) takes over.
"""

from __future__ import annotations

import os

from keybroker import clock, paths
from keybroker.cache.files import check_private_dir, read_bytes
from keybroker.cache.freshness import Policy, State, assess
from keybroker.options import build_options, repeat_mode

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# why-not reasons (for tests and the index refresh)
NO_INDEX = "index"
ENV_CHANGED = "env"
NOT_HIT = "not-hit"


def _key(env: Mapping[str, str]) -> Any:
    """The data key, once the cache dir is known to be safe; None if there is none yet."""
    from keybroker.cache.crypto import key_store, load_data_key  # noqa: PLC0415

    cache_dir = paths.cache_dir_str(env)
    check_private_dir(cache_dir, os.lstat(cache_dir), "cache directory")
    return load_data_key(paths.data_dir_str(env), create=False, store=key_store(env))


def index_data(env: Mapping[str, str], key: Any) -> Any:
    """The profile index if it opens and is current for the config file, else None."""
    from keybroker.cache.index import read_index  # noqa: PLC0415

    return read_index(paths.cache_dir_str(env), paths.config_file_str(env), key)


def lookup(
    profile: str,
    env: Mapping[str, str],
    flags: Mapping[str, Any],
    key: Any,
    source: str | None = None,
) -> tuple[Any, str]:
    """(entry id, Options) of ``profile`` from the index, or (None, reason).

    ``source``: the standalone executable's source; another source's profile is not a hit
    (the full path says what is wrong).
    """
    data = index_data(env, key)
    if data is None:
        return None, NO_INDEX
    raw = data["profiles"].get(profile)
    if raw is None or (source is not None and raw["source"] != source):
        return None, NOT_HIT
    for variant in raw["hot"]:
        if all(env.get(k) == v for k, v in variant["env"].items()):
            options = build_options(
                variant["storage"], raw["options"], data["defaults"], env, flags
            )
            return (variant["id"], options), ""
    return None, ENV_CHANGED


def serve(eid: str, options: Any, env: Mapping[str, str], key: Any) -> tuple[str | None, str]:
    """The cached key for entry ``eid`` if the freshness rules allow serving it as it is."""
    if options.storage != "disk":
        return None, NOT_HIT
    cache_dir = paths.cache_dir_str(env)
    blob = read_bytes(os.path.join(cache_dir, eid + ".entry"))
    if blob is None:
        return None, NOT_HIT
    from keybroker.cache.crypto import unseal  # noqa: PLC0415

    header, value = unseal(key, eid, blob)
    fetched_at = float(header["fetched_at"])
    expires_at = header.get("expires_at")
    expires = None if expires_at is None else float(expires_at)
    policy = Policy.of(options)
    if assess(fetched_at, expires, clock.now(), policy).state != State.FRESH:
        return None, NOT_HIT
    if repeat_mode(options, env) and not _first_call(cache_dir, eid, fetched_at, options):
        return None, NOT_HIT
    return value, ""


def _first_call(cache_dir: str, eid: str, fetched_at: float, options: Any) -> bool:
    """Under Claude Code: record this caller as served, unless this call is a repeat."""
    from keybroker.cache import repeats  # noqa: PLC0415
    from keybroker.cache.caller import caller_id  # noqa: PLC0415
    from keybroker.cache.lock import EntryLock  # noqa: PLC0415
    from keybroker.deadline import Deadline  # noqa: PLC0415

    caller = caller_id()
    seen_path = os.path.join(cache_dir, eid + ".seen")
    with EntryLock(os.path.join(cache_dir, eid + ".lock"), Deadline(options.timeout)):
        seen = repeats.read(seen_path)
        now = clock.now()
        if repeats.classify(seen, caller, now, fetched_at, options.ttl) != repeats.FIRST:
            return False
        repeats.write(seen_path, repeats.served(seen, caller, now, options.ttl))
    return True


def try_get(opts: dict[str, Any]) -> tuple[str | None, str]:
    """A plain hit for ``keybroker get`` with these parsed options, or (None, why not)."""
    if opts.get("no_cache") or opts.get("debug") or opts.get("max_age") is not None:
        return None, "flags"
    env: Any = os.environ
    if opts.get("config"):
        env = dict(os.environ, KEYBROKER_CONFIG=opts["config"])
    flags = {"repeat": "on"} if opts.get("reject_repeats") else {}
    return try_profile(opts["profile"], env, flags)


def try_profile(
    profile: str, env: Mapping[str, str], flags: Mapping[str, Any]
) -> tuple[str | None, str]:
    """The key for ``profile`` on a plain cache hit, else (None, why not). Never raises."""
    try:
        key = _key(env)
        if key is None:
            return None, NO_INDEX
        found, why = lookup(profile, env, flags, key)
        if found is None:
            return None, why
        eid, options = found
        return serve(eid, options, env, key)
    except Exception:
        return None, NOT_HIT


def try_standalone(source_name: str, argv: list[str]) -> tuple[str | None, str]:
    """A plain cache hit for ``keybroker-<source> …``, or (None, why not). Never raises.

    Only simple command lines qualify: ``--profile P``, ``--config F`` and the source's
    string/number settings as ``--flag value`` or ``--flag=value``. Anything else — help,
    ``--no-cache``, booleans, unknown flags — goes to the full path and its argparse.
    """
    try:
        return _standalone(source_name, argv)
    except Exception:
        return None, NOT_HIT


def _split(argv: list[str]) -> dict[str, str] | None:
    given: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if not arg.startswith("--") or arg == "--":
            return None
        name, eq, value = arg[2:].partition("=")
        if not eq:
            nxt = next(args, None)
            if nxt is None or nxt.startswith("--"):
                return None
            value = nxt
        if name in given:
            return None
        given[name] = value
    return given


def _standalone(source_name: str, argv: list[str]) -> tuple[str | None, str]:
    import os  # noqa: PLC0415

    given = _split(argv)
    if given is None:
        return None, NOT_HIT
    env: Any = os.environ
    config = given.pop("config", None)
    if config is not None:
        env = dict(os.environ, KEYBROKER_CONFIG=config)
    profile = given.pop("profile", None)
    if not given and profile is None:
        return None, NOT_HIT
    key = _key(env)
    if key is None:
        return None, NO_INDEX
    if profile is not None and not given:
        found, why = lookup(profile, env, {}, key, source=source_name)
        if found is None:
            return None, why
        eid, options = found
        return serve(eid, options, env, key)
    return _standalone_settings(source_name, profile, given, env, key)


def _standalone_settings(
    source_name: str,
    profile: str | None,
    given: dict[str, str],
    env: Mapping[str, str],
    key: Any,
) -> tuple[str | None, str]:
    """Flags that set source settings: the entry id needs the source's ``canonical``."""
    from keybroker.cache.store import entry_id  # noqa: PLC0415
    from keybroker.sources.base import coerce, get_source  # noqa: PLC0415

    source = get_source(source_name)
    by_flag = {s.cli_flag[2:]: s for s in source.settings}
    data = index_data(env, key)
    if data is None:
        return None, NO_INDEX
    if profile is not None:
        raw = data["profiles"].get(profile)
        if raw is None or raw["source"] != source_name:
            return None, NOT_HIT
        settings, profile_options = dict(raw["settings"]), raw["options"]
    else:
        settings = dict(data.get("source_defaults", {}).get(source_name, {}))
        profile_options = {}
    for flag, text in given.items():
        setting = by_flag.get(flag)
        if setting is None or setting.kind not in ("str", "int", "duration"):
            return None, NOT_HIT
        settings[setting.name] = coerce(setting, text, "--" + flag)
    if any(s.required and settings.get(s.name) is None for s in source.settings):
        return None, NOT_HIT
    eid = entry_id(source_name, source.canonical(settings, env))
    options = build_options(source.default_storage, profile_options, data["defaults"], env, {})
    return serve(eid, options, env, key)
