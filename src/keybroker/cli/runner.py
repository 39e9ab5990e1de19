"""How every command ends: the output contract (DESIGN section 2) in one place.

Success prints exactly the key and one newline on stdout. Failure prints nothing on stdout,
one or a few scrubbed lines on stderr, and the error's exit code; a traceback only with
``--debug`` / ``KEYBROKER_DEBUG=1`` (scrubbed too). A watchdog enforces the call's deadline
even if a library ignores its timeouts, so a helper never hangs Claude Code.
"""

from __future__ import annotations

import os
import sys

from keybroker.errors import DeadlineExceeded, KeybrokerError
from keybroker.redact import emit

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from typing import NoReturn

    from keybroker.outcome import Outcome

EXIT_INTERNAL = 1
#: The watchdog fires this long after the deadline, giving the normal timeouts a chance first.
WATCHDOG_GRACE = 1.5


def debug_enabled(flag: bool, env: Mapping[str, str] = os.environ) -> bool:
    return flag or env.get("KEYBROKER_DEBUG", "") not in ("", "0", "false", "no")


def _on_alarm(signum: int, frame: object) -> NoReturn:
    raise DeadlineExceeded(
        "the call ran past its deadline (KEYBROKER_TIMEOUT)",
        "the source is slow or unreachable; raise KEYBROKER_TIMEOUT or check the network",
    )


def arm_watchdog(seconds: float) -> None:
    """Abort the call with exit 3 if it still runs ``seconds`` (+ grace) after it *began*.

    The call's start is the entry point's (:func:`keybroker.deadline.mark_call_start`), so
    time spent before this point (fast path, config, lock waits) counts against the deadline.
    """
    import signal  # noqa: PLC0415 - not needed on the hit path

    from keybroker.deadline import for_call  # noqa: PLC0415

    if sys.platform != "win32":  # no SIGALRM/setitimer on Windows: the deadline alone
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.setitimer(signal.ITIMER_REAL, max(for_call(seconds).remaining(), 0.01)
                         + WATCHDOG_GRACE)


def disarm_watchdog() -> None:
    import signal  # noqa: PLC0415

    if sys.platform != "win32":
        signal.setitimer(signal.ITIMER_REAL, 0)


def report(exc: BaseException, debug: bool) -> int:
    """Print the failure on stderr and return its exit code."""
    if debug:
        import traceback  # noqa: PLC0415

        emit("".join(traceback.format_exception(exc)).rstrip())
    if isinstance(exc, KeybrokerError):
        emit(exc.render())
        return exc.exit_code
    if isinstance(exc, KeyboardInterrupt):
        return 130
    hint = "" if debug else "; rerun with --debug for details"
    emit(f"keybroker: internal error ({type(exc).__name__}){hint}")
    return EXIT_INTERNAL


def write_stdout(text: str) -> int:
    """Write the promised output; a closed stdout is a failure, not a traceback."""
    try:
        sys.stdout.write(text)
        sys.stdout.flush()
    except (BrokenPipeError, OSError):
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except OSError:
            pass
        return EXIT_INTERNAL
    return 0


def run_helper(body: Callable[[], Outcome], debug: bool) -> int:
    """Run a helper: print the key and a newline, or report the failure."""
    try:
        outcome = body()
    except BaseException as exc:
        if isinstance(exc, SystemExit):
            raise
        return report(exc, debug)
    finally:
        disarm_watchdog()
    for warning in outcome.warnings:
        emit(f"keybroker: {warning}")
    if not still_valid(outcome.expires_at):
        return report(expired_error(), debug)
    return write_stdout(outcome.value + "\n")


def still_valid(expires_at: float | None) -> bool:
    """The last look at the clock before a key leaves the process: never print it expired."""
    from keybroker import clock  # noqa: PLC0415

    return expires_at is None or clock.now() < expires_at


def expired_error() -> KeybrokerError:
    from keybroker.errors import Unreachable  # noqa: PLC0415

    return Unreachable(
        "the key expired before it could be printed and no fresh one could be had in time",
        "run the command again; if it keeps failing, check the source ('keybroker doctor')",
    )
