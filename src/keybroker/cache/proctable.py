"""The process facts the caller rule needs, behind one small interface per OS (DESIGN section 4).

Repeat = rejected (:mod:`keybroker.cache.caller`) must tell Claude Code's re-run of its
``apiKeyHelper`` after a 401 from every other helper run. That takes five facts about a pid:
its parent, its name and executable, its start time (a pid alone can be reused), its argv and
its environment. Each OS answers them differently, so the rule asks a :class:`ProcessTable`:

- Linux (and anything with a Linux-style ``/proc``): :mod:`keybroker.cache.proc_linux`;
- macOS: ``libproc`` and ``sysctl(KERN_PROCARGS2)`` through ctypes,
  :mod:`keybroker.cache.proc_macos`;
- Windows: the ToolHelp snapshot, ``GetProcessTimes`` and the PEB through ctypes,
  :mod:`keybroker.cache.proc_windows`;
- tests: ``tests/process_fakes.py`` (one fake table, fed each OS's process shapes).

:func:`keybroker.cache.caller.for_platform` picks the adapter by ``sys.platform``.

An adapter module is imported only when the rule runs (under Claude Code, on a fresh hit): the
plain hit path pays nothing for it, and ctypes is loaded only on macOS and Windows
(docs/performance.md, "Process tables").

A table that cannot describe *this very process* does not answer at all (``/proc`` hidden or
not mounted, an OS without an adapter): :meth:`ProcessTable.problem` says why, and rotation
recovery is then visibly off (an event, a ``doctor`` line) instead of silently.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Protocol

    class ProcessTable(Protocol):
        """What the caller rule may ask about a pid; every method answers None when it cannot."""

        #: a short name for messages: "linux /proc", "macos libproc", "windows toolhelp"
        name: str

        def proc(self, pid: int) -> Proc | None:
            """Parent, name, executable and start time of ``pid``."""

        def argv(self, pid: int) -> list[str] | None:
            """The command line of ``pid`` as arguments."""

        def environ(self, pid: int) -> dict[str, str] | None:
            """The environment ``pid`` was started with."""

        def problem(self) -> str:
            """Why this table cannot answer on this system (``""`` when it can)."""


class Proc:
    """One process: ``start`` is comparable within one table (clock ticks since boot on Linux,
    microseconds since the epoch on macOS, FILETIME units on Windows), so a parent that started
    *after* its child is a reused pid, not the parent."""

    __slots__ = ("exe", "name", "pid", "ppid", "start")

    def __init__(self, pid: int, ppid: int, name: str, exe: str, start: int) -> None:
        self.pid = pid
        self.ppid = ppid
        self.name = name
        self.exe = exe
        self.start = start

    def __repr__(self) -> str:
        return f"Proc({self.pid}, ppid={self.ppid}, name={self.name!r}, exe={self.exe!r})"


class NoTable:
    """The table of an OS without an adapter: never answers, and says so."""

    def __init__(self, platform: str) -> None:
        self.name = f"{platform} (no process table)"
        self._platform = platform

    def proc(self, pid: int) -> Proc | None:
        return None

    def argv(self, pid: int) -> list[str] | None:
        return None

    def environ(self, pid: int) -> dict[str, str] | None:
        return None

    def problem(self) -> str:
        return f"keybroker has no process table for {self._platform}"
