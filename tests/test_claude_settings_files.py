"""Claude Code's settings files as a fleet and a cloned repository meet them (issues 20, 22).

- managed scope: keybroker's own drop-in, folders and files open to others, a helper other
  users cannot run or a non-root account could rewrite; doctor following Claude Code's managed
  order (managed-settings.json, then managed-settings.d/*.json by name, the last one winning);
- the same settings as a macOS device-management profile;
- ``unconfigure``: every scope back as it was, byte for byte;
- project scope: the 2.1.337 trust hold, said at write time and by doctor;
- inferenceCredentialHelper headers that Claude Code drops;
- a cloned repository's links, FIFOs and devices: never written through, read bounded.
"""

from __future__ import annotations

import json
import os
import plistlib
import shutil
import stat
import sys
import tempfile
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KbEnv
from tests.e2e import fleet
from tests.fixtures.claude_settings import configure, env_profiles, kb_in
from tests.fixtures.users import OsUser
from tests.kb import SCRIPTS, Result, assert_fails

KEY = "sk-settings-files-7d1e3a"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX paths and modes")
fleet_keybroker = fleet.fleet_keybroker  # the fixture, under its own name


@pytest.fixture
def cc_env(kb_env: KbEnv, tmp_path: Path) -> KbEnv:
    kb_env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"] = str(
        tmp_path / "etc" / "claude-code" / "managed-settings.json"
    )
    return env_profiles(kb_env, litellm=("LITELLM_KEY", KEY))


def managed_dir(env: Mapping[str, str]) -> Path:
    return Path(env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"]).parent


def drop_in(env: Mapping[str, str], name: str = "keybroker") -> Path:
    return managed_dir(env) / "managed-settings.d" / f"{name}.json"


def managed(env: Mapping[str, str], exe: Path, *args: str) -> Result:
    return configure(env, "litellm", "--scope", "managed", "--executable", str(exe), *args)


def doctor(env: Mapping[str, str], cwd: Path | None = None) -> dict[str, Any]:
    result = kb_in(env, "doctor", "litellm", "--json", cwd=cwd)
    assert result.err == b"", result
    report: dict[str, Any] = json.loads(result.out)
    return report


def checks(report: Mapping[str, Any], label: str) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if c["label"] == label]


# --- managed scope: its own drop-in, and who could change it ---------------------------------
def test_managed_folder_open_to_everyone_is_repaired(cc_env: KbEnv, fleet_keybroker: Path) -> None:
    folder = managed_dir(cc_env)
    (folder / "managed-settings.d").mkdir(parents=True)
    for each in (folder, folder / "managed-settings.d"):
        os.chmod(each, 0o777)
    result = managed(cc_env, fleet_keybroker)
    assert result.code == 0, result
    assert "repaired" in result.stderr, result
    assert "drwxrwxrwx" in result.stderr, result
    for each in (folder, folder / "managed-settings.d"):
        assert stat.S_IMODE(each.stat().st_mode) == 0o755, each
    assert stat.S_IMODE(drop_in(cc_env).stat().st_mode) == 0o644


def test_a_world_writable_managed_file_of_someone_else_is_refused_not_edited(
    cc_env: KbEnv, fleet_keybroker: Path
) -> None:
    other = drop_in(cc_env, "10-team")
    other.parent.mkdir(parents=True)
    other.write_text('{"permissions": {}}')
    os.chmod(other, 0o666)
    result = managed(cc_env, fleet_keybroker)
    assert_fails(result, 2, str(other), "writable by others", "chmod 644")
    assert stat.S_IMODE(other.stat().st_mode) == 0o666  # not ours to change
    assert not drop_in(cc_env).exists()


def test_a_helper_other_users_cannot_run_is_refused(cc_env: KbEnv, tmp_path: Path) -> None:
    private = tmp_path / "home" / "admin" / "bin"
    private.mkdir(parents=True)
    os.chmod(private.parent, 0o700)  # like a home directory
    exe = private / "keybroker"
    exe.write_text("#!/bin/sh\nexit 0\n")
    os.chmod(exe, 0o755)
    result = managed(cc_env, exe)
    assert_fails(result, 2, "other users cannot enter", "per machine", "--executable")
    assert not drop_in(cc_env).exists()


def test_a_helper_a_non_root_account_can_rewrite_is_refused(
    cc_env: KbEnv, other_user: OsUser, fleet_keybroker: Path
) -> None:
    os.chown(fleet_keybroker.parent, other_user.uid, other_user.gid)
    result = managed(cc_env, fleet_keybroker)
    assert_fails(result, 2, f"owner uid {other_user.uid}", "per machine")
    os.chown(fleet_keybroker.parent, 0, 0)
    os.chown(fleet_keybroker, other_user.uid, other_user.gid)
    assert_fails(managed(cc_env, fleet_keybroker), 2, "can be rewritten by a non-root account")


def test_a_root_owned_link_into_a_per_user_install_is_refused(
    cc_env: KbEnv, tmp_path: Path, other_user: OsUser, fleet_keybroker: Path
) -> None:
    """/usr/local/bin/keybroker -> ~admin/.local/bin/keybroker: the link is root's, its target
    is not, so the admin's unprivileged account could still rewrite what everyone runs."""
    home = Path(tempfile.mkdtemp(prefix="kb-home-", dir="/tmp"))  # reachable by every user
    try:
        home_bin = home / "admin" / ".local" / "bin"
        home_bin.mkdir(parents=True)
        for each in (home, home / "admin", home_bin.parent, home_bin):
            os.chmod(each, 0o755)
        os.chown(home / "admin", other_user.uid, other_user.gid)
        target = home_bin / "keybroker"
        target.write_text(fleet_keybroker.read_text())
        os.chmod(target, 0o755)
        link = fleet_keybroker.parent / "keybroker-link"
        link.symlink_to(target)
        result = managed(cc_env, link)
    finally:
        shutil.rmtree(home, ignore_errors=True)
    assert_fails(result, 2, f"owner uid {other_user.uid}", "per machine")
    assert not drop_in(cc_env).exists()


def test_doctor_marks_managed_settings_others_could_change(
    cc_env: KbEnv, fleet_keybroker: Path
) -> None:
    assert managed(cc_env, fleet_keybroker).code == 0
    assert [c for c in checks(doctor(cc_env), "claude managed settings") if not c["ok"]] == []
    folder = managed_dir(cc_env)
    os.chmod(folder, 0o777)  # as found in the field: a 0777 folder ...
    report = doctor(cc_env)
    [bad] = [c for c in checks(report, "claude managed settings") if not c["ok"]]
    assert "writable by others" in bad["detail"], bad
    assert f"chmod go-w {folder}" in bad["fix"], bad
    os.chmod(folder, 0o755)
    os.chmod(drop_in(cc_env), 0o666)  # ... and a 0666 file
    [bad] = [c for c in checks(doctor(cc_env), "claude managed settings") if not c["ok"]]
    assert str(drop_in(cc_env)) in bad["detail"], bad


def test_doctor_names_the_drop_in_that_really_wins(
    cc_env: KbEnv, tmp_path: Path, fleet_keybroker: Path
) -> None:
    base = Path(cc_env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"])
    assert managed(cc_env, fleet_keybroker).code == 0
    base.write_text(json.dumps({"apiKeyHelper": "/opt/base/helper"}))
    report = doctor(cc_env)
    assert report["claude"]["api_key_helper_file"] == str(drop_in(cc_env))
    later = drop_in(cc_env, "zz-corp")  # sorted after keybroker.json: Claude Code runs this one
    later.write_text(json.dumps({"apiKeyHelper": "/opt/corp/get-key"}))
    hidden = drop_in(cc_env, ".zzz")  # hidden files are not read
    hidden.write_text(json.dumps({"apiKeyHelper": "/opt/hidden"}))
    report = doctor(cc_env)
    assert report["claude"]["api_key_helper"] == "/opt/corp/get-key"
    assert report["claude"]["api_key_helper_file"] == str(later)
    lines = [c["detail"] for c in checks(report, "claude managed settings")]
    assert any(
        str(drop_in(cc_env)) in d and f"shadowed by managed settings {later}" in d for d in lines
    ), lines
    again = managed(cc_env, fleet_keybroker, "--ttl", "10m")
    assert again.code == 0, again
    assert "zz-corp.json also sets apiKeyHelper" in again.stderr, again


# --- macOS device-management profile -------------------------------------------------------------
def test_mobileconfig_is_a_profile_for_claude_codes_preference_domain(
    cc_env: KbEnv, tmp_path: Path
) -> None:
    out = tmp_path / "keybroker.mobileconfig"
    fleet_args = ("litellm", "--scope", "managed", "--base-url", "https://litellm.example.com")
    profile_args = ("--identifier", "com.example.kb", "--organization", "Example")
    result = configure(cc_env, *fleet_args, "--mobileconfig", str(out), *profile_args)
    assert result.code == 0, result
    profile = plistlib.loads(out.read_bytes())
    assert profile["PayloadType"] == "Configuration"
    assert profile["PayloadIdentifier"] == "com.example.kb"
    assert profile["PayloadScope"] == "System"
    [payload] = profile["PayloadContent"]
    assert payload["PayloadType"] == "com.anthropic.claudecode"
    assert payload["apiKeyHelper"] == "/usr/local/bin/keybroker get litellm"
    assert payload["env"]["ANTHROPIC_BASE_URL"] == "https://litellm.example.com"
    assert {profile["PayloadUUID"], payload["PayloadUUID"]} != {None}
    assert not drop_in(cc_env).exists()  # the profile is for the fleet, not this machine
    stdout = configure(cc_env, *fleet_args, "--mobileconfig", "-", *profile_args)
    assert stdout.out == out.read_bytes()  # stable UUIDs: an MDM replaces, not adds
    assert_fails(configure(cc_env, "litellm", "--mobileconfig", "-"), 2, "--scope managed")


# --- unconfigure ---------------------------------------------------------------------------------
ORIGINAL = (
    b'{\n    "apiKeyHelper": "op read op://vault/litellm/key",\n    "model": "opus",\n'
    b'    "env": {"AWS_REGION": "eu-west-1"}\n}\n'
)


def test_unconfigure_restores_a_foreign_helper_replaced_with_force_byte_for_byte(
    cc_env: KbEnv,
) -> None:
    path = Path(cc_env["HOME"]) / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_bytes(ORIGINAL)
    assert configure(cc_env, "litellm", "--force").code == 0
    assert (
        configure(
            cc_env,
            "litellm",
            "--deployment",
            "bedrock",
            "--base-url",
            "https://gw.example.com/bedrock",
            "--inference-helper",
        ).code
        == 0
    )
    assert path.read_bytes() != ORIGINAL
    result = kb_in(cc_env, "claude", "unconfigure")
    assert result.code == 0, result
    assert path.read_bytes() == ORIGINAL
    assert "nothing to undo" in kb_in(cc_env, "claude", "unconfigure").stderr


def test_unconfigure_removes_files_keybroker_created_in_every_scope(
    cc_env: KbEnv, tmp_path: Path, fleet_keybroker: Path
) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    user = Path(cc_env["HOME"]) / ".claude" / "settings.json"
    for scope in ("user", "local", "project"):
        assert configure(cc_env, "litellm", "--scope", scope, cwd=project).code == 0
    assert managed(cc_env, fleet_keybroker).code == 0
    written = [
        user,
        project / ".claude" / "settings.json",
        project / ".claude" / "settings.local.json",
        drop_in(cc_env),
    ]
    assert all(p.exists() for p in written)
    result = kb_in(cc_env, "claude", "unconfigure", cwd=project)
    assert result.code == 0, result
    assert [p for p in written if p.exists()] == []
    assert list(project.iterdir()) == []  # the .claude keybroker created is gone too


def test_unconfigure_keeps_what_changed_by_hand_and_restores_the_rest(cc_env: KbEnv) -> None:
    path = Path(cc_env["HOME"]) / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(json.dumps({"model": "opus"}))
    assert configure(cc_env, "litellm", "--base-url", "https://gw.example.com").code == 0
    data = json.loads(path.read_text())
    data["env"]["ANTHROPIC_BASE_URL"] = "https://other.example.com"  # edited by hand since
    data["theme"] = "dark"
    path.write_text(json.dumps(data))
    result = kb_in(cc_env, "claude", "unconfigure", "--scope", "user")
    assert result.code == 0, result
    assert "env.ANTHROPIC_BASE_URL" in result.stderr
    assert json.loads(path.read_text()) == {
        "model": "opus",
        "theme": "dark",
        "env": {"ANTHROPIC_BASE_URL": "https://other.example.com"},
    }


def test_unconfigure_restores_mcp_headers_helpers(cc_env: KbEnv) -> None:
    claude_json = Path(cc_env["HOME"]) / ".claude.json"
    before = json.dumps({"mcpServers": {"gh": {"type": "http", "url": "https://x/mcp"}}})
    claude_json.write_text(before)
    assert configure(cc_env, "litellm", "--mcp-server", "gh=litellm").code == 0
    assert "headersHelper" in claude_json.read_text()
    assert kb_in(cc_env, "claude", "unconfigure").code == 0
    assert claude_json.read_text() == before


# --- project scope: held until trusted ---------------------------------------------------------
def test_project_scope_says_the_helper_is_held_until_trusted(cc_env: KbEnv, tmp_path: Path) -> None:
    project = tmp_path / "proj"
    project.mkdir()
    result = configure(cc_env, "litellm", "--scope", "project", cwd=project)
    assert result.code == 0, result
    assert "holds a helper named in project settings until this workspace is trusted" in (
        result.stderr
    )
    assert "--scope user" in result.stderr
    assert "--scope managed" in result.stderr
    report = doctor(cc_env, cwd=project)
    [line] = checks(report, "claude project settings")
    assert not line["ok"], line
    assert "until the workspace is trusted" in line["detail"], line
    assert "--scope user" in line["fix"]


# --- inferenceCredentialHelper headers ----------------------------------------------------------
def test_inference_helper_headers_are_reported_as_dropped(cc_env: KbEnv) -> None:
    args = ["credential", "litellm", "--format", "json", "--header", "X-Api-Key: {}"]
    path = Path(cc_env["HOME"]) / ".claude" / "settings.json"
    path.parent.mkdir()
    path.write_text(
        json.dumps(
            {
                "inferenceCredentialHelper": str(SCRIPTS / "keybroker"),
                "inferenceCredentialHelperArgs": args,
            }
        )
    )
    report = doctor(cc_env)
    [line] = checks(report, "claude inference helper")
    assert not line["ok"], line
    assert "drops its headers" in line["detail"], line
    result = kb_in(cc_env, *args)  # the same command, run by hand
    assert result.code == 0, result
    assert "headers are not used" in result.stderr, result


# --- a cloned repository's links, FIFOs and devices -------------------------------------------
def test_a_committed_claude_dir_link_is_never_written_through(
    cc_env: KbEnv, tmp_path: Path
) -> None:
    home_claude = Path(cc_env["HOME"]) / ".claude"
    home_claude.mkdir()
    mine = home_claude / "settings.json"
    mine.write_text('{"theme": "dark"}')
    for scope in ("project", "local"):
        repo = tmp_path / f"repo-{scope}"
        repo.mkdir()
        (repo / ".claude").symlink_to(home_claude)
        result = configure(cc_env, "litellm", "--scope", scope, cwd=repo)
        assert_fails(result, 2, "symlink", "does not write through it")
    assert mine.read_text() == '{"theme": "dark"}'
    assert sorted(p.name for p in home_claude.iterdir()) == ["settings.json"]


def planted_repo(tmp_path: Path, plant: Callable[[Path], object]) -> tuple[Path, Path]:
    """A cloned repository whose ``.claude/settings.json`` is what ``plant`` makes of it (a
    link, a FIFO, a huge file): the repository and that path."""
    repo = tmp_path / "repo"
    (repo / ".claude").mkdir(parents=True)
    target = repo / ".claude" / "settings.json"
    plant(target)
    return repo, target


@pytest.mark.parametrize("planted", ["outside", "user", "devnull", "fifo"])
def test_a_committed_settings_file_that_is_not_a_regular_file_is_refused(
    cc_env: KbEnv, tmp_path: Path, planted: str
) -> None:
    outside = tmp_path / "outside-name-the-repo-chose"
    user = Path(cc_env["HOME"]) / ".claude" / "settings.json"
    user.parent.mkdir()
    user.write_text("{}")
    plants: dict[str, Callable[[Path], object]] = {
        "outside": lambda target: target.symlink_to(outside),
        "user": lambda target: target.symlink_to(user),
        "devnull": lambda target: target.symlink_to("/dev/null"),
        "fifo": os.mkfifo,
    }
    repo, target = planted_repo(tmp_path, plants[planted])
    result = configure(cc_env, "litellm", "--scope", "project", cwd=repo)
    assert_fails(result, 2, "settings.json")
    assert not outside.exists()
    assert user.read_text() == "{}"
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    assert (os.lstat(target).st_mode & 0o170000) != stat.S_IFREG


@pytest.mark.parametrize("planted", ["zero", "fifo", "big"])
def test_doctor_reads_a_planted_repo_settings_file_bounded_and_without_blocking(
    cc_env: KbEnv, tmp_path: Path, planted: str
) -> None:
    plants: dict[str, Callable[[Path], object]] = {
        "zero": lambda target: target.symlink_to("/dev/zero"),
        "fifo": os.mkfifo,
        "big": lambda target: target.write_bytes(b'{"a": "' + b"x" * (2 << 20) + b'"}'),
    }
    repo, _ = planted_repo(tmp_path, plants[planted])
    result = kb_in(cc_env, "doctor", "litellm", cwd=repo)  # kb.run's 60 s timeout: no hang
    assert result.code == 1, result
    line = [ln for ln in result.stdout.splitlines() if "claude project settings" in ln]
    expected = {"zero": "is a device", "fifo": "is a FIFO", "big": "larger than 1024 KiB"}
    assert line, result
    assert expected[planted] in line[0], result


def test_a_fifo_is_never_opened_for_a_blocking_read(cc_env: KbEnv, tmp_path: Path) -> None:
    """The helper process is not left waiting for a writer that never comes."""
    from keybroker.claude import files  # noqa: PLC0415
    from keybroker.errors import ConfigError  # noqa: PLC0415

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    outcome: list[str] = []

    def read() -> None:
        try:
            files.read_bytes(fifo)
        except ConfigError as exc:
            outcome.append(exc.message)

    worker = threading.Thread(target=read, daemon=True)
    worker.start()
    worker.join(5)
    assert outcome
    assert "FIFO" in outcome[0]
