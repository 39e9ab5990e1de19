"""``ci export`` into files: never into one it does not own, and read back unchanged.

The target file is replaced by a new private one of ours (never written through a symlink,
never into a file another user owns or a directory others can write without the sticky bit),
and ``--format dotenv`` reads back unchanged in python-dotenv, whatever the key's characters.
Each case failed before its fix (issue 12).
"""

from __future__ import annotations

import io
import os
import stat
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keybroker import output
from tests.conftest import KbEnv
from tests.fixtures.users import OsUser
from tests.kb import assert_fails, file_profile, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX")

KEY = "sk-gap-" + "7Qm2xR9vL4pZ8kW1"
#: python-dotenv's worst cases: expansion, quotes of both kinds, backslashes, a comment sign
NASTY = "sk-$HOME-${HOME}-${X:-y}-'q'-\"d\"-\\-\\'-#c-$"


def readable_by(path: Path, user: OsUser) -> bool:
    info = path.stat()
    if info.st_uid == user.uid:
        return True
    if info.st_gid == user.gid and info.st_mode & stat.S_IRGRP:
        return True
    return bool(info.st_mode & stat.S_IROTH)


def assert_not_for(user: OsUser, directory: Path, secret: str) -> None:
    """No file in ``directory`` that ``user`` owns or can read holds ``secret``."""
    for path in directory.iterdir():
        if path.is_file() and not path.is_symlink() and readable_by(path, user):
            assert secret.encode() not in path.read_bytes(), f"{user.name} can read {path}"


# --- ci export never writes into a file it does not own ---


@pytest.mark.parametrize(
    ("fmt", "option"),
    [("dotenv", "--output"), ("shell", "-o"), ("json", "--output"), ("gitlab", "--dotenv-file")],
)
def test_export_refuses_another_users_world_writable_file(
    kb_env: KbEnv, other_user: OsUser, fmt: str, option: str
) -> None:
    file_profile(kb_env, KEY)
    out = kb_env.base / "out"
    out.mkdir()
    target = out / "ci.env"
    target.write_text("OTHER=kept\n")
    os.chown(target, other_user.uid, other_user.gid)
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
        result = run(
            ["keybroker", "ci", "export", "k", "--format", "gitlab", "--dotenv-file", str(target)],
            kb_env,
        )
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


def test_export_into_a_directory_others_can_write_is_refused(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    shared = kb_env.base / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # no sticky bit: anyone could swap the file after it is written
    target = shared / "ci.env"
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "dotenv", "-o", str(target)], kb_env
    )
    assert_fails(result, 2, "not a safe place for a key file", secrets=[KEY])
    assert list(shared.iterdir()) == []
    shared.chmod(0o1777)  # sticky, like /tmp: others cannot rename or delete our file
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "dotenv", "-o", str(target)], kb_env
    )
    assert result.code == 0, result
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


# --- --format dotenv reads back unchanged in python-dotenv ---


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
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "dotenv", "-o", str(target)], kb_env
    )
    assert result.code == 0, result
    import dotenv  # noqa: PLC0415

    assert dotenv.dotenv_values(target) == {"ANTHROPIC_AUTH_TOKEN": NASTY}


def test_gitlab_format_stays_plain(kb_env: KbEnv) -> None:
    file_profile(kb_env, NASTY)
    target = kb_env.base / "report.env"
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "gitlab", "--dotenv-file", str(target)],
        kb_env,
    )
    assert result.code == 0, result
    assert target.read_text() == f"ANTHROPIC_AUTH_TOKEN={NASTY}\n"  # GitLab reads it literally


#: what validate_key lets through: printable ASCII without whitespace
KEY_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(KEY_TEXT)
@settings(max_examples=500)
def test_dotenv_quote_round_trip_property(value: str) -> None:
    assert dotenv_read(output.dotenv([("K", value)])) == {"K": value}


@given(value=KEY_TEXT.filter(lambda v: len(v) >= 8))
@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_dotenv_round_trip_through_the_executable(kb_env: KbEnv, value: str) -> None:
    file_profile(kb_env, value)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "--no-cache"], kb_env)
    assert result.code == 0, result
    assert dotenv_read(result.stdout) == {"ANTHROPIC_AUTH_TOKEN": value}
