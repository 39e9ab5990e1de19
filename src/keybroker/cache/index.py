"""Where the profile index lives and how it notices a changed config (slim: on the hit path).

The index is the validated config as JSON, next to the cache, plus each profile's entry id
per environment, so a hit needs neither TOML nor the source's module (see keybroker.hot).
"""

from __future__ import annotations

import os

from keybroker._hash import hexdigest

INDEX_VERSION = 2


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
    return os.path.join(cache_dir, f"index-{digest}.json")
