"""``keybroker get`` and ``keybroker-keychain`` as Claude Code runs them: real processes,
stdin left open, stdout/stderr/exit code checked byte for byte (DESIGN section 2)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from tests.conftest import KbEnv
from tests.kb import assert_fails, assert_key, assert_nowhere, run

SECRET = "sk-live-4f1c9a7e2b"


def command_profile(kb_env: KbEnv, script: str, name: str = "cmd", extra: str = "") -> Path:
    """A ``command`` profile running a small Python script (written next to the config)."""
    path = kb_env.base / f"{name}.py"
    path.write_text(script)
    kb_env.write_config(
        f'[profiles.{name}]\nsource = "command"\n'
        f"command = [{json.dumps(sys.executable)}, {json.dumps(str(path))}]\n{extra}"
    )
    return path


def test_env_profile_prints_exactly_the_key(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "MY_KEY"\n')
    result = run(["keybroker", "get", "p"], dict(kb_env, MY_KEY=SECRET))
    assert_key(result, SECRET)
    assert result.err == b""


def test_env_profile_unset_var_is_not_found(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "MY_KEY"\n')
    result = run(["keybroker", "get", "p"], kb_env)
    assert_fails(result, 5, "MY_KEY is not set", "export MY_KEY")


def test_file_profile(kb_env: KbEnv) -> None:
    key_file = kb_env.base / "key.txt"
    key_file.write_text(SECRET + "\n")
    kb_env.write_config(f'[profiles.f]\nsource = "file"\npath = "{key_file}"\n')
    assert_key(run(["keybroker", "get", "f"], kb_env), SECRET)
    key_file.unlink()
    assert_fails(run(["keybroker", "get", "f"], kb_env), 5, "does not exist")


def test_command_profile_and_cache(kb_env: KbEnv) -> None:
    counter = kb_env.base / "count"
    command_profile(
        kb_env,
        f"open({str(counter)!r}, 'a').write('x')\nprint({SECRET!r})\n",
    )
    assert_key(run(["keybroker", "get", "cmd"], kb_env), SECRET)
    assert_key(run(["keybroker", "get", "cmd"], kb_env), SECRET)
    assert counter.read_text() == "x"  # second call answered by the cache
    assert_nowhere(SECRET, dirs=[kb_env.cache_dir, kb_env.data_dir, kb_env.base / "config"])


def test_command_failure_summarises_stderr_never_stdout(kb_env: KbEnv) -> None:
    command_profile(
        kb_env,
        f"import sys\nprint({SECRET!r})\nprint('vault is sealed', file=sys.stderr)\nsys.exit(3)\n",
    )
    result = run(["keybroker", "get", "cmd"], kb_env)
    assert_fails(result, 3, "exited with status 3", "vault is sealed", secrets=[SECRET])


@pytest.mark.serial  # a 1 s deadline: slow start-up says 'gave up'
def test_command_timeout_is_exit_3_within_deadline(kb_env: KbEnv) -> None:
    command_profile(kb_env, "import time\ntime.sleep(60)\n")
    result = run(["keybroker", "get", "cmd"], dict(kb_env, KEYBROKER_TIMEOUT="1"), timeout=20)
    assert_fails(result, 3, "did not finish")


def test_command_not_found_is_usage_error(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.c]\nsource = "command"\ncommand = ["no-such-cmd-kb"]\n')
    assert_fails(run(["keybroker", "get", "c"], kb_env), 2, "not found")


def test_command_cannot_read_helper_stdin(kb_env: KbEnv) -> None:
    """The command gets /dev/null: a command that reads stdin sees EOF instead of hanging."""
    command_profile(kb_env, f"import sys\nsys.stdin.read()\nprint({SECRET!r})\n")
    assert_key(run(["keybroker", "get", "cmd"], kb_env, timeout=30), SECRET)


@pytest.mark.parametrize(
    ("value", "why"),
    [
        ("two words", "whitespace"),
        ("nul\x00byte", "control character"),
        ("x" * 16385, "16384"),
        ("caf\u00e9", "non-ASCII"),
        ("", "printed nothing"),
    ],
)
def test_invalid_values_exit_6_and_are_never_printed(kb_env: KbEnv, value: str, why: str) -> None:
    command_profile(kb_env, f"import sys\nsys.stdout.write({value!r})\n")
    result = run(["keybroker", "get", "cmd"], kb_env)
    expected = 5 if value == "" else 6
    assert_fails(result, expected, why)
    if value:
        assert value.encode()[:20] not in result.err


def test_env_value_with_newline_is_refused(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "MY_KEY"\n')
    result = run(["keybroker", "get", "p"], dict(kb_env, MY_KEY="abc\ninjected: header"))
    assert_fails(result, 6, "line break")
    assert b"injected" not in result.err


def test_unknown_profile_exit_2(kb_env: KbEnv) -> None:
    assert_fails(run(["keybroker", "get", "nope"], kb_env), 2, "unknown profile 'nope'")


def test_bad_config_names_file_table_key(kb_env: KbEnv) -> None:
    path = kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "K"\nmax_age = "soon"\n')
    result = run(["keybroker", "get", "p"], kb_env)
    assert_fails(result, 2, str(path), "[profiles.p]", "max_age")


def test_no_traceback_without_debug_but_with_it(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "MY_KEY"\n')
    plain = run(["keybroker", "get", "p"], kb_env)
    assert b"Traceback" not in plain.err
    debug = run(["keybroker", "get", "p", "--debug"], kb_env)
    assert debug.code == 5
    assert b"Traceback" in debug.err
    via_env = run(["keybroker", "get", "p"], dict(kb_env, KEYBROKER_DEBUG="1"))
    assert b"Traceback" in via_env.err


def test_demo_works_before_anything_is_configured(kb_env: KbEnv) -> None:
    first = run(["keybroker", "get", "demo"], kb_env)
    assert first.code == 0
    assert first.err == b""
    key = first.out.decode().strip()
    assert key.startswith("kb-demo-")
    assert_key(run(["keybroker", "get", "demo"], kb_env), key)  # served from the cache
    report = run(["keybroker", "print-token", "demo"], kb_env)
    assert report.code == 0
    assert b"cache" in report.out
    assert key.encode() not in report.out


def test_click_fallback_for_help_and_bad_flags(kb_env: KbEnv) -> None:
    helped = run(["keybroker", "get", "--help"], kb_env)
    assert helped.code == 0
    assert b"apiKeyHelper" in helped.out
    bad = run(["keybroker", "get", "demo", "--bogus"], kb_env)
    assert bad.code == 2
    assert bad.out == b""


def test_max_age_flag_and_no_cache(kb_env: KbEnv) -> None:
    counter = kb_env.base / "count"
    command_profile(kb_env, f"open({str(counter)!r}, 'a').write('x')\nprint({SECRET!r})\n")
    assert_key(run(["keybroker", "get", "cmd", "--max-age", "1h"], kb_env), SECRET)
    assert_key(run(["keybroker", "get", "cmd", "--no-cache"], kb_env), SECRET)
    assert counter.read_text() == "xx"
    assert_fails(run(["keybroker", "get", "cmd", "--max-age", "soon"], kb_env), 2, "--max-age")


def test_config_flag(kb_env: KbEnv, tmp_path: Path) -> None:
    other = tmp_path / "other.toml"
    other.write_text('[profiles.o]\nsource = "env"\nvar = "MY_KEY"\n')
    result = run(["keybroker", "get", "o", "--config", str(other)], dict(kb_env, MY_KEY=SECRET))
    assert_key(result, SECRET)


def test_standalone_keychain_without_service_is_usage_error(kb_env: KbEnv) -> None:
    result = run(["keybroker-keychain"], kb_env)
    assert_fails(result, 2, "missing setting 'service'", "--service")


def test_standalone_usage_error_from_argparse(kb_env: KbEnv) -> None:
    result = run(["keybroker-keychain", "--bogus"], kb_env)
    assert result.code == 2
    assert result.out == b""


def test_helpers_never_read_stdin(kb_env: KbEnv) -> None:
    """With stdin a pipe that never closes (as Claude Code leaves it), every helper returns."""
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "MY_KEY"\n')
    env = dict(kb_env, MY_KEY=SECRET)
    for args in (["keybroker", "get", "p"], ["keybroker", "get", "demo"]):
        result = run(args, env, timeout=30, keep_stdin_open=True)
        assert result.code == 0


def test_unwritable_home_config_does_not_leak(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "MY_KEY"\n')
    os.chmod(kb_env.config_path, 0o000)
    try:
        result = run(["keybroker", "get", "p"], dict(kb_env, MY_KEY=SECRET))
        if os.geteuid() == 0:
            assert_key(result, SECRET)  # root reads it anyway
        else:
            assert_fails(result, 2, "cannot read config")
    finally:
        os.chmod(kb_env.config_path, 0o600)
