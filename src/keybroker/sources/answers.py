"""Answers from servers, bounded: how much of one is read and how deeply its JSON may nest.

Vault, an OIDC provider (discovery, JWKS, token and device endpoints) and an AWS endpoint are
servers keybroker talks to, not code it trusts: a hostile or broken one answering 100 MB, or
JSON nested 100000 deep, must end in a clear exit 6 (DESIGN section 2: "a malformed,
oversized or absurdly nested answer"), not in 345 MB of memory or ``RecursionError``.

- Size: the body is read in chunks and the read stops at :data:`MAX_ANSWER` (a declared
  ``Content-Length`` over it is refused before reading): memory stays bounded whatever the
  server sends. A real answer (a secret, a token response, a discovery document, a JWKS) is a
  few kilobytes.
- Depth: before any JSON parser sees a body, its nesting is counted outside strings; deeper
  than :data:`MAX_DEPTH` is refused. Python's parser recurses per level, so this is what keeps
  a deep answer from becoming an internal error.

Standard library only: the HTTP side (:mod:`keybroker.sources.httpsession`) and botocore's
hook (:mod:`keybroker.sources.aws.client`) feed it.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from keybroker.errors import InvalidSecret

#: Largest answer read from a server (a secret, token, discovery or JWKS answer is a few KiB).
MAX_ANSWER = 1024 * 1024
#: Deepest JSON nesting accepted (real answers nest 3-6 levels).
MAX_DEPTH = 64
#: Read size per chunk: small enough that the call's deadline is checked often.
CHUNK = 16 * 1024

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")
_HINT = "the server is broken or not what addr/issuer/endpoint_url should point at"


def too_large(what: str, limit: int = MAX_ANSWER) -> InvalidSecret:
    return InvalidSecret(f"{what}: the answer is larger than {limit // 1024} KiB; refused", _HINT)


def read_capped(
    chunks: Iterator[bytes],
    what: str,
    limit: int = MAX_ANSWER,
    declared: str | None = None,
    tick: Callable[[], object] | None = None,
) -> bytes:
    """Join ``chunks`` until ``limit``; one byte more is exit 6, without reading further.

    ``declared``: the answer's ``Content-Length`` (refused at once when over the limit);
    ``tick``: called before each chunk (the call's deadline check).
    """
    if declared is not None and declared.strip().isdigit() and int(declared) > limit:
        raise too_large(what, limit)
    parts: list[bytes] = []
    total = 0
    while True:
        if tick is not None:
            tick()
        chunk = next(chunks, None)
        if chunk is None:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise too_large(what, limit)
        parts.append(chunk)


def check_depth(raw: bytes | str, what: str, limit: int = MAX_DEPTH) -> None:
    """Exit 6 when the JSON in ``raw`` nests deeper than ``limit`` (strings are skipped)."""
    data = raw.encode() if isinstance(raw, str) else raw
    if data.count(b"[") + data.count(b"{") <= limit:
        return  # cannot be deeper than its number of openers
    depth = 0
    for match in _BRACKET.finditer(_STRING.sub(b'""', data)):
        if match.group() in (b"[", b"{"):
            depth += 1
            if depth > limit:
                raise InvalidSecret(
                    f"{what}: the answer's JSON nests deeper than {limit} levels; refused",
                    _HINT,
                )
        else:
            depth -= 1


def loads(raw: bytes | str, what: str) -> Any:
    """``json.loads`` after the depth check; ValueError for malformed JSON, as json raises."""
    check_depth(raw, what)
    return json.loads(raw)


def looks_like_json(raw: bytes) -> bool:
    """Whether a body starts like a JSON object or array (only those can nest)."""
    return raw.lstrip()[:1] in (b"{", b"[")
