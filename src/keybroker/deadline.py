"""The whole call's time budget (``KEYBROKER_TIMEOUT``), shared by every network step."""

from __future__ import annotations

import time


class Deadline:
    """Seconds left until the call must give up; each step's timeout is bounded by it."""

    __slots__ = ("_end", "seconds")

    def __init__(self, seconds: float, started: float | None = None) -> None:
        """``started``: the ``time.monotonic()`` at which the call began (default: now).

        A call has exactly one deadline, anchored where the process started handling it:
        the entry point notes the start time and every later layer builds on it.
        """
        self.seconds = seconds
        self._end = (time.monotonic() if started is None else started) + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def timeout(self, step: float | None = None) -> float:
        """A timeout for the next step: at most ``step``, never past the deadline."""
        left = self.remaining()
        if left <= 0:
            from keybroker.errors import DeadlineExceeded  # noqa: PLC0415 - only when it fires

            raise DeadlineExceeded(
                f"gave up after {self.seconds:g}s (KEYBROKER_TIMEOUT)",
                "the source is slow or unreachable; raise KEYBROKER_TIMEOUT or check the network",
            )
        return left if step is None else min(step, left)


#: When this process began handling its call (``time.monotonic()``), set by the entry point.
_CALL_START: list[float] = []


def mark_call_start(started: float | None = None) -> float:
    """Note when the call began; every deadline of this call is anchored there."""
    _CALL_START[:] = [time.monotonic() if started is None else started]
    return _CALL_START[0]


def restart_call() -> float:
    """A person's sign-in is over: what the call does next gets a whole budget again.

    ``keybroker login`` (and ``credential``'s interactive sign-in) waits for the person, as
    long as they take; the read that follows must not be charged for that wait, or a sign-in
    slower than ``KEYBROKER_TIMEOUT`` would end in "gave up after 20s" with a valid login
    cached. Only an interactive sign-in calls this, once, when it has finished: every other
    call keeps the one deadline counted from its start (DESIGN section 2).
    """
    return mark_call_start()


def for_call(seconds: float) -> Deadline:
    """The call's deadline: ``seconds`` from when the call began (or from now)."""
    return Deadline(seconds, _CALL_START[0] if _CALL_START else None)
