"""The last line of defence for stderr: every known secret is replaced before a byte is written.

Sources register each value they obtain (the key, login tokens, refresh tokens, client
secrets) with :func:`sensitive`; :func:`emit` is the only way keybroker writes diagnostics, so
even a message built carelessly from a library's exception text (or a ``--debug`` traceback)
cannot carry a registered secret to stderr.
"""

from __future__ import annotations

import sys

_SECRETS: set[str] = set()
_MIN_LENGTH = 4


def sensitive(value: str | None) -> None:
    """Remember ``value`` so that :func:`scrub` removes it from any text."""
    if value and len(value) >= _MIN_LENGTH:
        _SECRETS.add(value)


def scrub(text: str) -> str:
    """Replace every registered secret in ``text`` with ``***`` (longest first)."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, "***")
    return text


#: A diagnostic line longer than this is cut: a 5 MB config value must not become 5 MB of
#: stderr (Claude Code shows the helper's stderr in /status).
MAX_LINE = 2000


def neutralise(text: str) -> str:
    """Show control and format characters (ESC, NUL, CR, BEL, bidi overrides) as escapes.

    Messages quote names from config files and environment variables; raw, such characters
    could drive the terminal or hide part of the message. Overlong lines are shortened.
    """
    return "\n".join(_neutral_line(line) for line in text.split("\n"))


def _neutral_line(line: str) -> str:
    if not line.isprintable():
        line = "".join(
            ch if ch.isprintable() or ch == "\t"
            else (f"\\x{ord(ch):02x}" if ord(ch) < 0x100 else f"\\u{ord(ch):04x}")
            for ch in line
        )
    if len(line) > MAX_LINE:
        line = f"{line[:MAX_LINE]}… ({len(line) - MAX_LINE} more characters)"
    return line


def emit(text: str) -> None:
    """Write one diagnostic to stderr, scrubbed and neutralised, ending in a newline."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        sys.stderr.write(neutralise(scrub(text)))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: nothing safe left to do


def mask(value: str) -> str:
    """The redacted form shown by print-token: a hint of the shape, never enough to use."""
    if len(value) <= 12:
        return "…" if len(value) < 8 else f"…{value[-2:]}"
    head = value[:3] if value[2] in "-_" else value[:2]
    return f"{head}…{value[-4:]}"
