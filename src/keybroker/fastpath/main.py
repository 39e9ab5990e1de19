"""A plain cache hit of the executables, answered here; the rest continues in the full path.

``keybroker get PROFILE`` and ``keybroker-<source> …``: parse the command line (whitelist),
find the profile (or the standalone command line) in the sealed index, name the entry for this
caller's credentials, and serve it through :func:`keybroker.fastpath.hit.serve` — the same
decision the full path makes first. ``env``/``file`` profiles are read directly.

Whatever is not a plain hit is handed to the full path as a :class:`Probe`: the data key, the
index record and variant, the entry id, the entry as opened with its verdict, the caller, the
reason and the call's start time (one deadline for the whole call). The full path continues
from it — it does not load the data key, read the index, name the entry, decrypt the entry or
compute the caller a second time — and re-does only what it must (the config, which the index
stands in for here, and the checks under the entry's lock).

The value is printed only after a last look at the clock: a key is never printed past its
expiry, however long the steps before took.
"""

from __future__ import annotations

import os
import sys

from keybroker.fastpath.reasons import ENV_CHANGED, NO_INDEX, NOT_HIT, NOT_INDEXED

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from keybroker.cache.crypto import DataKey
    from keybroker.cache.index import Index, Record, Variant
    from keybroker.fastpath.hit import Attempt
    from keybroker.options import Options


class Probe:
    """What the fast path found: the served value, or everything the full path continues from.

    Every field but ``started``, ``env`` and ``why`` may be None: the probe stops at the first
    step that does not apply (no index, an unknown profile, a changed environment) and the
    full path does the rest itself.
    """

    __slots__ = (
        "attempt",
        "cache_dir",
        "env",
        "index",
        "key",
        "options",
        "record",
        "started",
        "value",
        "variant",
        "why",
    )

    def __init__(self, started: float, env: Mapping[str, str] | None = None) -> None:
        self.started = started
        self.env: Mapping[str, str] = os.environ if env is None else env
        self.value: str | None = None
        self.why = NOT_HIT
        self.cache_dir: str | None = None
        self.key: DataKey | None = None
        self.index: Index | None = None
        self.record: Record | None = None
        self.variant: Variant | None = None
        self.options: Options | None = None
        #: the hit decision's findings (entry id, opened entry, verdict, caller)
        self.attempt: Attempt | None = None

    def __repr__(self) -> str:  # never the value
        return f"Probe(why={self.why!r}, served={self.value is not None})"


def _environment(config: str | None) -> Mapping[str, str]:
    if config:
        return dict(os.environ, KEYBROKER_CONFIG=config, KEYBROKER_CONFIG_FROM="flag")
    return os.environ


def _open_index(probe: Probe) -> bool:
    """Fill in the cache dir, data key and index; False when there is no usable index."""
    from keybroker import paths  # noqa: PLC0415
    from keybroker.cache.crypto import key_store, load_data_key  # noqa: PLC0415
    from keybroker.cache.files import check_private_dir  # noqa: PLC0415
    from keybroker.cache.index import open_index  # noqa: PLC0415

    env = probe.env
    cache_dir = paths.cache_dir_str(env)
    check_private_dir(cache_dir, os.lstat(cache_dir), "cache directory")
    probe.cache_dir = cache_dir
    key = load_data_key(paths.data_dir_str(env), create=False, store=key_store(env))
    if key is None:
        return False
    probe.key = key
    probe.index = open_index(
        cache_dir, paths.config_file_str(env), key, paths.system_config_str(env)
    )
    return probe.index is not None


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


def serve_indexed(probe: Probe, record: Record, flags: Mapping[str, Any]) -> None:
    """Serve an index record (a profile or a standalone command line) if it is a plain hit."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache import ids  # noqa: PLC0415
    from keybroker.deadline import Deadline  # noqa: PLC0415
    from keybroker.fastpath import hit  # noqa: PLC0415
    from keybroker.options import build_options  # noqa: PLC0415

    assert probe.key is not None
    assert probe.index is not None
    assert probe.cache_dir is not None
    env = probe.env
    probe.record = record
    item = record.variant(env, probe.key)
    if item is None:
        probe.why = ENV_CHANGED
        return
    probe.variant = item
    options = build_options(record.storage, record.options, probe.index.defaults, env, flags)
    probe.options = options
    if options.storage != "disk":
        value = None if item.direct is None else _direct(item.direct, env)
        probe.value, probe.why = value, ("" if value is not None else NOT_HIT)
        return
    deadline = Deadline(options.timeout, probe.started)
    eid = ids.entry_id(probe.key, item.digest, ids.material(item.inputs, env))
    attempt = hit.serve(probe.cache_dir, probe.key, eid, options, env, deadline)
    probe.attempt = attempt
    if attempt.value is None:
        probe.why = attempt.why
        return
    entry = attempt.entry
    if entry is not None and entry.expires_at is not None and clock.now() >= entry.expires_at:
        probe.why = NOT_HIT  # the last look at the clock: never print an expired key
        return
    probe.value, probe.why = attempt.value, ""


def try_get(opts: Mapping[str, Any], started: float) -> Probe:
    """Probe a plain ``keybroker get``: ``probe.value`` is the key on a hit. Never raises."""
    probe = Probe(started)
    try:
        probe.env = _environment(opts.get("config"))
        if not _open_index(probe):
            probe.why = NO_INDEX
            return probe
        assert probe.index is not None
        record = probe.index.profile(opts["profile"])
        if record is None:
            probe.why = NOT_INDEXED
            return probe
        flags = {"repeat": "on"} if opts.get("reject_repeats") else {}
        serve_indexed(probe, record, flags)
    except Exception:
        probe.value, probe.why = None, NOT_HIT
    return probe


def try_standalone(source: str, argv: list[str], started: float) -> Probe:
    """Probe ``keybroker-<source> …``: ``probe.value`` is the key on a hit. Never raises."""
    from keybroker.fastpath.argv import parse_standalone, standalone_key  # noqa: PLC0415

    probe = Probe(started)
    try:
        given = parse_standalone(argv)
        if given is None:
            return probe
        probe.env = _environment(given.pop("config", None))
        if not given:
            return probe
        if not _open_index(probe):
            probe.why = NO_INDEX
            return probe
        assert probe.index is not None
        if list(given) == ["profile"]:
            record = probe.index.profile(given["profile"])
            if record is None or record.source != source:
                probe.why = NOT_INDEXED
                return probe
        else:
            record = probe.index.standalone(standalone_key(source, given))
            if record is None:
                probe.why = NOT_INDEXED
                return probe
        serve_indexed(probe, record, {})
    except Exception:
        probe.value, probe.why = None, NOT_HIT
    return probe


def print_key(value: str) -> int:
    """Write the key and one newline: the whole of a helper's stdout."""
    try:
        sys.stdout.write(value + "\n")
        sys.stdout.flush()
    except OSError:
        return 1  # stdout closed: nothing was promised to anyone
    return 0
