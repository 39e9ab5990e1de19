"""Issue 12 item 5 (neighbouring gaps) and issue 17's ``exec P sh -c``: each through the real
executable, each failing on the code before the fix.

Where a real provider cannot produce the bad input (an ESC in a device code, ``Infinity`` in
``expires_in``, an http token endpoint under an https issuer), a tiny local HTTP server in the
test stands in for the provider; the thing under test is always the real ``keybroker``.
"""

from __future__ import annotations

import base64
import io
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keybroker import output
from tests.conftest import KbEnv
from tests.kb import IN_CI, Result, assert_fails, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX")

KEY = "sk-gap-" + "7Qm2xR9vL4pZ8kW1"
#: python-dotenv's worst cases: expansion, quotes of both kinds, backslashes, a comment sign
NASTY = "sk-$HOME-${HOME}-${X:-y}-'q'-\"d\"-\\-\\'-#c-$"


def file_profile(env: KbEnv, value: str, name: str = "k") -> None:
    (env.base / f"{name}.txt").write_text(value + "\n")
    env.write_config(
        f'[profiles.{name}]\nsource = "file"\n'
        f'path = {json.dumps(str(env.base / f"{name}.txt"))}\n'
    )


# --- a second OS user, for ownership ---


@pytest.fixture
def other_user() -> Iterator[pwd.struct_passwd]:
    """A throwaway system user (root only; in CI a failure if it cannot be created)."""
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        if IN_CI:
            pytest.fail("creating a second OS user needs root and useradd in CI")
        pytest.skip("needs root and useradd to create a second OS user")
    name = f"kbtest-{secrets.token_hex(4)}"
    subprocess.run(["useradd", "--system", "--no-create-home", "--shell", "/bin/false", name],
                   check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run(["userdel", name], check=False, capture_output=True)


def readable_by(path: Path, user: pwd.struct_passwd) -> bool:
    info = path.stat()
    if info.st_uid == user.pw_uid:
        return True
    if info.st_gid == user.pw_gid and info.st_mode & stat.S_IRGRP:
        return True
    return bool(info.st_mode & stat.S_IROTH)


def assert_not_for(user: pwd.struct_passwd, directory: Path, secret: str) -> None:
    """No file in ``directory`` that ``user`` owns or can read holds ``secret``."""
    for path in directory.iterdir():
        if path.is_file() and not path.is_symlink() and readable_by(path, user):
            assert secret.encode() not in path.read_bytes(), f"{user.pw_name} can read {path}"


# --- 1. ci export never writes into a file it does not own ---


@pytest.mark.parametrize(("fmt", "option"), [("dotenv", "--output"), ("shell", "-o"),
                                             ("json", "--output"),
                                             ("gitlab", "--dotenv-file")])
def test_export_refuses_another_users_world_writable_file(
    kb_env: KbEnv, other_user: pwd.struct_passwd, fmt: str, option: str
) -> None:
    file_profile(kb_env, KEY)
    out = kb_env.base / "out"
    out.mkdir()
    target = out / "ci.env"
    target.write_text("OTHER=kept\n")
    os.chown(target, other_user.pw_uid, other_user.pw_gid)
    target.chmod(0o666)
    result = run(["keybroker", "ci", "export", "k", "--format", fmt, option, str(target)], kb_env)
    assert_fails(result, 2, "belongs to another user", secrets=[KEY])
    assert_not_for(other_user, out, KEY)
    assert target.read_text() == "OTHER=kept\n"


def test_export_replaces_our_own_loose_file_with_a_private_one(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    target = kb_env.base / "ci.env"
    target.write_text("OLD=1\nANTHROPIC_AUTH_TOKEN=old\n")
    target.chmod(0o666)
    reader = os.open(target, os.O_RDONLY)  # someone who opened it before keeps the old file
    try:
        result = run(["keybroker", "ci", "export", "k", "--format", "gitlab",
                      "--dotenv-file", str(target)], kb_env)
        assert result.code == 0, result
        assert os.read(reader, 4096) == b"OLD=1\nANTHROPIC_AUTH_TOKEN=old\n"
    finally:
        os.close(reader)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == f"OLD=1\nANTHROPIC_AUTH_TOKEN={KEY}\n"  # other lines kept
    assert [p.name for p in kb_env.base.iterdir() if "keybroker-" in p.name] == []


@pytest.mark.parametrize("fmt", ["dotenv", "gitlab"])
def test_export_to_a_symlink_is_a_clear_usage_error(kb_env: KbEnv, fmt: str) -> None:
    file_profile(kb_env, KEY)
    elsewhere = kb_env.base / "elsewhere"
    link = kb_env.base / "ci.env"
    link.symlink_to(elsewhere)
    result = run(["keybroker", "ci", "export", "k", "--format", fmt, "-o", str(link)], kb_env)
    assert_fails(result, 2, "is a symlink", secrets=[KEY])
    assert not elsewhere.exists()
    assert link.is_symlink()


# --- 6. --format dotenv reads back unchanged in python-dotenv ---


def dotenv_read(text: str) -> dict[str, str | None]:
    import dotenv  # noqa: PLC0415

    return dict(dotenv.dotenv_values(stream=io.StringIO(text)))


def test_dotenv_format_round_trips_through_python_dotenv(kb_env: KbEnv) -> None:
    file_profile(kb_env, NASTY)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv"], kb_env)
    assert result.code == 0, result
    assert dotenv_read(result.stdout) == {"ANTHROPIC_AUTH_TOKEN": NASTY}
    # and written to a file, read by load_dotenv's own path reader
    target = kb_env.base / ".env"
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "-o", str(target)],
                 kb_env)
    assert result.code == 0, result
    import dotenv  # noqa: PLC0415

    assert dotenv.dotenv_values(target) == {"ANTHROPIC_AUTH_TOKEN": NASTY}


def test_gitlab_format_stays_plain(kb_env: KbEnv) -> None:
    file_profile(kb_env, NASTY)
    target = kb_env.base / "report.env"
    result = run(["keybroker", "ci", "export", "k", "--format", "gitlab",
                  "--dotenv-file", str(target)], kb_env)
    assert result.code == 0, result
    assert target.read_text() == f"ANTHROPIC_AUTH_TOKEN={NASTY}\n"  # GitLab reads it literally


#: what validate_key lets through: printable ASCII without whitespace
KEY_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(KEY_TEXT)
@settings(max_examples=500)
def test_dotenv_quote_round_trip_property(value: str) -> None:
    assert dotenv_read(output.dotenv([("K", value)])) == {"K": value}


@given(value=KEY_TEXT.filter(lambda v: len(v) >= 8))
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_dotenv_round_trip_through_the_executable(kb_env: KbEnv, value: str) -> None:
    file_profile(kb_env, value)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "--no-cache"], kb_env)
    assert result.code == 0, result
    assert dotenv_read(result.stdout) == {"ANTHROPIC_AUTH_TOKEN": value}


# --- 7. exec PROFILE CMD -c … without -- ---


def test_exec_without_double_dash_passes_options_to_the_command(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    result = run(["keybroker", "exec", "k", "sh", "-c", 'printf "hi %s" "$ANTHROPIC_AUTH_TOKEN"'],
                 kb_env)
    assert result.code == 0, result
    assert result.out == f"hi {KEY}".encode()
    # keybroker's options before PROFILE (or before COMMAND), the command's after its name
    result = run(["keybroker", "exec", "--mask", "k", "sh", "-c", 'printf "%s %s" "$0" '
                  '"$ANTHROPIC_AUTH_TOKEN"', "--mask"], kb_env)
    assert result.code == 0, result
    assert result.out == b"--mask ***"


def test_exec_with_double_dash_still_works(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    result = run(["keybroker", "exec", "k", "--var", "T", "--mask", "--", "sh", "-c",
                  'printf "%s" "$T"'], kb_env)
    assert result.code == 0, result
    assert result.out == b"***"
    result = run(["keybroker", "exec", "k", "--bogus", "sh"], kb_env)
    assert result.code == 2, result
    assert b"No such option" in result.err


def _unused(*_: Any) -> None:  # keep imports used while later sections grow
    _ = (base64, urllib.parse, Result, assert_fails)


# --- 5. exec --mask: encoded forms, and a value split across stdout and stderr ---

#: a key whose JSON, URL and base64 forms all differ from it
ODD = 'sk-m/a+s"k\\x~=9Zq'


def test_mask_hides_a_value_split_between_stdout_and_stderr(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    split = ('v=$ANTHROPIC_AUTH_TOKEN; a=${v%????????}; b=${v#"$a"}; '
             'printf "out:%s" "$a"; printf "%s:err" "$b" >&2')
    # as a CI log sees it: both streams into one pipe
    command = " ".join(["exec", "keybroker", "exec", "--mask", "k", "sh", "-c",
                        "'" + split.replace("'", "'\\''") + "'", "2>&1"])
    result = run(["/bin/sh", "-c", command], kb_env)
    assert result.code == 0, result
    assert KEY.encode() not in result.out, result
    assert KEY[:-8].encode() + KEY[-8:].encode() not in result.out
    assert b"***" in result.out, result
    # and apart: *** on the stream where the value began, nothing of its end on stderr
    apart = run(["keybroker", "exec", "--mask", "k", "sh", "-c", split], kb_env)
    assert apart.code == 0, apart
    head, tail = KEY[:-8].encode(), KEY[-8:].encode()
    # stdout's half arrived first (the usual case): it became ***; had stderr's half been
    # read first, the halves came out in the other order, which spells nothing
    assert (apart.out, apart.err) in [(b"out:***", b":err"), (b"out:" + head, tail + b":err")]


def test_mask_hides_encoded_forms(kb_env: KbEnv) -> None:
    file_profile(kb_env, ODD)
    code = ("import base64, json, os, urllib.parse as u\n"
            "v = os.environ['ANTHROPIC_AUTH_TOKEN']\n"
            "b = v.encode()\n"
            "print(json.dumps(v)[1:-1]); print(u.quote(v, safe='')); print(u.quote_plus(v))\n"
            "print(base64.b64encode(b).decode()); print(base64.urlsafe_b64encode(b).decode())\n"
            "print(base64.b64encode(b).decode().rstrip('='))\n"
            "import sys; sys.stderr.write(u.quote_plus(v) + '\\n')\n")
    result = run(["keybroker", "exec", "--mask", "k", sys.executable, "-c", code], kb_env)
    assert result.code == 0, result
    raw = ODD.encode()
    forms = [json.dumps(ODD)[1:-1], urllib.parse.quote(ODD, safe=""),
             urllib.parse.quote_plus(ODD), base64.b64encode(raw).decode(),
             base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    for form in forms:
        assert form.encode() not in result.out + result.err, form
    assert result.out == b"***\n" * 6, result
    assert result.err == b"***\n", result
