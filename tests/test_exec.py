"""``keybroker exec``: environment (never argv), exit codes, signals, and streamed masking."""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from keybroker.cli.exec_cmd import exit_status
from keybroker.redact import Masker
from tests.conftest import KbEnv
from tests.kb import assert_fails, exe, file_profiles, run

VALUE = "sk-exec-5e4d3c2b1a-'$\"x"
OTHER = "sk-exec-other-0a9b8c"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
PY = sys.executable


@pytest.fixture
def exec_env(kb_env: KbEnv) -> KbEnv:
    file_profiles(kb_env, k=("key.txt", VALUE), o=("other.txt", OTHER))
    return kb_env


def test_value_in_child_environment(exec_env: KbEnv) -> None:
    code = "import os,sys; sys.stdout.write(os.environ['ANTHROPIC_AUTH_TOKEN'])"
    result = run(["keybroker", "exec", "k", "--", PY, "-c", code], exec_env)
    assert result.code == 0, result
    assert result.out == VALUE.encode()
    assert result.err == b""


def test_several_variables(exec_env: KbEnv) -> None:
    code = "import os,sys; sys.stdout.write(os.environ['A'] + ' ' + os.environ['B'])"
    result = run(
        ["keybroker", "exec", "k", "--var", "A", "--var", "B=o", "--", PY, "-c", code], exec_env
    )
    assert result.code == 0, result
    assert result.out == f"{VALUE} {OTHER}".encode()


@pytest.mark.skipif(not os.path.exists("/proc/self/cmdline"), reason="needs /proc")
def test_value_never_in_argv(exec_env: KbEnv) -> None:
    # the child reads its own argv and keybroker's (its parent's) from /proc
    code = textwrap.dedent("""
        import os, sys
        own = open('/proc/self/cmdline', 'rb').read()
        parent = open(f'/proc/{os.getppid()}/cmdline', 'rb').read()
        secret = os.environ['ANTHROPIC_AUTH_TOKEN'].encode()
        sys.stdout.write('argv-clean' if secret not in own + parent else 'LEAK')
    """)
    result = run(["keybroker", "exec", "k", "--", PY, "-c", code], exec_env)
    assert result.code == 0, result
    assert result.out == b"argv-clean"


@pytest.mark.parametrize("code", [0, 3, 42, 255])
def test_exit_code_passes_through(exec_env: KbEnv, code: int) -> None:
    result = run(["keybroker", "exec", "k", "--", "/bin/sh", "-c", f"exit {code}"], exec_env)
    assert result.code == code, result
    assert result.out == b""
    assert result.err == b""


def test_child_killed_by_signal_gives_128_plus_n(exec_env: KbEnv) -> None:
    result = run(["keybroker", "exec", "k", "--", "/bin/sh", "-c", "kill -KILL $$"], exec_env)
    assert result.code == 128 + signal.SIGKILL, result


def test_command_not_found_is_127(exec_env: KbEnv) -> None:
    result = run(["keybroker", "exec", "k", "--", "/nonexistent/cmd"], exec_env)
    assert result.code == 127, result
    assert result.err == b"keybroker: exec: command not found: /nonexistent/cmd\n"


def test_source_failure_does_not_run_the_command(exec_env: KbEnv) -> None:
    marker = exec_env.base / "ran"
    (exec_env.base / "key.txt").unlink()
    result = run(["keybroker", "exec", "k", "--", "/bin/sh", "-c", f"touch {marker}"], exec_env)
    assert_fails(result, 5, "key.txt")
    assert not marker.exists()


CHILD = textwrap.dedent("""
    import signal, sys, time
    def on(signum, frame):
        sys.stdout.write(f"got {signal.Signals(signum).name}\\n")
        sys.stdout.flush()
        sys.exit(40 + signum)
    for name in ("SIGINT", "SIGTERM", "SIGHUP"):
        signal.signal(getattr(signal, name), on)
    sys.stdout.write("ready\\n")
    sys.stdout.flush()
    time.sleep(120)
    sys.exit(99)
""")


def _start(env: Mapping[str, str], *args: str) -> subprocess.Popen[bytes]:
    # a new session: no controlling terminal, so forwarding is not left to a terminal
    return subprocess.Popen(
        [exe("keybroker"), "exec", "k", *args, "--", PY, "-c", CHILD],
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )


@pytest.mark.parametrize("signame", ["SIGINT", "SIGTERM", "SIGHUP"])
@pytest.mark.parametrize("mask", [False, True])
def test_signals_are_forwarded(exec_env: KbEnv, signame: str, mask: bool) -> None:
    proc = _start(exec_env, *(["--mask"] if mask else []))
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        signum = getattr(signal, signame)
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert out == f"got {signame}\n".encode()
    assert err == b""
    assert proc.returncode == 40 + signum


def test_forwarded_sigterm_without_handler_gives_143(exec_env: KbEnv) -> None:
    proc = subprocess.Popen(
        [
            exe("keybroker"),
            "exec",
            "k",
            "--",
            PY,
            "-c",
            "import sys,time; print('ready', flush=True); time.sleep(120)",
        ],
        env=dict(exec_env),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert proc.stdout is not None
        assert proc.stdout.readline() == b"ready\n"
        proc.terminate()
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM


# --- --mask ---


SPLIT_WRITER = textwrap.dedent("""
    import os, sys, time
    v = os.environ['ANTHROPIC_AUTH_TOKEN'].encode()
    out, err = sys.stdout.buffer, sys.stderr.buffer
    out.write(b'start ' + v + b' middle ' + v + v + b'\\n'); out.flush()
    for i in range(1, len(v)):            # the value split at every position
        out.write(b'<' + v[:i]); out.flush(); time.sleep(0.01)
        out.write(v[i:] + b'>\\n'); out.flush()
    out.write(v[:5]); out.flush(); time.sleep(0.05)
    out.write(b' not the value\\n'); out.flush()
    err.write(b'err ' + v + b'\\n'); err.flush()
    out.write(b'byte by byte: ')
    for b in v:
        out.write(bytes([b])); out.flush()
    out.write(b'\\nend\\n')
""")


def test_mask_hides_value_split_across_reads(exec_env: KbEnv) -> None:
    result = run(["keybroker", "exec", "k", "--mask", "--", PY, "-c", SPLIT_WRITER], exec_env)
    assert result.code == 0, result
    assert VALUE.encode() not in result.out
    assert VALUE.encode() not in result.err
    lines = result.stdout.splitlines()
    assert lines[0] == "start *** middle ******"
    assert lines[1 : len(VALUE)] == ["<***>"] * (len(VALUE) - 1)
    assert lines[len(VALUE)] == VALUE[:5] + " not the value"
    assert lines[-2:] == ["byte by byte: ***", "end"]
    assert result.stderr == "err ***\n"


def test_mask_covers_every_exported_variable(exec_env: KbEnv) -> None:
    code = "import os; print(os.environ['A'], os.environ['B'])"
    result = run(
        ["keybroker", "exec", "k", "--var", "A", "--var", "B=o", "--mask", "--", PY, "-c", code],
        exec_env,
    )
    assert result.code == 0, result
    assert result.out == b"*** ***\n"


def test_without_mask_output_is_untouched(exec_env: KbEnv) -> None:
    code = "import os; print(os.environ['ANTHROPIC_AUTH_TOKEN'])"
    result = run(["keybroker", "exec", "k", "--", PY, "-c", code], exec_env)
    assert result.out == VALUE.encode() + b"\n"


def test_mask_keeps_exit_code(exec_env: KbEnv) -> None:
    script = 'printf "%s" "$ANTHROPIC_AUTH_TOKEN"; exit 9'
    result = run(["keybroker", "exec", "k", "--mask", "--", "/bin/sh", "-c", script], exec_env)
    assert result.code == 9, result
    assert result.out == b"***"


# --- the masker itself ---


@settings(max_examples=300, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=12),
    parts=st.lists(st.binary(max_size=8), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
)
def test_masker_equals_replace_for_any_chunking(
    secret: bytes, parts: list[bytes], cuts: list[int]
) -> None:
    text = secret.join(parts) if parts else secret
    expected = text.replace(secret, b"***")
    masker = Masker([secret])
    bounds = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    out = b"".join(masker.feed(text[a:b]) for a, b in itertools.pairwise(bounds))
    out += masker.flush()
    assert out == expected


def test_masker_overlapping_prefix() -> None:
    masker = Masker([b"abab"])
    assert masker.feed(b"xaba") == b"x"
    assert masker.feed(b"bab") == b"***"
    assert masker.flush() == b"ab"


def test_exit_status() -> None:
    assert exit_status(0) == 0
    assert exit_status(5) == 5
    assert exit_status(-signal.SIGTERM) == 143


@settings(max_examples=300, deadline=None)
@given(
    secret=st.binary(min_size=1, max_size=12),
    parts=st.lists(st.binary(max_size=8), max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=10),
    streams=st.lists(st.integers(min_value=0, max_value=1), min_size=12, max_size=12),
)
def test_masker_across_two_streams_equals_replace_of_the_merged_log(
    secret: bytes, parts: list[bytes], cuts: list[int], streams: list[int]
) -> None:
    """Pieces arrive from stdout and stderr in turn: the merged log is masked as one text."""
    text = secret.join(parts) if parts else secret
    masker = Masker([secret])
    bounds = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    written: list[tuple[int, bytes]] = []
    for n, (a, b) in enumerate(itertools.pairwise(bounds)):
        written += masker.feed_from(streams[n % len(streams)], text[a:b])
    written += masker.flush_all()
    assert b"".join(data for _, data in written) == text.replace(secret, b"***")


def test_header_puts_the_key_in_anthropic_custom_headers_only(kb_env: KbEnv) -> None:
    """Issue 15: the seed's Vertex option — Google credentials stay in Authorization, the
    proxy key goes in Proxy-Authorization through ANTHROPIC_CUSTOM_HEADERS for the session."""
    kb_env.write_config('[profiles.k]\nsource = "env"\nvar = "K"\n')
    env = dict(kb_env, K="sk-exec-header-5a6b")
    script = 'printf "%s|%s" "$ANTHROPIC_CUSTOM_HEADERS" "${ANTHROPIC_AUTH_TOKEN-unset}"'
    result = run(
        [
            "keybroker",
            "exec",
            "k",
            "--header",
            "Proxy-Authorization: Bearer {}",
            "--",
            "sh",
            "-c",
            script,
        ],
        env,
    )
    assert result.code == 0, result
    assert result.out == b"Proxy-Authorization: Bearer sk-exec-header-5a6b|unset"
    both = run(
        [
            "keybroker",
            "exec",
            "k",
            "--header",
            "X-Proxy-Key: {}",
            "--var",
            "OTHER",
            "--",
            "sh",
            "-c",
            'printf "%s|%s" "$ANTHROPIC_CUSTOM_HEADERS" "$OTHER"',
        ],
        env,
    )
    assert both.out == b"X-Proxy-Key: sk-exec-header-5a6b|sk-exec-header-5a6b", both
    bad = run(["keybroker", "exec", "k", "--header", "no colon", "--", "true"], env)
    assert_fails(bad, 2, "expected 'Name: value'")
