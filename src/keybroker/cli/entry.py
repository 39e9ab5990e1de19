"""The ``keybroker`` executable: ``get`` takes the fast path, everything else goes to click.

A cache hit of ``keybroker get PROFILE`` is answered from here through :mod:`keybroker.hot`
alone; this module therefore imports nothing but ``sys`` at the top.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any


def parse_get(argv: list[str]) -> dict[str, Any] | None:
    """The options of ``get``, or None when click should handle the command line."""
    opts: dict[str, Any] = {"profile": None, "no_cache": False, "debug": False}
    opts.update({"config": None, "max_age": None, "reject_repeats": False})
    args = iter(argv)
    for arg in args:
        if arg == "--no-cache":
            opts["no_cache"] = True
        elif arg == "--debug":
            opts["debug"] = True
        elif arg == "--reject-repeats":
            opts["reject_repeats"] = True
        elif arg in ("--config", "--max-age"):
            value = next(args, None)
            if value is None:
                return None
            opts[arg[2:].replace("-", "_")] = value
        elif arg.startswith(("--config=", "--max-age=")):
            key, _, value = arg[2:].partition("=")
            opts[key.replace("-", "_")] = value
        elif arg.startswith("-") or opts["profile"] is not None:
            return None
        else:
            opts["profile"] = arg
    return opts if opts["profile"] else None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] == "get":
        opts = parse_get(args[1:])
        if opts is not None:
            from keybroker.hot import try_get  # noqa: PLC0415

            key, why_not = try_get(opts)
            if key is not None:
                try:
                    sys.stdout.write(key + "\n")
                    sys.stdout.flush()
                except OSError:
                    return 1  # stdout closed: nothing was promised to anyone
                return 0
            from keybroker.cli.fastget import run_get  # noqa: PLC0415

            return run_get(opts, why_not)
    from keybroker.cli.app import cli  # noqa: PLC0415

    return int(cli.main(args=args, prog_name="keybroker", standalone_mode=True) or 0)


if __name__ == "__main__":
    sys.exit(main())
