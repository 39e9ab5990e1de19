"""The key's shape check (DESIGN section 2), run before anything is printed or cached.

Claude Code sends the helper's output as an HTTP header; a newline or control character in
it would be a header injection, and anything else makes Claude Code fail the helper anyway.
Messages describe what is wrong by position and class of character, never by content.
"""

from __future__ import annotations

from keybroker.errors import InvalidSecret

MAX_KEY_LENGTH = 16384


def validate_key(value: str, where: str) -> str:
    """Return ``value`` if it is one token of printable ASCII, else raise exit 6.

    ``where`` names the source (``profile 'x' (env var FOO)``) for the message.
    """
    if not value:
        raise InvalidSecret(f"{where}: the secret is empty", "check that the source holds a key")
    if len(value) > MAX_KEY_LENGTH:
        raise InvalidSecret(
            f"{where}: the secret is {len(value)} characters, over the {MAX_KEY_LENGTH} limit",
            "does the source hold a key, or a whole document?",
        )
    for index, char in enumerate(value):
        code = ord(char)
        if 0x21 <= code <= 0x7E:
            continue
        if char in " \t":
            kind = "whitespace"
        elif char in "\r\n":
            kind = "a line break"
        elif code < 0x20 or code == 0x7F:
            kind = "a control character"
        else:
            kind = "a non-ASCII character"
        raise InvalidSecret(
            f"{where}: the secret contains {kind} at position {index + 1} of {len(value)}",
            "a key must be one token of printable ASCII",
        )
    return value
