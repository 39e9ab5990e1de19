"""One deadline for every command that fetches, and outages that fail fast (DESIGN 2 and 4).

The backend is a real OpenBao behind :class:`tests.fixtures.standin.FaultProxy`, which
turns the network hostile on demand: an answer dripped one byte a second (each byte resets a
client's read timeout, so only a deadline for the whole call stops it), or a server that
accepts and never answers (what a stopped Vault looks like).
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path

import pytest

from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.fixtures.standin import FaultProxy
from tests.kb import Result, assert_fails, exe, plant, run

#: every test here bounds a call's wall-clock time: alone, after the parallel run
pytestmark = pytest.mark.serial

TIMEOUT = 3
#: the watchdog's grace (keybroker.deadline.WATCHDOG_GRACE) plus room for a loaded machine
SLACK = 1.5 + 4.0
KEY = "sk-deadline-0123456789abcdef"
TOKEN_NAME = "VAULT_TOKEN"

#: every command that fetches, as a person or a tool would run it for profile ``v``
COMMANDS = {
    "get": ["keybroker", "get", "v"],
    "keybroker-vault": ["keybroker-vault", "--profile", "v"],
    "headers": ["keybroker", "headers", "v"],
    "headers --format value": ["keybroker", "headers", "v", "--format", "value"],
    "credential": ["keybroker", "credential", "v"],
    "aws-credentials": ["keybroker", "aws-credentials", "v"],
    "ci export": ["keybroker", "ci", "export", "v", "--format", "shell"],
    "exec": ["keybroker", "exec", "v", "--", "true"],
    "print-token": ["keybroker", "print-token", "v"],
}


@pytest.fixture
def vault_profile(kb_env: KbEnv, openbao: OpenBao, fault_proxy: FaultProxy) -> KbEnv:
    """Profile ``v``: a KV v2 secret read through the fault proxy."""
    openbao.kv_put("deadline", {"key": KEY})
    kb_env.write_config('[profiles.v]\nsource = "vault"\npath = "deadline"\nfield = "key"\n')
    kb_env.update(
        VAULT_ADDR=fault_proxy.url, VAULT_TOKEN=openbao.root_token, KEYBROKER_TIMEOUT=str(TIMEOUT)
    )
    return kb_env


def timed(argv: list[str], env: Mapping[str, str], timeout: float = 60) -> tuple[Result, float]:
    start = time.monotonic()
    result = run(argv, env, timeout=timeout)
    return result, time.monotonic() - start


@pytest.mark.parametrize("command", list(COMMANDS))
def test_a_dripping_server_cannot_hold_any_command_past_its_deadline(
    vault_profile: KbEnv, fault_proxy: FaultProxy, command: str
) -> None:
    """Issue 20 item 1: ``headers``, ``credential``, ``ci export``, ``aws-credentials`` and
    ``exec`` ran for 25 s and more against a byte-drip server; ``get`` stopped at 4.6 s."""
    fault_proxy.set("drip")
    result, elapsed = timed(COMMANDS[command], vault_profile)
    assert_fails(result, 3, secrets=[vault_profile[TOKEN_NAME]])
    assert elapsed < TIMEOUT + SLACK, (command, elapsed, result)


def test_a_call_past_its_deadline_leaves_the_entry_lock_to_the_next_call(
    vault_profile: KbEnv, fault_proxy: FaultProxy
) -> None:
    """The dripping call held the entry's lock for as long as it ran, so every cold ``get``
    meanwhile failed with exit 3. Now it lets go at its deadline and the waiting ``get``
    (whose own deadline is longer) fetches from the healthy server."""
    fault_proxy.drip_first = True
    slow = subprocess.Popen(
        [exe("keybroker"), "headers", "v"],
        env=vault_profile,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while fault_proxy.accepted < 1 and time.monotonic() < deadline:
            time.sleep(0.05)  # the slow call holds the lock once it has connected
        assert fault_proxy.accepted == 1
        patient = dict(vault_profile, KEYBROKER_TIMEOUT="20")
        result, elapsed = timed(["keybroker", "get", "v"], patient)
        assert result.code == 0, result
        assert result.out == f"{KEY}\n".encode()
        assert elapsed < TIMEOUT + SLACK, elapsed
    finally:
        _, err = slow.communicate(timeout=30)
    assert slow.returncode == 3, err
    assert fault_proxy.accepted == 2


# --- outages fail fast --------------------------------------------------------------------


def plant_mandatory(env: KbEnv, value: str) -> Path:
    """A cached key inside the mandatory window (valid 300 s < T + m = 360 s)."""
    now = time.time()
    return plant(env, "v", value, now - 3300, now + 300)


def events_of(env: KbEnv, kind: str) -> list[dict[str, object]]:
    result = run(["keybroker", "events", "v", "--json"], env)
    assert result.code == 0, result
    found = [json.loads(line) for line in result.out.splitlines()]
    return [e for e in found if e.get("kind") == kind]


def test_a_stalled_source_costs_one_call_its_deadline_not_every_call(
    vault_profile: KbEnv, fault_proxy: FaultProxy
) -> None:
    """Issue 20 item 2: with Vault stopped and a still-valid key cached, every ``get`` past
    the TTL waited out its deadline before serving that key. Now the first call notes the
    outage and the calls after it serve the key at once, with a ``stale-served`` event."""
    entry = plant_mandatory(vault_profile, "sk-still-valid-during-outage")
    fault_proxy.set("stall")
    first, first_took = timed(["keybroker", "get", "v"], vault_profile)
    assert first.code == 0, first
    assert first.out == b"sk-still-valid-during-outage\n"
    assert first_took >= TIMEOUT - 0.5, first_took  # it did ask the stalled source
    note = entry.with_suffix(".outage")
    assert note.exists()
    accepted = fault_proxy.accepted
    for _ in range(3):
        again, took = timed(["keybroker", "get", "v"], vault_profile)
        assert again.code == 0, again
        assert again.out == b"sk-still-valid-during-outage\n"
        assert b"serving the cached key" in again.err
        assert took < 1.5, took  # at once, not after the deadline
    assert fault_proxy.accepted == accepted  # nobody asked the source inside the window
    assert len(events_of(vault_profile, "stale-served")) >= 4


def test_after_the_window_one_call_probes_briefly_and_a_recovered_source_ends_the_outage(
    vault_profile: KbEnv, fault_proxy: FaultProxy, openbao: OpenBao
) -> None:
    entry = plant_mandatory(vault_profile, "sk-still-valid-during-outage")
    fault_proxy.set("stall")
    assert timed(["keybroker", "get", "v"], vault_profile)[0].code == 0
    note = entry.with_suffix(".outage")
    note.write_bytes(repr(time.time() - 1).encode())  # the window has passed
    patient = dict(vault_profile, KEYBROKER_TIMEOUT="20")
    probe, took = timed(["keybroker", "get", "v"], patient)
    assert probe.out == b"sk-still-valid-during-outage\n", probe
    assert took < 3.0 + SLACK, took  # a short probe, not the 20 s deadline
    assert float(note.read_bytes()) > time.time()  # a new window
    fault_proxy.set("pass")
    note.write_bytes(repr(time.time() - 1).encode())
    recovered = run(["keybroker", "get", "v"], patient)
    assert recovered.code == 0, recovered
    assert recovered.out == f"{KEY}\n".encode()
    assert not note.exists()


def test_an_outage_never_serves_an_expired_key(
    vault_profile: KbEnv, fault_proxy: FaultProxy
) -> None:
    now = time.time()
    entry = plant(vault_profile, "v", "sk-expired-key", now - 4000, now - 1)
    entry.with_suffix(".outage").write_bytes(repr(now + 30).encode())
    fault_proxy.set("stall")
    result, elapsed = timed(["keybroker", "get", "v"], vault_profile)
    assert_fails(result, 3)
    assert elapsed >= TIMEOUT - 0.5
    assert b"sk-expired-key" not in result.err
