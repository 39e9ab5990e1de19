"""Claude Code's managed settings from OS policy stores: the first managed source wins.

Claude Code (2.1.337) takes ALL its managed settings from the highest-priority managed source
that exists: a macOS managed-preferences plist (per-user, then device) or the Windows
``HKLM\\SOFTWARE\\Policies\\ClaudeCode`` ``Settings`` value; then ``managed-settings.json``
with its drop-ins; then ``HKCU`` (only when no admin source exists). So on a Mac whose MDM
profile exists keybroker's drop-in is ignored, and a profile carrying keybroker's helper is
the helper Claude Code runs. The plists are written by :mod:`plistlib` under a temporary
managed-preferences root (``KEYBROKER_CLAUDE_MANAGED_PREFERENCES``), the registry is a fake
reader: docs/platforms.md says what is not run on a real Mac or Windows.
"""

from __future__ import annotations

import json
import os
import plistlib
import pwd
import shlex
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from keybroker.claude import precedence
from keybroker.claude.policy import PREFERENCES_ENV, managed_sources, plist_paths
from keybroker.errors import ConfigError
from tests.conftest import KbEnv
from tests.e2e import fleet
from tests.fixtures.claude_settings import configure, env_profiles, in_a_project, kb_in
from tests.kb import SCRIPTS

fleet_keybroker = fleet.fleet_keybroker  # the fixture, under its own name

KEY = "sk-mdm-sources-5b7d1f3a"
HELPER = f"{shlex.quote(str(SCRIPTS / 'keybroker'))} get litellm"
DOMAIN = "com.anthropic.claudecode"
TTL = "CLAUDE_CODE_API_KEY_HELPER_TTL_MS"
HKLM = r"HKLM\SOFTWARE\Policies\ClaudeCode"


@pytest.fixture
def mdm_env(kb_env: KbEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KbEnv:
    managed = tmp_path / "etc" / "claude-code" / "managed-settings.json"
    in_a_project(kb_env, tmp_path, monkeypatch, managed)
    kb_env[PREFERENCES_ENV] = str(tmp_path / "Managed Preferences")
    return env_profiles(kb_env, litellm=("LITELLM_KEY", KEY))


def plist_path(env: Mapping[str, str], per_user: bool) -> Path:
    root = Path(env[PREFERENCES_ENV])
    if per_user:
        root = root / pwd.getpwuid(os.geteuid()).pw_name
    return root / f"{DOMAIN}.plist"


def put_plist(
    env: Mapping[str, str], data: Any, per_user: bool = False, binary: bool = False
) -> Path:
    path = plist_path(env, per_user)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(plistlib.dumps(data, fmt=plistlib.FMT_BINARY if binary else plistlib.FMT_XML))
    return path


def drop_in(env: Mapping[str, str], data: Mapping[str, Any]) -> Path:
    path = Path(env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"]).parent / "managed-settings.d"
    path.mkdir(parents=True, exist_ok=True)
    (path / "keybroker.json").write_text(json.dumps(data))
    return path / "keybroker.json"


def profile_settings(env: Mapping[str, str]) -> dict[str, Any]:
    """The settings an MDM installs from keybroker's own ``--mobileconfig`` profile."""
    made = configure(
        env,
        "litellm",
        "--scope",
        "managed",
        "--mobileconfig",
        "-",
        "--executable",
        str(SCRIPTS / "keybroker"),
        "--ttl",
        "2h",
    )
    assert made.code == 0, made
    [payload] = plistlib.loads(made.out)["PayloadContent"]
    return {k: v for k, v in payload.items() if not k.startswith("Payload")}


def doctor_json(env: Mapping[str, str]) -> tuple[int, dict[str, Any]]:
    result = kb_in(env, "doctor", "litellm", "--json")
    assert result.err == b"", result
    report: dict[str, Any] = json.loads(result.out)
    return result.code, report


def failures(report: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in report["checks"] if not c["ok"]]


def test_doctor_takes_the_helper_and_ttl_from_a_per_user_profile(mdm_env: KbEnv) -> None:
    settings = profile_settings(mdm_env)
    path = put_plist(mdm_env, settings, per_user=True)
    code, report = doctor_json(mdm_env)
    assert (code, failures(report)) == (0, []), report
    claude = report["claude"]
    assert claude["api_key_helper"] == settings["apiKeyHelper"]
    assert claude["api_key_helper_file"] == str(path)
    assert claude["managed_source"] == str(path)
    assert claude["ttl_ms"] == 7_200_000
    assert str(path) in claude["ttl_source"]
    text = kb_in(mdm_env, "doctor", "litellm")
    assert text.code == 0, text
    assert f"✓ claude managed source: {path}" in text.stdout
    assert "the helper Claude Code runs" in text.stdout


def test_a_device_profile_shadows_keybrokers_drop_in(mdm_env: KbEnv) -> None:
    profile = put_plist(mdm_env, {"permissions": {"deny": ["Read(./.env)"]}})
    mine = drop_in(mdm_env, {"apiKeyHelper": HELPER, "env": {TTL: "3600000"}})
    code, report = doctor_json(mdm_env)
    assert code == 1
    assert report["claude"]["api_key_helper"] is None  # Claude Code never runs the drop-in's
    assert report["claude"]["managed_source"] == str(profile)
    assert report["claude"]["ttl_ms"] == 300_000
    [shadowed] = [c for c in failures(report) if str(mine) in c["detail"]]
    assert str(profile) in shadowed["detail"]
    assert "ignores" in shadowed["detail"]
    assert "--mobileconfig" in shadowed["fix"]
    assert "remove the profile" in shadowed["fix"]
    text = kb_in(mdm_env, "doctor", "litellm")
    assert f"✗ claude managed settings: {mine}" in text.stdout, text.stdout


def test_a_drop_in_beside_a_profile_that_runs_keybroker_is_an_unused_copy(
    mdm_env: KbEnv,
) -> None:
    put_plist(mdm_env, {"apiKeyHelper": HELPER}, per_user=True)
    mine = drop_in(mdm_env, {"apiKeyHelper": HELPER})
    code, report = doctor_json(mdm_env)
    assert code == 1
    [unused] = failures(report)
    assert unused["detail"].startswith(f"{mine}: Claude Code ignores this file")
    assert "keybroker claude unconfigure --scope managed" in unused["fix"]


def test_the_per_user_profile_beats_the_device_profile(mdm_env: KbEnv) -> None:
    device = put_plist(mdm_env, {"apiKeyHelper": "/opt/corp/device-helper"})
    user = put_plist(mdm_env, {"apiKeyHelper": HELPER}, per_user=True)
    _code, report = doctor_json(mdm_env)
    assert report["claude"]["api_key_helper"] == HELPER
    assert report["claude"]["managed_source"] == str(user)
    [ignored] = [c for c in report["checks"] if str(device) in c["detail"]]
    assert str(user) in ignored["detail"]


@pytest.mark.parametrize(
    "raw",
    [
        b"<?xml version='1.0'?><plist><dict><key>apiKeyHelper</key>",
        b"bplist00\xff\xff\xff\xff",
        plistlib.dumps(["not", "a", "dict"]),
        b"\x00" * 64,
    ],
    ids=["truncated-xml", "broken-binary", "array", "nul"],
)
def test_a_malformed_profile_is_a_check_naming_it(mdm_env: KbEnv, raw: bytes) -> None:
    path = plist_path(mdm_env, per_user=False)
    path.parent.mkdir(parents=True)
    path.write_bytes(raw)
    code, report = doctor_json(mdm_env)  # no traceback: stderr is empty
    assert code == 1
    assert [c for c in failures(report) if str(path) in c["detail"]], report


def test_a_profile_fifo_is_refused_without_waiting(mdm_env: KbEnv) -> None:
    path = plist_path(mdm_env, per_user=True)
    path.parent.mkdir(parents=True)
    os.mkfifo(path)
    code, report = doctor_json(mdm_env)
    assert code == 1
    [bad] = [c for c in failures(report) if str(path) in c["detail"]]
    assert "FIFO" in bad["detail"]


def test_profile_values_are_shown_neutralised(mdm_env: KbEnv) -> None:
    helper = "/opt/\x1b]0;owned\x07helper"  # XML plists cannot hold controls; binary ones can
    put_plist(mdm_env, {"apiKeyHelper": helper, "env": {"X\x1b[2J": "1"}}, binary=True)
    text = kb_in(mdm_env, "doctor", "litellm")
    assert b"\x1b" not in text.out, text.out
    assert b"\x07" not in text.out, text.out
    assert text.err == b""
    _code, report = doctor_json(mdm_env)  # it was read: JSON escapes what it quotes
    assert report["claude"]["api_key_helper"] == helper


def test_a_key_in_the_profile_env_is_named_never_shown(mdm_env: KbEnv) -> None:
    secret = "sk-ant-profile-secret-9c1e"
    path = put_plist(mdm_env, {"apiKeyHelper": HELPER, "env": {"ANTHROPIC_API_KEY": secret}})
    text = kb_in(mdm_env, "doctor", "litellm")
    code, report = doctor_json(mdm_env)
    assert (text.code, code) == (1, 1)
    [bad] = [c for c in failures(report) if c["label"] == "claude credentials"]
    assert f"ANTHROPIC_API_KEY is set in the managed settings ({path})" in bad["detail"]
    assert secret.encode() not in text.out + text.err
    assert secret not in json.dumps(report)


# --- Windows: the registry through a fake reader ------------------------------------------


def registry(values: Mapping[str, str]) -> Callable[[str], str | None]:
    return lambda hive: values.get(hive)


def windows_view(
    env: Mapping[str, str], values: Mapping[str, str]
) -> tuple[precedence.Effective, list[Any]]:
    stack = precedence.layers(env, platform="win32", registry=registry(values))
    eff = precedence.effective({}, stack)
    return eff, precedence.lint(eff, {"litellm": object()}, Path("config.toml"))


def test_hklm_beats_the_managed_settings_file(mdm_env: KbEnv) -> None:
    managed = Path(mdm_env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"])
    managed.parent.mkdir(parents=True)
    managed.write_text(json.dumps({"apiKeyHelper": HELPER, "env": {TTL: "60000"}}))
    hklm = json.dumps({"apiKeyHelper": "/opt/corp/hklm-helper", "env": {TTL: "3600000"}})
    eff, checks = windows_view(mdm_env, {"HKLM": hklm})
    assert (eff.helper, eff.ttl_ms) == ("/opt/corp/hklm-helper", 3_600_000)
    assert str(eff.helper_path).startswith(HKLM)
    assert eff.as_json()["managed_source"].startswith(HKLM)
    [shadowed] = [c for c in checks if not c.ok and str(managed) in c.detail]
    assert HKLM in shadowed.detail
    assert shadowed.fix.startswith(rf"put apiKeyHelper in {HKLM}\Settings"), shadowed.fix


def test_hkcu_is_used_only_without_an_admin_source(mdm_env: KbEnv) -> None:
    hkcu = json.dumps({"apiKeyHelper": "/opt/hkcu-helper"})
    eff, _ = windows_view(mdm_env, {"HKCU": hkcu})
    assert eff.helper == "/opt/hkcu-helper"
    assert str(eff.helper_path).startswith("HKCU")

    eff, _ = windows_view(mdm_env, {"HKCU": hkcu, "HKLM": json.dumps({"apiKeyHelper": HELPER})})
    assert eff.helper == HELPER

    managed = Path(mdm_env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"])
    managed.parent.mkdir(parents=True)
    managed.write_text(json.dumps({"apiKeyHelper": HELPER}))
    eff, checks = windows_view(mdm_env, {"HKCU": hkcu})
    assert (eff.helper, eff.helper_path) == (HELPER, managed)
    [ignored] = [c for c in checks if not c.ok and c.detail.startswith("HKCU")]
    assert str(managed) in ignored.detail


@pytest.mark.parametrize("value", ["{not json", "[1, 2]", "x" * (2 << 20)])
def test_a_broken_registry_value_is_a_check_naming_it(mdm_env: KbEnv, value: str) -> None:
    eff, checks = windows_view(mdm_env, {"HKLM": value})
    assert eff.helper is None
    assert [c for c in checks if not c.ok and c.detail.startswith(HKLM)], checks


def test_a_registry_read_error_is_a_check(mdm_env: KbEnv) -> None:
    def unreadable(hive: str) -> str | None:
        raise ConfigError(rf"{hive}\SOFTWARE\Policies\ClaudeCode: Settings is not a string")

    sources = managed_sources("win32", mdm_env, registry=unreadable)
    assert [s.where.split("\\")[0] for s in sources] == ["HKLM", "HKCU"]
    assert all(s.error is not None and s.data is None for s in sources)


def test_plists_are_not_read_on_linux_without_the_override(mdm_env: KbEnv) -> None:
    put_plist(mdm_env, {"apiKeyHelper": HELPER})
    env = {k: v for k, v in mdm_env.items() if k != PREFERENCES_ENV}
    assert managed_sources("linux", env) == []
    root = Path(mdm_env[PREFERENCES_ENV])
    assert [s.where for s in managed_sources("darwin", env, root=root)] == [
        str(plist_path(mdm_env, per_user=False))
    ]


@pytest.mark.parametrize("user", ["", ".", "..", "a/b", "x\x1b", "x\n"])
def test_a_user_name_claude_code_would_not_use_reads_only_the_device_plist(
    tmp_path: Path, user: str
) -> None:
    assert [p for p, _ in plist_paths(tmp_path, user)] == [tmp_path / f"{DOMAIN}.plist"]


# --- configure --scope managed -------------------------------------------------------------


def test_configure_managed_warns_when_a_profile_exists(
    mdm_env: KbEnv, fleet_keybroker: Path
) -> None:
    args = ("litellm", "--scope", "managed", "--executable", str(fleet_keybroker))
    first = configure(mdm_env, *args)
    assert first.code == 0, first
    assert "ignore" not in first.stderr
    profile = put_plist(mdm_env, {"permissions": {}})
    result = configure(mdm_env, *args, "--ttl", "1h")
    assert result.code == 0, result
    assert f"keybroker: warning: {profile} exists" in result.stderr, result.stderr
    assert "ignores" in result.stderr
    assert "--mobileconfig" in result.stderr


def test_configure_managed_warns_about_other_accounts_profiles(
    mdm_env: KbEnv, fleet_keybroker: Path
) -> None:
    for name in ("alice", "bob"):
        folder = Path(mdm_env[PREFERENCES_ENV]) / name
        folder.mkdir(parents=True)
        (folder / f"{DOMAIN}.plist").write_bytes(plistlib.dumps({"permissions": {}}))
    args = ("litellm", "--scope", "managed", "--executable", str(fleet_keybroker))
    result = configure(mdm_env, *args)
    assert result.code == 0, result
    assert "per-user managed preferences (MDM profiles) exist for alice, bob" in result.stderr
    assert "ignores" in result.stderr
