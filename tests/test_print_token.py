"""``keybroker print-token``: the person's view of what the helper does."""

from __future__ import annotations

import json
import sys

from tests.conftest import KbEnv
from tests.kb import assert_fails, run

SECRET = "sk-print-token-1a2b3c4d5e6f"


def profile(kb_env: KbEnv, lifetime_note: str = "") -> None:
    script = kb_env.base / "src.py"
    script.write_text(f"print({SECRET!r})\n")
    kb_env.write_config(
        f'[profiles.p]\nsource = "command"\ncommand = [{json.dumps(sys.executable)}, '
        f'{json.dumps(str(script))}]\nmax_age = "1h"\n{lifetime_note}'
    )


def test_human_report_is_redacted(kb_env: KbEnv) -> None:
    profile(kb_env)
    first = run(["keybroker", "print-token", "p"], kb_env)
    assert first.code == 0, first
    text = first.stdout
    assert SECRET not in text + first.stderr
    assert "sk-…5e6f" in text
    assert "miss" in text
    for label in ("source", "fetched at", "expires at", "covers TTL", "timings", "fetch"):
        assert label in text, label
    second = run(["keybroker", "print-token", "p"], kb_env)
    assert "hit" in second.stdout


def test_reveal_and_json(kb_env: KbEnv) -> None:
    profile(kb_env)
    revealed = run(["keybroker", "print-token", "p", "--reveal"], kb_env)
    assert SECRET in revealed.stdout
    doc = json.loads(run(["keybroker", "print-token", "p", "--json"], kb_env).out)
    assert doc["version"] == 1
    assert doc["profile"] == "p"
    assert doc["source"] == "command"
    assert doc["cache"]["state"] == "hit"
    assert doc["key"] != SECRET
    assert doc["key_redacted"] is True
    assert doc["expires_at"] is None
    assert doc["covers_ttl_and_margin"] is None
    assert doc["ttl_seconds"] == 300
    assert doc["margin_seconds"] == 60
    assert "total" in doc["timings_ms"]
    bypass = json.loads(run(["keybroker", "print-token", "p", "--json", "--no-cache"], kb_env).out)
    assert bypass["cache"]["state"] == "bypass"
    assert "fetch" in bypass["timings_ms"]


def test_demo_reports_expiry_coverage(kb_env: KbEnv) -> None:
    doc = json.loads(run(["keybroker", "print-token", "demo", "--json"], kb_env).out)
    assert doc["covers_ttl_and_margin"] is True
    assert 3500 < doc["remaining_seconds"] <= 3600
    short = json.loads(
        run(
            ["keybroker", "print-token", "demo", "--json"],
            dict(kb_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS="3600000"),
        ).out
    )
    assert short["covers_ttl_and_margin"] is False


def test_failures_follow_the_contract(kb_env: KbEnv) -> None:
    assert_fails(run(["keybroker", "print-token", "nope"], kb_env), 2, "unknown profile")
