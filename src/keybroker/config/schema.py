"""Checking a config's tables and keys, with messages that say where and what was meant.

Every error names the file, the line when it can be found, the table and the key, and — for
a misspelt table, key, profile or source — the closest known name ("did you mean …?").
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from keybroker.errors import ConfigError, UsageError
from keybroker.options import OPTION_KEYS, parse_option

PROFILE_META_KEYS = ("source", "description")
#: Top-level tables a config may have.
TOP_LEVEL = ("profiles", "defaults", "mcp")


def suggest(name: str, known: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the closest known name, or ``""``."""
    import difflib  # noqa: PLC0415 - only when a name is wrong

    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


_HEADER = re.compile(r"^\s*\[\s*([^\]]+?)\s*\]\s*(#.*)?$")


def line_of(text: str, table: str | None, key: str | None = None) -> int | None:
    """The 1-based line of ``[table]`` (or of ``key = …`` inside it), when it is written plainly."""
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        header = _HEADER.match(line)
        if header:
            current = re.sub(r"\s*\.\s*", ".", header.group(1)).replace('"', "")
            if key is None and table is not None and current == table:
                return number
            continue
        if key is not None and current == (table or ""):
            name = line.split("=", 1)[0].strip().strip('"')
            if "=" in line and name == key:
                return number
    return None


class Where:
    """A place in a config file, for messages: ``path:line: [table]``."""

    def __init__(self, path: Any, text: str, table: str | None = None) -> None:
        self.path = path
        self.text = text
        self.table = table

    def at(self, key: str | None = None) -> str:
        line = line_of(self.text, self.table, key)
        if line is None and key is not None:
            line = line_of(self.text, self.table)
        place = f"{self.path}:{line}" if line else str(self.path)
        return f"{place}: [{self.table}]" if self.table else place

    def sub(self, table: str) -> Where:
        return Where(self.path, self.text, table)


def check_top_level(data: Mapping[str, Any], where: Where) -> None:
    """Refuse unknown top-level tables (``[profile.x]`` is not ``[profiles.x]``)."""
    for key in data:
        if key not in TOP_LEVEL:
            line = line_of(where.text, key) or next(
                (
                    n
                    for n, text in enumerate(where.text.splitlines(), 1)
                    if text.strip().startswith((f"[{key}.", f"[{key}]", f"{key} ="))
                ),
                None,
            )
            place = f"{where.path}:{line}" if line else str(where.path)
            raise ConfigError(
                f"{place}: unknown top-level table or key '{key}'{suggest(key, TOP_LEVEL)}",
                "profiles go in [profiles.NAME] tables, options in [defaults]",
            )


def validate_settings(
    source_name: str, raw: Mapping[str, Any], where: Where, allow_options: bool = True
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a profile table into (source settings, options), checking every key and type."""
    from keybroker.sources.base import available_sources, coerce, get_source  # noqa: PLC0415

    try:
        source = get_source(source_name)
    except UsageError as exc:
        hint = suggest(source_name, available_sources())
        raise ConfigError(
            f"{where.at('source')} key 'source': {exc.message}{hint}", exc.hint
        ) from None
    known = {s.name: s for s in source.settings}
    settings: dict[str, Any] = {}
    options: dict[str, Any] = {}
    for key, value in raw.items():
        if key in PROFILE_META_KEYS:
            continue
        if key in OPTION_KEYS and allow_options:
            options[key] = parse_option(key, value, where.at(key))
        elif key in known:
            try:
                settings[key] = coerce(known[key], value, f"{where.at(key)} key '{key}'")
            except UsageError as exc:
                raise ConfigError(exc.message, exc.hint) from None
        else:
            names = sorted(list(known) + (list(OPTION_KEYS) if allow_options else []))
            raise ConfigError(
                f"{where.at(key)}: unknown key '{key}' for source '{source_name}'"
                f"{suggest(key, names)}",
                f"known keys: {', '.join(names)}",
            )
    return settings, options
