"""The whole call's time budget (``KEYBROKER_TIMEOUT``), shared by every network step."""

from __future__ import annotations

import time

from keybroker.errors import DeadlineExceeded


class Deadline:
    """Seconds left until the call must give up; each step's timeout is bounded by it."""

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def timeout(self, step: float | None = None) -> float:
        """A timeout for the next step: at most ``step``, never past the deadline."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(
                f"gave up after {self.seconds:g}s (KEYBROKER_TIMEOUT)",
                "the source is slow or unreachable; raise KEYBROKER_TIMEOUT or check the network",
            )
        return left if step is None else min(step, left)
