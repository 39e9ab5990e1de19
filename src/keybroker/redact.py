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


def emit(text: str) -> None:
    """Write one diagnostic to stderr, scrubbed, ending in a newline."""
    if not text.endswith("\n"):
        text += "\n"
    try:
        sys.stderr.write(scrub(text))
        sys.stderr.flush()
    except (OSError, ValueError):
        pass  # stderr closed: nothing safe left to do


def mask(value: str) -> str:
    """The redacted form shown by print-token: a hint of the shape, never enough to use."""
    if len(value) <= 12:
        return "…" if len(value) < 8 else f"…{value[-2:]}"
    head = value[:3] if value[2] in "-_" else value[:2]
    return f"{head}…{value[-4:]}"
