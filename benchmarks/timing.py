"""Repeated-process timing, interleaved so every command sees the same machine load.

hyperfine runs one command's whole batch, then the next: on a shared 2-core machine a burst
of load during one batch skews that command alone. Here each round runs every command once
in turn (round-robin, order rotated each round), so noise lands on all of them alike and the
ratios of medians stay honest. Processes are started with ``posix_spawn`` (no fork of this
interpreter, stdin open like Claude Code leaves it, stdout/stderr to /dev/null) and timed from
spawn to reap with ``perf_counter``.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field


@dataclass
class Command:
    """One command line to time; ``before`` runs untimed before each run (e.g. drop the entry)."""

    name: str
    argv: Sequence[str]
    env: Mapping[str, str]
    before: Callable[[], None] | None = None
    expect: bytes | None = None  # checked once, untimed, before timing starts


@dataclass
class Sample:
    name: str
    times: list[float] = field(default_factory=list)  # seconds

    @property
    def median(self) -> float:
        return statistics.median(self.times)

    def quantile(self, q: float) -> float:
        ordered = sorted(self.times)
        index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
        return ordered[index]


class CommandFailed(RuntimeError):
    pass


def check(command: Command) -> None:
    """Run once with output captured: a benchmark of a failing command measures nothing."""
    if command.before:
        command.before()
    proc = subprocess.run(
        list(command.argv), env=dict(command.env), capture_output=True, timeout=120, check=False
    )
    if proc.returncode != 0 or (command.expect is not None and proc.stdout != command.expect):
        raise CommandFailed(
            f"{command.name}: exit {proc.returncode}, stdout {len(proc.stdout)} bytes"
            f"{' (unexpected)' if command.expect is not None else ''}, "
            f"stderr: {proc.stderr.decode(errors='replace')[-500:]}"
        )


def spawn_and_wait(argv: Sequence[str], env: Mapping[str, str]) -> float:
    """Wall time of one run, from spawn to exit; raises if it fails."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    read_end, write_end = os.pipe()  # stdin: open, never written (as Claude Code does)
    try:
        actions = [
            (os.POSIX_SPAWN_DUP2, read_end, 0),
            (os.POSIX_SPAWN_DUP2, devnull, 1),
            (os.POSIX_SPAWN_DUP2, devnull, 2),
        ]
        envlist = {k: v for k, v in env.items()}
        start = time.perf_counter()
        pid = os.posix_spawn(argv[0], list(argv), envlist, file_actions=actions)
        _, status = os.waitpid(pid, 0)
        elapsed = time.perf_counter() - start
    finally:
        for fd in (devnull, read_end, write_end):
            os.close(fd)
    code = os.waitstatus_to_exitcode(status)
    if code != 0:
        raise CommandFailed(f"{argv[0]} exited {code} during timing")
    return elapsed


def measure(commands: Sequence[Command], runs: int, warmup: int = 3) -> dict[str, Sample]:
    """Time every command ``runs`` times, round-robin; returns samples by name."""
    for command in commands:
        check(command)
    samples = {c.name: Sample(c.name) for c in commands}
    order = list(commands)
    for round_no in range(warmup + runs):
        shift = round_no % len(order)
        for command in order[shift:] + order[:shift]:
            if command.before:
                command.before()
            elapsed = spawn_and_wait(command.argv, command.env)
            if round_no >= warmup:
                samples[command.name].times.append(elapsed)
    return samples
