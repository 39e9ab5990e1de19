"""Repeat = rejected (DESIGN section 4): the per-entry record of who was served when.

``<id>.seen`` maps a caller (pid:start time of the process that runs the helper) to the time
it was last served. Shared by the full resolve path and the cache-hit path so both decide the
same way. It holds no secret and its loss is harmless, so it is written without fsync.
"""

from __future__ import annotations

import os

from keybroker.cache.files import atomic_write, read_bytes

#: A caller asking again sooner than this fraction of T after being served is a rejection.
REPEAT_FRACTION = 0.8
#: Single flight for rejections: at most one refetch a second per entry.
REPEAT_MIN_INTERVAL = 1.0

FIRST = "first"  # not served recently: a normal call
REJECTED = "rejected"  # asked again too soon: the key it got was refused, fetch anew
TOO_SOON = "too-soon"  # asked again within a second of a fetch: serve the same key


def read(path: str | os.PathLike[str]) -> dict[str, float]:
    """``caller time`` lines (plain text: parsed with split, no json on the hit path)."""
    blob = read_bytes(path, limit=1 << 16)
    seen: dict[str, float] = {}
    for line in (blob or b"").decode("ascii", "replace").splitlines():
        caller, _, when = line.partition(" ")
        try:
            seen[caller] = float(when)
        except ValueError:
            continue  # a damaged line costs at most one missed repeat detection
    return seen


def write(path: str | os.PathLike[str], seen: dict[str, float]) -> None:
    text = "".join(f"{caller} {when!r}\n" for caller, when in seen.items())
    try:  # noqa: SIM105 - no contextlib import on the hit path
        atomic_write(path, text.encode(), durable=False)
    except OSError:
        pass  # a lost record costs at most one missed repeat detection


def classify(
    seen: dict[str, float], caller: str, now: float, fetched_at: float, ttl: float
) -> str:
    """Is this call a repeat of ``caller`` for an entry fetched at ``fetched_at``?"""
    last = seen.get(caller)
    if last is None or not 0 <= now - last < REPEAT_FRACTION * ttl or fetched_at > last:
        return FIRST  # not served lately, or the entry changed since it was served
    return REJECTED if now - fetched_at >= REPEAT_MIN_INTERVAL else TOO_SOON


def served(seen: dict[str, float], caller: str, now: float, ttl: float) -> dict[str, float]:
    """The record after serving ``caller`` at ``now``, pruned of callers older than T."""
    kept = {k: v for k, v in seen.items() if 0 <= now - v < ttl}
    kept[caller] = now
    return kept
