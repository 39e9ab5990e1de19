"""``keybroker exec``: the command's own options reach it, and ``--mask`` hides the key.

``exec PROFILE sh -c …`` without ``--`` passes ``-c`` and everything after the command's name
to the command (issue 17). ``--mask`` hides the key's encoded forms too, and a value whose
halves go to stdout and stderr (issue 12).
"""

from __future__ import annotations

import base64
import json
import shlex
import sys
import urllib.parse

import pytest

from tests.conftest import KbEnv
from tests.kb import file_profile, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX")

KEY = "sk-gap-" + "7Qm2xR9vL4pZ8kW1"


# --- exec PROFILE CMD -c … without -- ---


def test_exec_without_double_dash_passes_options_to_the_command(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    result = run(
        ["keybroker", "exec", "k", "sh", "-c", 'printf "hi %s" "$ANTHROPIC_AUTH_TOKEN"'], kb_env
    )
    assert result.code == 0, result
    assert result.out == f"hi {KEY}".encode()
    # keybroker's options before PROFILE (or before COMMAND), the command's after its name
    script = 'printf "%s %s" "$0" "$ANTHROPIC_AUTH_TOKEN"'
    result = run(["keybroker", "exec", "--mask", "k", "sh", "-c", script, "--mask"], kb_env)
    assert result.code == 0, result
    assert result.out == b"--mask ***"


def test_exec_with_double_dash_still_works(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    result = run(
        ["keybroker", "exec", "k", "--var", "T", "--mask", "--", "sh", "-c", 'printf "%s" "$T"'],
        kb_env,
    )
    assert result.code == 0, result
    assert result.out == b"***"
    result = run(["keybroker", "exec", "k", "--bogus", "sh"], kb_env)
    assert result.code == 2, result
    assert b"No such option" in result.err


# --- exec --mask: encoded forms, and a value split across stdout and stderr ---

#: a key whose JSON, URL and base64 forms all differ from it
ODD = 'sk-m/a+s"k\\x~=9Zq'


def test_mask_hides_a_value_split_between_stdout_and_stderr(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    split = (
        'v=$ANTHROPIC_AUTH_TOKEN; a=${v%????????}; b=${v#"$a"}; '
        'printf "out:%s" "$a"; printf "%s:err" "$b" >&2'
    )
    # as a CI log sees it: both streams into one pipe
    command = f"exec keybroker exec --mask k sh -c {shlex.quote(split)} 2>&1"
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
    code = (
        "import base64, json, os, urllib.parse as u\n"
        "v = os.environ['ANTHROPIC_AUTH_TOKEN']\n"
        "b = v.encode()\n"
        "print(json.dumps(v)[1:-1]); print(u.quote(v, safe='')); print(u.quote_plus(v))\n"
        "print(base64.b64encode(b).decode()); print(base64.urlsafe_b64encode(b).decode())\n"
        "print(base64.b64encode(b).decode().rstrip('='))\n"
        "import sys; sys.stderr.write(u.quote_plus(v) + '\\n')\n"
    )
    result = run(["keybroker", "exec", "--mask", "k", sys.executable, "-c", code], kb_env)
    assert result.code == 0, result
    raw = ODD.encode()
    forms = [
        json.dumps(ODD)[1:-1],
        urllib.parse.quote(ODD, safe=""),
        urllib.parse.quote_plus(ODD),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]
    for form in forms:
        assert form.encode() not in result.out + result.err, form
    assert result.out == b"***\n" * 6, result
    assert result.err == b"***\n", result
