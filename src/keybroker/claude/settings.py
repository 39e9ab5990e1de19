"""Claude Code's settings files: where each scope lives, reading, backing up, writing.

Claude Code reads, highest precedence first: managed settings (the system file an
administrator deploys), ``--settings`` on its command line, ``.claude/settings.local.json``,
``.claude/settings.json`` (shared, committed), ``~/.claude/settings.json`` (or
``$CLAUDE_CONFIG_DIR/settings.json``). Values in a file's ``env`` block are applied over the
shell's environment (measured on 2.1.197 and 2.1.332), so the shell comes last.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    """The settings object; None when the file does not exist. Exit 2 if it is invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')}); not touching it",
            "fix or move the file, then run this again",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level; not touching it")
    return data


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


def backup(path: Path) -> Path:
    """Copy ``path`` to ``path.bak``, replacing the previous backup: one backup, never a pile."""
    from keybroker.cache.files import atomic_write  # noqa: PLC0415

    target = path.with_name(path.name + ".bak")
    atomic_write(target, path.read_bytes())
    os.chmod(target, path.stat().st_mode & 0o777)
    return target


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


def write_settings(path: Path, data: Mapping[str, Any], mode: int, dir_mode: int) -> None:
    """Replace ``path`` atomically (through a symlink to its target, so dotfiles stay linked)."""
    from keybroker.cache.files import atomic_write  # noqa: PLC0415

    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    make_dirs(target.parent, dir_mode)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write(target, text.encode("utf-8"))
    os.chmod(target, mode)
