"""What ``configure`` changed in each settings file, so ``unconfigure`` can put it back.

Each write diffs the file before and after into leaf changes (a JSON key path, the value before
or "absent", the value written) and keeps them in one record per file, sealed with the cache's
data key in keybroker's data directory (a replaced helper command may hold a secret). The first
configure of a file also keeps its exact bytes, so a configure → unconfigure round trip leaves
the file byte-identical (or absent, as it was). ``unconfigure`` restores only the leaves that
still hold what keybroker wrote: a value changed by hand since is left alone and reported.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KeyPath = list[str]
_ABSENT = object()


@dataclass
class Change:
    path: KeyPath
    after: Any
    before: Any = _ABSENT
    created: bool = False  # an object keybroker created to hold its leaves

    def as_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path}
        if self.after is not _ABSENT:
            out["after"] = self.after
        if self.before is not _ABSENT:
            out["before"] = self.before
        if self.created:
            out["created"] = True
        return out

    @classmethod
    def of(cls, raw: Mapping[str, Any]) -> Change:
        return cls(
            list(raw["path"]),
            raw.get("after", _ABSENT),
            raw.get("before", _ABSENT),
            bool(raw.get("created")),
        )


@dataclass
class Record:
    """Every change keybroker made to one file since it first configured it."""

    path: str
    existed: bool
    original: bytes | None
    changes: list[Change] = field(default_factory=list)

    def add(self, before: Mapping[str, Any], after: Mapping[str, Any]) -> None:
        """Merge the diff of one write; a leaf already recorded keeps its first ``before``."""
        known = {tuple(c.path): c for c in self.changes}
        for change in diff(before, after, []):
            old = known.get(tuple(change.path))
            if old is not None:
                old.after = change.after
            else:
                self.changes.append(change)
                known[tuple(change.path)] = change

    def to_bytes(self) -> bytes:
        return json.dumps(
            {
                "path": self.path,
                "existed": self.existed,
                "original": base64.b64encode(self.original).decode()
                if self.original is not None
                else None,
                "changes": [c.as_json() for c in self.changes],
            }
        ).encode()

    @classmethod
    def from_bytes(cls, raw: bytes) -> Record:
        data = json.loads(raw)
        original = data.get("original")
        return cls(
            data["path"],
            bool(data["existed"]),
            base64.b64decode(original) if original is not None else None,
            [Change.of(c) for c in data.get("changes", [])],
        )


def diff(before: Mapping[str, Any], after: Mapping[str, Any], at: KeyPath) -> list[Change]:
    """Leaf changes from ``before`` to ``after`` (objects are walked, anything else is a leaf)."""
    out: list[Change] = []
    for key in list(before) + [k for k in after if k not in before]:
        here = [*at, key]
        old = before.get(key, _ABSENT)
        new = after.get(key, _ABSENT)
        if old == new:
            continue
        if isinstance(new, dict) and isinstance(old, dict):
            out.extend(diff(old, new, here))
        elif isinstance(new, dict) and old is _ABSENT:
            out.append(Change(here, {}, _ABSENT, created=True))
            out.extend(diff({}, new, here))
        else:
            out.append(Change(here, copy.deepcopy(new) if new is not _ABSENT else _ABSENT, old))
    return out


def _lookup(data: Any, path: KeyPath) -> Any:
    for key in path:
        if not isinstance(data, dict) or key not in data:
            return _ABSENT
        data = data[key]
    return data


def restore(data: Mapping[str, Any], record: Record) -> tuple[dict[str, Any], list[str]]:
    """``data`` with each recorded leaf put back; and the leaves left alone (changed since)."""
    out = copy.deepcopy(dict(data))
    kept: list[str] = []
    leaves = [c for c in record.changes if not c.created]
    for change in leaves:
        current = _lookup(out, change.path)
        if current is change.after or current == change.after:
            parent = _lookup(out, change.path[:-1]) if len(change.path) > 1 else out
            if not isinstance(parent, dict):
                continue
            if change.before is _ABSENT:
                parent.pop(change.path[-1], None)
            else:
                parent[change.path[-1]] = copy.deepcopy(change.before)
        else:
            kept.append(".".join(change.path))
    for change in sorted((c for c in record.changes if c.created), key=lambda c: -len(c.path)):
        holder = _lookup(out, change.path)
        parent = _lookup(out, change.path[:-1]) if len(change.path) > 1 else out
        if holder == {} and isinstance(parent, dict):
            del parent[change.path[-1]]
    return out, kept


def record_id(path: Path) -> str:
    return hashlib.sha256(os.fsencode(os.path.abspath(path))).hexdigest()[:32]


class Records:
    """The sealed records under ``<data dir>/claude-settings/``."""

    def __init__(self, env: Mapping[str, str]) -> None:
        from keybroker import paths  # noqa: PLC0415

        self.env = env
        self.dir = paths.data_dir(env) / "claude-settings"

    def _key(self) -> Any:
        from keybroker.cache.store import Cache  # noqa: PLC0415

        return Cache.open(self.env).key()

    def load(self, path: Path) -> Record | None:
        from keybroker.cache.crypto import CorruptEntry, unseal_bytes  # noqa: PLC0415
        from keybroker.cache.files import read_bytes  # noqa: PLC0415

        rid = record_id(path)
        blob = read_bytes(self.dir / rid)
        if blob is None:
            return None
        try:
            _, plain = unseal_bytes(self._key(), f"claude-settings:{rid}", blob)
            return Record.from_bytes(plain)
        except (CorruptEntry, ValueError, KeyError):
            return None

    def save(self, record: Record) -> None:
        from keybroker.cache.crypto import seal  # noqa: PLC0415
        from keybroker.cache.files import atomic_write, ensure_private_dir  # noqa: PLC0415

        rid = record_id(Path(record.path))
        blob = seal(self._key(), f"claude-settings:{rid}", {}, record.to_bytes())
        ensure_private_dir(self.dir, "keybroker data directory")
        atomic_write(self.dir / rid, blob)

    def drop(self, path: Path) -> None:
        from keybroker.cache.files import remove  # noqa: PLC0415

        remove(self.dir / record_id(path))

    def all_paths(self) -> list[Path]:
        """Every file a record exists for (for ``unconfigure`` without --scope)."""
        out: list[Path] = []
        try:
            names = sorted(os.listdir(self.dir))
        except OSError:
            return out
        from keybroker.cache.crypto import CorruptEntry, unseal_bytes  # noqa: PLC0415
        from keybroker.cache.files import read_bytes  # noqa: PLC0415

        for name in names:
            blob = read_bytes(self.dir / name)
            if blob is None:
                continue
            try:
                _, plain = unseal_bytes(self._key(), f"claude-settings:{name}", blob)
                out.append(Path(Record.from_bytes(plain).path))
            except (CorruptEntry, ValueError, KeyError):
                continue
        return out
