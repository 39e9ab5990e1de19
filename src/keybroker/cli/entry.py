"""The executables: ``keybroker`` and ``keybroker-<source>``.

A plain cache hit is answered by :mod:`keybroker.fastpath` alone; everything else goes to the
full path (``get``'s resolve, the standalone parser, or the click group) together with what
the fast path found (:class:`keybroker.fastpath.main.Probe`, which carries the time the call
began, so the whole call has one deadline). This module imports only ``sys`` and
``time`` at the top: it runs on every helper call.
"""

from __future__ import annotations

import sys
import time


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


if __name__ == "__main__":
    sys.exit(main())
