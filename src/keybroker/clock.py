"""One place that reads the wall clock, so tests can move it (freezegun patches time.time)."""

from __future__ import annotations

import time


def now() -> float:
    """Seconds since the epoch; the cache's expiries are all in this unit."""
    return time.time()


def monotonic() -> float:
    """For deadlines and step timings, which must not follow clock jumps."""
    return time.monotonic()
