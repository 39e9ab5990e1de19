"""The texts keybroker hands to Claude Code besides a bare key.

- ``inferenceCredentialHelper`` output: a bare token line, or ``{"token": …, "headers": {…}}``
  (Claude Code trims stdout; a JSON object must have a non-empty string ``token``; header
  names and values must not contain CR, LF or NUL).
- ``ANTHROPIC_CUSTOM_HEADERS``: ``Name: value`` lines joined by newlines, for
  ``keybroker exec … --header 'Proxy-Authorization: Bearer {}'`` (``{}`` is the key).
- ``claude self-hosted-runner --proxy-authorization-command``: the full header value
  (``Bearer <token>``) on one line.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from keybroker.errors import UsageError
from keybroker.output import HTTP_TOKEN

Template = tuple[str, str]
PLACEHOLDER = "{}"
_FORBIDDEN = ("\r", "\n", "\0")


def parse_header(spec: str) -> Template:
    """``'Name: template'`` → (Name, template); ``{}`` in the template stands for the key."""
    name, sep, template = spec.partition(":")
    name, template = name.strip(), template.strip()
    if not sep or not name or not template:
        raise UsageError(
            f"--header {spec!r}: expected 'Name: value', e.g. 'Proxy-Authorization: Bearer {{}}'"
        )
    if not HTTP_TOKEN.match(name):
        raise UsageError(f"--header: invalid header name {name!r}")
    if any(c in template for c in _FORBIDDEN):
        raise UsageError(f"--header {name}: the value must be on one line")
    return name, template


def fill(template: str, key: str) -> str:
    return template.replace(PLACEHOLDER, key)


def credential(key: str, fmt: str, headers: Sequence[Template] = ()) -> str:
    """What ``keybroker credential`` prints: the key, or the JSON object with headers."""
    if fmt == "token":
        if headers:
            raise UsageError("--header needs --format json (a bare token carries no headers)")
        return key + "\n"
    payload: dict[str, object] = {"token": key}
    if headers:
        payload["headers"] = {name: fill(template, key) for name, template in headers}
    return json.dumps(payload) + "\n"


def custom_headers(headers: Sequence[Template], key: str) -> str:
    """The value of ``ANTHROPIC_CUSTOM_HEADERS`` (one ``Name: value`` per line)."""
    if not headers:
        raise UsageError("no --header given")
    return "\n".join(f"{name}: {fill(template, key)}" for name, template in headers)
