"""Reading and writing Claude Code's settings files without trusting what a repository planted.

A cloned repository controls its ``.claude/`` and ``.mcp.json``: either may be a symlink to
``~/.claude/settings.json``, to a path outside the project, to ``/dev/zero`` or a FIFO. So:

- **reads** are bounded (:data:`READ_LIMIT`) and never block: the file is opened with
  ``O_NONBLOCK`` and must be a regular file on the open descriptor (``fstat``); anything else is
  a :class:`~keybroker.errors.ConfigError` naming what the path is, never a hang or a 1 GB read;
- **writes into a project** walk from the project root one component at a time with
  ``O_NOFOLLOW`` on descriptors, so no link (the ``.claude`` dir or the file) is followed, refuse
  a target that is not a regular file, and replace it through a temp file and ``os.replace`` in
  the real directory. User scope keeps following a symlinked ``~/.claude/settings.json``
  (dotfile repositories link it on purpose; the user owns both ends).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keybroker.cache.files import read_checked
from keybroker.errors import ConfigError

#: Largest settings or MCP file read (Claude Code's own files are a few kB).
READ_LIMIT = 1 << 20
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = getattr(os, "O_DIRECTORY", 0)
_NONBLOCK = getattr(os, "O_NONBLOCK", 0)


def kind(mode: int) -> str:
    """What a non-regular file is, in words for an error message."""
    for test, word in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISLNK, "a symlink"),
    ):
        if test(mode):
            return word
    return "not a regular file"


def read_bytes(path: Path, limit: int = READ_LIMIT) -> bytes | None:
    """A regular file's bytes (None when missing); bounded, and never waits on a FIFO."""
    raw = read_checked(
        path,
        limit + 1,
        not_regular=lambda st: ConfigError(
            f"{path} is {kind(st.st_mode)}, not a settings file; not reading it",
            "remove it or replace it with a regular file",
        ),
        unreadable=lambda exc: ConfigError(f"cannot read {path}: {exc.strerror}"),
        follow=True,  # dotfile repositories link settings.json; what opens is checked
    )
    if raw is not None and len(raw) > limit:
        raise ConfigError(
            f"{path} is larger than {limit // 1024} KiB; not reading it",
            "a settings file is a few kB: check what it is",
        )
    return raw


def parse_object(path: Path, raw: bytes | None) -> dict[str, Any] | None:
    """The JSON object in ``raw`` (None when the file is missing); exit 2 when it is not one."""
    if raw is None:
        return None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not UTF-8 text; not touching it") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')}); not touching it",
            "fix or move the file, then run this again",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level; not touching it")
    return data


def dumps(data: Mapping[str, Any]) -> bytes:
    """How keybroker writes a settings file (Claude Code's own two-space style)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def _open_dir(name: str, parent_fd: int, where: Path, create_mode: int | None) -> int:
    """Open ``name`` under ``parent_fd`` as a directory, never through a link."""
    flags = os.O_RDONLY | _DIRECTORY | _NOFOLLOW
    try:
        return os.open(name, flags, dir_fd=parent_fd)
    except FileNotFoundError:
        if create_mode is None:
            raise
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
            raise ConfigError(
                f"{where} is a symlink or not a directory; keybroker does not write through it "
                "(a repository can point it anywhere)",
                "replace it with a real directory, or configure another scope",
            ) from None
        raise
    try:
        os.mkdir(name, create_mode, dir_fd=parent_fd)
    except FileExistsError:
        return _open_dir(name, parent_fd, where, None)
    fd = _open_dir(name, parent_fd, where, None)
    if sys.platform != "win32":  # no POSIX modes there (docs/platforms.md)
        os.fchmod(fd, create_mode)  # exactly this mode, whatever the umask
    return fd


def open_parent(root: Path, relative: tuple[str, ...], dir_mode: int | None) -> int:
    """A descriptor of ``root/relative[:-1]``, each component opened without following links.

    ``root`` itself is the directory the person named (resolved once); everything under it is
    the repository's and is walked with ``O_NOFOLLOW``. Missing directories are created with
    ``dir_mode`` (None: do not create).
    """
    fd = os.open(os.path.realpath(root), os.O_RDONLY | _DIRECTORY)
    where = root
    try:
        for part in relative[:-1]:
            where = where / part
            nxt = _open_dir(part, fd, where, dir_mode)
            os.close(fd)
            fd = nxt
    except BaseException:
        os.close(fd)
        raise
    return fd


def lstat_in(parent_fd: int, name: str) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


def check_target(parent_fd: int, name: str, where: Path) -> os.stat_result | None:
    """The target's lstat; refuses a link, FIFO, device or directory squatting the name."""
    st = lstat_in(parent_fd, name)
    if st is not None and not stat.S_ISREG(st.st_mode):
        raise ConfigError(
            f"{where} is {kind(st.st_mode)}, not a regular file; keybroker does not write "
            "through or over it",
            "remove it (check who put it there), then run this again",
        )
    return st


def read_in(parent_fd: int, name: str, where: Path, limit: int = READ_LIMIT) -> bytes | None:
    """Bytes of ``name`` under ``parent_fd`` (no link followed, bounded, non-blocking)."""
    try:
        fd = os.open(name, os.O_RDONLY | _NOFOLLOW | _NONBLOCK, dir_fd=parent_fd)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise ConfigError(
                f"{where} is a symlink; keybroker does not follow it here",
                "replace it with a regular file",
            ) from None
        raise ConfigError(f"cannot read {where}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise ConfigError(f"{where} is {kind(st.st_mode)}, not a settings file")
        data = os.read(fd, limit + 1)
        if len(data) > limit:
            raise ConfigError(f"{where} is larger than {limit // 1024} KiB; not reading it")
        return data
    finally:
        os.close(fd)


def replace_in(parent_fd: int, name: str, data: bytes, mode: int) -> None:
    """Write ``data`` to ``name`` under ``parent_fd``: temp file, fsync, ``os.replace``."""
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW, 0o600, dir_fd=parent_fd)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if sys.platform != "win32":
            os.fchmod(fd, mode)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        os.unlink(tmp, dir_fd=parent_fd)
        raise
    os.close(fd)
    try:
        os.replace(tmp, name, src_dir_fd=parent_fd, dst_dir_fd=parent_fd)
    except BaseException:
        os.unlink(tmp, dir_fd=parent_fd)
        raise
    with contextlib.suppress(OSError):  # the file is in place; its entry's durability is
        os.fsync(parent_fd)  # best effort


def write_confined(
    root: Path, relative: tuple[str, ...], data: bytes, mode: int, dir_mode: int
) -> None:
    """Write ``root/relative`` without following any link below ``root``; refuse non-files.

    A missing ``root`` (the folder the person named) is created with ``dir_mode``.
    """
    if not os.path.isdir(root):
        make_dirs(root, dir_mode)
    parent = open_parent(root, relative, dir_mode)
    try:
        where = root.joinpath(*relative)
        check_target(parent, relative[-1], where)
        replace_in(parent, relative[-1], data, mode)
    finally:
        os.close(parent)


def read_confined(root: Path, relative: tuple[str, ...], limit: int = READ_LIMIT) -> bytes | None:
    """Read ``root/relative`` like :func:`write_confined` writes it (None when missing)."""
    try:
        parent = open_parent(root, relative, None)
    except FileNotFoundError:
        return None
    try:
        return read_in(parent, relative[-1], root.joinpath(*relative), limit)
    finally:
        os.close(parent)


def remove_confined(root: Path, relative: tuple[str, ...]) -> bool:
    """Delete ``root/relative`` (a regular file) without following links; False if missing."""
    try:
        parent = open_parent(root, relative, None)
    except FileNotFoundError:
        return False
    try:
        if check_target(parent, relative[-1], root.joinpath(*relative)) is None:
            return False
        os.unlink(relative[-1], dir_fd=parent)
        return True
    finally:
        os.close(parent)


def remove_empty_dir(root: Path, name: str) -> None:
    """Remove ``root/name`` if it is an empty real directory (never through a link)."""
    try:
        fd = os.open(os.path.realpath(root), os.O_RDONLY | _DIRECTORY)
    except OSError:
        return
    try:
        st = lstat_in(fd, name)
        if st is not None and stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError):  # not empty: someone else's files are there
                os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


def make_dirs(directory: Path, mode: int) -> None:
    """Create ``directory`` and missing parents with exactly ``mode``, whatever the umask."""
    missing: list[Path] = []
    for candidate in (directory, *directory.parents):
        if candidate.exists():
            break
        missing.append(candidate)
    for created in reversed(missing):
        try:
            created.mkdir(mode=mode)
        except FileExistsError:
            continue
        os.chmod(created, mode)
