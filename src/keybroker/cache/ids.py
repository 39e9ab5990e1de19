"""Entry names bound to the request *and* to the caller's credentials (DESIGN section 4).

An entry is named ``HMAC(id key, request digest ‖ identity material)``:

- the *request digest* hashes the source and every setting that changes the answer (its
  ``canonical()``); it holds no secret, so the index keeps it for the hit path;
- the *identity material* is what the source would present to its backend — a Vault token,
  an AppRole secret id, a CI ID token, AWS keys and shared-config files, an OIDC client
  secret — read afresh on every call from the places the source names (environment variables,
  files, or fixed text), never stored anywhere.

A caller whose credentials differ (another CI job's token, a token the backend refuses, no
token at all) therefore computes another name and can never be served someone else's key;
the same credentials in N processes compute one name, so the cache is still shared. The HMAC
key is derived from the cache's data key, so the cache directory reveals nothing about a token.

This module is on the hit path: standard library only.
"""

from __future__ import annotations

import os
import stat

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping
    from typing import Any

    from keybroker.cache.crypto import DataKey

#: The kinds of identity input a source may name: a variable, a file's content, fixed text,
#: or every variable whose name ends with a suffix (GitLab's ``*_ID_TOKEN`` convention).
KINDS = ("env", "file", "literal", "env-suffix")
_FILE_LIMIT = 1 << 16
_FLAGS = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)


def file_bytes(path: str) -> bytes:
    """A file's content for the material; a missing or special file is a marker, not a wait."""
    try:
        fd = os.open(os.path.expanduser(path), _FLAGS)
    except FileNotFoundError:
        return b"\x00missing"
    except OSError:
        return b"\x00unreadable"
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return b"\x00special"
        return os.read(fd, _FILE_LIMIT)
    except OSError:
        return b"\x00unreadable"
    finally:
        os.close(fd)


def material(inputs: Iterable[Any], env: Mapping[str, str]) -> bytes:
    """The bytes of every credential ``inputs`` name, in order (``(kind, name)`` pairs)."""
    parts: list[bytes] = []
    for kind, name in inputs:
        if kind == "env":
            value = env.get(name)
            data = b"\x00unset" if value is None else value.encode("utf-8", "surrogateescape")
        elif kind == "file":
            data = file_bytes(name)
        elif kind == "literal":
            data = name.encode("utf-8", "surrogateescape")
        elif kind == "env-suffix":
            found = sorted((k, v) for k, v in env.items() if k.endswith(name) and v)
            data = "\x00".join(f"{k}={v}" for k, v in found).encode("utf-8", "surrogateescape")
        else:
            raise ValueError(f"unknown identity input kind {kind!r}")
        parts.append(
            kind.encode()
            + b"\x00"
            + name.encode("utf-8", "surrogateescape")
            + b"\x00"
            + len(data).to_bytes(4, "big")
            + data
        )
    return b"".join(parts)


def entry_id(key: DataKey, digest: str, identity: bytes) -> str:
    """The entry's file name: the request and the caller's credentials, keyed and hashed."""
    return key.fingerprint(b"entry\x00" + digest.encode() + b"\x00" + identity)
