"""The whole call's time budget (``KEYBROKER_TIMEOUT``), shared by every network step."""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any, ClassVar


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


#: The watchdog fires this long after the deadline, giving the normal timeouts a chance first.
WATCHDOG_GRACE = 1.5


class enforced:
    """Enforce ``deadline`` on the block even where a library ignores its own timeouts.

    Per-step timeouts do not bound a whole exchange: a server that drips one byte a second
    resets a socket's read timeout at every byte. So every command that fetches runs its
    fetch under this watchdog: when the deadline (plus :data:`WATCHDOG_GRACE`) passes,
    :class:`~keybroker.errors.DeadlineExceeded` is raised in the block, which unwinds every
    ``with`` on the way out — the entry's lock included, so a call past its deadline holds no
    lock. It uses ``SIGALRM`` (POSIX, main thread); elsewhere (Windows, a worker thread) only
    the per-step timeouts apply (docs/platforms.md). Nesting keeps the earlier deadline and
    restores the outer watchdog on exit.
    """

    _active: ClassVar[list[float]] = []  # the absolute monotonic ends of the watchdogs now armed

    def __init__(self, deadline: Deadline, grace: float = WATCHDOG_GRACE) -> None:
        self.end = time.monotonic() + deadline.remaining() + grace
        self.armed = False
        self._previous: Any = None

    def __enter__(self) -> enforced:
        import signal  # noqa: PLC0415 - not on the hit path
        import threading  # noqa: PLC0415

        if sys.platform == "win32" or threading.current_thread() is not threading.main_thread():
            return self  # no SIGALRM: the per-step timeouts alone
        outer = min(self._active) if self._active else None
        self.end = self.end if outer is None else min(self.end, outer)
        self._previous = signal.signal(signal.SIGALRM, _fire)
        signal.setitimer(signal.ITIMER_REAL, max(self.end - time.monotonic(), 0.01))
        self._active.append(self.end)
        self.armed = True
        return self

    def __exit__(self, *exc: object) -> None:
        if not self.armed or sys.platform == "win32":
            return
        import signal  # noqa: PLC0415

        signal.setitimer(signal.ITIMER_REAL, 0)
        self._active.remove(self.end)
        previous = self._previous if self._previous is not None else signal.SIG_DFL
        signal.signal(signal.SIGALRM, previous)
        if self._active:  # an outer watchdog: re-arm it for the time it has left
            signal.setitimer(signal.ITIMER_REAL, max(min(self._active) - time.monotonic(), 0.01))
        self.armed = False


def _fire(signum: int, frame: object) -> None:
    from keybroker.errors import DeadlineExceeded  # noqa: PLC0415

    raise DeadlineExceeded(
        "the call ran past its deadline (KEYBROKER_TIMEOUT)",
        "the source is slow or unreachable; raise KEYBROKER_TIMEOUT or check the network",
    )
