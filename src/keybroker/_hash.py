"""SHA-256 and HMAC-SHA256 without importing hashlib/hmac (and OpenSSL's _hashlib).

A stand-in for a standard module, kept for the cache-hit budget (docs/performance.md): the hit
path names entries with an HMAC of the caller's credentials, and importing ``hashlib`` + ``hmac``
costs ~2.5 ms of a ~25 ms hit. The interpreter's built-in SHA-256 module (``_sha2`` on 3.12+,
``_sha256`` before) is used when present; ``hashlib`` is the fallback, and tests force it.
HMAC is RFC 2104 over that SHA-256 (tests compare it with the ``hmac`` module).
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


BUILTIN_MODULES = ("_sha2", "_sha256")  # Python 3.12+, then ≤ 3.11


def _load(names: tuple[str, ...] = BUILTIN_MODULES) -> Callable[..., Any]:
    for name in names:
        try:
            return __import__(name).sha256  # type: ignore[no-any-return]
        except (ImportError, AttributeError):
            continue
    import hashlib  # noqa: PLC0415

    return hashlib.sha256


sha256 = _load()


def hexdigest(data: bytes) -> str:
    return str(sha256(data).hexdigest())


_BLOCK = 64
_IPAD = bytes(x ^ 0x36 for x in range(256))
_OPAD = bytes(x ^ 0x5C for x in range(256))


def hmac_sha256(key: bytes, message: bytes) -> str:
    """RFC 2104 HMAC-SHA256 of ``message`` under ``key``, as hex."""
    if len(key) > _BLOCK:
        key = sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = sha256(key.translate(_IPAD) + message).digest()
    return str(sha256(key.translate(_OPAD) + inner).hexdigest())
