"""The profile index: the validated config, next to the cache, for the hit path.

It holds each profile's settings, options and entry id per environment, so a hit needs
neither TOML nor the source's module (see keybroker.hot). It is marshalled (no json import on
the hit path) and sealed with the cache's data key like an entry: marshal only ever reads
bytes that AES-GCM has authenticated as ours. This module is on the hit path: stdlib only.
"""

from __future__ import annotations

import marshal
import os

from keybroker._hash import hexdigest
from keybroker.cache.files import atomic_write, read_bytes

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from typing import Any

    from keybroker.cache.crypto import DataKey

INDEX_VERSION = 3


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


def read_index(cache_dir: str, config_path: str, key: DataKey) -> dict[str, Any] | None:
    """The index if it opens and is current for the config file, else None."""
    from keybroker.cache.crypto import CorruptEntry, unseal_bytes  # noqa: PLC0415

    blob = read_bytes(index_path(cache_dir, config_path))
    if blob is None:
        return None
    try:
        _, plain = unseal_bytes(key, _index_id(config_path), blob)
        data = marshal.loads(plain)  # noqa: S302 - sealed by us, authenticated by AES-GCM
    except (CorruptEntry, ValueError, EOFError, TypeError):
        return None
    if (
        not isinstance(data, dict)
        or data.get("v") != INDEX_VERSION
        or data.get("path") != os.path.abspath(config_path)
        or data.get("sig") != signature(config_path)
    ):
        return None
    return data


def write_index(cache_dir: str, config_path: str, key: DataKey, data: dict[str, Any]) -> bool:
    """Seal and store the index; False when it cannot be (unmarshallable value, full disk)."""
    from keybroker.cache.crypto import seal  # noqa: PLC0415

    try:
        blob = seal(key, _index_id(config_path), {}, marshal.dumps(data))
        atomic_write(index_path(cache_dir, config_path), blob)
    except (ValueError, OSError):
        return False
    return True
