"""Safe directories and crash-safe file writes for the cache and the data key.

A cache dir that another user can write to (or that is a symlink to one) would let them
plant entries or read timing; it is refused with exit 7 rather than used. Writes go to a
temp file in the same dir, are fsynced, then ``os.replace``d, so a crash leaves either the
old file or the new one, never half of one.
"""

from __future__ import annotations

import os
import stat
import sys

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Callable

_POSIX = sys.platform != "win32"


def cache_error(message: str, hint: str | None = None) -> Exception:
    """A CacheError (exit 7), importing the errors module only when one is raised."""
    from keybroker.errors import CacheError  # noqa: PLC0415 - off the hit path

    return CacheError(message, hint)


def ensure_private_dir(path: str | os.PathLike[str], what: str) -> None:
    """Create ``path`` (0700) if missing; refuse it if it is unsafe (exit 7).

    Paths may be strings: the hit path never imports pathlib.
    """
    parent = os.path.dirname(os.path.abspath(path))
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        try:
            make_dirs(parent, 0o700)
            check_parent_dir(parent, path, what)  # before anything of ours goes in it
            os.mkdir(path, 0o700)
        except FileExistsError:
            pass
        except OSError as exc:
            raise cache_error(
                f"cannot create the {what} {path}: {exc.strerror}",
                "check permissions or set KEYBROKER_CACHE_DIR",
            ) from None
        st = os.lstat(path)
    except OSError as exc:
        raise cache_error(f"cannot inspect the {what} {path}: {exc.strerror}") from None
    check_private_dir(path, st, what)
    check_parent_dir(parent, path, what)


def check_parent_dir(parent: str, path: str | os.PathLike[str], what: str) -> None:
    """Refuse a private dir whose parent another user controls (exit 7).

    Whoever owns the parent, or may write to it (without the sticky bit), can rename the
    private dir away and put theirs in its place: the CI per-job dir
    ``/tmp/keybroker-<uid>-<job>`` created beforehand by another user is the case in point.
    The parent must be ours or root's (a link to it too) and not writable by group or others
    unless sticky; the CI per-job dir itself must be exactly private (no group/other bits).
    """
    if sys.platform == "win32":  # no POSIX owners: docs/platforms.md
        return
    try:
        link = os.lstat(parent)
        st = os.stat(parent)
    except OSError as exc:
        raise cache_error(f"cannot inspect {parent}: {exc.strerror}") from None
    mine = (os.getuid(), 0)
    job = _ci_job_dir() == os.path.abspath(parent)
    owner = link.st_uid if link.st_uid not in mine else st.st_uid
    if owner not in mine:
        if job:
            raise cache_error(
                f"the CI job directory {parent} belongs to uid {owner}, not to you: another "
                "user created it before this job and could swap what keybroker keeps there; "
                "refusing to use it",
                f"remove {parent} (its owner or root can), or set KEYBROKER_CACHE_DIR and "
                "KEYBROKER_DATA_DIR to a private directory of this job",
            )
        raise cache_error(
            f"the {what} {path} is inside {parent}, which belongs to uid {owner}, not to you "
            "or root: its owner could swap what keybroker keeps there; refusing to use it",
            "set KEYBROKER_CACHE_DIR and KEYBROKER_DATA_DIR to a directory of yours",
        )
    loose = st.st_mode & 0o077 if job else st.st_mode & 0o022 and not st.st_mode & stat.S_ISVTX
    if loose:
        where = f"the CI job directory {parent}" if job else f"{parent}, which holds the {what},"
        raise cache_error(
            f"{where} is open to group or others (mode {stat.S_IMODE(st.st_mode):04o}); "
            "refusing to use it",
            f"remove it, or run: chmod 700 {parent}",
        )


def _ci_job_dir() -> str | None:
    """This process's CI per-job dir (only asked when a parent is checked: off the hit path)."""
    from keybroker.paths import ci_job_dir  # noqa: PLC0415

    job = ci_job_dir(os.environ)
    return os.path.abspath(job) if job else None


def make_dirs(path: str | os.PathLike[str], mode: int) -> None:
    """``os.makedirs`` whose every created directory gets ``mode``, whatever the umask.

    ``os.makedirs(mode=…)`` applies the mode to the last directory only; the parents it creates
    (``~/.cache``, ``~/.local/share``) would follow the umask, i.e. 0777 under ``umask 000``.
    """
    path = os.fspath(path)
    missing: list[str] = []
    while path and not os.path.lexists(path):
        missing.append(path)
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            continue
        os.chmod(directory, mode)  # mkdir's mode is masked by the umask; chmod is not


def check_private_dir(path: str | os.PathLike[str], st: os.stat_result, what: str) -> None:
    """Refuse a symlink, a non-directory, a foreign owner, or group/world write access."""
    if stat.S_ISLNK(st.st_mode):
        raise cache_error(
            f"the {what} {path} is a symlink; refusing to use it",
            "remove the link or point KEYBROKER_CACHE_DIR at a real private directory",
        )
    if not stat.S_ISDIR(st.st_mode):
        raise cache_error(f"the {what} {path} is not a directory")
    if sys.platform != "win32":  # Windows: no POSIX owner or mode bits (docs/platforms.md)
        if st.st_uid != os.getuid():
            raise cache_error(
                f"the {what} {path} belongs to uid {st.st_uid}, not to you; refusing to use it",
                "remove it or set KEYBROKER_CACHE_DIR",
            )
        if st.st_mode & 0o022:
            raise cache_error(
                f"the {what} {path} is writable by group or others "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); refusing to use it",
                f"run: chmod 700 {path}",
            )


#: How every bounded read opens a file: opening a FIFO never waits for a writer, a terminal
#: never becomes the controlling one, bytes come as they are; links are not followed unless a
#: caller says so (:func:`read_checked`'s ``follow``).
_OPEN_FLAGS = (
    os.O_RDONLY
    | getattr(os, "O_NONBLOCK", 0)
    | getattr(os, "O_NOCTTY", 0)
    | getattr(os, "O_BINARY", 0)
)
_READ_FLAGS = _OPEN_FLAGS | getattr(os, "O_NOFOLLOW", 0)


def read_bytes(path: str | os.PathLike[str], limit: int = 1 << 20) -> bytes | None:
    """A regular file's bytes, or None if it is missing or not a regular file.

    Symlinks are not followed, and a FIFO, socket or device squatting the name is a miss:
    reading one could block past the call's deadline.
    """
    found = read_regular(path, limit)
    return None if found is None else found[0]


def read_regular(
    path: str | os.PathLike[str], limit: int = 1 << 20
) -> tuple[bytes, tuple[int, int, int, int]] | None:
    """:func:`read_bytes`, with the identity of the file that was read.

    The identity (inode, size, mtime, ctime of the open descriptor) lets a later look tell
    whether the name still holds the very file read then: entries are replaced by rename,
    so an unchanged identity means unchanged content and nothing needs decrypting again.
    """
    try:
        fd = os.open(path, _READ_FLAGS)
    except OSError:
        return None  # missing, a link, or unreadable: treated as a miss by callers
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            return None
        return os.read(fd, limit), file_identity(st)
    except OSError:
        return None  # e.g. a directory squatting the name: a miss, never a crash
    finally:
        os.close(fd)


def read_checked(
    path: str | os.PathLike[str],
    limit: int,
    not_regular: Callable[[os.stat_result], Exception],
    unreadable: Callable[[OSError], Exception],
    check: Callable[[os.stat_result], None] | None = None,
    follow: bool = False,
) -> bytes | None:
    """At most ``limit`` bytes of the regular file at ``path``, or None when there is none.

    For the files whose problems are errors to report, not misses (:func:`read_bytes` treats
    them as misses): the data key, Claude Code's settings. Opening never waits (a FIFO or
    device squatting the name), symlinks are not followed unless ``follow``, and what was
    opened is checked on its descriptor: anything but a regular file raises
    ``not_regular(stat)``; ``check(stat)`` may refuse more (the owner, the mode) before a byte
    is read; an ``OSError`` opening or reading raises ``unreadable(error)``.
    """
    try:
        fd = os.open(path, _OPEN_FLAGS if follow else _READ_FLAGS)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise unreadable(exc) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise not_regular(st)
        if check is not None:
            check(st)
        chunks: list[bytes] = []
        size = 0
        while size < limit:
            chunk = os.read(fd, min(1 << 16, limit - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise unreadable(exc) from None
    finally:
        os.close(fd)


def file_identity(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def identity_of(path: str | os.PathLike[str]) -> tuple[int, int, int, int] | None:
    """The identity :func:`read_regular` reports for what ``path`` names now, or None."""
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return file_identity(st) if stat.S_ISREG(st.st_mode) else None


def atomic_write(
    path: str | os.PathLike[str],
    data: bytes,
    durable: bool = True,
    before_replace: Callable[[], object] | None = None,
) -> None:
    """Write ``data`` to ``path`` with mode 0600 via temp file, fsync and os.replace.

    The temp file is new (``O_EXCL``, random name, no symlink followed) and made exactly 0600
    whatever the umask, so whatever file was at ``path`` (its owner, mode, open descriptors)
    never sees ``data``. ``durable=False`` skips the fsyncs, for records whose loss is
    harmless (repeat records). ``before_replace`` runs just before the rename (a last check
    of the target); if it raises, the temp file is removed and nothing is replaced.
    """
    path = os.fspath(path)
    directory, name = os.path.split(path)
    tmp = os.path.join(directory, f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    flags |= getattr(os, "O_BINARY", 0)
    fd = os.open(tmp, flags, 0o600)
    try:
        if sys.platform != "win32":  # no POSIX modes there (docs/platforms.md)
            os.fchmod(fd, 0o600)  # open's mode is masked by the umask; fchmod's is not
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        if durable:
            os.fsync(fd)
    except BaseException:
        os.close(fd)
        _unlink_quietly(tmp)
        raise
    os.close(fd)
    try:
        if before_replace is not None:
            before_replace()
        os.replace(tmp, path)
    except BaseException:
        _unlink_quietly(tmp)
        raise
    if _POSIX and durable:
        try:
            dfd = os.open(directory or ".", os.O_RDONLY)
        except OSError:
            return
        try:
            os.fsync(dfd)
        except OSError:
            pass  # the file is in place; the directory entry's durability is best effort
        finally:
            os.close(dfd)


def _unlink_quietly(path: str) -> None:
    try:  # noqa: SIM105 - no contextlib import on the hit path
        os.unlink(path)
    except OSError:
        pass


def remove(path: str | os.PathLike[str]) -> None:
    """Delete a file if it is there; never fail for a file that is already gone."""
    try:  # noqa: SIM105 - no contextlib import on the hit path
        os.unlink(path)
    except FileNotFoundError:
        pass
