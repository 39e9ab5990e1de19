"""The profile index: what the hit path needs of the config, next to the cache.

It is narrow on purpose — primitives only (strings, numbers, lists, dicts of them), built by
:mod:`keybroker.config` from the validated config: per profile its source name, the source's
default storage, its serving options, and per environment variant the request digest, the
identity inputs (where the caller's credentials come from, never their values) and, for
``env``/``file`` profiles, where to read the key directly. Standalone command lines
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
    from typing import Any

    from keybroker.cache.crypto import DataKey

INDEX_VERSION = 4


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


def read_index(
    cache_dir: str, config_path: str, key: DataKey, system_path: str | None = None
) -> dict[str, Any] | None:
    """The index if it opens and is current for the config files, else None."""
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
