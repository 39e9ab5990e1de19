"""The process table of Linux: ``/proc/<pid>/{stat,exe,cmdline,environ}``.

The behaviour keybroker always had (issue 14), moved behind :class:`~keybroker.cache.proctable.
ProcessTable`. ``root`` is for tests (a fake ``/proc`` tree); ``/proc`` hidden, not mounted or
mounted empty (a sandbox) makes :meth:`LinuxTable.problem` say so.
"""

from __future__ import annotations

import os

from keybroker.cache.proctable import Proc


class LinuxTable:
    """``/proc``: each read is bounded; a process that is gone or hidden answers None."""

    def __init__(self, root: str = "/proc") -> None:
        self.root = root
        self.name = f"linux {root}"

    def _read(self, pid: int, name: str, limit: int = 1 << 16) -> bytes | None:
        try:
            with open(f"{self.root}/{pid}/{name}", "rb") as handle:
                return handle.read(limit)
        except OSError:
            return None

    def proc(self, pid: int) -> Proc | None:
        raw = self._read(pid, "stat")
        if raw is None:
            return None
        parsed = parse_stat(raw)
        if parsed is None:
            return None
        comm, ppid, start = parsed
        try:
            exe = os.readlink(f"{self.root}/{pid}/exe")
        except OSError:
            exe = ""  # a kernel thread, or another user's process
        return Proc(pid, ppid, comm, exe, start)

    def argv(self, pid: int) -> list[str] | None:
        raw = self._read(pid, "cmdline")
        if raw is None:
            return None
        parts = raw.split(b"\0")
        if raw.endswith(b"\0"):
            parts.pop()
        return [part.decode(errors="replace") for part in parts]

    def environ(self, pid: int) -> dict[str, str] | None:
        raw = self._read(pid, "environ", 1 << 20)
        if raw is None:
            return None
        return parse_environ(raw.split(b"\0"))

    def problem(self) -> str:
        if self.proc(os.getpid()) is None:
            return (
                f"{self.root}/{os.getpid()}/stat cannot be read ({self.root} hidden or not "
                "mounted?)"
            )
        return ""


def parse_stat(raw: bytes) -> tuple[str, int, int] | None:
    """(comm, ppid, starttime in clock ticks) from ``/proc/<pid>/stat``; the comm may hold
    spaces and parentheses, so the fields start after the *last* ``)``."""
    data = raw.decode(errors="replace")
    open_paren, close_paren = data.find("("), data.rfind(")")
    if open_paren < 0 or close_paren < open_paren:
        return None
    fields = data[close_paren + 2 :].split()
    try:
        return data[open_paren + 1 : close_paren], int(fields[1]), int(fields[19])
    except (IndexError, ValueError):
        return None


def parse_environ(items: list[bytes]) -> dict[str, str]:
    """``NAME=value`` items (NUL-separated on Linux and macOS) as a dict."""
    env: dict[str, str] = {}
    for item in items:
        name, eq, value = item.partition(b"=")
        if eq and name:
            env[name.decode(errors="replace")] = value.decode(errors="replace")
    return env
