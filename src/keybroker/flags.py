"""The helper flags, declared once: ``keybroker get`` and ``keybroker-<source>``.

click's options (:mod:`keybroker.cli.get`, and the commands that share ``--no-cache``,
``--config``, ``--debug``), the standalone helpers' argparse parser
(:mod:`keybroker.cli.standalone`), the fast path's whitelist (:mod:`keybroker.fastpath.argv`)
and the full path's defaults (:mod:`keybroker.cli.entry`) are all derived from :data:`FLAGS`.

A flag is *fast* when the fast path may answer a command line that carries it; any other flag
sends the call to the full path, whose parser handles it and says what is wrong. Plain tuples,
no imports: this module is on the hit path (no click, argparse, json or dataclasses).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any

GET = "get"
STANDALONE = "standalone"


#: What a flag takes: nothing (a switch), a value, or the path of an existing file.
SWITCH, VALUE, FILE = "switch", "value", "file"


class Flag:
    """One flag: its spelling, its destination name, what it takes (:data:`SWITCH`,
    :data:`VALUE`, :data:`FILE`), its help line, the helpers that take it, and whether the
    fast path may serve a command line that carries it."""

    __slots__ = ("dest", "fast", "help", "helpers", "kind", "name")

    def __init__(
        self, name: str, dest: str, kind: str, help: str, helpers: tuple[str, ...], fast: bool
    ) -> None:
        self.name = name
        self.dest = dest
        self.kind = kind
        self.help = help
        self.helpers = helpers
        self.fast = fast

    @property
    def takes_value(self) -> bool:
        return self.kind != SWITCH

    @property
    def default(self) -> Any:
        """What the command line means without this flag."""
        return None if self.takes_value else False

    def __repr__(self) -> str:
        return f"Flag({self.name!r})"


FLAGS = (
    Flag(
        "--profile",
        "profile",
        VALUE,
        "Start from this profile of the config file.",
        (STANDALONE,),
        fast=True,
    ),
    Flag(
        "--config",
        "config",
        FILE,
        "Config file (default: KEYBROKER_CONFIG or the user config).",
        (GET, STANDALONE),
        fast=True,
    ),
    Flag(
        "--reject-repeats",
        "reject_repeats",
        SWITCH,
        "Treat a quick second call from the same caller as a refused key.",
        (GET, STANDALONE),
        fast=True,
    ),
    Flag(
        "--no-cache",
        "no_cache",
        SWITCH,
        "Bypass the shared cache for this call.",
        (GET, STANDALONE),
        fast=False,
    ),
    Flag(
        "--max-age",
        "max_age",
        VALUE,
        "Reuse a key without known expiry this long (90s, 5m, 1h).",
        (GET, STANDALONE),
        fast=False,
    ),
    Flag(
        "--debug",
        "debug",
        SWITCH,
        "Show tracebacks (secrets scrubbed).",
        (GET, STANDALONE),
        fast=False,
    ),
)

#: Flags every parser has that are not in the table (help and version are the parser's own).
PARSER_FLAGS = ("--help", "--version")


def flag(name: str) -> Flag:
    """The declaration of ``name`` (``"--no-cache"``)."""
    for item in FLAGS:
        if item.name == name:
            return item
    raise KeyError(name)


def of(helper: str) -> tuple[Flag, ...]:
    """The flags ``helper`` (:data:`GET` or :data:`STANDALONE`) takes, in declaration order."""
    return tuple(item for item in FLAGS if helper in item.helpers)


def defaults(helper: str) -> dict[str, Any]:
    """``dest → default`` for every flag of ``helper``: what a command line without it means."""
    return {item.dest: item.default for item in of(helper)}


def full_path_only(helper: str) -> tuple[str, ...]:
    """Flags whose presence sends the call to the full path (names without dashes)."""
    names = [f.name for f in of(helper) if not f.fast] + list(PARSER_FLAGS)
    return tuple(name[2:] for name in names)
