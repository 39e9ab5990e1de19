"""Config trust, like ssh's StrictModes: a config names commands to run and where credentials
live, so a file another user can write is a way to run code as you or steal your keys.

A user config (and its directory) must belong to you (or root) and not be writable by group
or others; a directory that others may write is accepted only with the sticky bit (``/tmp``),
where they cannot replace your file. The system layer (``/etc/keybroker/config.toml``) must
belong to root (or to you, when you point ``KEYBROKER_SYSTEM_CONFIG`` at your own file) and not
be writable by anyone else. Anything else is refused with exit 2 and what to run to fix it.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

from keybroker.errors import ConfigError


def _owner_ok(st: os.stat_result, system: bool) -> bool:
    if sys.platform == "win32":  # no POSIX owner (check_file returns before asking)
        return True
    uid = os.getuid()
    return st.st_uid in (uid, 0)


def check_file(path: Path, system: bool = False) -> os.stat_result:
    """The file's stat if it may be trusted; ConfigError (exit 2) saying how to fix it."""
    what = "system config" if system else "config"
    if sys.platform == "win32":  # pragma: no cover - ownership is not POSIX there
        return os.stat(path)
    real = Path(os.path.realpath(path))
    st = os.stat(real)
    if not stat.S_ISREG(st.st_mode):
        raise ConfigError(f"{what} {path} is not a regular file; refusing to read it",
                          "point KEYBROKER_CONFIG at a regular file")
    if not _owner_ok(st, system):
        raise ConfigError(
            f"{what} {path} belongs to uid {st.st_uid}, not to you or root; refusing to use it "
            "(it can name commands that would run as you)",
            f"take it over or remove it: sudo chown {os.getuid()} {real}",
        )
    if st.st_mode & 0o022:
        raise ConfigError(
            f"{what} {path} is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it (anyone who can write it can "
            "run commands as you)",
            f"run: chmod go-w {real}",
        )
    _check_dir(real.parent, what, path)
    return st


def _check_dir(directory: Path, what: str, path: Path) -> None:
    st = os.stat(directory)
    if not _owner_ok(st, False):
        raise ConfigError(
            f"the directory of {what} {path} ({directory}) belongs to uid {st.st_uid}; "
            "refusing to use it (its owner can replace the file)",
            "move the config into a directory of yours, e.g. ~/.config/keybroker/",
        )
    if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
        raise ConfigError(
            f"the directory of {what} {path} ({directory}) is writable by group or others "
            f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it (anyone who can write "
            "it can replace the file)",
            f"run: chmod go-w {directory}",
        )
