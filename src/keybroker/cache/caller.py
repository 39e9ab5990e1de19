"""Who is asking: the process that runs ``/bin/sh -c '<apiKeyHelper>'`` (DESIGN section 4).

Claude Code runs the helper through a shell, so the caller is the helper's parent, or its
grandparent once shells are skipped. It is identified by pid *and* start time, so a reused
pid is a different caller. Linux reads /proc; elsewhere the pid alone is used.
"""

from __future__ import annotations

import os

SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox", "fish", "env"})
_MAX_SKIP = 3


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(comm, ppid, starttime) from /proc/<pid>/stat, or None where /proc is unavailable."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            data = handle.read().decode(errors="replace")
    except OSError:
        return None
    open_paren, close_paren = data.find("("), data.rfind(")")
    comm = data[open_paren + 1 : close_paren]
    fields = data[close_paren + 2 :].split()
    try:
        return comm, int(fields[1]), fields[19]
    except (IndexError, ValueError):
        return None


def caller_id() -> str:
    """``pid:starttime`` of the nearest ancestor that is not a shell."""
    pid = os.getppid()
    for _ in range(_MAX_SKIP + 1):
        info = _stat(pid)
        if info is None:
            return str(pid)
        comm, ppid, start = info
        if comm not in SHELLS or ppid <= 1:
            return f"{pid}:{start}"
        pid = ppid
    info = _stat(pid)
    return f"{pid}:{info[2]}" if info else str(pid)
