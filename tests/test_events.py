"""Issue 14: warnings a person sees. Claude Code drops a successful helper's stderr, so stale
serves, failures, refusals and backoffs go to the event log that `keybroker events`,
`print-token` and `doctor` show."""

from __future__ import annotations

import json
import secrets
import time

from keybroker import events
from tests.conftest import KbEnv
from tests.kb import assert_fails, assert_key, assert_nowhere, complete, plant, run


def test_a_stale_serve_during_an_outage_reaches_events_print_token_and_doctor(
    kb_env: KbEnv,
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
    assert_nowhere(
        "sk-still-valid-200s", listed, text, doctor, dirs=[kb_env.data_dir]
    )  # the log holds names, never the key


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


# --- issue 20 item 15: events hold scrubbed text only; everything printed is neutralised ----


def test_a_failing_commands_stderr_secrets_never_reach_events_or_the_terminal(
    kb_env: KbEnv,
) -> None:
    """Before: events.jsonl kept "password hunter2-…" and a 13-character token (below the
    scrubber's 24-character rule) was printed by get and by `keybroker events`."""
    short = f"k{secrets.randbelow(10)}{secrets.token_hex(5)}q"  # 13 characters
    password = f"hunter2-{secrets.token_hex(3)}"
    script = (
        f'echo "login failed: password {password} rejected" >&2; '
        f'echo "upstream said: {short} is not valid (status 401)" >&2; exit 3'
    )
    kb_env.write_config(
        f'[profiles.c]\nsource = "command"\nshell = true\ncommand = {json.dumps(script)}\n'
    )
    failed = run(["keybroker", "get", "c"], kb_env)
    assert_fails(
        failed,
        3,
        "exited with status 3",
        "login failed: password *** rejected",
        "upstream said: *** is not valid (status 401)",
        secrets=[short, password],
    )
    listed = run(["keybroker", "events", "--json"], kb_env)
    assert [json.loads(x)["kind"] for x in listed.out.splitlines()] == ["refresh-failed"]
    text = run(["keybroker", "events"], kb_env)
    assert "refresh-failed" in text.stdout
    doctor = run(["keybroker", "doctor", "c"], kb_env)
    for secret in (short, password):
        assert_nowhere(secret, failed, listed, text, doctor, dirs=[kb_env.data_dir])


EVIL_NAME = "x\x1b]0;owned\x07\x1b[2J\u202e"
EVIL_TOML = "x\\u001b]0;owned\\u0007\\u001b[2J\\u202e"


def test_a_profile_name_with_escapes_is_shown_as_text_everywhere(kb_env: KbEnv) -> None:
    """Before: `keybroker events` printed a quoted TOML profile name raw, so the config could
    drive the terminal (set its title, clear it, reverse the text)."""
    kb_env.write_config(f'[profiles."{EVIL_TOML}"]\nsource = "env"\nvar = "K"\nstorage = "disk"\n')
    env = dict(kb_env, K="sk-named-oddly-1")
    assert_key(run(["keybroker", "get", EVIL_NAME], env), "sk-named-oddly-1")
    outputs = [
        run(["keybroker", "events"], env),
        run(["keybroker", "events", EVIL_NAME], env),
        run(["keybroker", "events", "--json"], env),
        run(["keybroker", "cache", "list"], env),
        run(["keybroker", "print-token", EVIL_NAME], env),
        run(["keybroker", "print-token", EVIL_NAME, "--json"], env),
        run(["keybroker", "doctor", EVIL_NAME], env),
        run(["keybroker", "doctor", EVIL_NAME, "--json"], env),
        run(["keybroker", "config", "show"], env),
        run(["keybroker", "cache", "clear", EVIL_NAME], env),
        run(["keybroker", "get", EVIL_NAME + "y"], env),
        complete(KbEnv(env), "keybroker get "),  # shell completion lists profile names
    ]
    for result in outputs:
        for raw in ("\x1b", "\x07", "\u202e"):
            assert raw.encode() not in result.out + result.err, result
    assert "x\\x1b]0;owned\\x07" in outputs[0].stdout, outputs[0]
    assert "x\\x1b]0;owned\\x07" in outputs[3].stdout, outputs[3]


def test_rendered_events_line_up_whatever_their_kind() -> None:
    lines = [
        events.render({"ts": 0, "kind": kind, "profile": "litellm", "message": "m"})
        for kind in events.KINDS
    ]
    columns = {line.index(" litellm ") for line in lines}
    assert len(columns) == 1, lines
