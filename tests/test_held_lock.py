"""A peer holding an entry's lock: one deadline bounds the call, and a servable key is served.

Each failed before the rebuild: a call against a held lock ran past its deadline (one deadline
in the hit path, another in resolve), an advisory-window call waited on a peer's lock while
holding a servable key, and a lock wait that ran out in the mandatory window was exit 3 while
a still-valid key existed.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from tests.conftest import KbEnv
from tests.kb import Result, assert_fails, assert_key, entry_file, minting_profile, plant, run

#: every test here bounds a call's wall-clock time: alone, after the parallel run
pytestmark = pytest.mark.serial


def get_beside_held_lock(kb_env: KbEnv, profile: str, timeout: str) -> tuple[Result, float]:
    """``keybroker get profile`` (KEYBROKER_TIMEOUT=timeout) while another process holds the
    profile's entry lock (a peer stuck fetching); the result and how long the call took."""
    lock = entry_file(kb_env, profile, ".lock")
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline() == b"held\n"
        start = time.monotonic()
        result = run(["keybroker", "get", profile], dict(kb_env, KEYBROKER_TIMEOUT=timeout))
        return result, time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()


def test_a_call_against_a_held_lock_ends_by_its_deadline(kb_env: KbEnv) -> None:
    """Before: KEYBROKER_TIMEOUT=3s ran 6.1 s (one deadline in the hit path, another in
    resolve). Now one deadline, from the call's start, bounds the whole call."""
    minting_profile(kb_env)
    result, elapsed = get_beside_held_lock(kb_env, "p", "3")
    assert_fails(result, 3, "waiting for another keybroker process")
    assert elapsed < 4.5, elapsed  # a bound on the deadline, not a speed figure


def test_advisory_window_beside_a_held_lock_serves_the_cached_key_at_once(kb_env: KbEnv) -> None:
    """Before: a call in the advisory window waited on the lock (4.9 s) although it held a
    key it could serve. Now the lock is tried without waiting there (as botocore does)."""
    counter = minting_profile(kb_env, extra='max_age = "60s"\n')
    now = time.time()
    plant(kb_env, "p", "sk-cached-advisory", now - 120, None)  # reuse 60 s < age: advisory
    result, elapsed = get_beside_held_lock(kb_env, "p", "10")
    assert_key(result, "sk-cached-advisory")
    assert not counter.exists()  # no fetch: the peer is refreshing
    assert elapsed < 5, elapsed  # it did not wait out the 10 s deadline


def test_mandatory_window_lock_timeout_serves_the_still_valid_key(kb_env: KbEnv) -> None:
    """Issue 14: a lock wait that runs out falls back like a failed fetch. Before, the
    LockTimeout was raised outside the fallback: exit 3 while a servable key existed."""
    counter = minting_profile(kb_env)
    now = time.time()
    plant(kb_env, "p", "sk-cached-mandatory", now - 3400, now + 200)  # < T + m: mandatory
    result, _ = get_beside_held_lock(kb_env, "p", "2")
    assert result.code == 0, result
    assert result.out == b"sk-cached-mandatory\n"
    assert b"the lock wait ran out" in result.err or b"serving the cached key" in result.err
    assert not counter.exists()
