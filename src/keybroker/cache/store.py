"""Cache entries on disk: ``<id>.entry`` (sealed), ``<id>.lock``, ``<id>.seen``.

Reads never take the lock: entries are replaced atomically, so a reader sees a whole old
entry or a whole new one. Anything that does not open (torn, corrupt, foreign, sealed with
another key) is removed and reported as a miss, never as a crash.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

from keybroker import paths
from keybroker._hash import hexdigest
from keybroker.cache import ids, repeats
from keybroker.cache.crypto import (
    CorruptEntry,
    DataKey,
    key_store,
    load_data_key,
    seal,
    unseal_bytes,
)
from keybroker.cache.digest import request_digest
from keybroker.cache.entry import (
    ENTRY_SUFFIX,
    LOCK_SUFFIX,
    SEEN_LOCK_SUFFIX,
    SEEN_SUFFIX,
    Entry,
    Header,
    Opened,
    decode,
    entry_path,
    open_entry,
    reopen,
)
from keybroker.cache.files import atomic_write, ensure_private_dir, read_bytes, remove
from keybroker.cache.lock import EntryLock
from keybroker.cache.outage import OUTAGE_SUFFIX
from keybroker.model import AuxEntry, Deadline

#: The files an entry leaves besides its lock (which stays: a peer may be waiting on it).
ENTRY_FILES = (ENTRY_SUFFIX, SEEN_SUFFIX, SEEN_LOCK_SUFFIX, OUTAGE_SUFFIX)
#: A temp file older than this cannot belong to a live writer (writes take milliseconds).
ORPHAN_TMP_AGE = 60.0


class EntryInfo(NamedTuple):
    """What ``cache list`` shows: the clear header, never the value."""

    id: str
    fetched_at: float | None
    expires_at: float | None
    version: str | None
    source: str
    label: str
    size: int


class Cache:
    """One user's cache directory and the data key that seals it."""

    def __init__(self, root: Path, data_dir: Path, key_store: str = "file") -> None:
        self.root = root
        self.data_dir = data_dir
        self.key_store = key_store
        self._key: DataKey | None = None
        self.warnings: list[str] = []

    @classmethod
    def open(cls, env: Mapping[str, str], key: DataKey | None = None) -> Cache:
        """The cache for this environment; exit 7 if its directory is unsafe.

        ``key``: the data key this call already loaded (the fast path's), not loaded again.
        """
        root = paths.cache_dir(env)
        ensure_private_dir(root, "cache directory")
        cache = cls(root, paths.data_dir(env), key_store(env))
        cache._key = key
        return cache

    @property
    def loaded_key(self) -> DataKey | None:
        """The data key if this call has loaded it already (None: not yet)."""
        return self._key

    def key(self) -> DataKey:
        if self._key is None:
            key = load_data_key(self.data_dir, create=True, store=self.key_store)
            assert key is not None
            self._key = key
        return self._key

    def entry_id(
        self,
        source: str,
        canonical: Mapping[str, Any],
        identity: Any = (),
        env: Mapping[str, str] | None = None,
    ) -> str:
        """The entry name of a request for this caller (see :mod:`keybroker.cache.ids`)."""
        material = ids.material(identity, env if env is not None else {})
        return ids.entry_id(self.key(), request_digest(source, canonical), material)

    def fingerprint(self, *parts: str) -> str:
        """A keyed, non-reversible id of credentials, for naming cached logins."""
        return self.key().fingerprint(b"aux\x00" + "\x00".join(parts).encode())

    def path(self, eid: str, suffix: str = ENTRY_SUFFIX) -> Path:
        return Path(entry_path(self.root, eid, suffix))

    def lock(self, eid: str, deadline: Deadline, wait: bool = True) -> EntryLock:
        return EntryLock(self.path(eid, LOCK_SUFFIX), deadline, wait)

    def read(self, eid: str) -> Entry | None:
        """The entry, or None for a miss (missing, or unusable and therefore removed)."""
        opened = open_entry(self.root, self.key(), eid)
        return None if opened is None else opened.entry

    def reopen(self, eid: str, known: Opened | None) -> Opened | None:
        """The entry as it is now, without decrypting again what ``known`` already holds
        when the file is unchanged (:func:`keybroker.cache.entry.reopen`)."""
        return reopen(self.root, self.key(), eid, known)

    def write(self, entry: Entry) -> bool:
        """Store the entry; on a full or read-only disk warn and carry on (returns False)."""
        try:
            blob = seal(self.key(), entry.id, entry.encode(), entry.value)
            atomic_write(self.path(entry.id), blob)
        except OSError as exc:
            self.warnings.append(
                f"warning: could not write the cache ({exc.strerror}); the key was not cached"
            )
            return False
        return True

    def remove(self, eid: str) -> None:
        for suffix in ENTRY_FILES:
            with contextlib.suppress(OSError):
                remove(self.path(eid, suffix))

    def entries(self) -> Iterator[EntryInfo]:
        """Headers of every entry, for listing (authenticated; values are never shown)."""
        for path in sorted(self.root.glob(f"*{ENTRY_SUFFIX}")):
            blob = read_bytes(path)
            if blob is None:
                continue
            eid = path.name[: -len(ENTRY_SUFFIX)]
            try:
                raw, _ = unseal_bytes(self.key(), eid, blob)
                header: Header | None = decode(raw)
            except CorruptEntry:
                header = None
            if header is None:
                yield EntryInfo(
                    id=eid,
                    fetched_at=None,
                    expires_at=None,
                    version=None,
                    source="",
                    label="(unreadable entry)",
                    size=len(blob),
                )
                continue
            yield EntryInfo(
                id=eid,
                fetched_at=header.fetched_at,
                expires_at=header.expires_at,
                version=header.version,
                source=header.source,
                label=header.label,
                size=len(blob),
            )

    def clear_all(self, keep_logins: bool = False) -> int:
        """Remove every entry, side file and the profile index. Returns entries removed.

        With ``keep_logins`` the side store's entries (``aux-*``: login and refresh tokens,
        role credentials, discovery documents) stay: removing them forces a new login, which
        a helper cannot do (exit 8). Temp files are removed only once they are old enough to
        be orphans of a killed writer: a younger one may be a concurrent writer's, just before
        its ``os.replace``.
        """
        count = 0
        now = time.time()
        for path in list(self.root.iterdir()):
            if path.suffix == ".tmp":
                with contextlib.suppress(OSError):
                    if now - path.stat().st_mtime > ORPHAN_TMP_AGE:
                        remove(path)
            elif path.suffix in ENTRY_FILES or path.name.startswith("index-"):
                if keep_logins and path.name.startswith("aux-"):
                    continue
                count += path.suffix == ENTRY_SUFFIX
                with contextlib.suppress(OSError):
                    remove(path)
        return count

    def clear_logins(self) -> int:
        """Remove the side store's entries only (``aux-*``); cached keys stay. Returns count."""
        count = 0
        for path in list(self.root.glob("aux-*")):
            if path.suffix in ENTRY_FILES:
                count += path.suffix == ENTRY_SUFFIX
                with contextlib.suppress(OSError):
                    remove(path)
        return count

    # --- the "seen" record for repeat detection: caller id -> when it was last served ---

    def read_seen(self, eid: str) -> repeats.Seen:
        return repeats.seen_of(self.root, eid)


class CacheAux:
    """The AuxStore sources use for their own credentials, sealed like any entry."""

    def __init__(self, cache: Cache, source: str) -> None:
        self.cache = cache
        self.source = source

    def fingerprint(self, *parts: str) -> str:
        return self.cache.fingerprint(self.source, *parts)

    def _id(self, name: str) -> str:
        return "aux-" + hexdigest(f"{self.source}\0{name}".encode())[:40]

    def get(self, name: str) -> AuxEntry | None:
        entry = self.cache.read(self._id(name))
        if entry is None:
            return None
        return AuxEntry(entry.value, entry.expires_at, dict(entry.meta))

    def put(self, name: str, aux: AuxEntry) -> None:
        from keybroker import clock  # noqa: PLC0415

        self.cache.write(
            Entry(
                id=self._id(name),
                value=aux.value,
                fetched_at=clock.now(),
                expires_at=aux.expires_at,
                source=self.source,
                label=f"aux:{self.source}:{name}",
                meta=dict(aux.metadata),
            )
        )

    def delete(self, name: str) -> None:
        self.cache.remove(self._id(name))

    def lock(self, name: str, deadline: Deadline) -> EntryLock:
        """An exclusive lock for ``name`` across processes (e.g. to use and rotate a refresh
        token once: two processes presenting the same rotated token would revoke the login)."""
        return self.cache.lock(self._id(name), deadline)
