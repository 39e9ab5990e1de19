"""A per-entry inter-process lock on a separate ``<hash>.lock`` file.

The lock file is never replaced or deleted while in use (unlike the entry, which is
``os.replace``d), so every process locks the same inode. Waiting is bounded by the call's
deadline: a helper never hangs behind a stuck peer. POSIX uses ``flock``; Windows uses
``msvcrt.locking`` on the first byte.
"""

from __future__ import annotations

import os
import sys
import time
from types import TracebackType

from keybroker.deadline import Deadline
from keybroker.errors import DeadlineExceeded

if sys.platform == "win32":  # pragma: no cover - exercised on Windows only
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)


class LockTimeout(DeadlineExceeded):
    """Another process held the entry's lock until the call's deadline (exit 3 if not served)."""


class EntryLock:
    """Context manager: an exclusive lock on ``path``.

    ``wait=True`` waits, bounded by the deadline, then raises :class:`LockTimeout`;
    ``wait=False`` tries once, and ``held`` says whether the lock was taken (the advisory
    window uses this: a process already refreshing means the cached key can be served).
    """

    def __init__(self, path: str | os.PathLike[str], deadline: Deadline, wait: bool = True) -> None:
        self.path = path
        self.deadline = deadline
        self.wait = wait
        self.waited = 0.0
        self.held = False
        self._fd: int | None = None

    def __enter__(self) -> EntryLock:
        flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
        try:
            fd = os.open(self.path, flags, 0o600)
        except OSError:
            # A read-only or full cache dir (or something squatting the name): nothing can be
            # cached, so there is nothing to serialise. Go on unlocked (the failed write then
            # warns) rather than fail the call.
            self.held = True
            return self
        start = time.monotonic()
        delay = 0.002
        while not _try_lock(fd):
            if not self.wait:
                os.close(fd)
                return self
            if self.deadline.remaining() <= 0:
                os.close(fd)
                self.waited = time.monotonic() - start
                raise LockTimeout(
                    f"timed out after {self.deadline.seconds:g}s waiting for another keybroker "
                    "process that is fetching the same key",
                    "the source may be slow; raise KEYBROKER_TIMEOUT or run "
                    "'keybroker cache clear'",
                )
            time.sleep(min(delay, max(self.deadline.remaining(), 0.001)))
            delay = min(delay * 2, 0.05)
        self.waited = time.monotonic() - start
        self._fd = fd
        self.held = True
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._fd is not None:
            try:
                _unlock(self._fd)
            finally:
                os.close(self._fd)
                self._fd = None
