"""The executables: ``keybroker`` and ``keybroker-<source>``.

A plain cache hit is answered by :mod:`keybroker.fastpath` alone; everything else goes to the
full path (``get``'s resolve, the standalone parser, or the click group) together with what
the fast path found (:class:`keybroker.fastpath.main.Probe`, which carries the time the call
began, so the whole call has one deadline). This module imports only ``sys`` and
``time`` at the top: it runs on every helper call.

The console scripts (``console_*``) end a helper call with :func:`leave`: once the answer is
written and flushed, the process exits without tearing the interpreter down.
"""

from __future__ import annotations

import sys
import time

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import NoReturn


def main(argv: list[str] | None = None) -> int:
    """``keybroker …``: ``get`` through the fast path, every other command through click."""
    args = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    if args and args[0] == "get":
        from keybroker.fastpath.argv import parse_get  # noqa: PLC0415

        opts = parse_get(args[1:])
        if opts is not None:
            from keybroker.fastpath.main import print_key, try_get  # noqa: PLC0415

            probe = try_get(opts, started)
            if probe.value is not None:
                return print_key(probe.value)
            from keybroker.cli.fastget import run_get  # noqa: PLC0415
            from keybroker.flags import GET, defaults  # noqa: PLC0415

            return run_get({**defaults(GET), **opts}, probe)
    from keybroker.deadline import mark_call_start  # noqa: PLC0415

    mark_call_start(started)
    from keybroker.cli.app import cli  # noqa: PLC0415

    return int(cli.main(args=args, prog_name="keybroker", standalone_mode=True) or 0)


def standalone(source: str, argv: list[str] | None = None) -> int:
    """``keybroker-<source> …``."""
    args = sys.argv[1:] if argv is None else argv
    started = time.monotonic()
    from keybroker.fastpath.main import print_key, try_standalone  # noqa: PLC0415

    probe = try_standalone(source, args, started)
    if probe.value is not None:
        return print_key(probe.value)
    from keybroker.cli.standalone import run_full  # noqa: PLC0415

    return run_full(source, args, probe)


def vault_main() -> int:
    return standalone("vault")


def aws_main() -> int:
    return standalone("aws")


def keychain_main() -> int:
    return standalone("keychain")


def oidc_main() -> int:
    return standalone("oidc")


def may_leave_at_once() -> bool:
    """Whether nothing is left for the interpreter's teardown to do that matters.

    Only after a helper call (``get`` or a standalone helper): the full CLI (click) runs
    commands that may hold buffered files or start processes, so it exits the usual way; and
    never while a non-daemon thread is alive (Python would wait for it).
    """
    if "click" in sys.modules:
        return False
    threading = sys.modules.get("threading")
    if threading is None:
        return True
    main_thread = threading.main_thread()
    return not any(t is not main_thread and not t.daemon for t in threading.enumerate())


def leave(code: int) -> NoReturn:
    """Exit with ``code`` as soon as stdout and stderr are flushed, skipping the teardown.

    Why: a cold call imports hvac/requests (or boto3) and tearing those modules down at exit
    (freeing every object, a last garbage collection) is ~9% of the call, time Claude Code
    waits for and nobody needs: every file keybroker writes is written and closed before (the
    cache's temp file + rename), locks are descriptors the kernel releases, and keybroker
    registers no exit handler. Budget: a cold Vault call ≤ 1.1× a plain hvac script
    (docs/performance.md). When :func:`may_leave_at_once` says no, or a flush fails, the usual
    ``sys.exit`` runs instead (the fallback tests/test_exit.py checks).
    """
    if may_leave_at_once():
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except (OSError, ValueError):
            sys.exit(code)  # let Python report and exit as it always does
        import os  # noqa: PLC0415 - already loaded by the interpreter; only named here

        os._exit(code)
    sys.exit(code)


def console_main() -> NoReturn:
    """The ``keybroker`` console script."""
    leave(main())


def console_vault() -> NoReturn:
    leave(vault_main())


def console_aws() -> NoReturn:
    leave(aws_main())


def console_keychain() -> NoReturn:
    leave(keychain_main())


def console_oidc() -> NoReturn:
    leave(oidc_main())


if __name__ == "__main__":
    leave(main())
