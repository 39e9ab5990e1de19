"""The ``keybroker`` executable: ``get`` takes the fast path, everything else goes to click."""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "get":
        from keybroker.cli.fastget import parse, run_get  # noqa: PLC0415

        opts = parse(args[1:])
        if opts is not None:
            from keybroker.cli.fastget import try_hit  # noqa: PLC0415

            key, why_not = try_hit(opts)
            if key is not None:
                from keybroker.cli.runner import write_stdout  # noqa: PLC0415

                return write_stdout(key + "\n")
            return run_get(opts, why_not)
    from keybroker.cli.app import cli  # noqa: PLC0415

    return int(cli.main(args=args, prog_name="keybroker", standalone_mode=True) or 0)


if __name__ == "__main__":
    sys.exit(main())
