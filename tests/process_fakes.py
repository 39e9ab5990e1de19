"""One fake process table for the caller rule (the model: litellm-relay's ``FakeProcessTable``).

Each test builds the process tree of one OS shape — the native Claude Code binary or Node
running ``cli.js``, the shell Claude starts the helper with, Windows' launchers — and asks
:func:`keybroker.cache.caller.identify` about the bottom process. The real adapters
(:mod:`keybroker.cache.proc_linux` on this machine, macOS and Windows on the CI runners)
answer the same five questions.
"""

from __future__ import annotations

from keybroker.cache.proctable import Proc


class FakeTable:
    """Processes by pid; ``problem`` makes the whole table unavailable (``/proc`` hidden)."""

    name = "fake"

    def __init__(self, problem: str = "") -> None:
        self.procs: dict[int, Proc] = {}
        self.argvs: dict[int, list[str]] = {}
        self.envs: dict[int, dict[str, str]] = {}
        self._problem = problem

    def add(
        self,
        pid: int,
        ppid: int,
        name: str,
        *argv: str,
        exe: str = "",
        start: int | None = None,
        env: dict[str, str] | None = None,
    ) -> FakeTable:
        """Add a process (``start`` defaults to its pid: children start after parents)."""
        self.procs[pid] = Proc(pid, ppid, name, exe, pid if start is None else start)
        self.argvs[pid] = list(argv)
        if env is not None:
            self.envs[pid] = env
        return self

    def proc(self, pid: int) -> Proc | None:
        return None if self._problem else self.procs.get(pid)

    def argv(self, pid: int) -> list[str] | None:
        return None if self._problem else self.argvs.get(pid)

    def environ(self, pid: int) -> dict[str, str] | None:
        return None if self._problem else self.envs.get(pid)

    def problem(self) -> str:
        return self._problem
