"""Cache entries: where one lives, how it is opened, and the codec of its header.

This is the one place that names an entry's files, opens an entry and turns its sealed header
into typed values: the cache-hit path (:mod:`keybroker.fastpath`) and the full path
(:mod:`keybroker.cache.store`, :mod:`keybroker.refresh`) both go through it, so they can never
disagree about what an entry says or which errors make it a miss. The header is only
ever decoded after AES-GCM authenticated it (see :mod:`keybroker.cache.crypto`); the checks
below still refuse a header that is not of this format version or whose times are not finite
numbers: a NaN or infinite expiry would make an entry look fresh forever.

This module is on the hit path: standard library only, no typing import at run time.
"""

from __future__ import annotations

import os

from keybroker.cache.crypto import CorruptEntry, unseal
from keybroker.cache.files import identity_of, read_regular, remove

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any

    from keybroker.cache.crypto import DataKey

#: The files of an entry ``<id>``: the sealed value, its lock, the repeat record and its lock.
ENTRY_SUFFIX = ".entry"
LOCK_SUFFIX = ".lock"
SEEN_SUFFIX = ".seen"
SEEN_LOCK_SUFFIX = ".seenlock"

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


class Entry(Header):
    """A whole entry: its name, its header fields and the value they describe.

    One record type for both paths: an entry *is* a header plus the value it seals.
    """

    __slots__ = ("id", "value")

    def __init__(
        self,
        id: str,
        value: str,
        fetched_at: float,
        expires_at: float | None = None,
        version: str | None = None,
        source: str = "",
        label: str = "",
        meta: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(fetched_at, expires_at, version, source, label, meta)
        self.id = id
        self.value = value

    @classmethod
    def of(cls, eid: str, header: Header, value: str) -> Entry:
        return cls(
            eid,
            value,
            header.fetched_at,
            header.expires_at,
            header.version,
            header.source,
            header.label,
            dict(header.meta),
        )

    def __repr__(self) -> str:  # never the value
        return f"Entry(id={self.id!r}, {super().__repr__()})"


class Opened:
    """An entry as opened from disk, with the identity of the file it came from."""

    __slots__ = ("entry", "identity")

    def __init__(self, entry: Entry, identity: tuple[int, int, int, int]) -> None:
        self.entry = entry
        self.identity = identity


def entry_path(cache_dir: str | os.PathLike[str], eid: str, suffix: str = ENTRY_SUFFIX) -> str:
    """The one place an entry's file names are built."""
    return os.path.join(cache_dir, eid + suffix)


def open_entry(cache_dir: str | os.PathLike[str], key: DataKey, eid: str) -> Opened | None:
    """The entry ``eid``, or None: missing, or unusable (torn, corrupt, foreign, sealed with
    another key, of another format) and therefore removed — a miss, never a crash."""
    path = entry_path(cache_dir, eid)
    found = read_regular(path)
    if found is None:
        return None
    blob, identity = found
    try:
        raw, value = unseal(key, eid, blob)
        return Opened(Entry.of(eid, decode(raw), value), identity)
    except (CorruptEntry, KeyError, TypeError, ValueError):
        try:  # noqa: SIM105 - no contextlib import on the hit path
            remove(path)
        except OSError:
            pass
        return None


def reopen(
    cache_dir: str | os.PathLike[str], key: DataKey, eid: str, known: Opened | None
) -> Opened | None:
    """The entry as it is now, reusing ``known`` when the name still holds the same file.

    After a lock is taken the entry must be looked at again (a peer may have refreshed it);
    entries are only ever replaced by rename, so an unchanged file identity means the content
    opened before is still what is there, and it is not decrypted a second time.
    """
    if known is not None and identity_of(entry_path(cache_dir, eid)) == known.identity:
        return known
    return open_entry(cache_dir, key, eid)


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
