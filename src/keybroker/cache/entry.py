"""The entry header codec: the one place that turns a sealed entry's header into typed values.

Both the cache-hit path (:mod:`keybroker.fastpath`) and the full path (:mod:`keybroker.cache.store`)
decode headers here, so they can never disagree about what an entry says. The header is only
ever decoded after AES-GCM authenticated it (see :mod:`keybroker.cache.crypto`); the checks
below still refuse a header that is not of this format version or whose times are not finite
numbers: a NaN or infinite expiry would make an entry look fresh forever.

This module is on the hit path: standard library only, no typing import at run time.
"""

from __future__ import annotations

from keybroker.cache.crypto import CorruptEntry

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any

#: The header format written by this version. An entry of another version is a miss.
HEADER_VERSION = 2
#: An expiry further away than this is not a real key's (a unit mix-up, or a hostile value).
MAX_LIFETIME = 10 * 365 * 86400.0


def finite(value: object) -> bool:
    """A real number that is neither NaN nor infinite (bools are not numbers here)."""
    if value.__class__ not in (int, float):
        return False
    # x - x is 0 for every finite number, NaN for NaN and ±inf (no math import on the hit path)
    return bool(value - value == 0)


class Header:
    """What an entry says about its value: when it was fetched, when it expires, its version."""

    __slots__ = ("expires_at", "fetched_at", "label", "meta", "source", "version")

    def __init__(
        self,
        fetched_at: float,
        expires_at: float | None = None,
        version: str | None = None,
        source: str = "",
        label: str = "",
        meta: dict[str, Any] | None = None,
    ) -> None:
        self.fetched_at = fetched_at
        self.expires_at = expires_at
        self.version = version
        self.source = source
        self.label = label
        self.meta = meta if meta is not None else {}

    def encode(self) -> dict[str, Any]:
        """The header as sealed (marshal-able primitives only)."""
        return {
            "v": HEADER_VERSION,
            "fetched_at": float(self.fetched_at),
            "expires_at": None if self.expires_at is None else float(self.expires_at),
            "version": self.version,
            "source": self.source,
            "label": self.label,
            "meta": self.meta,
        }

    def __repr__(self) -> str:
        return (
            f"Header(fetched_at={self.fetched_at!r}, expires_at={self.expires_at!r}, "
            f"version={self.version!r}, source={self.source!r}, label={self.label!r})"
        )


def decode(raw: object) -> Header:
    """The typed header of an authenticated entry, or CorruptEntry when it is not one of ours."""
    if not isinstance(raw, dict) or raw.get("v") != HEADER_VERSION:
        raise CorruptEntry("unknown header version")
    fetched_at = raw.get("fetched_at")
    expires_at = raw.get("expires_at")
    version = raw.get("version")
    meta = raw.get("meta")
    if not finite(fetched_at):
        raise CorruptEntry("fetch time is not a finite number")
    if expires_at is not None and not finite(expires_at):
        raise CorruptEntry("expiry is not a finite number")
    if version is not None and not isinstance(version, str):
        raise CorruptEntry("version is not text")
    if meta is not None and not isinstance(meta, dict):
        raise CorruptEntry("metadata is not a table")
    return Header(
        float(fetched_at),  # type: ignore[arg-type]
        None if expires_at is None else float(expires_at),
        version,
        str(raw.get("source") or ""),
        str(raw.get("label") or ""),
        meta,
    )


def check_expiry(expires_at: float | None, now: float) -> float | None:
    """A source's expiry, or ValueError when it is not a usable time (NaN, ±inf, absurd)."""
    if expires_at is None:
        return None
    if not finite(expires_at):
        raise ValueError("the expiry is not a finite number")
    if expires_at - now > MAX_LIFETIME:
        raise ValueError("the expiry is more than 10 years away")
    return float(expires_at)
