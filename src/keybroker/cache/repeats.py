"""Repeat = rejected (DESIGN section 4): who was served when, and the refusal backoff.

``<id>.seen`` maps a caller (see :mod:`keybroker.cache.caller`: the Claude Code process and
the helper command it re-runs) to the time it was last served. A caller that asks again well
before Claude Code's TTL has passed had its key refused (HTTP 401): the full path fetches anew.

When that refetch returns the very key that was refused, the 401 was not about the key (a
proxy whose own upstream credential is refused, a route with no backend). Fetching again at
every retry would turn a gateway fault into an outage of the key source, so the entry backs
off, across processes: it serves that key and asks the source again only after 1 s, 4 s,
16 s … (at most 60 s). A real rotation is still picked up at the first retry after the
backoff.

Shared by the fast path and the full path so both decide the same way. The record holds no
secret (the refused key is named by a keyed fingerprint) and its loss is harmless, so it is
written without fsync. Plain text, parsed with split: no json on the hit path.
"""

from __future__ import annotations

import math
import os

from keybroker.cache.entry import SEEN_LOCK_SUFFIX, SEEN_SUFFIX, entry_path
from keybroker.cache.files import atomic_write, read_bytes

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Callable

    from keybroker.deadline import Deadline

#: A caller asking again sooner than this fraction of T after being served is a rejection.
REPEAT_FRACTION = 0.8
#: Single flight for rejections: at most one refetch a second per entry.
REPEAT_MIN_INTERVAL = 1.0
#: Refusal backoff: the first wait, how much longer each next one is, and the longest. Claude
#: Code's own retries after a 401 back off roughly ×2 (1 s, 2 s, 4 s, 10 s …); a ×4 backoff
#: gets ahead of them, so a gateway fault costs a handful of fetches, not one per retry.
BACKOFF_FIRST = 1.0
BACKOFF_FACTOR = 4.0
BACKOFF_CAP = 60.0

FIRST = "first"  # not served recently: a normal call
REJECTED = "rejected"  # asked again too soon: the key it got was refused, fetch anew
TOO_SOON = "too-soon"  # asked again within a second of a fetch: serve the same key


class Seen:
    """The record of one entry: callers served, and the backoff after same-key refetches."""

    __slots__ = ("backoff_level", "backoff_until", "callers", "refused")

    def __init__(self) -> None:
        self.callers: dict[str, float] = {}
        self.backoff_until = 0.0
        self.backoff_level = 0
        #: keyed fingerprint of the key that was refused and came back unchanged
        self.refused = ""

    def backing_off(self, now: float, fingerprint: str) -> bool:
        """Whether a refusal of the key named ``fingerprint`` must not refetch yet."""
        return bool(self.refused) and self.refused == fingerprint and now < self.backoff_until

    def same_key_again(self, now: float, fingerprint: str) -> float:
        """A refetch returned the refused key: back off longer. Returns the wait chosen."""
        self.backoff_level = self.backoff_level + 1 if self.refused == fingerprint else 1
        wait = min(BACKOFF_FIRST * BACKOFF_FACTOR ** (self.backoff_level - 1), BACKOFF_CAP)
        self.backoff_until = now + wait
        self.refused = fingerprint
        return wait

    def new_key(self) -> None:
        """The source answered with another key: the backoff is over."""
        self.backoff_until = 0.0
        self.backoff_level = 0
        self.refused = ""


def read(path: str | os.PathLike[str]) -> Seen:
    """``caller time`` lines, and one ``!backoff until level fingerprint`` line."""
    blob = read_bytes(path, limit=1 << 16)
    seen = Seen()
    for line in (blob or b"").decode("ascii", "replace").splitlines():
        if line.startswith("!backoff "):
            parts = line.split()
            try:
                until, level = float(parts[1]), int(parts[2])
            except (IndexError, ValueError):
                continue
            if math.isfinite(until) and level >= 0:
                seen.backoff_until, seen.backoff_level = until, level
                seen.refused = parts[3] if len(parts) > 3 else ""
            continue
        caller, _, when = line.partition(" ")
        try:
            value = float(when)
        except ValueError:
            continue  # a damaged line costs at most one missed repeat detection
        if math.isfinite(value):
            seen.callers[caller] = value
    return seen


def write(path: str | os.PathLike[str], seen: Seen) -> None:
    text = "".join(f"{caller} {when!r}\n" for caller, when in seen.callers.items())
    if seen.refused:
        text += f"!backoff {seen.backoff_until!r} {seen.backoff_level} {seen.refused}\n"
    try:  # noqa: SIM105 - no contextlib import on the hit path
        atomic_write(path, text.encode(), durable=False)
    except OSError:
        pass  # a lost record costs at most one missed repeat detection


def seen_of(cache_dir: str | os.PathLike[str], eid: str) -> Seen:
    """The ``.seen`` record of entry ``eid`` (empty when there is none)."""
    return read(entry_path(cache_dir, eid, SEEN_SUFFIX))


def update(
    cache_dir: str | os.PathLike[str],
    eid: str,
    deadline: Deadline,
    change: Callable[[Seen], bool | None],
) -> None:
    """Read-modify-write entry ``eid``'s ``.seen`` record under its own small lock.

    Best effort, bounded by the deadline: a peer holding the lock never makes a call wait
    past its deadline (the change is then skipped: at most one missed repeat detection).
    ``change`` returning False means there is nothing to write.
    """
    from keybroker.cache.lock import EntryLock, LockTimeout  # noqa: PLC0415

    try:
        with EntryLock(entry_path(cache_dir, eid, SEEN_LOCK_SUFFIX), deadline):
            seen = seen_of(cache_dir, eid)
            if change(seen) is not False:
                write(entry_path(cache_dir, eid, SEEN_SUFFIX), seen)
    except LockTimeout:
        return


def classify(seen: Seen, caller: str, now: float, fetched_at: float, ttl: float) -> str:
    """Is this call a repeat of ``caller`` for an entry fetched at ``fetched_at``?"""
    last = seen.callers.get(caller)
    if last is None or not 0 <= now - last < REPEAT_FRACTION * ttl or fetched_at > last:
        return FIRST  # not served lately, or the entry changed since it was served
    return REJECTED if now - fetched_at >= REPEAT_MIN_INTERVAL else TOO_SOON


def served(seen: Seen, caller: str, now: float, ttl: float) -> Seen:
    """The record after serving ``caller`` at ``now``, pruned of callers older than T."""
    seen.callers = {k: v for k, v in seen.callers.items() if 0 <= now - v < ttl}
    seen.callers[caller] = now
    return seen
