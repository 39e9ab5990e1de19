"""What a person sees on a terminal, and what a pipe gets instead, through a real pty.

Colour only on a terminal (never in pipes; ``NO_COLOR`` and ``TERM=dumb`` respected, red
for failures), and a status line while slow work runs: on a terminal only, redrawn, never
wrapped, erased afterwards, and never under Claude Code or when asked to be quiet.
"""

from __future__ import annotations

import pytest

from tests.conftest import KbEnv
from tests.kb import Result, run

# --- terminals: a real pty for the stream that must look like one ---

COLOUR_VARS = (
    "NO_COLOR",
    "FORCE_COLOR",
    "CLICOLOR_FORCE",
    "CLICOLOR",
    "TERM",
    "KEYBROKER_QUIET",
    "CLAUDECODE",
    "CLAUDE_CODE_ENTRYPOINT",
)


def plain_env(kb_env: KbEnv, **extra: str) -> dict[str, str]:
    """The test env without the runner's colour/quiet/Claude variables, TERM=xterm."""
    env = {k: v for k, v in kb_env.items() if k not in COLOUR_VARS}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def run_tty(
    argv: list[str], env: dict[str, str], on: str, timeout: float = 60, columns: int = 0
) -> Result:
    """Run with ``on`` ("stdout" or "stderr") attached to a pseudo-terminal, the other a pipe.

    What the terminal received is returned in that stream's slot (the pty turns \\n into
    \\r\\n), so a test sees exactly what a person would.
    """
    import os  # noqa: PLC0415
    import pty  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from tests.kb import exe  # noqa: PLC0415

    master, slave = pty.openpty()
    if columns:
        import fcntl  # noqa: PLC0415
        import struct  # noqa: PLC0415
        import termios  # noqa: PLC0415

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, on: slave}
    program = exe(argv[0]) if argv[0].startswith("keybroker") else argv[0]
    proc = subprocess.Popen(
        [program, *argv[1:]],
        env=env,
        stdin=subprocess.PIPE,
        stdout=streams["stdout"],
        stderr=streams["stderr"],
    )
    os.close(slave)
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    piped = proc.stderr if on == "stdout" else proc.stdout
    assert piped is not None
    other = piped.read()
    proc.wait(timeout=timeout)
    reader.join(timeout=10)
    os.close(master)
    assert proc.stdin is not None
    proc.stdin.close()
    out, err = (bytes(received), other) if on == "stdout" else (other, bytes(received))
    return Result(proc.returncode, out, err)


# --- colour: terminals only, never in pipes, NO_COLOR and TERM=dumb respected ---

ESC = b"\x1b["


def test_doctor_colour_only_in_a_terminal(kb_env: KbEnv) -> None:
    piped = run(["keybroker", "doctor", "demo"], plain_env(kb_env))
    assert piped.code == 0, piped
    assert "✓ profile 'demo'" in piped.stdout
    assert ESC not in piped.out + piped.err

    tty = run_tty(["keybroker", "doctor", "demo"], plain_env(kb_env), on="stdout")
    assert tty.code == 0, tty
    assert b"\x1b[32m\xe2\x9c\x93\x1b[0m \x1b[1mprofile 'demo'\x1b[0m" in tty.out, tty  # green ✓

    for quiet in (
        {"NO_COLOR": "1"},
        {"TERM": "dumb"},
        {"CLICOLOR": "0"},
        {"NO_COLOR": "1", "FORCE_COLOR": "1"},
    ):
        tty = run_tty(["keybroker", "doctor", "demo"], plain_env(kb_env, **quiet), on="stdout")
        assert tty.code == 0, (quiet, tty)
        assert "✓ profile 'demo'".encode() in tty.out, (quiet, tty)
        assert ESC not in tty.out, quiet


def test_forced_colour_and_red_failures(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.gone]\nsource = "env"\nvar = "KB_TEST_UNSET_VARIABLE"\n')
    for force in ({"FORCE_COLOR": "1"}, {"CLICOLOR_FORCE": "1"}):
        tty = run_tty(
            ["keybroker", "doctor", "gone"], plain_env(kb_env, TERM="dumb", **force), on="stdout"
        )
        assert tty.code == 1, tty
        assert b"\x1b[31m\xe2\x9c\x97\x1b[0m \x1b[1mprofile 'gone'\x1b[0m" in tty.out, tty
        assert b"\x1b[33mfix:\x1b[0m" in tty.out
        piped = run(["keybroker", "doctor", "gone"], plain_env(kb_env, **force))
        assert b"\x1b[31m\xe2\x9c\x97" in piped.out, piped  # forced means forced
    assert ESC not in run(["keybroker", "doctor", "gone"], plain_env(kb_env)).out


def test_print_token_headings_in_colour_in_a_terminal(kb_env: KbEnv) -> None:
    tty = run_tty(["keybroker", "print-token", "demo"], plain_env(kb_env), on="stdout")
    assert tty.code == 0, tty
    assert b"\x1b[1;36mprofile   \x1b[0m  demo" in tty.out, tty
    piped = run(["keybroker", "print-token", "demo"], plain_env(kb_env))
    assert piped.code == 0, piped
    assert ESC not in piped.out
    assert piped.stdout.startswith("profile     demo\n")
    as_json = run_tty(
        ["keybroker", "print-token", "demo", "--json"], plain_env(kb_env), on="stdout"
    )
    assert ESC not in as_json.out


# --- a status line while slow work runs: on a terminal only, and erased afterwards ---

ERASE = b"\r\x1b[K"
SLOW = '[profiles.slow]\nsource = "command"\ncommand = ["sh", "-c", "sleep 2; echo kb-slow-key"]\n'
#: the status module around a stalling process, in a process of its own (stderr on a pty)
STALL = """
import os, subprocess, sys
from keybroker import progress
with progress.status("waiting for vault.example.com", os.environ):
    subprocess.run(["sh", "-c", "sleep 2"], check=True)
print("done")
"""


def test_status_line_appears_redraws_and_is_erased_on_a_terminal(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env), on="stderr")
    assert result.code == 0, result
    assert result.out == b"done\n"
    assert b"\rkeybroker: waiting for vault.example.com\xe2\x80\xa6 1s\x1b[K" in result.err, result
    assert result.err.endswith(ERASE), result  # nothing left on the terminal
    # after the erase, the line holds nothing: every draw starts with \r and is cleared
    assert result.err.count(b"\rkeybroker: ") >= 1


def test_status_line_on_a_dumb_terminal_pads_instead_of_escapes(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env, TERM="dumb"), on="stderr")
    assert result.code == 0, result
    assert b"\x1b" not in result.err
    drawn = b"keybroker: waiting for vault.example.com\xe2\x80\xa6 1s"
    assert b"\r" + drawn in result.err
    assert result.err.endswith(b"\r" + b" " * len(drawn.decode()) + b"\r"), result


def test_status_line_never_wraps_on_a_narrow_terminal(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env), on="stderr", columns=30)
    assert result.code == 0, result
    # 29 columns: the name is cut, the elapsed time stays
    assert b"\rkeybroker: waiting for va\xe2\x80\xa6 1s\x1b[K" in result.err, result


@pytest.mark.parametrize(
    "quiet", [{"CLAUDECODE": "1"}, {"CLAUDE_CODE_ENTRYPOINT": "cli"}, {"KEYBROKER_QUIET": "1"}]
)
def test_no_status_line_under_claude_code_or_quiet(kb_env: KbEnv, quiet: dict[str, str]) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env, **quiet), on="stderr")
    assert result.code == 0, result
    assert result.err == b"", (quiet, result)


def test_no_status_line_without_a_terminal(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run([python(), "-c", STALL], plain_env(kb_env))
    assert result.code == 0, result
    assert result.err == b"", result
    kb_env.write_config(SLOW)
    got = run(["keybroker", "get", "slow"], plain_env(kb_env))
    assert got.out == b"kb-slow-key\n", got
    assert got.err == b"", got


def test_get_shows_the_status_while_a_source_stalls(kb_env: KbEnv) -> None:
    kb_env.write_config(SLOW)
    result = run_tty(["keybroker", "get", "slow"], plain_env(kb_env), on="stderr")
    assert result.out == b"kb-slow-key\n", result  # stdout untouched: the key and \n only
    assert b"\rkeybroker: waiting for command (sh)\xe2\x80\xa6 1s\x1b[K" in result.err, result
    assert result.err.endswith(ERASE), result
    hit = run_tty(["keybroker", "get", "slow"], plain_env(kb_env), on="stderr")
    assert hit.out == b"kb-slow-key\n"
    assert hit.err == b"", hit  # a cache hit never waits, never draws
