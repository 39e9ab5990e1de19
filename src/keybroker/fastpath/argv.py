"""Command lines the fast path accepts: a whitelist; anything else goes to the full path.

``keybroker get PROFILE`` and ``keybroker-<source>`` with the flags :mod:`keybroker.flags`
marks fast (``--config F``, ``--reject-repeats``, ``--profile P``) and, for a standalone
helper, ``--name value`` / ``--name=value`` pairs (the source's settings). Help,
``--version``, the flags the table sends to the full path (``--no-cache``, ``--debug``,
``--max-age``), repeated or unknown flags, booleans: the full path's parser handles them and
says what is wrong.
"""

from __future__ import annotations

from keybroker import flags

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any

#: a standalone command line with one of these (names without dashes) is the full path's
STANDALONE_FULL_PATH = flags.full_path_only(flags.STANDALONE)


def parse_get(argv: list[str]) -> dict[str, Any] | None:
    """The profile and the fast flags' values (by ``dest``) for a plain ``get``, else None."""
    fast = [f for f in flags.of(flags.GET) if f.fast]
    opts: dict[str, Any] = {"profile": None, **{f.dest: f.default for f in fast}}
    given: set[str] = set()
    args = iter(argv)
    for arg in args:
        name, eq, value = arg.partition("=")
        item = next((f for f in fast if f.name == name), None)
        if item is None:
            if arg.startswith("-") or opts["profile"] is not None:
                return None
            opts["profile"] = arg
            continue
        if not item.takes_value:
            if eq:
                return None  # --reject-repeats=x: the full path's parser says what is wrong
            opts[item.dest] = True
            continue
        if not eq:
            nxt = next(args, None)
            if nxt is None:
                return None
            value = nxt
        if item.dest in given or value == "":
            return None
        given.add(item.dest)
        opts[item.dest] = value
    return opts if opts["profile"] else None


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
        if name in given or name in STANDALONE_FULL_PATH:
            return None
        given[name] = value
    return given


def standalone_key(source: str, given: dict[str, str]) -> str:
    """The index slot of a standalone command line (flags sorted; ``config`` excluded)."""
    items = sorted((k, v) for k, v in given.items() if k != "config")
    return source + "\0" + "\0".join(f"{k}={v}" for k, v in items)
