"""``keybroker doctor`` as a precedence linter of Claude Code's settings (issue 15).

Claude Code reads managed > local > project > user settings, applies their ``env`` over the
shell's (measured on 2.1.197 and 2.1.332: a settings ``ANTHROPIC_BASE_URL`` beats the shell's),
and takes apiKeyHelper from the highest scope that sets it. doctor must judge the TTL, the
helper and the shadowing variables the way Claude Code will see them. The gateway probe runs
against the e2e fake gateway, answering 401 or LiteLLM's DB-less 400.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KbEnv
from tests.e2e.anthropic_server import AnthropicServer
from tests.fixtures.claude_settings import in_a_project
from tests.kb import SCRIPTS, Result, run

KEY = "sk-doctor-precedence-3e5a7c9b"
HELPER = f"{shlex.quote(str(SCRIPTS / 'keybroker'))} get good"


@pytest.fixture
def lint_env(kb_env: KbEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KbEnv:
    in_a_project(kb_env, tmp_path, monkeypatch, tmp_path / "managed-settings.json")
    kb_env["GOOD_KEY"] = KEY
    kb_env.write_config('[profiles.good]\nsource = "env"\nvar = "GOOD_KEY"\n')
    return kb_env


def files(env: Mapping[str, str]) -> dict[str, Path]:
    project = Path.cwd()
    return {
        "managed": Path(env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"]),
        "local": project / ".claude" / "settings.local.json",
        "project": project / ".claude" / "settings.json",
        "user": Path(env["HOME"]) / ".claude" / "settings.json",
    }


def put(env: Mapping[str, str], scope: str, data: dict[str, Any]) -> Path:
    path = files(env)[scope]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def doctor_json(env: Mapping[str, str], *args: str) -> tuple[Result, dict[str, Any]]:
    result = run(["keybroker", "doctor", "good", "--json", *args], env)
    assert result.err == b"", result
    return result, json.loads(result.out)


def check(report: dict[str, Any], label: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["label"] == label]


def ttl_line(report: dict[str, Any]) -> str:
    [line] = check(report, "claude helper TTL")
    return str(line["detail"])


@pytest.mark.parametrize(
    ("scopes", "winner"),
    [
        (("user",), "user"),
        (("user", "project"), "project"),
        (("user", "project", "local"), "local"),
        (("user", "project", "local", "managed"), "managed"),
    ],
)
def test_ttl_comes_from_the_highest_scope(
    lint_env: KbEnv, scopes: tuple[str, ...], winner: str
) -> None:
    ttls = {"user": "600000", "project": "900000", "local": "1200000", "managed": "7200000"}
    lint_env["CLAUDE_CODE_API_KEY_HELPER_TTL_MS"] = "60000"  # the shell comes last
    for scope in scopes:
        put(lint_env, scope, {"env": {"CLAUDE_CODE_API_KEY_HELPER_TTL_MS": ttls[scope]}})
    _result, report = doctor_json(lint_env)
    assert report["claude"]["ttl_ms"] == int(ttls[winner]), report
    assert ttl_line(report).startswith(f"CLAUDE_CODE_API_KEY_HELPER_TTL_MS={ttls[winner]} ")
    assert f"{winner} settings" in ttl_line(report)


def test_ttl_from_the_shell_or_the_default(lint_env: KbEnv) -> None:
    _, report = doctor_json(lint_env)
    assert (report["claude"]["ttl_ms"], report["claude"]["ttl_source"]) == (300000, "default")
    lint_env["CLAUDE_CODE_API_KEY_HELPER_TTL_MS"] = "60000"
    _, report = doctor_json(lint_env)
    assert report["claude"]["ttl_source"] == "shell environment"


def test_profile_lifetime_is_judged_against_the_settings_ttl(lint_env: KbEnv) -> None:
    """The bug in the issue: configure set a 2 h TTL in settings, doctor still used 5 min."""
    put(
        lint_env,
        "user",
        {"apiKeyHelper": HELPER, "env": {"CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "7200000"}},
    )
    result = run(["keybroker", "doctor", "good"], lint_env)
    assert result.code == 0, result
    assert "no expiry known; reused for 2h" in result.stdout, result.stdout


def test_helper_comes_from_the_highest_scope(lint_env: KbEnv) -> None:
    put(lint_env, "user", {"apiKeyHelper": HELPER})
    put(lint_env, "local", {"apiKeyHelper": "~/bin/other-helper"})
    _, report = doctor_json(lint_env)
    assert report["claude"]["api_key_helper_scope"] == "local"
    [user] = check(report, "claude user settings")
    assert "shadowed by local settings" in user["detail"]


@pytest.mark.parametrize("name", ["ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"])
def test_a_shell_credential_shadowing_the_helper_is_reported(lint_env: KbEnv, name: str) -> None:
    put(lint_env, "user", {"apiKeyHelper": HELPER})
    lint_env[name] = "sk-shell-leftover"
    result, report = doctor_json(lint_env)
    assert result.code == 1, result
    [bad] = check(report, "claude credentials")
    assert not bad["ok"]
    assert f"{name} is set in the shell environment" in bad["detail"]
    assert "sk-shell-leftover" not in result.stdout


def test_a_settings_credential_names_its_file(lint_env: KbEnv) -> None:
    path = put(lint_env, "project", {"env": {"ANTHROPIC_AUTH_TOKEN": "x"}})
    _, report = doctor_json(lint_env)
    [bad] = check(report, "claude credentials")
    assert str(path) in bad["detail"]


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("forceLoginMethod", "claudeai"),
        ("forceLoginMethod", "console"),
        ("forceLoginOrgUUID", "0000-1111"),
    ],
)
def test_sign_in_pins_block_the_helper(lint_env: KbEnv, key: str, value: str) -> None:
    path = put(lint_env, "managed", {key: value})
    result, report = doctor_json(lint_env)
    assert result.code == 1, result
    [bad] = check(report, "claude sign-in")
    assert f"{path} sets {key}" in bad["detail"]


def test_cloud_switch_without_skip_ignores_the_helper(lint_env: KbEnv) -> None:
    put(lint_env, "user", {"apiKeyHelper": HELPER, "env": {"CLAUDE_CODE_USE_BEDROCK": "1"}})
    result, report = doctor_json(lint_env)
    assert result.code == 1, result
    [bad] = check(report, "claude deployment")
    assert "CLAUDE_CODE_SKIP_BEDROCK_AUTH" in bad["detail"]


def test_a_helper_in_a_shared_project_file_is_reported(lint_env: KbEnv) -> None:
    (Path.cwd() / ".git").mkdir()
    put(lint_env, "project", {"apiKeyHelper": HELPER})
    result, report = doctor_json(lint_env)
    assert result.code == 1, result
    bad = [c for c in check(report, "claude project settings") if not c["ok"]]
    assert bad, report
    assert "shared project file" in bad[0]["detail"]
    assert "--scope user" in bad[0]["fix"]


def test_a_clean_setup_passes_in_json_and_text(lint_env: KbEnv) -> None:
    put(lint_env, "user", {"apiKeyHelper": HELPER})
    result, report = doctor_json(lint_env)
    assert result.code == 0, result
    assert report["ok"] is True
    assert [s["scope"] for s in report["claude"]["scopes"]] == [
        "managed",
        "local",
        "project",
        "user",
    ]
    text = run(["keybroker", "doctor", "good"], lint_env)
    assert text.code == 0, text
    assert "✓ claude helper TTL: CLAUDE_CODE_API_KEY_HELPER_TTL_MS=300000" in text.stdout
    assert KEY not in text.stdout


# --- the gateway probe -------------------------------------------------------------------------
@pytest.fixture(scope="module")
def gateway() -> Iterator[AnthropicServer]:
    with AnthropicServer() as server:
        yield server


@pytest.mark.parametrize("deployment", ["anthropic", "bedrock", "vertex"])
def test_probe_accepts_a_gateway_that_says_401(
    lint_env: KbEnv, gateway: AnthropicServer, deployment: str
) -> None:
    gateway.reset()
    gateway.only_accept("sk-the-one-real-key")  # the probe's key is unknown: 401
    prefix = {"anthropic": "", "bedrock": "/bedrock", "vertex": "/vertex_ai/v1"}[deployment]
    _result, report = doctor_json(
        lint_env, "--probe-gateway", gateway.url + prefix, "--deployment", deployment
    )
    [probe] = check(report, "gateway bad-key answer")
    assert probe["ok"], probe
    assert "401" in probe["detail"]
    [call] = gateway.messages()
    assert call.kind == deployment
    assert call.bearer == "sk-keybroker-doctor-probe-invalid-key"
    assert KEY not in json.dumps(call.headers)


def test_probe_explains_litellms_db_less_400(lint_env: KbEnv, gateway: AnthropicServer) -> None:
    gateway.reset()
    gateway.only_accept("sk-litellm-master-key")
    gateway.refuse_status = 400
    result = run(["keybroker", "doctor", "good", "--probe-gateway", gateway.url], lint_env)
    assert result.code == 1, result
    [line] = [ln for ln in result.stdout.splitlines() if "gateway bad-key answer" in ln]
    assert line.startswith("✗")
    assert '400 "No connected db."' in line
    assert "DATABASE_URL" in line


def test_probe_reports_an_unreachable_gateway(lint_env: KbEnv) -> None:
    _result, report = doctor_json(lint_env, "--probe-gateway", "http://127.0.0.1:9")
    [probe] = check(report, "gateway bad-key answer")
    assert not probe["ok"]
    assert "cannot connect" in probe["detail"]
