"""Claude Code's managed settings from the OS policy stores (MDM profiles, the registry).

Besides ``managed-settings.json`` and its drop-ins, Claude Code (2.1.337) reads managed
settings from:

- macOS: the managed preferences of domain ``com.anthropic.claudecode`` an MDM profile
  installs, ``/Library/Managed Preferences/<user>/com.anthropic.claudecode.plist`` (per user)
  and then ``/Library/Managed Preferences/com.anthropic.claudecode.plist`` (device); the first
  that exists is used, its top-level dict being the settings object;
- Windows: the ``Settings`` value (a JSON string) of ``HKLM\\SOFTWARE\\Policies\\ClaudeCode``,
  and of ``HKCU\\...`` with the lowest priority of all.

The first managed source that exists provides ALL managed settings ("first source wins"):
plist / HKLM, then the files, then HKCU. So a profile on a Mac makes Claude Code ignore
keybroker's drop-in. :func:`managed_sources` lists the sources that exist, highest first; the
platform, the preferences root and the registry reader are parameters so the macOS and
Windows logic runs (with fakes) on any machine. Every read is bounded and every malformed
source is a :class:`~keybroker.errors.ConfigError` naming it, never a traceback.
"""

from __future__ import annotations

import json
import os
import plistlib
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from keybroker.claude.files import READ_LIMIT, read_bytes
from keybroker.claude.mdm import DOMAIN
from keybroker.errors import ConfigError

#: Overrides the managed-preferences root (tests, packagers); when set, plists are read on any
#: platform, as ``KEYBROKER_CLAUDE_MANAGED_SETTINGS`` moves the managed file.
PREFERENCES_ENV = "KEYBROKER_CLAUDE_MANAGED_PREFERENCES"
PREFERENCES_ROOT = Path("/Library/Managed Preferences")
REGISTRY_KEY = r"SOFTWARE\Policies\ClaudeCode"
REGISTRY_VALUE = "Settings"

#: ``hive`` ("HKLM" or "HKCU") -> the ``Settings`` string, None when the key or value is absent;
#: raises ConfigError when it exists but cannot be read as a string.
RegistryReader = Callable[[str], str | None]


@dataclass(frozen=True)
class PolicySource:
    """One managed source that exists: where it is, and its settings (or why not)."""

    kind: str  #: "plist" or "registry"
    where: str  #: the plist's path, or ``HKLM\\SOFTWARE\\Policies\\ClaudeCode\\Settings``
    label: str  #: what it is, in words
    admin: bool  #: above managed-settings.json (plist, HKLM); HKCU is below it
    data: dict[str, Any] | None
    error: ConfigError | None = None


def username() -> str:
    """The account name Claude Code uses (Node's ``os.userInfo()``: the effective uid's)."""
    if sys.platform == "win32":
        return ""
    import pwd  # noqa: PLC0415

    try:
        return pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        return ""


def usable_name(user: str) -> bool:
    """Whether Claude Code reads a per-user plist for ``user`` (not empty, ``.``, ``..``, nor
    holding ``/`` or a control character)."""
    unsafe = any(c == "/" or ord(c) < 0x20 or ord(c) == 0x7F for c in user)
    return user not in ("", ".", "..") and not unsafe


def registry_where(hive: str) -> str:
    """How messages name the ``Settings`` value of ``hive`` ("HKLM" or "HKCU")."""
    return rf"{hive}\{REGISTRY_KEY}\{REGISTRY_VALUE}"


def plist_paths(root: Path, user: str) -> list[tuple[Path, str]]:
    """The plists Claude Code reads, in its order (a user name it would not use is skipped)."""
    out: list[tuple[Path, str]] = []
    if usable_name(user):
        out.append(
            (root / user / f"{DOMAIN}.plist", "per-user managed preferences from an MDM profile")
        )
    out.append((root / f"{DOMAIN}.plist", "device managed preferences from an MDM profile"))
    return out


def read_plist(path: Path) -> dict[str, Any] | None:
    """The settings dict of a managed-preferences plist; None when it does not exist."""
    raw = read_bytes(path)  # bounded, never waits on a FIFO, refuses devices and dirs
    if raw is None:
        return None
    try:
        data = plistlib.loads(raw)
    # plistlib raises many kinds on hostile bytes (InvalidFileException, ExpatError, ValueError,
    # struct.error, OverflowError, RecursionError, ...): every one means "not a plist"
    except Exception:
        raise ConfigError(
            f"{path} is not a valid property list; Claude Code cannot use its settings",
            "fix or remove the profile (reinstall it from your MDM)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{path}: expected a dictionary of settings at the top level, got "
            f"{type(data).__name__}",
            "fix or remove the profile (reinstall it from your MDM)",
        )
    return data


def parse_registry(where: str, value: str) -> dict[str, Any]:
    """The settings object in a registry ``Settings`` string (bounded, a JSON object)."""
    if len(value) > READ_LIMIT:
        raise ConfigError(
            f"{where} is larger than {READ_LIMIT // 1024} KiB; not reading it",
            "a settings value is a few kB: check what the policy sets",
        )
    try:
        data = json.loads(value)
    except (ValueError, RecursionError) as exc:
        raise ConfigError(
            f"{where} is not valid JSON (line {getattr(exc, 'lineno', '?')}); Claude Code "
            "cannot use its settings",
            "fix the policy's Settings value (one JSON object, as in settings.json)",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{where}: expected a JSON object, got {type(data).__name__}",
            "fix the policy's Settings value (one JSON object, as in settings.json)",
        )
    return data


def winreg_reader(hive: str) -> str | None:
    """Read ``<hive>\\SOFTWARE\\Policies\\ClaudeCode`` ``Settings`` with :mod:`winreg`."""
    if sys.platform == "win32":
        import winreg  # noqa: PLC0415

        where = registry_where(hive)
        root = winreg.HKEY_LOCAL_MACHINE if hive == "HKLM" else winreg.HKEY_CURRENT_USER
        try:
            with winreg.OpenKey(root, REGISTRY_KEY) as key:
                value, kind = winreg.QueryValueEx(key, REGISTRY_VALUE)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise ConfigError(f"cannot read {where}: {exc.strerror}") from None
        if kind not in (winreg.REG_SZ, winreg.REG_EXPAND_SZ) or not isinstance(value, str):
            raise ConfigError(
                f"{where} is not a string value (REG_SZ)",
                "set Settings as a REG_SZ holding one JSON object",
            )
        return value
    return None


def _registry_source(hive: str, read: RegistryReader) -> PolicySource | None:
    where = registry_where(hive)
    label = "Windows machine policy (HKLM)" if hive == "HKLM" else "Windows user policy (HKCU)"
    admin = hive == "HKLM"
    try:
        value = read(hive)
        if value is None:
            return None
        return PolicySource("registry", where, label, admin, parse_registry(where, value))
    except ConfigError as exc:
        return PolicySource("registry", where, label, admin, None, exc)


def _root(platform: str, env: Mapping[str, str] | None, root: Path | None) -> Path | None:
    """The managed-preferences folder to read, None when plists are not read here."""
    chosen = root or (Path(env[PREFERENCES_ENV]) if env and env.get(PREFERENCES_ENV) else None)
    if chosen is None and platform == "darwin":
        return PREFERENCES_ROOT
    return chosen


def per_user_profiles(
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    root: Path | None = None,
    limit: int = 1000,
) -> list[str]:
    """The accounts that have a per-user Claude Code profile (first ``limit`` folders looked at).

    ``configure --scope managed`` runs as root, whose own per-user profile says nothing about
    the other accounts: each of these makes that account's Claude Code ignore the drop-in.
    """
    folder = _root(platform or sys.platform, env, root)
    if folder is None:
        return []
    names: list[str] = []
    try:
        with os.scandir(folder) as entries:
            for count, entry in enumerate(entries):
                if count >= limit:
                    break
                if (
                    usable_name(entry.name)
                    and entry.is_dir(follow_symlinks=False)
                    and os.path.lexists(Path(entry.path) / f"{DOMAIN}.plist")
                ):
                    names.append(entry.name)
    except OSError:
        return []
    return sorted(names)


def managed_sources(
    platform: str | None = None,
    env: Mapping[str, str] | None = None,
    root: Path | None = None,
    registry: RegistryReader | None = None,
    user: str | None = None,
) -> list[PolicySource]:
    """The OS managed sources that exist, in Claude Code's order, highest first.

    Plists are read on macOS, or anywhere when ``root`` or ``$KEYBROKER_CLAUDE_MANAGED_
    PREFERENCES`` names the managed-preferences folder; the registry on Windows (``registry``
    replaces :func:`winreg_reader`). Every existing plist is listed (the first is the one
    Claude Code uses), so doctor can say which one is ignored.
    """
    platform = platform or sys.platform
    folder = _root(platform, env, root)
    out: list[PolicySource] = []
    if folder is not None:
        for path, label in plist_paths(folder, username() if user is None else user):
            try:
                data = read_plist(path)
            except ConfigError as exc:
                out.append(PolicySource("plist", str(path), label, True, None, exc))
                continue
            if data is not None:
                out.append(PolicySource("plist", str(path), label, True, data))
    if platform == "win32":
        read = registry or winreg_reader
        for hive in ("HKLM", "HKCU"):
            source = _registry_source(hive, read)
            if source is not None:
                out.append(source)
    return out
