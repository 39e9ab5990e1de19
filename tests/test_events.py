"""Issue 14: warnings a person sees. Claude Code drops a successful helper's stderr, so stale
serves, failures, refusals and backoffs go to the event log that `keybroker events`,
`print-token` and `doctor` show."""

from __future__ import annotations

import json
import time

from tests.conftest import KbEnv
from tests.kb import assert_key, assert_nowhere, plant, run


def test_a_stale_serve_during_an_outage_reaches_events_print_token_and_doctor(
    kb_env: KbEnv
) -> None:
    kb_env.write_config('[profiles.p]\nsource = "command"\ncommand = ["/bin/false"]\n')
    now = time.time()
    plant(kb_env, "p", "sk-still-valid-200s", now - 3400, now + 200)
    served = run(["keybroker", "get", "p"], kb_env)  # mandatory window, the source is down
    assert_key(served, "sk-still-valid-200s")
    assert b"serving the cached key" in served.err  # what Claude Code would throw away

    listed = run(["keybroker", "events", "p", "--json"], kb_env)
    assert listed.code == 0, listed
    kinds = [json.loads(line)["kind"] for line in listed.out.splitlines()]
    assert kinds == ["stale-served"]
    text = run(["keybroker", "events"], kb_env)
    assert "stale-served" in text.stdout
    assert "profile 'p'" in text.stdout
    shown = run(["keybroker", "print-token", "p"], kb_env)
    assert "stale-served" in shown.stdout, shown
    doctor = run(["keybroker", "doctor", "p"], kb_env)
    assert "stale-served" in doctor.stdout, doctor
    assert_nowhere("sk-still-valid-200s", listed, text, doctor,
                   dirs=[kb_env.data_dir])  # the log holds names, never the key


def test_events_filter_by_kind_and_limit(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n')
    for i in range(3):
        assert run(["keybroker", "get", "e"], dict(kb_env, K=f"sk-rotating-{i}")).code == 0
    every = run(["keybroker", "events", "--json"], kb_env)
    assert [json.loads(x)["kind"] for x in every.out.splitlines()] == ["refresh"] * 3
    last = run(["keybroker", "events", "-n", "1", "--kind", "refresh"], kb_env)
    assert len(last.stdout.splitlines()) == 1
    none = run(["keybroker", "events", "--kind", "backoff"], kb_env)
    assert none.stdout.startswith("no events")
