"""Claude Code's settings files: where each scope lives, reading, backing up, writing.

Claude Code reads, highest precedence first: managed settings (the system file an
administrator deploys), ``--settings`` on its command line, ``.claude/settings.local.json``,
``.claude/settings.json`` (shared, committed), ``~/.claude/settings.json`` (or
``$CLAUDE_CONFIG_DIR/settings.json``). Values in a file's ``env`` block are applied over the
shell's environment (measured on 2.1.197 and 2.1.332), so the shell comes last.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keybroker.claude.files import make_dirs
from keybroker.errors import ConfigError

#: Scopes ``keybroker claude configure`` can write.
SCOPES = ("user", "project", "local", "managed")
#: The scopes Claude Code reads, highest precedence first (the shell environment comes after).
PRECEDENCE = ("managed", "local", "project", "user")
#: Overrides the managed settings path (tests, packagers); ``--managed-path`` wins over it.
MANAGED_ENV = "KEYBROKER_CLAUDE_MANAGED_SETTINGS"
MANAGED_PATHS = {
    "linux": "/etc/claude-code/managed-settings.json",
    "darwin": "/Library/Application Support/ClaudeCode/managed-settings.json",
    "win32": r"C:\Program Files\ClaudeCode\managed-settings.json",
}
#: Directory modes: user and managed dirs hold private settings; a project's .claude is shared.
DIR_MODES = {"user": 0o700, "managed": 0o755, "project": 0o755, "local": 0o755}
FILE_MODES = {"user": 0o600, "managed": 0o644, "project": 0o644, "local": 0o600}


def managed_path(env: Mapping[str, str], override: str | None = None) -> Path:
    """The managed-settings.json Claude Code reads on this platform (or the override)."""
    chosen = override or env.get(MANAGED_ENV)
    if chosen:
        return Path(chosen).expanduser().absolute()
    platform = "linux" if sys.platform.startswith("linux") else sys.platform
    return Path(MANAGED_PATHS.get(platform, MANAGED_PATHS["linux"]))


def settings_path(
    scope: str,
    env: Mapping[str, str],
    project_dir: str | None = None,
    managed: str | None = None,
) -> Path:
    """user: ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``; project/local: ``<dir>/.claude``."""
    if scope == "managed":
        return managed_path(env, managed)
    if scope == "user":
        base = env.get("CLAUDE_CONFIG_DIR")
        root = Path(base).expanduser() if base else Path(env.get("HOME") or Path.home()) / ".claude"
        return root / "settings.json"
    project = Path(project_dir or os.getcwd()).absolute()
    name = "settings.json" if scope == "project" else "settings.local.json"
    return project / ".claude" / name


def read_settings(path: Path) -> dict[str, Any] | None:
    """The settings object; None when the file does not exist. Exit 2 if it is invalid.

    Bounded and non-blocking (:func:`keybroker.claude.files.read_bytes`): a repository's
    ``.claude/settings.json`` linked to ``/dev/zero`` or a FIFO is an error, not a hang.
    """
    from keybroker.claude import files  # noqa: PLC0415

    return files.parse_object(path, files.read_bytes(path))


def settings_env(data: Mapping[str, Any] | None) -> dict[str, Any]:
    """The ``env`` block of a settings object ({} when absent or not an object)."""
    env = (data or {}).get("env")
    return env if isinstance(env, dict) else {}


def git_root(path: Path) -> Path | None:
    """The nearest directory at or above ``path`` holding ``.git`` (a dir or a worktree file)."""
    for candidate in (path, *path.parents):
        if (candidate / ".git").exists():
            return candidate
    return None


#: The file name of keybroker's own managed drop-in (``managed-settings.d/<name>.json``).
DROP_IN = "keybroker"
DROP_IN_DIR = "managed-settings.d"


def check_drop_in(name: str) -> str:
    """A drop-in name Claude Code reads: a plain file name, no dot first, no ``.json``."""
    import re  # noqa: PLC0415

    if not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}", name) or name.endswith(".json"):
        raise ConfigError(
            f"--drop-in {name!r}: expected a plain name such as 'keybroker' or "
            "'50-keybroker' (letters, digits, '_', '-', '.'; no '.json')"
        )
    return name


def managed_dir(env: Mapping[str, str], override: str | None = None) -> Path:
    """The folder holding managed-settings.json and managed-settings.d/."""
    return managed_path(env, override).parent


def drop_ins(directory: Path) -> list[Path]:
    """The drop-ins Claude Code reads, in its order: ``*.json`` not starting with a dot, as
    files or links, sorted by name (2.1.337: ``readdirSync(...).filter(isFile||isSymbolicLink)
    .map(name).sort()``), each merged over managed-settings.json and the drop-ins before it."""
    try:
        names = [
            e.name
            for e in os.scandir(directory / DROP_IN_DIR)
            if e.name.endswith(".json")
            and not e.name.startswith(".")
            and (e.is_file(follow_symlinks=False) or e.is_symlink())
        ]
    except OSError:
        return []
    return [
        directory / DROP_IN_DIR / name
        for name in sorted(names, key=lambda n: n.encode("utf-16-be"))
    ]


@dataclass(frozen=True)
class Target:
    """One settings file keybroker writes, and how to write it safely.

    ``root`` confines every access: the components of ``relative`` under it are opened
    without following links (a repository's ``.claude`` may be a link; a managed folder is
    root's). With ``root`` None (user scope) a symlinked file is written through to its target,
    so dotfile repositories stay linked, but a FIFO or device is still refused.
    """

    scope: str
    path: Path
    root: Path | None = None
    relative: tuple[str, ...] = ()
    limit: int = 1 << 20  #: largest file read (~/.claude.json, Claude Code's own, grows larger)

    def read_bytes(self) -> bytes | None:
        from keybroker.claude import files  # noqa: PLC0415

        if self.root is not None:
            return files.read_confined(self.root, self.relative, self.limit)
        return files.read_bytes(self.path, self.limit)

    def read(self) -> dict[str, Any] | None:
        from keybroker.claude import files  # noqa: PLC0415

        return files.parse_object(self.path, self.read_bytes())

    def mode(self) -> int | None:
        """The file's permission bits, None when it does not exist."""
        try:
            st = os.stat(self.path) if self.root is None else os.lstat(self.path)
        except FileNotFoundError:
            return None
        return st.st_mode & 0o777

    def write(self, data: bytes, mode: int, dir_mode: int) -> None:
        from keybroker.claude import files  # noqa: PLC0415

        if self.root is not None:
            files.write_confined(self.root, self.relative, data, mode, dir_mode)
            return
        target = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        make_dirs(target.parent, dir_mode)
        files.write_confined(target.parent, (target.name,), data, mode, dir_mode)

    def remove(self) -> bool:
        from keybroker.claude import files  # noqa: PLC0415

        if self.root is not None:
            return files.remove_confined(self.root, self.relative)
        target = Path(os.path.realpath(self.path)) if self.path.is_symlink() else self.path
        return files.remove_confined(target.parent, (target.name,))

    def backup(self) -> Path:
        """Copy the file to ``<name>.bak`` beside it, replacing the previous backup."""
        raw = self.read_bytes() or b""
        mode = self.mode() or 0o600
        if self.root is not None:
            name = (*self.relative[:-1], self.relative[-1] + ".bak")
            Target(self.scope, self.path.with_name(self.path.name + ".bak"), self.root, name).write(
                raw, mode, 0o755
            )
        else:
            real = Path(os.path.realpath(self.path))
            Target(self.scope, real.with_name(real.name + ".bak")).write(raw, mode, 0o700)
        return self.path.with_name(self.path.name + ".bak")


def target(
    scope: str,
    env: Mapping[str, str],
    project_dir: str | None = None,
    managed: str | None = None,
    drop_in: str = DROP_IN,
) -> Target:
    """Where ``configure --scope SCOPE`` writes, confined as :class:`Target` says."""
    if scope == "managed":
        directory = managed_dir(env, managed)
        relative = (DROP_IN_DIR, f"{drop_in}.json")
        return Target(scope, directory.joinpath(*relative), directory, relative)
    if scope == "user":
        return Target(scope, settings_path(scope, env))
    project = Path(project_dir or os.getcwd()).absolute()
    path = settings_path(scope, env, str(project))
    return Target(scope, path, project, (".claude", path.name))
