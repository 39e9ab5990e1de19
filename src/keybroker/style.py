"""Colour for the human views (``doctor``, ``print-token``), and only where a person looks.

Off when ``NO_COLOR`` is set (https://no-color.org), when the stream is not a terminal
(pipes, files, Claude Code capturing output), when ``TERM=dumb`` or ``CLICOLOR=0``; forced on
by ``FORCE_COLOR`` or ``CLICOLOR_FORCE`` (any value but empty or ``0``), except that
``NO_COLOR`` always wins. Helper output (the key) is never styled.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import IO, Any

#: SGR codes by name; the reset is appended by :func:`paint`.
CODES = {"bold": "1", "dim": "2", "red": "31", "green": "32", "yellow": "33", "cyan": "36"}


def _set(value: str | None) -> bool:
    return value is not None and value not in ("", "0")


def enabled(stream: IO[Any] | None = None, env: Mapping[str, str] | None = None) -> bool:
    """Whether output to ``stream`` (default stdout) should carry colour."""
    import sys  # noqa: PLC0415

    env = os.environ if env is None else env
    if env.get("NO_COLOR"):
        return False
    if _set(env.get("FORCE_COLOR")) or _set(env.get("CLICOLOR_FORCE")):
        return True
    if env.get("TERM") == "dumb" or env.get("CLICOLOR") == "0":
        return False
    stream = sys.stdout if stream is None else stream
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # closed or not a real file
        return False


def paint(text: str, *styles: str, on: bool = True) -> str:
    """``text`` wrapped in the SGR codes of ``styles`` (unchanged when ``on`` is False)."""
    if not on or not styles or not text:
        return text
    codes = ";".join(CODES[s] for s in styles)
    return f"\x1b[{codes}m{text}\x1b[0m"
