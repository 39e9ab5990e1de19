"""Whether a cached entry may be served as it is: the hit decision both paths share.

A hit is an entry that opens (sealed by our data key for this name), is FRESH by the
freshness rules (:func:`keybroker.cache.freshness.assess`), and — under Claude Code — is not
a repeat of a caller that was just served it (which means its key was refused). Anything else
is returned as an :class:`Attempt` holding what was found (the opened entry, its verdict, the
caller), and the full path continues from it: it never opens, decrypts or classifies again
what this step already did.

Reading never takes the entry's lock (entries are replaced atomically). Recording a served
caller takes the small ``.seen`` lock, bounded by the deadline: a peer holding it can never
make a fresh hit fail or wait past the call's deadline (the hit is served unrecorded).
"""

from __future__ import annotations

from keybroker import clock
from keybroker.cache.entry import open_entry
from keybroker.cache.freshness import State, assess
from keybroker.fastpath.reasons import MISS, NOT_FRESH, OFF, REPEAT

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping

    from keybroker.cache import repeats
    from keybroker.cache.crypto import DataKey
    from keybroker.cache.entry import Entry, Opened
    from keybroker.cache.freshness import Verdict
    from keybroker.deadline import Deadline
    from keybroker.options import Options


class Attempt:
    """What the hit decision found: the value when served, else why not, and what it saw."""

    __slots__ = ("_caller", "_caller_known", "eid", "kind", "opened", "value", "verdict", "why")

    def __init__(self, eid: str) -> None:
        self.eid = eid
        self.value: str | None = None
        #: the entry as opened (with its file identity), None when there was none
        self.opened: Opened | None = None
        self.verdict: Verdict | None = None
        self.why = MISS
        #: the repeat classification (repeats.FIRST/REJECTED/TOO_SOON) when one was made
        self.kind = ""
        self._caller: str | None = None
        self._caller_known = False

    @property
    def entry(self) -> Entry | None:
        return None if self.opened is None else self.opened.entry

    def caller(self, options: Options, env: Mapping[str, str], cache_dir: str) -> str | None:
        """The caller (:mod:`keybroker.cache.caller`), computed at most once per call; None
        when repeats do not apply or the caller is not a Claude Code helper run (and, when no
        process table answers, a ``repeat-unavailable`` event says so)."""
        if not self._caller_known:
            self._caller_known = True
            if repeating(options, env):
                from keybroker.cache.caller import caller_for  # noqa: PLC0415

                self._caller = caller_for(env, options.repeat != "on", cache_dir)
        return self._caller


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
    attempt = Attempt(eid)
    if options.storage != "disk":
        attempt.why = OFF
        return attempt
    opened = open_entry(cache_dir, key, eid)
    if opened is None:
        return attempt
    attempt.opened = opened
    entry = opened.entry
    verdict = assess(entry.fetched_at, entry.expires_at, clock.now(), options)
    attempt.verdict = verdict
    if verdict.state != State.FRESH:
        attempt.why = NOT_FRESH
        return attempt
    caller = attempt.caller(options, env, cache_dir)
    if caller is not None:
        attempt.kind = _record(cache_dir, eid, caller, entry.fetched_at, options.ttl, deadline)
        from keybroker.cache import repeats  # noqa: PLC0415 - only under Claude Code

        if attempt.kind == repeats.REJECTED:
            attempt.why = REPEAT
            return attempt
    attempt.value = entry.value
    attempt.why = ""
    return attempt


def _record(
    cache_dir: str, eid: str, caller: str, fetched_at: float, ttl: float, deadline: Deadline
) -> str:
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

    repeats.update(cache_dir, eid, deadline, classify)
    return kind[0]
