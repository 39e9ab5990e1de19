"""Whether a cached entry may be served as it is: the hit decision both paths share.

A hit is an entry that opens (sealed by our data key for this name), is FRESH by the
freshness rules (:func:`keybroker.cache.freshness.assess`), and — under Claude Code — is not
a repeat of a caller that was just served it (which means its key was refused). Anything else
is returned with the reason and what was found, for the full path to act on.

Reading never takes the entry's lock (entries are replaced atomically). Recording a served
caller takes the small ``.seen`` lock, bounded by the deadline: a peer holding it can never
make a fresh hit fail or wait past the call's deadline (the hit is served unrecorded).
"""

from __future__ import annotations

import os

from keybroker import clock
from keybroker.cache.crypto import CorruptEntry, unseal
from keybroker.cache.entry import decode
from keybroker.cache.files import read_bytes, remove
from keybroker.cache.freshness import State, assess

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping

    from keybroker.cache import repeats
    from keybroker.cache.crypto import DataKey
    from keybroker.cache.entry import Header
    from keybroker.cache.freshness import Verdict
    from keybroker.deadline import Deadline
    from keybroker.options import Options

# why-not reasons
MISS = "miss"  # no usable entry
NOT_FRESH = "not-fresh"  # an entry, in a refresh window or expired
REPEAT = "repeat"  # fresh, but this caller asked again: its key was refused
OFF = "storage-off"


class Attempt:
    """What the hit decision found: the value when served, else why not."""

    __slots__ = ("caller", "header", "kind", "value", "verdict", "why")

    def __init__(self) -> None:
        self.value: str | None = None
        self.header: Header | None = None
        self.verdict: Verdict | None = None
        self.why = MISS
        #: the repeat classification (repeats.FIRST/REJECTED/TOO_SOON) when one was made
        self.kind = ""
        self.caller: str | None = None


def entry_path(cache_dir: str, eid: str, suffix: str = ".entry") -> str:
    return os.path.join(cache_dir, eid + suffix)


def open_entry(cache_dir: str, key: DataKey, eid: str) -> tuple[Header, str] | None:
    """The entry's header and value, or None (an unusable entry is removed: a miss)."""
    path = entry_path(cache_dir, eid)
    blob = read_bytes(path)
    if blob is None:
        return None
    try:
        raw, value = unseal(key, eid, blob)
        return decode(raw), value
    except CorruptEntry:
        try:  # noqa: SIM105 - no contextlib import on the hit path
            remove(path)
        except OSError:
            pass
        return None


def repeating(options: Options, env: Mapping[str, str]) -> bool:
    """Repeat = rejected applies under Claude Code, or when the profile/flag asks for it."""
    return options.repeat == "on" or (
        options.repeat == "auto" and bool(env.get("CLAUDE_CODE_ENTRYPOINT"))
    )


def serve(
    cache_dir: str,
    key: DataKey,
    eid: str,
    options: Options,
    env: Mapping[str, str],
    deadline: Deadline,
) -> Attempt:
    """Serve entry ``eid`` if the rules allow it as it is; never fetches, never raises for a
    missing or unusable entry."""
    attempt = Attempt()
    if options.storage != "disk":
        attempt.why = OFF
        return attempt
    found = open_entry(cache_dir, key, eid)
    if found is None:
        return attempt
    header, value = found
    attempt.header = header
    verdict = assess(header.fetched_at, header.expires_at, clock.now(), options)
    attempt.verdict = verdict
    if verdict.state != State.FRESH:
        attempt.why = NOT_FRESH
        return attempt
    if repeating(options, env):
        from keybroker.cache.caller import caller_for  # noqa: PLC0415

        attempt.caller = caller_for(env, options.repeat != "on", cache_dir)
        if attempt.caller is not None:
            attempt.kind = _record(cache_dir, eid, attempt.caller, header.fetched_at,
                                   options.ttl, deadline)
            from keybroker.cache import repeats  # noqa: PLC0415 - only under Claude Code

            if attempt.kind == repeats.REJECTED:
                attempt.why = REPEAT
                return attempt
    attempt.value = value
    attempt.why = ""
    return attempt


def _record(cache_dir: str, eid: str, caller: str, fetched_at: float, ttl: float,
            deadline: Deadline) -> str:
    """Classify this caller and, unless it is a refusal, record it as served.

    A refusal is left for the full path (it records after refetching, under the entry lock).
    If the ``.seen`` lock cannot be had in time the hit is served unrecorded: a missed repeat
    costs one 401 retry, a blocked hit costs the call.
    """
    from keybroker.cache import repeats  # noqa: PLC0415 - only under Claude Code

    kind = [repeats.FIRST]  # stays FIRST if the lock cannot be had: served unrecorded

    def classify(seen: repeats.Seen) -> bool:
        now = clock.now()
        kind[0] = repeats.classify(seen, caller, now, fetched_at, ttl)
        if kind[0] == repeats.REJECTED:
            return False  # the full path records it, after refetching
        repeats.served(seen, caller, now, ttl)
        return True

    update_seen(cache_dir, eid, deadline, classify)
    return kind[0]


def update_seen(cache_dir: str, eid: str, deadline: Deadline,
                change: Callable[[repeats.Seen], bool | None]) -> None:
    """Read-modify-write the ``.seen`` record under its lock (best effort, bounded by the
    deadline); ``change`` returning False means nothing to write."""
    from keybroker.cache import repeats  # noqa: PLC0415
    from keybroker.cache.lock import EntryLock, LockTimeout  # noqa: PLC0415

    seen_path = entry_path(cache_dir, eid, ".seen")
    try:
        with EntryLock(entry_path(cache_dir, eid, ".seenlock"), deadline):
            seen = repeats.read(seen_path)
            if change(seen) is not False:
                repeats.write(seen_path, seen)
    except LockTimeout:
        return
