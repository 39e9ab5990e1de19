"""``keybroker doctor``: one ✓/✗ line per check, the fix on each ✗, and the exit status."""

from __future__ import annotations

import json
import os
import shlex
from pathlib import Path
from typing import Any

import pytest

from keybroker.cli.doctor import render
from keybroker.sources.base import Check
from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.kb import SCRIPTS, Result, run

KEY = "sk-doctor-2b3c4d5e6f"


@pytest.fixture
def dr_env(kb_env: KbEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> KbEnv:
    # project/local scopes are read from the cwd: keep the repo's own .claude out of it
    monkeypatch.chdir(tmp_path)
    # and this machine's own managed settings, if it has any
    kb_env["KEYBROKER_CLAUDE_MANAGED_SETTINGS"] = str(tmp_path / "managed-settings.json")
    kb_env["GOOD_KEY"] = KEY
    (kb_env.base / "key.txt").write_text(KEY + "\n")
    kb_env.write_config(
        '[profiles.good]\nsource = "env"\nvar = "GOOD_KEY"\n'
        f'[profiles.filed]\nsource = "file"\npath = {json.dumps(str(kb_env.base / "key.txt"))}\n'
    )
    return kb_env


def lines(result: Result) -> list[str]:
    return result.stdout.splitlines()


def line_for(result: Result, label: str) -> str:
    found = [ln for ln in lines(result) if ln[2:].startswith(label)]
    assert found, (label, result.stdout)
    return found[0]


def test_healthy_setup_exits_zero(dr_env: KbEnv) -> None:
    result = run(["keybroker", "doctor"], dr_env)
    assert result.code == 0, result
    assert result.err == b""
    assert all(ln.startswith("✓ ") for ln in lines(result)), result.stdout
    assert line_for(result, "config:").endswith("2 profile(s)")
    assert "key obtained from env ($GOOD_KEY)" in line_for(result, "profile 'good':")
    assert "key obtained from file" in line_for(result, "profile 'filed':")
    assert line_for(result, "cache dir:")
    assert line_for(result, "data key:")
    for scope in ("user", "project", "local"):
        assert line_for(result, f"claude {scope} settings:")
    assert line_for(result, "PATH:").startswith("✓ PATH: /bin/sh finds keybroker at ")
    assert KEY.encode() not in result.out + result.err


def test_broken_profile_is_a_cross_with_fix_and_exit_1(dr_env: KbEnv) -> None:
    (dr_env.base / "key.txt").unlink()
    result = run(["keybroker", "doctor"], dr_env)
    assert result.code == 1, result
    bad = line_for(result, "profile 'filed':")
    assert bad.startswith("✗ profile 'filed': file: ")
    assert "does not exist" in bad
    assert "; fix: fix the profile's 'path'" in bad
    assert line_for(result, "profile 'good':").startswith("✓")
    assert KEY.encode() not in result.out + result.err


def test_one_profile_only(dr_env: KbEnv) -> None:
    (dr_env.base / "key.txt").unlink()
    result = run(["keybroker", "doctor", "good"], dr_env)
    assert result.code == 0, result
    assert "filed" not in result.stdout


def test_unknown_profile_argument(dr_env: KbEnv) -> None:
    result = run(["keybroker", "doctor", "nosuch"], dr_env)
    assert result.code == 1, result
    assert line_for(result, "profile 'nosuch'").startswith("✗ profile 'nosuch': unknown profile")


def test_access_denied_source_is_reported_with_its_hint(dr_env: KbEnv) -> None:
    dr_env.write_config('[profiles.env_missing]\nsource = "env"\nvar = "NOPE_NOT_SET"\n')
    result = run(["keybroker", "doctor"], dr_env)
    assert result.code == 1, result
    bad = line_for(result, "profile 'env_missing':")
    assert "environment variable NOPE_NOT_SET is not set" in bad
    assert "fix: export NOPE_NOT_SET" in bad


def test_broken_config_exits_2(dr_env: KbEnv) -> None:
    dr_env.write_config("[profiles.x\nsource=")
    result = run(["keybroker", "doctor"], dr_env)
    assert result.code == 2, result
    assert lines(result)[0].startswith("✗ config: ")
    assert "invalid TOML" in result.stdout


def test_config_with_unknown_key_exits_2(dr_env: KbEnv) -> None:
    dr_env.write_config('[profiles.x]\nsource = "env"\nvar = "A"\ncolour = "red"\n')
    result = run(["keybroker", "doctor"], dr_env)
    assert result.code == 2, result
    assert "unknown key 'colour'" in result.stdout


def test_unsafe_cache_dir(dr_env: KbEnv) -> None:
    dr_env.cache_dir.mkdir(parents=True)
    os.chmod(dr_env.cache_dir, 0o777)
    try:
        result = run(["keybroker", "doctor", "good"], dr_env)
    finally:
        os.chmod(dr_env.cache_dir, 0o700)
    assert result.code == 1, result
    bad = line_for(result, "cache dir:")
    assert bad.startswith("✗ cache dir: ")
    assert f"fix: run: chmod 700 {dr_env.cache_dir}" in bad


def test_damaged_data_key(dr_env: KbEnv) -> None:
    dr_env.data_dir.mkdir(parents=True, mode=0o700)
    key_file = dr_env.data_dir / "cache.key"
    key_file.write_bytes(b"garbage")
    key_file.chmod(0o600)
    result = run(["keybroker", "doctor", "good"], dr_env)
    assert result.code == 1, result
    assert line_for(result, "data key:").startswith("✗ data key: the cache data key")


def test_short_lived_key_is_reported(dr_env: KbEnv) -> None:
    # the demo key lives 1 h; a 2 h helper TTL means Claude Code would outlive it
    env = dict(dr_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS="7200000")
    result = run(["keybroker", "doctor", "demo"], env)
    assert result.code == 1, result
    bad = line_for(result, "profile 'demo' lifetime:")
    assert bad.startswith("✗")
    assert "less than Claude Code's TTL + margin" in bad
    assert "CLAUDE_CODE_API_KEY_HELPER_TTL_MS" in bad
    ok = run(["keybroker", "doctor", "demo"], dr_env)
    assert ok.code == 0, ok
    assert "≥ TTL + margin" in line_for(ok, "profile 'demo' lifetime:")


def write_settings(path: Path, data: dict[str, Any] | str) -> None:
    """Claude Code settings at ``path``: ``data`` as JSON, or a string as it is."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


def doctor_with_user_settings(env: KbEnv, settings: dict[str, Any] | str) -> Result:
    """``keybroker doctor good`` with ``settings`` as Claude Code's user settings."""
    write_settings(Path(env["HOME"]) / ".claude" / "settings.json", settings)
    return run(["keybroker", "doctor", "good"], env)


def test_claude_settings_pointing_at_keybroker(dr_env: KbEnv) -> None:
    helper = f"{shlex.quote(str(SCRIPTS / 'keybroker'))} get good"
    result = doctor_with_user_settings(dr_env, {"apiKeyHelper": helper})
    assert result.code == 0, result
    assert "apiKeyHelper → keybroker profile 'good'" in line_for(result, "claude user settings")


def test_foreign_helper_is_reported_not_failed(dr_env: KbEnv) -> None:
    result = doctor_with_user_settings(dr_env, {"apiKeyHelper": "~/bin/get-key.sh"})
    assert result.code == 0, result
    assert "not keybroker" in line_for(result, "claude user settings")


@pytest.mark.parametrize(
    ("settings", "needle", "label"),
    [
        (
            {"apiKeyHelper": "/nonexistent/keybroker get good"},
            "does not exist or is not executable",
            "claude user settings",
        ),
        (
            {"apiKeyHelper": f"{SCRIPTS / 'keybroker'} get ghost"},
            "profile 'ghost'",
            "claude user settings",
        ),
        (
            {
                "apiKeyHelper": f"{SCRIPTS / 'keybroker'} get good",
                "env": {"ANTHROPIC_API_KEY": "x"},
            },
            "ANTHROPIC_API_KEY is set in the user settings",
            "claude credentials",
        ),
    ],
)
def test_broken_claude_settings(
    dr_env: KbEnv, settings: dict[str, Any], needle: str, label: str
) -> None:
    result = doctor_with_user_settings(dr_env, settings)
    assert result.code == 1, result
    bad = line_for(result, label)
    assert bad.startswith("✗")
    assert needle in bad
    assert "fix: " in bad


def test_invalid_settings_json(dr_env: KbEnv) -> None:
    result = doctor_with_user_settings(dr_env, "{nope")
    assert result.code == 1, result
    assert "not valid JSON" in line_for(result, "claude user settings")


def test_bare_helper_name_fails_under_minimal_path(dr_env: KbEnv) -> None:
    result = doctor_with_user_settings(dr_env, {"apiKeyHelper": "keybroker get good"})
    assert result.code == 1, result
    assert any(
        ln.startswith("✗ PATH: apiKeyHelper runs 'keybroker' by name") for ln in lines(result)
    ), result.stdout


def test_project_scope_settings_found_from_cwd(dr_env: KbEnv, tmp_path: Path) -> None:
    import subprocess  # noqa: PLC0415

    project = tmp_path / "proj"
    write_settings(
        project / ".claude" / "settings.local.json",
        {"apiKeyHelper": f"{SCRIPTS / 'keybroker'} get ghost"},
    )
    proc = subprocess.run(
        [str(SCRIPTS / "keybroker"), "doctor", "good"],
        cwd=project,
        env=dict(dr_env),
        capture_output=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 1, proc
    assert "✗ claude local settings" in proc.stdout.decode()


def test_render_scrubs_registered_secrets() -> None:
    from keybroker.redact import sensitive  # noqa: PLC0415

    sensitive("sk-render-secret-1234")
    line = render(Check(False, "x", "saw sk-render-secret-1234", "do y"))
    assert line == "✗ x: saw ***; fix: do y"


@pytest.mark.integration
def test_vault_profile_denied_by_policy(openbao: OpenBao, dr_env: KbEnv) -> None:
    """A real 403 from OpenBao: the profile's line is ✗ with the source's fix, exit 1."""
    token = openbao.api(
        "POST",
        "auth/token/create",
        {"policies": ["default"], "ttl": "10m", "no_default_policy": False},
    )
    weak = token["auth"]["client_token"]
    openbao.kv_put("doctor-denied", {"key": KEY})
    dr_env.update(VAULT_ADDR=openbao.addr, VAULT_TOKEN=weak)
    dr_env.write_config('[profiles.v]\nsource = "vault"\npath = "doctor-denied"\nfield = "key"\n')
    result = run(["keybroker", "doctor", "v"], dr_env)
    assert result.code == 1, result
    bad = line_for(result, "profile 'v':")
    assert bad.startswith("✗ profile 'v': vault: ")
    assert "; fix: " in bad
    assert KEY.encode() not in result.out + result.err
    assert weak.encode() not in result.out + result.err


# --- issue 22: doctor and TTLs --------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "needles"),
    [
        (
            "5m",
            [
                "CLAUDE_CODE_API_KEY_HELPER_TTL_MS='5m' in the shell environment is not a whole "
                "number of milliseconds",
                'fix: for 5m 0s set "300000"',
            ],
        ),
        (
            "-1",
            [
                "CLAUDE_CODE_API_KEY_HELPER_TTL_MS='-1' in the shell environment is negative",
                'fix: set it to whole milliseconds, e.g. "300000"',
            ],
        ),
        ("0", ["CLAUDE_CODE_API_KEY_HELPER_TTL_MS=0", "before every request"]),
    ],
)
def test_unusable_helper_ttl_is_a_cross_with_the_fix(
    dr_env: KbEnv, ttl: str, needles: list[str]
) -> None:
    """Before: "5m" showed ✓ "… from invalid …" and "-1" a ✓ TTL line (exit 0 / only a
    confusing profile error), although keybroker's own helper refuses both (exit 2)."""
    result = run(
        ["keybroker", "doctor", "good"], dict(dr_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS=ttl)
    )
    assert result.code == 1, result
    line = line_for(result, "claude helper TTL:")
    assert line.startswith("✗ "), line
    for needle in needles:
        assert needle in line, (needle, line)
    # the profile itself is judged against the default TTL, not failed a second time
    assert line_for(result, "profile 'good':").startswith("✓ ")


def test_helper_ttl_that_looks_like_seconds_is_a_warning(dr_env: KbEnv) -> None:
    """Before: "300" (0.3 s) showed ✓ "reused for 0s": every call went to the source."""
    result = run(
        ["keybroker", "doctor", "good"], dict(dr_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS="300")
    )
    assert result.code == 0, result
    assert line_for(result, "claude helper TTL:") == (
        "⚠ claude helper TTL: CLAUDE_CODE_API_KEY_HELPER_TTL_MS=300 in the shell environment "
        "is 300ms: looks like seconds, Claude Code reads milliseconds (every call goes to the "
        'source); fix: for 300 seconds set "300000" (keybroker claude configure PROFILE '
        "--ttl 300s)"
    )
    assert line_for(result, "profile 'good' lifetime:").endswith("reused for 300ms")
    fine = run(
        ["keybroker", "doctor", "good"], dict(dr_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS="300000")
    )
    assert line_for(fine, "claude helper TTL:") == (
        "✓ claude helper TTL: CLAUDE_CODE_API_KEY_HELPER_TTL_MS=300000 (5m 0s) from the shell "
        "environment"
    )
    as_json = json.loads(
        run(
            ["keybroker", "doctor", "good", "--json"],
            dict(dr_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS="300"),
        ).out
    )
    ttl = [c for c in as_json["checks"] if c["label"] == "claude helper TTL"]
    assert ttl[0]["level"] == "warning"
    assert ttl[0]["ok"] is True


def test_configure_ttl_accepts_milliseconds(dr_env: KbEnv) -> None:
    """Before: `claude configure --ttl 300000ms` was refused ("not a duration")."""
    for ttl in ("300000ms", "5m", "300"):
        result = run(["keybroker", "claude", "configure", "good", "--ttl", ttl, "--print"], dr_env)
        assert result.code == 0, result
        assert '"CLAUDE_CODE_API_KEY_HELPER_TTL_MS": "300000"' in result.stdout, result


def test_past_events_are_history_of_this_config_only(dr_env: KbEnv, tmp_path: Path) -> None:
    """Before: an event showed as a ✓ line without its time, also one written under another
    config that happens to use the same profile name."""
    import time  # noqa: PLC0415

    from tests.kb import plant  # noqa: PLC0415

    other = tmp_path / "other.toml"
    other.write_text('[profiles.good]\nsource = "command"\ncommand = ["/bin/false"]\n')
    other_env = dict(dr_env, KEYBROKER_CONFIG=str(other))
    now = time.time()
    plant(other_env, "good", "sk-other-config-1", now - 3400, now + 200)
    assert run(["keybroker", "get", "good"], other_env).code == 0  # a stale-served event
    mine = run(["keybroker", "doctor", "good"], dr_env)
    assert "past event" not in mine.stdout, mine.stdout
    shown = run(["keybroker", "print-token", "good"], dr_env)
    assert shown.code == 0, shown
    assert "stale-served" not in shown.stdout, shown.stdout
    assert "stale-served" in run(["keybroker", "print-token", "good"], other_env).stdout
    theirs = run(["keybroker", "doctor", "good"], other_env)
    past = line_for(theirs, "profile 'good' past event:")
    stamp = time.strftime("%Y-%m-%d", time.localtime(now))
    assert past.startswith(f"· profile 'good' past event: {stamp} "), past
    assert "stale-served" in past
    assert not any(ln.startswith("✓") and "stale-served" in ln for ln in lines(theirs))


@pytest.mark.serial  # its token lives 2 s
@pytest.mark.integration
def test_expired_credential_with_a_cached_key_is_not_a_success(
    openbao: OpenBao, dr_env: KbEnv
) -> None:
    """Before: ✗ token … then "✓ key obtained … cache hit" — success claimed from the cache."""
    import time  # noqa: PLC0415

    openbao.kv_put("doctor-expiring", {"key": KEY})
    short = openbao.api("POST", "auth/token/create", {"policies": ["root"], "ttl": "2s"})["auth"][
        "client_token"
    ]
    dr_env.update(VAULT_ADDR=openbao.addr, VAULT_TOKEN=short)
    dr_env.write_config('[profiles.v]\nsource = "vault"\npath = "doctor-expiring"\nfield = "key"\n')
    assert run(["keybroker", "get", "v"], dr_env).code == 0
    time.sleep(3)
    result = run(["keybroker", "doctor", "v"], dr_env)
    assert result.code == 1, result
    assert line_for(result, "profile 'v' token:").startswith("✗ ")
    served = line_for(result, "profile 'v':")
    assert served.startswith("⚠ profile 'v': the cached key from vault "), served
    assert "was served (cache hit), but the credential check failed (token)" in served
    assert "key obtained" not in result.stdout
    assert KEY.encode() not in result.out + result.err


@pytest.mark.integration
def test_dev_root_token_does_not_mask_the_word_root(openbao: OpenBao, dr_env: KbEnv) -> None:
    """Before: the dev server's token "root" was registered as a secret, so the policy
    printed as "policies: ***" (and every path through /tmp/pytest-of-root as "…-of-***")."""
    openbao.kv_put("doctor-root", {"key": KEY})
    dr_env.update(VAULT_ADDR=openbao.addr, VAULT_TOKEN=openbao.root_token)
    dr_env.write_config('[profiles.v]\nsource = "vault"\npath = "doctor-root"\nfield = "key"\n')
    result = run(["keybroker", "doctor", "v"], dr_env)
    assert result.code == 0, result
    assert "policies: root)" in line_for(result, "profile 'v' token:")
    assert "***" not in result.stdout, result.stdout
    assert KEY.encode() not in result.out + result.err


def test_unreachable_address_is_named_once(dr_env: KbEnv) -> None:
    """Before: "address: http://…: profile 'v': vault: http://…: cannot connect"."""
    dr_env.update(VAULT_ADDR="http://127.0.0.1:9", VAULT_TOKEN="hvs.doctor-prefix-test-1")
    dr_env.write_config('[profiles.v]\nsource = "vault"\npath = "p"\nfield = "key"\n')
    result = run(["keybroker", "doctor", "v"], dr_env)
    assert result.code == 1, result
    assert line_for(result, "profile 'v' address:").startswith(
        "✗ profile 'v' address: http://127.0.0.1:9: cannot connect while checking sys/health;"
    )
    assert line_for(result, "profile 'v':").startswith(
        "✗ profile 'v': vault: http://127.0.0.1:9: cannot connect while reading "
    )
