"""``keybroker claude configure`` and the POSIX apiKeyHelper wrapper.

The written ``apiKeyHelper`` is run the way Claude Code runs it (``/bin/sh -c``) to show the
settings actually work, not just that they look right.
"""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from keybroker.claude.helpers import helper_command, parse_helper
from tests.conftest import KbEnv
from tests.e2e import fleet
from tests.fixtures.claude_settings import configure, env_profiles, run_like_claude
from tests.kb import SCRIPTS, assert_fails, assert_key, run

KEY = "sk-configure-1a2b3c4d5e"
ROOT = Path(__file__).resolve().parent.parent
WRAPPER = ROOT / "helpers" / "keybroker-helper.sh"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths and /bin/sh")
fleet_keybroker = fleet.fleet_keybroker  # the fixture, under its own name


@pytest.fixture
def cc_env(kb_env: KbEnv) -> KbEnv:
    return env_profiles(kb_env, litellm=("LITELLM_KEY", KEY), other=("LITELLM_KEY", KEY))


def user_settings(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) / ".claude" / "settings.json"


def parsed(command: object) -> dict[str, Any]:
    """parse_helper() of a line keybroker wrote, which must parse."""
    parts = parse_helper(command)
    assert parts is not None, command
    return parts


def test_writes_user_settings_that_work(cc_env: KbEnv) -> None:
    result = configure(cc_env, "litellm", "--base-url", "https://litellm.example:4000")
    assert result.code == 0, result
    assert result.out == b""
    path = user_settings(cc_env)
    settings = json.loads(path.read_text())
    assert settings == {
        "apiKeyHelper": f"{shlex.quote(str(SCRIPTS / 'keybroker'))} get litellm",
        "env": {
            "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "300000",
            "ANTHROPIC_BASE_URL": "https://litellm.example:4000",
        },
    }
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert KEY not in path.read_text()
    helper = run_like_claude(settings["apiKeyHelper"], cc_env)
    assert (helper.returncode, helper.stdout, helper.stderr) == (0, KEY.encode() + b"\n", b"")


def test_claude_config_dir_is_honoured(cc_env: KbEnv) -> None:
    cc_env["CLAUDE_CONFIG_DIR"] = str(cc_env.base / "ccdir")
    result = configure(cc_env, "litellm")
    assert result.code == 0, result
    assert (cc_env.base / "ccdir" / "settings.json").exists()
    assert not user_settings(cc_env).exists()


def test_merges_keeps_other_keys_and_backs_up(cc_env: KbEnv) -> None:
    path = user_settings(cc_env)
    path.parent.mkdir(parents=True)
    original = json.dumps(
        {
            "model": "opus",
            "permissions": {"allow": ["Bash(ls)"]},
            "env": {"FOO": "bar", "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "900000"},
        },
        indent=4,
    )
    path.write_text(original)
    os.chmod(path, 0o640)
    result = configure(cc_env, "litellm", "--base-url", "https://proxy")
    assert result.code == 0, result
    settings = json.loads(path.read_text())
    assert settings["model"] == "opus"
    assert settings["permissions"] == {"allow": ["Bash(ls)"]}
    assert settings["env"] == {
        "FOO": "bar",
        "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "900000",  # kept: no --ttl given
        "ANTHROPIC_BASE_URL": "https://proxy",
    }
    backup = path.with_name("settings.json.bak")
    assert backup.read_text() == original
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert b"backup: " in result.err

    # idempotent: the same command changes nothing and makes no new backup
    again = configure(cc_env, "litellm", "--base-url", "https://proxy")
    assert again.code == 0, again
    assert b"already configured" in again.err
    assert not path.with_name("settings.json.bak.1").exists()

    # a change replaces the one backup with the version it changes: never a pile
    before = path.read_text()
    third = configure(cc_env, "other", "--ttl", "10m")
    assert third.code == 0, third
    assert backup.read_text() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["settings.json", "settings.json.bak"]
    settings = json.loads(path.read_text())
    assert settings["apiKeyHelper"].endswith(" get other")
    assert settings["env"]["CLAUDE_CODE_API_KEY_HELPER_TTL_MS"] == "600000"


def test_refuses_foreign_helper_without_force(cc_env: KbEnv) -> None:
    path = user_settings(cc_env)
    path.parent.mkdir(parents=True)
    original = '{"apiKeyHelper": "~/bin/get-litellm-key.sh", "env": {}}\n'
    path.write_text(original)
    result = configure(cc_env, "litellm")
    assert_fails(result, 2, "did not write", "--force")
    assert b"get-litellm-key" not in result.err  # a foreign command may hold a secret
    assert path.read_text() == original
    assert not path.with_name("settings.json.bak").exists()

    forced = configure(cc_env, "litellm", "--force")
    assert forced.code == 0, forced
    assert path.with_name("settings.json.bak").read_text() == original
    assert parsed(json.loads(path.read_text())["apiKeyHelper"])["profile"] == "litellm"


def test_replaces_its_own_helper_without_force(cc_env: KbEnv) -> None:
    path = user_settings(cc_env)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"apiKeyHelper": "/usr/local/bin/keybroker get old"}))
    result = configure(cc_env, "litellm")
    assert result.code == 0, result


EXPECTED_ENV = {
    "anthropic": {"ANTHROPIC_BASE_URL": "https://gw:4000"},
    "bedrock": {
        "ANTHROPIC_BEDROCK_BASE_URL": "https://gw:4000/bedrock",
        "CLAUDE_CODE_USE_BEDROCK": "1",
        "CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1",
        "AWS_REGION": "us-east-1",
    },
    "vertex": {
        "ANTHROPIC_VERTEX_BASE_URL": "https://gw:4000/vertex_ai/v1",
        "CLAUDE_CODE_USE_VERTEX": "1",
        "CLAUDE_CODE_SKIP_VERTEX_AUTH": "1",
        "CLOUD_ML_REGION": "us-east5",
        "ANTHROPIC_VERTEX_PROJECT_ID": "my-project",
    },
}
ARGS = {
    "anthropic": ["--base-url", "https://gw:4000"],
    "bedrock": ["--base-url", "https://gw:4000/bedrock", "--region", "us-east-1"],
    "vertex": [
        "--base-url",
        "https://gw:4000/vertex_ai/v1",
        "--region",
        "us-east5",
        "--vertex-project-id",
        "my-project",
    ],
}


@pytest.mark.parametrize("deployment", ["anthropic", "bedrock", "vertex"])
def test_each_deployment_writes_valid_settings(cc_env: KbEnv, deployment: str) -> None:
    result = configure(
        cc_env,
        "litellm",
        "--deployment",
        deployment,
        *ARGS[deployment],
        "--model",
        "claude-sonnet-4-5",
    )
    assert result.code == 0, result
    settings = json.loads(user_settings(cc_env).read_text())
    assert settings["env"] == {
        "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "300000",
        **EXPECTED_ENV[deployment],
        "ANTHROPIC_MODEL": "claude-sonnet-4-5",
    }
    helper = run_like_claude(settings["apiKeyHelper"], cc_env)
    assert helper.stdout == KEY.encode() + b"\n"


def test_switching_deployment_removes_the_other_switches(cc_env: KbEnv) -> None:
    assert (
        configure(
            cc_env, "litellm", "--deployment", "bedrock", "--base-url", "https://gw/bedrock"
        ).code
        == 0
    )
    result = configure(
        cc_env, "litellm", "--deployment", "vertex", "--base-url", "https://gw/vertex_ai/v1"
    )
    assert result.code == 0, result
    env = json.loads(user_settings(cc_env).read_text())["env"]
    assert not {
        "CLAUDE_CODE_USE_BEDROCK",
        "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
        "ANTHROPIC_BEDROCK_BASE_URL",
    } & set(env)
    assert env["CLAUDE_CODE_USE_VERTEX"] == "1"
    assert b"removed settings of the previous deployment" in result.err
    assert b"ANTHROPIC_VERTEX_PROJECT_ID" in result.err  # vertex's extra needs are named


def test_bedrock_needs_base_url(cc_env: KbEnv) -> None:
    result = configure(cc_env, "litellm", "--deployment", "bedrock")
    assert_fails(result, 2, "--base-url")
    assert not user_settings(cc_env).exists()


@pytest.mark.parametrize(
    ("scope", "name"), [("project", "settings.json"), ("local", "settings.local.json")]
)
def test_project_and_local_scopes(cc_env: KbEnv, tmp_path: Path, scope: str, name: str) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    result = configure(cc_env, "litellm", "--scope", scope, cwd=project)
    assert result.code == 0, result
    assert json.loads((project / ".claude" / name).read_text())["apiKeyHelper"]
    other = tmp_path / "elsewhere"
    result = configure(cc_env, "litellm", "--scope", scope, "--project-dir", str(other))
    assert result.code == 0, result
    assert (other / ".claude" / name).exists()
    assert not user_settings(cc_env).exists()


def test_print_writes_nothing(cc_env: KbEnv) -> None:
    result = configure(
        cc_env, "litellm", "--print", "--deployment", "bedrock", "--base-url", "https://gw/bedrock"
    )
    assert result.code == 0, result
    assert json.loads(result.out) == {
        "apiKeyHelper": "keybroker get litellm",  # portable: printed to be shared
        "env": {
            "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "300000",
            "ANTHROPIC_BEDROCK_BASE_URL": "https://gw/bedrock",
            "CLAUDE_CODE_USE_BEDROCK": "1",
            "CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1",
        },
    }
    assert not user_settings(cc_env).parent.exists()


def test_invalid_json_is_left_alone(cc_env: KbEnv) -> None:
    path = user_settings(cc_env)
    path.parent.mkdir(parents=True)
    path.write_text('{"apiKeyHelper": ')
    result = configure(cc_env, "litellm")
    assert_fails(result, 2, "not valid JSON")
    assert path.read_text() == '{"apiKeyHelper": '


def test_unknown_profile_is_refused(cc_env: KbEnv) -> None:
    result = configure(cc_env, "nosuch")
    assert_fails(result, 2, "unknown profile 'nosuch'")
    assert not user_settings(cc_env).exists()


def test_symlinked_settings_stay_a_symlink(cc_env: KbEnv) -> None:
    dotfiles = cc_env.base / "dotfiles"
    dotfiles.mkdir()
    real = dotfiles / "claude-settings.json"
    real.write_text('{"theme": "dark"}')
    link = user_settings(cc_env)
    link.parent.mkdir(parents=True)
    link.symlink_to(real)
    result = configure(cc_env, "litellm")
    assert result.code == 0, result
    assert link.is_symlink()
    assert json.loads(real.read_text())["theme"] == "dark"
    assert "apiKeyHelper" in json.loads(real.read_text())


def test_executable_with_spaces_and_quotes_is_quoted_for_sh(cc_env: KbEnv) -> None:
    odd = cc_env.base / "it's a dir"
    odd.mkdir()
    (odd / "keybroker").symlink_to(SCRIPTS / "keybroker")
    result = configure(cc_env, "litellm", "--executable", str(odd / "keybroker"))
    assert result.code == 0, result
    settings = json.loads(user_settings(cc_env).read_text())
    assert parsed(settings["apiKeyHelper"])["executable"] == str(odd / "keybroker")
    helper = run_like_claude(settings["apiKeyHelper"], cc_env)
    assert (helper.returncode, helper.stdout) == (0, KEY.encode() + b"\n"), helper


def test_helper_command_round_trip() -> None:
    command = helper_command("/opt/my tools/keybroker", "pro'file", "/etc/kb config.toml")
    assert parse_helper(command) == {
        "executable": "/opt/my tools/keybroker",
        "verb": "get",
        "profile": "pro'file",
        "config": "/etc/kb config.toml",
    }
    assert parse_helper("~/bin/get-key.sh") is None
    assert parse_helper("keybroker-vault --path x") is None
    assert parse_helper(None) is None


# --- the POSIX wrapper for minimal PATHs ---

MINIMAL = "/usr/bin:/bin"


def test_wrapper_finds_keybroker_in_local_bin_with_minimal_path(cc_env: KbEnv) -> None:
    local_bin = Path(cc_env["HOME"]) / ".local" / "bin"
    local_bin.mkdir(parents=True)
    (local_bin / "keybroker").symlink_to(SCRIPTS / "keybroker")
    env = dict(cc_env, PATH=MINIMAL, PYENV_ROOT=str(cc_env.base / "no-pyenv"))
    result = run(["/bin/sh", "-c", f"{shlex.quote(str(WRAPPER))} get litellm"], env)
    assert_key(result, KEY)
    assert result.err == b""


def test_wrapper_execs_so_keybroker_keeps_the_caller_as_parent(cc_env: KbEnv) -> None:
    local_bin = Path(cc_env["HOME"]) / ".local" / "bin"
    local_bin.mkdir(parents=True)
    fake = local_bin / "keybroker"
    fake.write_text('#!/bin/sh\necho "ppid=$PPID args=$*"\n')
    fake.chmod(0o755)
    env = dict(cc_env, PATH=MINIMAL, PYENV_ROOT=str(cc_env.base / "no-pyenv"))
    result = run([str(WRAPPER), "get", "litellm"], env)
    assert result.code == 0, result
    assert result.stdout == f"ppid={os.getpid()} args=get litellm\n"


def test_wrapper_prefers_keybroker_bin(cc_env: KbEnv) -> None:
    env = dict(cc_env, PATH=MINIMAL, KEYBROKER_BIN=str(SCRIPTS / "keybroker"))
    assert_key(run([str(WRAPPER), "get", "litellm"], env), KEY)


def test_wrapper_says_what_to_do_when_nothing_is_found(cc_env: KbEnv) -> None:
    env = dict(cc_env, PATH=MINIMAL, PYENV_ROOT=str(cc_env.base / "no-pyenv"))
    system_wide = [
        d
        for d in (
            "/usr/local/bin",
            "/opt/homebrew/bin",
            "/usr/bin",
            "/bin",
            "/home/linuxbrew/.linuxbrew/bin",
        )
        if Path(d, "keybroker").exists()
    ]
    result = run([str(WRAPPER), "get", "litellm"], env)
    if system_wide:  # this machine has one the wrapper rightly finds
        assert result.code == 0, (system_wide, result)
        return
    assert result.code == 127, result
    assert result.out == b""
    assert b"KEYBROKER_BIN" in result.err


# --- issue 15: switching, one backup, portable commands, managed scope, modes ---------------
def test_switching_deployments_removes_every_variable_of_the_previous_one(cc_env: KbEnv) -> None:
    def env_of() -> dict[str, str]:
        env: dict[str, str] = json.loads(user_settings(cc_env).read_text())["env"]
        return env

    result = configure(cc_env, "litellm", "--deployment", "bedrock", *ARGS["bedrock"])
    assert result.code == 0, result
    assert env_of()["AWS_REGION"] == "us-east-1"
    result = configure(cc_env, "litellm", "--deployment", "vertex", *ARGS["vertex"])
    assert result.code == 0, result
    assert set(env_of()) == {
        "CLAUDE_CODE_API_KEY_HELPER_TTL_MS",
        "ANTHROPIC_VERTEX_BASE_URL",
        "CLAUDE_CODE_USE_VERTEX",
        "CLAUDE_CODE_SKIP_VERTEX_AUTH",
        "CLOUD_ML_REGION",
        "ANTHROPIC_VERTEX_PROJECT_ID",
    }
    assert b"AWS_REGION" in result.err
    result = configure(cc_env, "litellm", "--base-url", "https://gw")
    assert result.code == 0, result
    assert env_of() == {
        "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "300000",
        "ANTHROPIC_BASE_URL": "https://gw",
    }
    # one backup however often it ran
    assert sorted(p.name for p in user_settings(cc_env).parent.iterdir()) == [
        "settings.json",
        "settings.json.bak",
    ]


def test_a_region_keybroker_did_not_write_is_kept(cc_env: KbEnv) -> None:
    path = user_settings(cc_env)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"env": {"AWS_REGION": "eu-central-1"}}))
    result = configure(
        cc_env, "litellm", "--deployment", "vertex", "--base-url", "https://gw/vertex_ai/v1"
    )
    assert result.code == 0, result
    assert json.loads(path.read_text())["env"]["AWS_REGION"] == "eu-central-1"


def test_project_scope_writes_a_portable_command_and_no_backup_inside_git(
    cc_env: KbEnv, tmp_path: Path
) -> None:
    project = tmp_path / "repo"
    (project / ".git").mkdir(parents=True)
    (project / ".claude").mkdir()
    settings_file = project / ".claude" / "settings.json"
    settings_file.write_text('{"model": "opus"}')
    result = configure(cc_env, "litellm", "--scope", "project", cwd=project)
    assert result.code == 0, result
    assert json.loads(settings_file.read_text())["apiKeyHelper"] == "keybroker get litellm"
    assert not settings_file.with_name("settings.json.bak").exists()
    assert b"no backup" in result.err
    # with keybroker on PATH the bare command works under /bin/sh
    env = dict(cc_env, PATH=f"{SCRIPTS}:{cc_env['PATH']}")
    helper = run_like_claude(json.loads(settings_file.read_text())["apiKeyHelper"], env)
    assert (helper.returncode, helper.stdout) == (0, KEY.encode() + b"\n"), helper


def test_portable_command_warns_when_keybroker_is_not_on_path(cc_env: KbEnv) -> None:
    env = dict(cc_env, PATH="/usr/bin:/bin")
    result = configure(env, "litellm", "--print")
    assert result.code == 0, result
    assert json.loads(result.out)["apiKeyHelper"] == "keybroker get litellm"
    assert b"not on this PATH" in result.err


def test_inference_helper_is_an_absolute_path_and_args(cc_env: KbEnv) -> None:
    result = configure(cc_env, "litellm", "--inference-helper")
    assert result.code == 0, result
    settings = json.loads(user_settings(cc_env).read_text())
    exe = settings["inferenceCredentialHelper"]
    assert Path(exe).is_absolute()
    assert settings["inferenceCredentialHelperArgs"] == ["credential", "litellm"]
    assert b"organization setting" in result.err
    # run as Claude Code's contract says: the executable with the args, no shell
    helper = subprocess.run(
        [exe, *settings["inferenceCredentialHelperArgs"]],
        env=cc_env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert (helper.returncode, helper.stdout, helper.stderr) == (0, KEY.encode() + b"\n", b"")


def test_managed_scope_writes_its_own_drop_in_and_never_edits_managed_settings(
    cc_env: KbEnv, tmp_path: Path, fleet_keybroker: Path
) -> None:
    managed = tmp_path / "etc" / "claude-code" / "managed-settings.json"
    managed.parent.mkdir(parents=True)
    shared = json.dumps({"permissions": {"deny": ["Read(./.env)"]}}).encode()
    managed.write_bytes(shared)
    args = ["litellm", "--scope", "managed", "--managed-path", str(managed)]
    args += ["--executable", str(fleet_keybroker)]
    result = configure(cc_env, *args)
    assert result.code == 0, result
    drop_in = managed.parent / "managed-settings.d" / "keybroker.json"
    assert json.loads(drop_in.read_text())["apiKeyHelper"] == f"{fleet_keybroker} get litellm"
    assert stat.S_IMODE(drop_in.stat().st_mode) == 0o644  # every user's Claude Code reads it
    assert managed.read_bytes() == shared  # others' file: never edited
    assert not managed.with_name("managed-settings.json.bak").exists()

    drop_in.write_text(json.dumps({"apiKeyHelper": "/opt/corp/get-key", "permissions": {}}))
    for extra in ((), ("--force",)):
        refused = configure(cc_env, *args, *extra)  # the same command again
        assert_fails(refused, 2, "managed settings are never replaced")
    assert json.loads(drop_in.read_text())["apiKeyHelper"] == "/opt/corp/get-key"


def test_managed_path_env_override(cc_env: KbEnv, tmp_path: Path, fleet_keybroker: Path) -> None:
    managed = tmp_path / "m" / "managed-settings.json"
    env = dict(cc_env, KEYBROKER_CLAUDE_MANAGED_SETTINGS=str(managed))
    assert (
        configure(env, "litellm", "--scope", "managed", "--executable", str(fleet_keybroker)).code
        == 0
    )
    assert (managed.parent / "managed-settings.d" / "keybroker.json").exists()
    assert not managed.exists()


@pytest.mark.parametrize(
    ("scope", "mode"), [("user", 0o700), ("project", 0o755), ("local", 0o755), ("managed", 0o755)]
)
def test_created_dirs_have_fixed_modes_whatever_the_umask(
    cc_env: KbEnv, tmp_path: Path, scope: str, mode: int, fleet_keybroker: Path
) -> None:
    cc_env["CLAUDE_CONFIG_DIR"] = str(tmp_path / "cfg" / "claude")
    managed = tmp_path / "sys" / "claude-code" / "managed-settings.json"
    args = (
        [
            "litellm",
            "--scope",
            scope,
            "--project-dir",
            str(tmp_path / "proj"),
            "--managed-path",
            str(managed),
            "--executable",
            str(fleet_keybroker),
        ]
        if scope != "user"
        else ["litellm"]
    )
    if scope not in ("managed",):
        args = [
            a
            for a in args
            if a not in ("--managed-path", str(managed), "--executable", str(fleet_keybroker))
        ]
    proc = subprocess.run(
        [
            "/bin/sh",
            "-c",
            'umask 000; exec "$@"',
            "sh",
            str(SCRIPTS / "keybroker"),
            "claude",
            "configure",
            *args,
        ],
        env=cc_env,
        capture_output=True,
        stdin=subprocess.DEVNULL,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc
    created = {
        "user": [tmp_path / "cfg", tmp_path / "cfg" / "claude"],
        "project": [tmp_path / "proj", tmp_path / "proj" / ".claude"],
        "local": [tmp_path / "proj", tmp_path / "proj" / ".claude"],
        "managed": [
            tmp_path / "sys",
            tmp_path / "sys" / "claude-code",
            tmp_path / "sys" / "claude-code" / "managed-settings.d",
        ],
    }[scope]
    for directory in created:
        assert stat.S_IMODE(directory.stat().st_mode) == mode, directory


# --- --mcp-server NAME=PROFILE: headersHelper on existing MCP servers -------------------------
def claude_json(env: Mapping[str, str]) -> Path:
    return Path(env["HOME"]) / ".claude.json"


def run_as_mcp_helper(
    helper: str, env: Mapping[str, str], server: str, url: str
) -> subprocess.CompletedProcess[bytes]:
    """A headersHelper as Claude Code runs it, told the MCP server's name and URL."""
    return run_like_claude(
        helper, dict(env, CLAUDE_CODE_MCP_SERVER_NAME=server, CLAUDE_CODE_MCP_SERVER_URL=url)
    )


def test_mcp_server_gets_a_headers_helper_in_user_scope(cc_env: KbEnv) -> None:
    path = claude_json(cc_env)
    original: dict[str, Any] = {
        "numStartups": 3,
        "mcpServers": {
            "alpha": {"type": "http", "url": "https://mcp.example/alpha"},
            "beta": {"type": "http", "url": "https://mcp.example/beta"},
        },
    }
    path.write_text(json.dumps(original))
    result = configure(cc_env, "litellm", "--mcp-server", "alpha=other")
    assert result.code == 0, result
    data = json.loads(path.read_text())
    assert data["numStartups"] == 3
    assert data["mcpServers"]["beta"] == original["mcpServers"]["beta"]
    helper = data["mcpServers"]["alpha"]["headersHelper"]
    assert helper == (
        f"{shlex.quote(str(SCRIPTS / 'keybroker'))} headers other --url https://mcp.example/alpha"
    )  # bound to the server's URL
    assert json.loads(path.with_name(".claude.json.bak").read_text()) == original
    # run as Claude Code runs it: /bin/sh -c, with the server's name and URL in the environment
    proc = run_as_mcp_helper(helper, cc_env, "alpha", "https://mcp.example/alpha")
    assert (proc.returncode, json.loads(proc.stdout)) == (0, {"Authorization": f"Bearer {KEY}"})
    elsewhere = run_as_mcp_helper(helper, cc_env, "alpha", "https://evil.example/")
    assert (elsewhere.returncode, elsewhere.stdout) == (4, b"")


def test_mcp_server_must_exist_and_nothing_is_written(cc_env: KbEnv) -> None:
    path = claude_json(cc_env)
    path.write_text('{"mcpServers": {}}')
    result = configure(cc_env, "litellm", "--mcp-server", "ghost=litellm")
    assert_fails(result, 2, "no MCP server named 'ghost'", "claude mcp add")
    assert path.read_text() == '{"mcpServers": {}}'
    assert not user_settings(cc_env).exists()


def test_mcp_server_profile_must_exist(cc_env: KbEnv) -> None:
    claude_json(cc_env).write_text('{"mcpServers": {"alpha": {"type": "http", "url": "u"}}}')
    assert_fails(
        configure(cc_env, "litellm", "--mcp-server", "alpha=nosuch"), 2, "unknown profile 'nosuch'"
    )


def test_mcp_server_in_project_and_local_scope(cc_env: KbEnv, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    (project / ".mcp.json").write_text('{"mcpServers": {"alpha": {"type": "http", "url": "u"}}}')
    result = configure(
        cc_env, "litellm", "--scope", "project", "--mcp-server", "alpha=other", cwd=project
    )
    assert result.code == 0, result
    data = json.loads((project / ".mcp.json").read_text())
    assert data["mcpServers"]["alpha"]["headersHelper"] == "keybroker headers other --url u"

    claude_json(cc_env).write_text(
        json.dumps(
            {"projects": {str(project): {"mcpServers": {"beta": {"type": "sse", "url": "u"}}}}}
        )
    )
    result = configure(
        cc_env, "litellm", "--scope", "local", "--mcp-server", "beta=litellm", cwd=project
    )
    assert result.code == 0, result
    local = json.loads(claude_json(cc_env).read_text())["projects"][str(project)]
    assert local["mcpServers"]["beta"]["headersHelper"].endswith(" headers litellm --url u")


def test_inference_helper_refuses_what_claude_code_would_refuse(cc_env: KbEnv) -> None:
    odd = cc_env.base / "100%.toml"
    odd.write_text(cc_env.config_path.read_text())
    odd.chmod(0o600)
    result = configure(cc_env, "litellm", "--inference-helper", "--config", str(odd))
    assert_fails(result, 2, "Claude Code would refuse", "percent sign")
    assert not user_settings(cc_env).exists()


def test_proxy_auth_helper_is_written_with_its_switch(cc_env: KbEnv) -> None:
    result = configure(cc_env, "litellm", "--proxy-auth-helper", "other")
    assert result.code == 0, result
    settings = json.loads(user_settings(cc_env).read_text())
    assert settings["proxyAuthHelper"] == (
        f"{shlex.quote(str(SCRIPTS / 'keybroker'))} headers other --format value"
    )
    assert settings["env"]["CLAUDE_CODE_ENABLE_PROXY_AUTH_HELPER"] == "1"
    proc = run_like_claude(settings["proxyAuthHelper"], cc_env)
    assert (proc.returncode, proc.stdout) == (0, f"Bearer {KEY}\n".encode())


def test_foreign_proxy_auth_helper_needs_force(cc_env: KbEnv) -> None:
    path = user_settings(cc_env)
    path.parent.mkdir(parents=True)
    path.write_text('{"proxyAuthHelper": "/opt/corp/proxy-token"}')
    assert_fails(
        configure(cc_env, "litellm", "--proxy-auth-helper", "other"),
        2,
        "proxyAuthHelper that keybroker did not write",
    )
    assert configure(cc_env, "litellm", "--proxy-auth-helper", "other", "--force").code == 0
