"""Config trust, like ssh's StrictModes: a config names commands to run and where credentials
live, so a file another user can write — or a file another user can *swap* — is a way to run
code as you or steal your keys (DESIGN section 5).

The rule follows OpenSSH's ``safe_path()`` (misc.c), but is applied to the open descriptors
instead of to path names, so nothing can be swapped between the check and the read:

- the path is walked from ``/`` one component at a time, each directory opened relative to the
  one before (``openat`` with ``O_NOFOLLOW | O_DIRECTORY``) and checked on its descriptor
  (``fstat``): it must belong to you or root and not be writable by group or others. Unlike
  ssh, a directory others may write is accepted when it has the sticky bit (``/tmp``): there
  only the owner of an entry can rename or remove it, and every entry we go through must itself
  belong to you or root;
- the file is opened once, relative to its checked directory, with ``O_NOFOLLOW`` (and
  ``O_NONBLOCK``, so a FIFO cannot hang the call), checked on its descriptor (a regular file,
  yours or root's, not writable by group or others) and read from that descriptor;
- symbolic links (``~/.config`` kept in a dotfiles repository, a config managed by
  home-manager) are followed *safely*: the link must belong to you or root and sit in a
  directory that passed the rule (so no one else can have written or can change it), and its
  target is walked by the same rule; at most 40 links.

Anything else is refused with exit 2 and what to run to fix it. The system layer
(``/etc/keybroker/config.toml``) is held to the same rule: root's (or yours, when you point
``KEYBROKER_SYSTEM_CONFIG`` at your own file), in directories no one else controls.

On Windows there are no POSIX owners or modes: the file is opened once, must be a regular file,
and is read from that handle; ownership and ACLs are not checked there (documented in
docs/security.md).
"""

from __future__ import annotations

import errno
import os
import stat
import sys
from pathlib import Path

from keybroker.errors import ConfigError

#: A config is a few kilobytes; anything this big is not one (and must not exhaust memory).
MAX_BYTES = 4 * 1024 * 1024
#: Symbolic links followed before giving up (Linux's own limit).
MAX_LINKS = 40


def read_trusted(path: Path, system: bool = False) -> tuple[bytes, os.stat_result]:
    """The bytes of a trusted config file and the stat of the descriptor they were read from.

    FileNotFoundError when the file (or a directory on its way) does not exist; ConfigError
    (exit 2) with the fix when it may not be trusted or cannot be read.
    """
    what = "system config" if system else "config"
    if sys.platform == "win32":  # pragma: no cover - no POSIX owners or modes there
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_BINARY", 0))
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(what, path)
            return _read_all(fd, what, path), st
        finally:
            os.close(fd)
    else:
        walker = _Walker(what, path)
        fd = walker.open_file(os.path.abspath(path))
        try:
            st = os.fstat(fd)
            walker.check_file(st)
            return _read_all(fd, what, path), st
        finally:
            os.close(fd)


def _read_all(fd: int, what: str, path: Path) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = os.read(fd, 65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > MAX_BYTES:
            raise ConfigError(
                f"{what} {path} is larger than {MAX_BYTES // (1024 * 1024)} MiB; "
                "refusing to read it"
            )
        chunks.append(chunk)


def _not_regular(what: str, path: Path) -> ConfigError:
    return ConfigError(
        f"{what} {path} is not a regular file; refusing to read it",
        "point KEYBROKER_CONFIG at a regular file",
    )


if sys.platform != "win32":

    class _Walker:
        """One walk from ``/`` to the config file, holding each directory open while the next
        component is opened relative to it."""

        def __init__(self, what: str, path: Path) -> None:
            self.what = what
            self.path = path
            self.uid = os.getuid()
            self.links = 0

        def _ours(self, uid: int) -> bool:
            return uid in (self.uid, 0)

        def open_file(self, absolute: str) -> int:
            """An open descriptor of the file at ``absolute``, every directory on the way
            checked; the file itself is checked by the caller on the descriptor."""
            dir_fd, shown = self._open_root()
            parts = [p for p in absolute.split("/") if p]
            try:
                while parts:
                    name = parts.pop(0)
                    if name == ".":
                        continue
                    if name == "..":
                        # the parent of a checked directory: re-walk its path, never trust ".."
                        os.close(dir_fd)
                        dir_fd, shown = self._reopen(os.path.dirname(shown) or "/")
                        continue
                    last = not parts
                    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
                    if not last:
                        flags |= os.O_DIRECTORY
                    here = os.path.join(shown, name)
                    try:
                        fd = os.open(name, flags, dir_fd=dir_fd)
                    except OSError as exc:
                        if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                            raise
                        target = self._link(dir_fd, name, here)
                        if target is None:
                            raise
                        parts = [p for p in target.split("/") if p] + parts
                        if target.startswith("/"):
                            os.close(dir_fd)
                            dir_fd, shown = self._open_root()
                        continue
                    if last:
                        return fd
                    os.close(dir_fd)
                    dir_fd, shown = fd, here
                    self._check_dir(os.fstat(dir_fd), shown)
                raise IsADirectoryError(errno.EISDIR, "is a directory", str(self.path))
            finally:
                os.close(dir_fd)

        def _open_root(self) -> tuple[int, str]:
            fd = os.open("/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            self._check_dir(os.fstat(fd), "/")
            return fd, "/"

        def _reopen(self, directory: str) -> tuple[int, str]:
            fd = self.open_dir(directory)
            return fd, directory

        def open_dir(self, directory: str) -> int:
            """A checked descriptor of ``directory`` (walked from ``/`` like the file)."""
            dir_fd, shown = self._open_root()
            for name in [p for p in directory.split("/") if p]:
                try:
                    fd = os.open(
                        name,
                        os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_DIRECTORY,
                        dir_fd=dir_fd,
                    )
                finally:
                    os.close(dir_fd)
                dir_fd, shown = fd, os.path.join(shown, name)
                self._check_dir(os.fstat(dir_fd), shown)
            return dir_fd

        def _link(self, dir_fd: int, name: str, here: str) -> str | None:
            """The target of the symbolic link ``name`` when it may be followed, else None
            (not a link) or ConfigError (a link someone else controls)."""
            st = os.lstat(name, dir_fd=dir_fd)
            if not stat.S_ISLNK(st.st_mode):
                return None
            self.links += 1
            if self.links > MAX_LINKS:
                raise ConfigError(f"{self.what} {self.path}: too many symbolic links on the way")
            if not self._ours(st.st_uid):
                raise ConfigError(
                    f"{self.what} {self.path}: the symbolic link {here} belongs to uid "
                    f"{st.st_uid}, not to you or root; refusing to follow it (its owner "
                    "chooses which file is read)",
                    f"replace the link with the file itself, or: sudo chown -h {self.uid} {here}",
                )
            return os.readlink(name, dir_fd=dir_fd)

        def _check_dir(self, st: os.stat_result, directory: str) -> None:
            if not self._ours(st.st_uid):
                raise ConfigError(
                    f"{self.what} {self.path} is under {directory}, which belongs to uid "
                    f"{st.st_uid}, not to you or root; refusing to use it (its owner can "
                    "replace the file)",
                    "move the config into a directory of yours, e.g. ~/.config/keybroker/",
                )
            if st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX:
                raise ConfigError(
                    f"{self.what} {self.path} is under {directory}, which is writable by "
                    f"group or others (mode {stat.S_IMODE(st.st_mode):04o}); refusing to use "
                    "it (anyone who can write it can rename or replace what is below it)",
                    f"run: chmod go-w {directory}  (or chmod +t when others must share it)",
                )

        def check_file(self, st: os.stat_result) -> None:
            if not stat.S_ISREG(st.st_mode):
                raise _not_regular(self.what, self.path)
            if not self._ours(st.st_uid):
                raise ConfigError(
                    f"{self.what} {self.path} belongs to uid {st.st_uid}, not to you or root; "
                    "refusing to use it (it can name commands that would run as you)",
                    f"take it over or remove it: sudo chown {self.uid} {self.path}",
                )
            if st.st_mode & 0o022:
                raise ConfigError(
                    f"{self.what} {self.path} is writable by group or others (mode "
                    f"{stat.S_IMODE(st.st_mode):04o}); refusing to use it (anyone who can "
                    "write it can run commands as you)",
                    f"run: chmod go-w {self.path}",
                )
