"""The profile index: what the hit path needs of the config, next to the cache.

It is narrow on purpose — primitives only (strings, numbers, lists, dicts of them), built by
:mod:`keybroker.config` from the validated config: per profile its source name, the source's
default storage, its serving options and validated settings (so that a miss need not parse
the TOML again: settings name where secrets are, never hold one), and per environment variant
the request digest, the identity inputs (where the caller's credentials come from, never their
values), the environment variables the source looked at — as keyed *fingerprints*, never
their values (a ``VAULT_TOKEN`` read to pick the auth method must not end up in a file) —
and, for ``env``/``file`` profiles, where to read the key directly. Standalone command lines
(``keybroker-vault --addr … --path …``) the full path has resolved get entries too.

It is marshalled (no json import on the hit path) and sealed with the cache's data key like an
entry: marshal only ever reads bytes that AES-GCM has authenticated as ours. It is valid while
every config file it was built from (user and system layer) is unchanged. This module is on
the hit path: stdlib only.
"""

from __future__ import annotations

import marshal
import os

from keybroker._hash import hexdigest
from keybroker.cache.files import atomic_write, read_bytes

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

    from keybroker.cache.crypto import DataKey

INDEX_VERSION = 6


def env_fingerprint(key: DataKey, name: str, value: str | None) -> str | None:
    """What a variant remembers of variable ``name``: a keyed fingerprint, None when unset."""
    if value is None:
        return None
    return key.fingerprint(
        b"env\x00" + name.encode() + b"\x00" + value.encode("utf-8", "surrogateescape")
    )


class Variant:
    """One environment a record was indexed in (see :mod:`keybroker.config.index`)."""

    __slots__ = ("digest", "direct", "env", "inputs")

    def __init__(self, raw: dict[str, Any]) -> None:
        #: variable name -> keyed fingerprint of its value (None: it was unset)
        self.env: dict[str, str | None] = raw["env"]
        self.digest: str = raw["digest"]
        #: where the caller's credentials come from: (kind, name) pairs, never values
        self.inputs: list[list[str]] = raw["inputs"]
        #: (kind, name) of an env/file key read directly, else None
        self.direct: list[str] | None = raw["direct"]

    def matches(self, env: Mapping[str, str], key: DataKey) -> bool:
        return all(env_fingerprint(key, k, env.get(k)) == v for k, v in self.env.items())


class Record:
    """A profile (or a standalone command line) as the hit path knows it."""

    __slots__ = ("options", "settings", "source", "storage", "variants")

    def __init__(self, raw: dict[str, Any]) -> None:
        self.source: str = raw["source"]
        self.storage: str = raw["storage"]
        self.options: dict[str, Any] = raw["options"]
        #: the profile's validated settings ([defaults.SOURCE] applied), or None when the index
        #: could not keep them: a miss then reads the config
        self.settings: dict[str, Any] | None = raw.get("settings")
        self.variants = [Variant(v) for v in raw["variants"]]

    def variant(self, env: Mapping[str, str], key: DataKey) -> Variant | None:
        """The variant indexed for this environment, or None (the full path adds it)."""
        for item in self.variants:
            if item.matches(env, key):
                return item
        return None


class Index:
    """The sealed index of one config, as read: typed access to its records."""

    __slots__ = ("defaults", "key", "raw")

    def __init__(self, raw: dict[str, Any], key: DataKey) -> None:
        self.raw = raw
        self.key = key
        self.defaults: dict[str, Any] = raw["defaults"]

    def profile(self, name: str) -> Record | None:
        found = self.raw["profiles"].get(name)
        return None if found is None else Record(found)

    def standalone(self, slot: str) -> Record | None:
        found = self.raw["standalone"].get(slot)
        return None if found is None else Record(found)

    def problem(self, name: str) -> str | None:
        found = self.raw["problems"].get(name)
        return None if found is None else str(found)


def signature(path: str | os.PathLike[str]) -> list[int] | None:
    """What the index remembers of the config file to notice any change."""
    try:
        st = os.stat(path)
    except OSError:
        return None
    return [st.st_mtime_ns, st.st_size, st.st_ino, st.st_ctime_ns]


def index_path(cache_dir: str, config_path: str) -> str:
    """The index of one config file, inside the cache dir."""
    digest = hexdigest(os.path.abspath(config_path).encode())[:16]
    return os.path.join(cache_dir, f"index-{digest}.bin")


def _index_id(config_path: str) -> str:
    return "index:" + os.path.abspath(config_path)


def signatures(config_paths: list[str]) -> list[Any]:
    """What the index remembers of every config file (user layer first)."""
    return [[os.path.abspath(p), signature(p)] for p in config_paths]


def open_index(
    cache_dir: str, config_path: str, key: DataKey, system_path: str | None = None
) -> Index | None:
    """The typed index if it opens and is current for the config files, else None."""
    data = read_index(cache_dir, config_path, key, system_path)
    return None if data is None else Index(data, key)


def read_index(
    cache_dir: str, config_path: str, key: DataKey, system_path: str | None = None
) -> dict[str, Any] | None:
    """The index as stored (for rewriting it) if it opens and is current, else None."""
    from keybroker.cache.crypto import CorruptEntry, unseal_bytes  # noqa: PLC0415

    blob = read_bytes(index_path(cache_dir, config_path))
    if blob is None:
        return None
    try:
        _, plain = unseal_bytes(key, _index_id(config_path), blob)
        data = marshal.loads(plain)  # noqa: S302 - sealed by us, authenticated by AES-GCM
    except (CorruptEntry, ValueError, EOFError, TypeError):
        return None
    files = [config_path] if system_path is None else [config_path, system_path]
    if (
        not isinstance(data, dict)
        or data.get("v") != INDEX_VERSION
        or data.get("files") != signatures(files)
    ):
        return None
    return data


def write_index(cache_dir: str, config_path: str, key: DataKey, data: dict[str, Any]) -> str:
    """Seal and store the index; "" on success, else why it could not be (for doctor)."""
    from keybroker.cache.crypto import seal  # noqa: PLC0415

    try:
        blob = seal(key, _index_id(config_path), {}, marshal.dumps(data))
    except ValueError as exc:
        return f"the index holds a value marshal cannot store ({exc})"
    try:
        atomic_write(index_path(cache_dir, config_path), blob)
    except OSError as exc:
        return f"cannot write the index in {cache_dir}: {exc.strerror}"
    return ""
