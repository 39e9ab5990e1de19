"""What the fast path answers, and that it answers exactly what the full path would.

Profiles of every storage kind are served without the full path's modules, a TOML date
anywhere in the config does not silently disable the index (it once did: every call took
the full path while doctor showed ✓), a profile the index cannot hold is reported, and a
property test plants entries of every age and checks the two paths agree on each.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
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
from tests.fixtures.modules import FULL_PATH_MODULES, HEAVY, loaded_modules
from tests.kb import assert_fails, assert_key, isolated_env, run


def test_a_toml_date_anywhere_does_not_disable_the_fast_path(kb_env: KbEnv) -> None:
    """Before: the index marshalled the whole config; a TOML date made write_index fail
    quietly and every call took the full path (≈2× slower) while doctor showed ✓."""
    kb_env.write_config(
        '[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n[mcp]\nreviewed = 2026-01-31\n'
    )
    env = dict(kb_env, K="sk-dated-config")
    assert_key(run(["keybroker", "get", "e"], env), "sk-dated-config")
    modules = (*HEAVY, *FULL_PATH_MODULES)
    assert loaded_modules(env, ["keybroker", "get", "e"], modules).modules == []
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
        assert loaded_modules(env, ["keybroker", "get", profile], modules).modules == []
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


@settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
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
        cache.write(
            Entry(
                id=eid,
                value="sk-planted",
                fetched_at=fetched,
                expires_at=None if lifetime is None else fetched + lifetime,
                source="scripted",
                label="scripted:x",
            )
        )
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
