"""Who could change what a managed settings file makes Claude Code run, for every user.

Managed settings run their ``apiKeyHelper`` in every account on the machine. So keybroker's
drop-in, the folders above it, the other managed files merged with it, and the helper
executable it names must all be closed to any account but root: otherwise that account can
make everyone run its command. :func:`check_folders` refuses (or, for a folder root owns,
repairs) what is open; :func:`check_executable` refuses a helper that other users cannot run
or that a non-root account could rewrite, with the fix.
"""

from __future__ import annotations

import os
import shlex
import shutil
import stat
import sys
from pathlib import Path

from keybroker.errors import ConfigError, UsageError

ROOT_UID = 0
_OPEN = stat.S_IWGRP | stat.S_IWOTH


def _owner_ok(st: os.stat_result) -> bool:
    if sys.platform == "win32":  # no POSIX owners: managed settings are an admin's folder
        return True
    return (
        st.st_uid in (ROOT_UID, os.geteuid())
        if os.geteuid() != ROOT_UID
        else (st.st_uid == ROOT_UID)
    )


def _ancestors(path: Path) -> list[Path]:
    """``path``'s parents from ``/`` down (both as written and resolved)."""
    seen: list[Path] = []
    for chain in (path, Path(os.path.realpath(path))):
        for parent in reversed(chain.parents):
            if parent not in seen:
                seen.append(parent)
    return seen


def _dir_open(st: os.stat_result) -> bool:
    """Another account could rename or replace entries in this directory."""
    sticky = bool(st.st_mode & stat.S_ISVTX)
    return bool(st.st_mode & _OPEN) and not sticky


def check_folders(directory: Path, repair: bool) -> list[str]:
    """Check the managed folder, its drop-in folder and their ancestors.

    A managed folder (or ``managed-settings.d``) that root owns but leaves group/world
    writable is repaired to ``0755`` when ``repair`` (a note is returned); one owned by another
    account, or an ancestor another account could change, is refused (exit 2).
    """
    from keybroker.claude.settings import DROP_IN_DIR  # noqa: PLC0415

    notes: list[str] = []
    for ancestor in _ancestors(directory / "x"):
        try:
            st = os.stat(ancestor)
        except FileNotFoundError:
            continue
        mine = ancestor in (directory, directory / DROP_IN_DIR)
        if not _owner_ok(st) or (_dir_open(st) and not mine):
            raise ConfigError(
                f"{ancestor} is owned by uid {st.st_uid} or writable by others "
                f"({stat.filemode(st.st_mode)}): any account that can change it can change what "
                "every user's Claude Code runs; not writing managed settings under it",
                f"chown root {ancestor} && chmod go-w {ancestor}",
            )
    for folder in (directory, directory / DROP_IN_DIR):
        try:
            st = os.lstat(folder)
        except FileNotFoundError:
            continue
        if stat.S_ISLNK(st.st_mode):
            raise ConfigError(
                f"{folder} is a symlink; managed settings are written only into "
                "a real folder root owns",
                f"replace {folder} with a directory",
            )
        if not _owner_ok(st):
            raise ConfigError(
                f"{folder} is owned by uid {st.st_uid}, not root", f"chown root {folder}"
            )
        if st.st_mode & _OPEN:
            if not repair:
                raise ConfigError(
                    f"{folder} is writable by others ({stat.filemode(st.st_mode)})",
                    f"chmod go-w {folder}",
                )
            os.chmod(folder, (st.st_mode & 0o7777) & ~_OPEN)
            notes.append(
                f"repaired {folder}: was {stat.filemode(st.st_mode)} (anyone could add "
                f"managed settings), now {stat.filemode(os.stat(folder).st_mode)}"
            )
    return notes


def check_files(paths: list[Path]) -> None:
    """Refuse when a managed file merged with keybroker's could be changed by another account.

    keybroker never edits these files (others own them); it says how to close them.
    """
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        if not _owner_ok(st) or st.st_mode & _OPEN:
            raise ConfigError(
                f"{path} is owned by uid {st.st_uid} or writable by others "
                f"({stat.filemode(st.st_mode)}); Claude Code merges it with keybroker's "
                "managed settings, so any account could override the helper",
                f"chown root {path} && chmod 644 {path} (keybroker does not edit files it "
                "did not write)",
            )


def check_executable(command: str) -> str:
    """The absolute path ``command`` runs, refused unless every user can run it and only root
    can change it (the file, each folder above it, and a ``#!`` interpreter)."""
    try:
        words = shlex.split(command)
    except ValueError:
        words = []
    first = words[0] if words else command
    found = first if os.path.isabs(first) else shutil.which(first)
    if not found:
        raise UsageError(
            f"managed settings need a helper every user can run; {first!r} is not on this PATH",
            "install keybroker per machine (scripts/install.sh "
            "--system) or pass --executable /usr/local/bin/keybroker",
        )
    problems = _exe_problems(Path(found))
    interpreter = _shebang(Path(found))
    if interpreter is not None:
        problems += [
            f"its interpreter {interpreter}: {p}" for p in _exe_problems(Path(interpreter))
        ]
    if problems:
        raise UsageError(
            f"managed settings would run {found} for every user, but {problems[0]}",
            "install keybroker per machine (e.g. into /usr/local or /opt, owned by root, "
            "mode 755) and rerun, or pass --executable PATH naming such an install",
        )
    return found


def _exe_problems(path: Path) -> list[str]:
    problems: list[str] = []
    for candidate in (path, Path(os.path.realpath(path))):
        try:
            st = os.stat(candidate)
        except OSError as exc:
            return [f"{candidate} cannot be read ({exc.strerror})"]
        if st.st_uid != ROOT_UID or st.st_mode & _OPEN:
            problems.append(
                f"{candidate} can be rewritten by a non-root account (owner uid "
                f"{st.st_uid}, {stat.filemode(st.st_mode)})"
            )
        if not st.st_mode & stat.S_IXOTH:
            problems.append(f"other users cannot run {candidate} ({stat.filemode(st.st_mode)})")
    for ancestor in _ancestors(path):
        st = os.stat(ancestor)
        if st.st_uid != ROOT_UID or _dir_open(st):
            problems.append(
                f"{ancestor} can be changed by a non-root account (owner uid "
                f"{st.st_uid}, {stat.filemode(st.st_mode)})"
            )
        if not st.st_mode & stat.S_IXOTH:
            problems.append(f"other users cannot enter {ancestor} ({stat.filemode(st.st_mode)})")
    return problems


def _shebang(path: Path) -> str | None:
    try:
        with open(path, "rb") as handle:
            head = handle.read(256)
    except OSError:
        return None
    if not head.startswith(b"#!"):
        return None
    words = head[2:].split(b"\n", 1)[0].split()
    return os.fsdecode(words[0]) if words and words[0].startswith(b"/") else None
