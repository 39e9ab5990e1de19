"""``keybroker exec PROFILE -- CMD…``: run a command with the key in its environment.

The value goes into the child's environment only, never into its argv (which every user of
the machine can read in ``ps``). keybroker stays the parent so that it can forward signals
and return the child's exit status (128+N when a signal ended it), which makes it safe to put
in front of a CI step or a service manager. With ``--mask`` the child's stdout and stderr go
through keybroker, which replaces the value with ``***`` as the bytes stream by, including
when the value is split across reads.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import sys
import threading
from collections.abc import Sequence
from typing import IO, Any

import click

from keybroker.claude.render import custom_headers, parse_header
from keybroker.cli.ci import parse_vars
from keybroker.cli.common import resolve_profiles
from keybroker.cli.errors import config_option, debug_option, handles_errors, no_cache_option
from keybroker.redact import Masker, emit, sensitive

#: Signals passed on to the child. SIGINT and SIGQUIT from a terminal reach the whole
#: foreground process group (the child included) and are then not sent a second time.
FORWARDED = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2", "SIGWINCH")
_TTY_SIGNALS = ("SIGINT", "SIGQUIT")
_CHUNK = 65536


def _pump(sources: Sequence[tuple[IO[bytes], int]], masker: Masker) -> None:
    """Copy the child's pipes to our fds, masked, in the order the bytes arrive."""
    targets = {}
    with selectors.DefaultSelector() as selector:
        for stream, (source, fd) in enumerate(sources):
            selector.register(source.fileno(), selectors.EVENT_READ, stream)
            targets[stream] = fd
        live = len(sources)
        while live:
            for key, _ in selector.select():
                try:
                    chunk = os.read(key.fd, _CHUNK)
                except InterruptedError:  # pragma: no cover - PEP 475 retries
                    continue
                if not chunk:
                    selector.unregister(key.fd)
                    live -= 1
                    continue
                for stream, data in masker.feed_from(key.data, chunk):
                    _write_all(targets[stream], data)
    for stream, data in masker.flush_all():
        _write_all(targets[stream], data)
    for source, _ in sources:
        source.close()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        try:
            written = os.write(fd, view)
        except BrokenPipeError:
            return  # our reader went away: keep draining the child so it does not block
        view = view[written:]


def _in_foreground_group() -> bool:
    """True if we (and so the child) are the terminal's foreground process group."""
    if sys.platform == "win32":  # no process groups or /dev/tty
        return False
    try:
        fd = os.open("/dev/tty", os.O_RDONLY | os.O_NOCTTY)
    except OSError:
        return False
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False
    finally:
        os.close(fd)


def _forward_signals(proc: subprocess.Popen[bytes]) -> None:
    def handler(signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if name in _TTY_SIGNALS and _in_foreground_group():
            return  # the terminal already sent it to the child, which shares our group
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):  # it exited meanwhile
                proc.send_signal(signum)

    for name in FORWARDED:
        signum = getattr(signal, name, None)
        if signum is not None:
            signal.signal(signum, handler)


def exit_status(returncode: int) -> int:
    """The shell convention: the child's code, or 128+N if signal N ended it."""
    return 128 - returncode if returncode < 0 else returncode


def run_child(argv: Sequence[str], env: dict[str, str], mask_values: list[str] | None) -> int:
    """Start the child, forward signals, (mask its output), return its exit status."""

    piped = subprocess.PIPE if mask_values is not None else None
    try:
        proc = subprocess.Popen(list(argv), env=env, stdout=piped, stderr=piped)
    except FileNotFoundError:
        emit(f"keybroker: exec: command not found: {argv[0]}")
        return 127
    except PermissionError:
        emit(f"keybroker: exec: permission denied: {argv[0]}")
        return 126
    except OSError as exc:
        emit(f"keybroker: exec: cannot run {argv[0]}: {exc.strerror}")
        return 126
    _forward_signals(proc)
    pumps: list[threading.Thread] = []
    if mask_values is not None:
        assert proc.stdout is not None
        assert proc.stderr is not None
        sources = [(proc.stdout, sys.stdout.fileno()), (proc.stderr, sys.stderr.fileno())]
        masker = Masker.for_values(mask_values)
        pump = threading.Thread(target=_pump, args=(sources, masker), daemon=True)
        pump.start()
        pumps.append(pump)
    returncode = proc.wait()
    for pump in pumps:
        pump.join()
    return exit_status(returncode)


class _ExecCommand(click.Command):
    """``exec``'s parser: keybroker's options go before COMMAND, ``--`` is optional.

    ``keybroker exec P sh -c 'echo hi'`` must not read ``-c`` as keybroker's option. So
    the arguments are split once, before click sees them: keybroker's own options are taken
    before PROFILE and between PROFILE and the first word of COMMAND (or ``--``); from that
    word on, everything belongs to COMMAND, options included.
    """

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, split_command(args, self.get_params(ctx)))


def split_command(args: Sequence[str], params: Sequence[click.Parameter]) -> list[str]:
    """``args`` rearranged as ``[OPTIONS…] PROFILE -- COMMAND…`` (see :class:`_ExecCommand`)."""
    takes_value: dict[str, bool] = {}
    for param in params:
        if isinstance(param, click.Option):
            for name in (*param.opts, *param.secondary_opts):
                takes_value[name] = not param.is_flag and not param.count
    options: list[str] = []
    positional: list[str] = []
    command: list[str] | None = None
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            command = list(args[i + 1 :])
            break
        if arg.startswith("-") and arg != "-":
            options.append(arg)
            if takes_value.get(arg) and i + 1 < len(args):
                options.append(args[i + 1])  # --var NAME (not --var=NAME)
                i += 1
        elif positional:
            command = list(args[i:])  # the first word after PROFILE starts COMMAND
            break
        else:
            positional.append(arg)
        i += 1
    return options + positional + (["--", *command] if command is not None else [])


@click.command("exec", cls=_ExecCommand)
@click.argument("profile")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option(
    "--var",
    "variables",
    multiple=True,
    metavar="NAME[=PROFILE]",
    help="Variable to set (default ANTHROPIC_AUTH_TOKEN); NAME=PROFILE for another "
    "profile; repeatable.",
)
@click.option(
    "--header",
    "header_specs",
    multiple=True,
    metavar="'NAME: TEMPLATE'",
    help="Put PROFILE's key in ANTHROPIC_CUSTOM_HEADERS ('{}' is the key), e.g. "
    "'Proxy-Authorization: Bearer {}'; repeatable. Without --var no other "
    "variable is set.",
)
@click.option(
    "--mask", is_flag=True, help="Replace the value with *** in the command's stdout and stderr."
)
@no_cache_option
@config_option
@debug_option
@handles_errors
def exec_(
    profile: str,
    command: tuple[str, ...],
    variables: tuple[str, ...],
    header_specs: tuple[str, ...],
    mask: bool,
    no_cache: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """Run COMMAND with PROFILE's key in its environment (never in its arguments).

    \b
    keybroker exec litellm -- claude -p "hello"
    keybroker exec litellm --var OPENAI_API_KEY --mask -- ./run-tests.sh
    keybroker exec --mask litellm sh -c 'make test'

    keybroker's options go before COMMAND; from COMMAND's first word on (or after --),
    every argument is COMMAND's, so "-c" above reaches sh.

    With --header the key goes into ANTHROPIC_CUSTOM_HEADERS for a Claude Code session (the
    Vertex option with Google credentials in Authorization and the proxy key in
    Proxy-Authorization); it is read once: no rotation inside that session.

    Signals are passed on to COMMAND and its exit status is returned (128+N for signal N).
    """
    headers = [parse_header(spec) for spec in header_specs]
    pairs = parse_vars(profile, variables) if variables or not headers else []
    env, outcomes = resolve_profiles(
        [profile, *(p for _, p in pairs)], config_path, no_cache=no_cache, debug=debug
    )
    child_env = dict(env)  # os.environ, plus KEYBROKER_CONFIG when --config was given
    values: list[str] = []
    for name, prof in pairs:
        value = outcomes[prof].value
        sensitive(value)
        child_env[name] = value
        values.append(value)
    if headers:
        value = outcomes[profile].value
        sensitive(value)
        child_env["ANTHROPIC_CUSTOM_HEADERS"] = custom_headers(headers, value)
        values.append(value)
    raise SystemExit(run_child(command, child_env, values if mask else None))
