"""Issue 13: one hit path, one deadline, a narrow index — and the two paths agree.

The bugs each failed before the rebuild: a call against a held lock ran past its deadline
(two deadlines), an advisory-window call waited on a peer's lock while holding a servable key,
and a TOML date anywhere made every call take the full path, silently.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from unittest.mock import patch

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keybroker import clock
from keybroker import config as configmod
from keybroker.cache import repeats
from keybroker.cache.entry import Entry
from keybroker.cache.store import Cache
from keybroker.cli.common import load_config
from keybroker.errors import KeybrokerError, Unreachable
from keybroker.fastpath import main as fast
from keybroker.resolve import entry_name, resolve
from tests import scripted
from tests.conftest import KbEnv
from tests.kb import assert_fails, assert_key, entry_file, isolated_env, plant, run
from tests.test_hot_path import FULL_PATH_MODULES, HEAVY, PROBE


def counting_profile(kb_env: KbEnv, name: str = "p", extra: str = "") -> Path:
    counter = kb_env.base / f"count-{name}"
    script = kb_env.base / f"mint-{name}.sh"
    script.write_text(f"#!/bin/sh\necho x >> '{counter}'\necho sk-minted-$$\n")
    kb_env.write_config(
        f'[profiles.{name}]\nsource = "command"\ncommand = ["/bin/sh", "{script}"]\n{extra}')
    return counter


def hold_lock(kb_env: KbEnv, profile: str) -> subprocess.Popen[bytes]:
    """Another process holding the profile's entry lock (a peer stuck fetching)."""
    lock = entry_file(kb_env, profile, ".lock")
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(lock)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        "fcntl.flock(fd, fcntl.LOCK_EX)\n"
        "print('held', flush=True)\n"
        "time.sleep(120)\n"
    )
    holder = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert holder.stdout is not None
    assert holder.stdout.readline() == b"held\n"
    return holder


def test_a_call_against_a_held_lock_ends_by_its_deadline(kb_env: KbEnv) -> None:
    """Before: KEYBROKER_TIMEOUT=3s ran 6.1 s (one deadline in the hit path, another in
    resolve). Now one deadline, from the call's start, bounds the whole call."""
    counting_profile(kb_env)
    holder = hold_lock(kb_env, "p")
    try:
        start = time.monotonic()
        result = run(["keybroker", "get", "p"], dict(kb_env, KEYBROKER_TIMEOUT="3"))
        elapsed = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert_fails(result, 3, "waiting for another keybroker process")
    assert elapsed < 4.5, elapsed  # a bound on the deadline, not a speed figure


def test_advisory_window_beside_a_held_lock_serves_the_cached_key_at_once(kb_env: KbEnv) -> None:
    """Before: a call in the advisory window waited on the lock (4.9 s) although it held a
    key it could serve. Now the lock is tried without waiting there (as botocore does)."""
    counter = counting_profile(kb_env, extra='max_age = "60s"\n')
    now = time.time()
    plant(kb_env, "p", "sk-cached-advisory", now - 120, None)  # reuse 60 s < age: advisory
    holder = hold_lock(kb_env, "p")
    try:
        start = time.monotonic()
        result = run(["keybroker", "get", "p"], dict(kb_env, KEYBROKER_TIMEOUT="10"))
        elapsed = time.monotonic() - start
    finally:
        holder.kill()
        holder.wait()
    assert_key(result, "sk-cached-advisory")
    assert not counter.exists()  # no fetch: the peer is refreshing
    assert elapsed < 5, elapsed  # it did not wait out the 10 s deadline


def test_mandatory_window_lock_timeout_serves_the_still_valid_key(kb_env: KbEnv) -> None:
    """Issue 14: a lock wait that runs out falls back like a failed fetch. Before, the
    LockTimeout was raised outside the fallback: exit 3 while a servable key existed."""
    counter = counting_profile(kb_env)
    now = time.time()
    plant(kb_env, "p", "sk-cached-mandatory", now - 3400, now + 200)  # < T + m: mandatory
    holder = hold_lock(kb_env, "p")
    try:
        result = run(["keybroker", "get", "p"], dict(kb_env, KEYBROKER_TIMEOUT="2"))
    finally:
        holder.kill()
        holder.wait()
    assert result.code == 0, result
    assert result.out == b"sk-cached-mandatory\n"
    assert b"the lock wait ran out" in result.err or b"serving the cached key" in result.err
    assert not counter.exists()


def probe_modules(env: Mapping[str, str], argv: list[str], modules: tuple[str, ...]) -> list[str]:
    code = PROBE.format(module="entry", func="main", argv=argv).replace(repr(HEAVY),
                                                                          repr(modules))
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          stdin=subprocess.DEVNULL, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    line = proc.stderr.decode().strip().splitlines()[-1]
    return [m for m in line[len("LOADED="):].split(",") if m]


def test_a_toml_date_anywhere_does_not_disable_the_fast_path(kb_env: KbEnv) -> None:
    """Before: the index marshalled the whole config; a TOML date made write_index fail
    quietly and every call took the full path (≈2× slower) while doctor showed ✓."""
    kb_env.write_config(
        '[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n'
        "[mcp]\nreviewed = 2026-01-31\n"
    )
    env = dict(kb_env, K="sk-dated-config")
    assert_key(run(["keybroker", "get", "e"], env), "sk-dated-config")
    modules = (*HEAVY, *FULL_PATH_MODULES)
    assert probe_modules(env, ["keybroker", "get", "e"], modules) == []
    shown = run(["keybroker", "print-token", "e", "--json"], env)
    assert json.loads(shown.out)["fast_path"] == ""


def test_env_and_file_profiles_are_answered_by_the_fast_path(kb_env: KbEnv) -> None:
    """Before: storage = "none" profiles skipped the hit path and were slower than a hit."""
    key_file = kb_env.base / "key.txt"
    key_file.write_text("sk-from-file-1\n")
    kb_env.write_config(
        f'[profiles.e]\nsource = "env"\nvar = "K"\n[profiles.f]\nsource = "file"\n'
        f'path = "{key_file}"\n'
    )
    env = dict(kb_env, K="sk-from-env-1")
    assert_key(run(["keybroker", "get", "e"], env), "sk-from-env-1")  # builds the index
    modules = (*HEAVY, *FULL_PATH_MODULES)
    for profile, key in (("e", "sk-from-env-1"), ("f", "sk-from-file-1")):
        assert_key(run(["keybroker", "get", profile], env), key)
        assert probe_modules(env, ["keybroker", "get", profile], modules) == []
    # a missing variable is still the full path's clear error
    missing = {k: v for k, v in env.items() if k != "K"}
    assert_fails(run(["keybroker", "get", "e"], missing), 5, "K is not set")


def test_index_that_cannot_be_used_says_why(kb_env: KbEnv) -> None:
    """A profile the index cannot hold is reported by print-token/doctor, never silent."""
    kb_env.write_config('[profiles.v]\nsource = "vault"\npath = "x"\nfield = "k"\n')
    env = dict(kb_env)  # no VAULT_ADDR: canonical() cannot name the request
    doctor = run(["keybroker", "doctor", "v"], env)
    assert "fast path" in doctor.stdout, doctor
    assert "not indexed" in doctor.stdout, doctor


# --- the two paths agree (hypothesis) --------------------------------------------------------

T0 = 1_900_000_000.0


@settings(max_examples=80, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    age=st.floats(min_value=-30, max_value=8000),
    lifetime=st.none() | st.floats(min_value=1, max_value=7200),
    ttl_ms=st.sampled_from([None, "60000", "300000", "1800000"]),
    margin=st.sampled_from([None, "0", "60s", "10m"]),
    max_age=st.sampled_from([None, "30s", "10m"]),
    repeat=st.sampled_from(["off", "on"]),
    seen_ago=st.none() | st.floats(min_value=0, max_value=600),
)
def test_fast_path_serves_exactly_what_the_full_path_would(
    src: scripted.ScriptedSource,
    monkeypatch: pytest.MonkeyPatch,
    age: float,
    lifetime: float | None,
    ttl_ms: str | None,
    margin: str | None,
    max_age: str | None,
    repeat: str,
    seen_ago: float | None,
) -> None:
    fake = scripted.Clock(T0)
    monkeypatch.setattr(clock, "now", fake.now)
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_env(Path(tmp))
        options = f'repeat = "{repeat}"\n' + (f'max_age = "{max_age}"\n' if max_age else "")
        config_path = Path(env["XDG_CONFIG_HOME"]) / "keybroker" / "config.toml"
        config_path.parent.mkdir(parents=True)
        config_path.write_text(f'[profiles.s]\nsource = "scripted"\nid = "x"\n{options}')
        if ttl_ms:
            env["CLAUDE_CODE_API_KEY_HELPER_TTL_MS"] = ttl_ms
        if margin:
            env["KEYBROKER_MARGIN"] = margin
        cache = Cache.open(env)
        config = load_config(env, cache)
        request = configmod.request_for(config, "s", env)
        eid = entry_name(cache, "scripted", request.settings, env)
        fetched = T0 - age
        cache.write(Entry(id=eid, value="sk-planted", fetched_at=fetched,
                          expires_at=None if lifetime is None else fetched + lifetime,
                          source="scripted", label="scripted:x"))
        seen_path = cache.path(eid, ".seen")
        if seen_ago is not None:
            from keybroker.cache.caller import caller_id  # noqa: PLC0415

            caller = caller_id(env, strict=False)
            assert caller is not None
            record = repeats.Seen()
            record.callers[caller] = T0 - seen_ago
            repeats.write(seen_path, record)
        before = seen_path.read_bytes() if seen_path.exists() else None
        with patch.dict(os.environ, env, clear=True):
            probe = fast.try_get({"profile": "s"}, time.monotonic())
            value, why = probe.value, probe.why
        if before is None:
            seen_path.unlink(missing_ok=True)
        else:
            seen_path.write_bytes(before)
        src.error = Unreachable("the full path must not need the source to decide a hit")
        try:
            outcome = resolve(request, env, cache=Cache.open(env))
            full = outcome.value if outcome.state == "hit" else None
        except KeybrokerError:
            full = None
        assert value == full, (why, value, full)
        assert src.fetches == 0
        if value is not None:
            assert lifetime is None or fetched + lifetime > T0
