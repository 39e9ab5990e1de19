"""Command lines the fast path accepts: a whitelist; anything else goes to the full path.

``keybroker get PROFILE`` with ``--config F`` / ``--reject-repeats``; ``keybroker-<source>``
with ``--profile P``, ``--config F`` and ``--name value`` / ``--name=value`` pairs (the
source's settings). Help, ``--version``, ``--no-cache``, ``--debug``, ``--max-age``, repeated
or unknown flags, booleans: the full path's parser handles them and says what is wrong.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any

#: ``keybroker get`` flags that take a value / that are plain switches the fast path honours.
GET_VALUE_FLAGS = ("--config",)
GET_SWITCHES = ("--reject-repeats",)


def parse_get(argv: list[str]) -> dict[str, Any] | None:
    """``{"profile", "config", "reject_repeats"}`` for a plain ``get``, else None."""
    opts: dict[str, Any] = {"profile": None, "config": None, "reject_repeats": False}
    args = iter(argv)
    for arg in args:
        if arg in GET_SWITCHES:
            opts["reject_repeats"] = True
        elif arg in GET_VALUE_FLAGS:
            value = next(args, None)
            if value is None or opts["config"] is not None:
                return None
            opts["config"] = value
        elif arg.startswith("--config="):
            if opts["config"] is not None:
                return None
            opts["config"] = arg.partition("=")[2]
        elif arg.startswith("-") or opts["profile"] is not None:
            return None
        else:
            opts["profile"] = arg
    return opts if opts["profile"] and opts["config"] != "" else None


def parse_standalone(argv: list[str]) -> dict[str, str] | None:
    """``--flag value`` pairs (flag names without dashes), or None for anything else."""
    given: dict[str, str] = {}
    args = iter(argv)
    for arg in args:
        if not arg.startswith("--") or arg == "--" or len(arg) == 2:
            return None
        name, eq, value = arg[2:].partition("=")
        if not eq:
            nxt = next(args, None)
            if nxt is None or nxt.startswith("-"):
                return None
            value = nxt
        if name in given or name in ("help", "version", "no-cache", "debug", "max-age"):
            return None
        given[name] = value
    return given


def standalone_key(source: str, given: dict[str, str]) -> str:
    """The index slot of a standalone command line (flags sorted; ``config`` excluded)."""
    items = sorted((k, v) for k, v in given.items() if k != "config")
    return source + "\0" + "\0".join(f"{k}={v}" for k, v in items)
