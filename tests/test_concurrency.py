"""Many processes at once, and the Claude-Code-like caller: real processes, not threads."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from tests.conftest import KbEnv
from tests.kb import RANDOM_KEY, exe, fetches, minting_profile

N = 32


def slow_minting_profile(kb_env: KbEnv, delay: float = 0.3) -> Path:
    """A command source that takes ``delay`` s to mint a new random key, counting its fetches."""
    return minting_profile(kb_env, mint=f"sleep {delay}; {RANDOM_KEY}")


def test_32_concurrent_cold_calls_make_one_fetch(kb_env: KbEnv) -> None:
    counter = slow_minting_profile(kb_env)
    procs = [
        subprocess.Popen(
            [exe("keybroker"), "get", "p"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=kb_env,
        )
        for _ in range(N)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    codes = [p.returncode for p in procs]
    assert codes == [0] * N, [r[1] for r in results]
    answers = {out for out, _ in results}
    assert len(answers) == 1, answers  # everyone got the same key
    assert all(err == b"" for _, err in results)
    assert fetches(counter) == 1  # one upstream fetch


CLAUDE_LIKE = textwrap.dedent(
    """
    import os, subprocess, sys, time
    # Like Claude Code: run the helper through /bin/sh, stdin open, twice 1.2 s apart.
    env = dict(os.environ, CLAUDE_CODE_ENTRYPOINT="cli")
    keys = []
    for i in range(int(sys.argv[2])):
        if i:
            time.sleep(1.2)
        p = subprocess.Popen(["/bin/sh", "-c", sys.argv[1]], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, env=env)
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0, p.returncode
        keys.append(out.decode().strip())
    print(" ".join(keys))
    """
)


def claude_like(kb_env: KbEnv, calls: int) -> list[str]:
    """A process named ``claude`` (comm) that runs the helper through ``/bin/sh -c``."""
    claude = kb_env.base / "claude"
    if not claude.exists():
        claude.symlink_to(sys.executable)
    out = subprocess.run(
        [str(claude), "-c", CLAUDE_LIKE, f"{exe('keybroker')} get p", str(calls)],
        env=kb_env,
        capture_output=True,
        check=True,
        timeout=120,
    )
    return out.stdout.decode().split()


def test_same_caller_asking_again_is_a_rejection_other_callers_share(kb_env: KbEnv) -> None:
    counter = slow_minting_profile(kb_env, delay=0)
    first, second = claude_like(kb_env, 2)
    assert fetches(counter) == 2  # the repeat made a second fetch
    assert first != second
    (third,) = claude_like(kb_env, 1)  # a second Claude session: served from the cache
    assert fetches(counter) == 2
    assert third == second


def test_burst_from_a_script_is_not_a_repeat(kb_env: KbEnv) -> None:
    counter = slow_minting_profile(kb_env, delay=0)
    env = dict(kb_env)  # no CLAUDE_CODE_ENTRYPOINT: a script, not Claude Code
    script = f"{exe('keybroker')} get p; sleep 1.2; {exe('keybroker')} get p"
    out = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, check=True)
    keys = out.stdout.decode().split()
    assert len(keys) == 2
    assert keys[0] == keys[1]
    assert fetches(counter) == 1
