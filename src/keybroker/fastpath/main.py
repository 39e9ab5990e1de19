"""A plain cache hit of the executables, answered here; the rest is the full path's.

``keybroker get PROFILE`` and ``keybroker-<source> …``: parse the command line (whitelist),
find the profile (or the standalone command line) in the sealed index, name the entry for this
caller's credentials, and serve it through :func:`keybroker.fastpath.hit.serve` — the same
decision the full path makes first. ``env``/``file`` profiles are read directly. Whatever is
not a plain hit goes to the full path with the reason, the call's start time (one deadline
for the whole call) and nothing else: the full path re-does every check and reports problems.

The entry points (:mod:`keybroker.cli.entry`) call :func:`try_get` / :func:`try_standalone`
and hand a miss to the full path. The value is printed only after a last look at the clock:
a key is never printed past its expiry, however long the steps before took.
"""

from __future__ import annotations

import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# why-not reasons handed to the full path (print-token and tests read them too)
NO_INDEX = "index"
ENV_CHANGED = "env"
NOT_INDEXED = "not-indexed"
NOT_HIT = "not-hit"
UNSAFE = "cache-dir"


def _environment(config: str | None) -> Mapping[str, str]:
    if config:
        return dict(os.environ, KEYBROKER_CONFIG=config, KEYBROKER_CONFIG_FROM="flag")
    return os.environ


def _index(env: Mapping[str, str]) -> tuple[Any, Any, str]:
    """(data key, index, cache dir) — data key None when there is no usable index."""
    from keybroker import paths  # noqa: PLC0415
    from keybroker.cache.crypto import key_store, load_data_key  # noqa: PLC0415
    from keybroker.cache.files import check_private_dir  # noqa: PLC0415
    from keybroker.cache.index import read_index  # noqa: PLC0415

    cache_dir = paths.cache_dir_str(env)
    check_private_dir(cache_dir, os.lstat(cache_dir), "cache directory")
    key = load_data_key(paths.data_dir_str(env), create=False, store=key_store(env))
    if key is None:
        return None, None, cache_dir
    data = read_index(cache_dir, paths.config_file_str(env), key, paths.system_config_str(env))
    return key, data, cache_dir


def _variant(raw: Any, env: Mapping[str, str]) -> Any:
    for item in raw["variants"]:
        if all(env.get(k) == v for k, v in item["env"].items()):
            return item
    return None


def _direct(direct: Any, env: Mapping[str, str]) -> str | None:
    """The key of an ``env``/``file`` profile read here, or None (the full path explains)."""
    kind, name = direct
    if kind == "env":
        raw = env.get(name)
        value = None if raw is None else raw.strip()
    else:
        from keybroker.cache.ids import file_bytes  # noqa: PLC0415 - bounded, non-blocking

        data = file_bytes(name)
        if data.startswith(b"\x00"):
            return None
        try:
            value = data.decode("ascii").strip()
        except UnicodeDecodeError:
            return None
    if not value:
        return None
    from keybroker.errors import InvalidSecret  # noqa: PLC0415
    from keybroker.validate import validate_key  # noqa: PLC0415

    try:
        return validate_key(value, "")
    except InvalidSecret:
        return None


def serve_indexed(raw: Any, data: Any, key: Any, cache_dir: str, env: Mapping[str, str],
                  flags: Mapping[str, Any], started: float) -> tuple[str | None, str]:
    """Serve an index entry (a profile or a standalone command line) if it is a plain hit."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache import ids  # noqa: PLC0415
    from keybroker.deadline import Deadline  # noqa: PLC0415
    from keybroker.fastpath import hit  # noqa: PLC0415
    from keybroker.options import build_options  # noqa: PLC0415

    item = _variant(raw, env)
    if item is None:
        return None, ENV_CHANGED
    options = build_options(raw["storage"], raw["options"], data["defaults"], env, flags)
    if options.storage != "disk":
        direct = item.get("direct")
        value = None if direct is None else _direct(direct, env)
        return (value, "") if value is not None else (None, NOT_HIT)
    deadline = Deadline(options.timeout, started)
    eid = ids.entry_id(key, item["digest"], ids.material(item["inputs"], env))
    attempt = hit.serve(cache_dir, key, eid, options, env, deadline)
    if attempt.value is None:
        return None, attempt.why
    expires = attempt.header.expires_at if attempt.header is not None else None
    if expires is not None and clock.now() >= expires:
        return None, NOT_HIT  # the last look at the clock: never print an expired key
    return attempt.value, ""


def try_get(opts: Mapping[str, Any], started: float) -> tuple[str | None, str]:
    """The key for a plain ``keybroker get`` hit, else (None, why not). Never raises."""
    try:
        env = _environment(opts.get("config"))
        key, data, cache_dir = _index(env)
        if data is None:
            return None, NO_INDEX
        raw = data["profiles"].get(opts["profile"])
        if raw is None:
            return None, NOT_INDEXED
        flags = {"repeat": "on"} if opts.get("reject_repeats") else {}
        return serve_indexed(raw, data, key, cache_dir, env, flags, started)
    except Exception:
        return None, NOT_HIT


def try_standalone(source: str, argv: list[str], started: float) -> tuple[str | None, str]:
    """A plain hit for ``keybroker-<source> …``, else (None, why not). Never raises."""
    from keybroker.fastpath.argv import parse_standalone, standalone_key  # noqa: PLC0415

    try:
        given = parse_standalone(argv)
        if given is None:
            return None, NOT_HIT
        env = _environment(given.pop("config", None))
        if not given:
            return None, NOT_HIT
        key, data, cache_dir = _index(env)
        if data is None:
            return None, NO_INDEX
        if list(given) == ["profile"]:
            raw = data["profiles"].get(given["profile"])
            if raw is None or raw["source"] != source:
                return None, NOT_INDEXED
        else:
            raw = data["standalone"].get(standalone_key(source, given))
            if raw is None:
                return None, NOT_INDEXED
        return serve_indexed(raw, data, key, cache_dir, env, {}, started)
    except Exception:
        return None, NOT_HIT


def print_key(value: str) -> int:
    """Write the key and one newline: the whole of a helper's stdout."""
    try:
        sys.stdout.write(value + "\n")
        sys.stdout.flush()
    except OSError:
        return 1  # stdout closed: nothing was promised to anyone
    return 0
