"""Outages fail fast (DESIGN section 4): a per-entry note that the source was unreachable.

When a refresh fails because the source cannot be reached (a timeout, a refused connection,
a 5xx) and a still-valid key is served instead, ``<id>.outage`` records until when calls
should not try again. Until then every call of every process serves that still-valid key at
once — a hung Vault no longer costs each call its whole deadline — and when the window has
passed, one call at a time (the one holding the entry's lock) probes the source with a short
budget; the others, finding the lock taken, keep serving. A successful fetch removes the note.

A key past its expiry is never served because of this note: it only shortens how long a call
waits for a source that was just seen down, while a valid key is at hand. The note holds no
secret and its loss is harmless (one call waits again), so it is written without fsync.
"""

from __future__ import annotations

import math
import os

from keybroker.cache.entry import entry_path
from keybroker.cache.files import atomic_write, read_bytes, remove

OUTAGE_SUFFIX = ".outage"
#: How long calls serve the cached key without asking a source that was just unreachable.
OUTAGE_WINDOW = 30.0
#: The budget of the one call that probes a source seen unreachable, when a valid key is at
#: hand: a probe is a question, not a wait (the full deadline applies when no key is left).
PROBE_BUDGET = 3.0


def _path(cache_dir: str | os.PathLike[str], eid: str) -> str:
    return entry_path(cache_dir, eid, OUTAGE_SUFFIX)


def until(cache_dir: str | os.PathLike[str], eid: str) -> float:
    """When the current outage window of entry ``eid`` ends (0.0: none was noted)."""
    blob = read_bytes(_path(cache_dir, eid), limit=64)
    try:
        value = float((blob or b"0").decode("ascii").strip() or "0")
    except (UnicodeDecodeError, ValueError):
        return 0.0
    return value if math.isfinite(value) else 0.0


def note(cache_dir: str | os.PathLike[str], eid: str, now: float) -> float:
    """Record that the source was unreachable at ``now``; returns when the window ends."""
    end = now + OUTAGE_WINDOW
    try:  # noqa: SIM105
        atomic_write(_path(cache_dir, eid), repr(end).encode(), durable=False)
    except OSError:
        pass  # the next call waits for the source again: slower, never wrong
    return end


def clear(cache_dir: str | os.PathLike[str], eid: str) -> None:
    """The source answered: no outage any more."""
    try:  # noqa: SIM105
        remove(_path(cache_dir, eid))
    except OSError:
        pass
