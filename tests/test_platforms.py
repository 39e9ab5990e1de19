"""Issue 21: what differs by OS besides the process table, checked here through fakes.

- the helper command ``claude configure`` writes: quoted for ``/bin/sh`` on POSIX and for
  ``cmd.exe /d /s /c`` on Windows (before: shlex's single quotes, which cmd does not know, so
  ``'C:\\Users\\Jane Doe\\…\\keybroker.exe' get p`` could never run);
- default paths on Linux and macOS, against platformdirs' own classes;
- the ``msvcrt.locking`` path of the entry lock, driven by a fake ``msvcrt``.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path

import platformdirs.macos
import platformdirs.unix
import pytest

from keybroker import paths
from keybroker.cache import lock as real
from keybroker.claude.helpers import command_line, helper_command, quote_word
from keybroker.deadline import Deadline
from keybroker.errors import UsageError
from tests.kb import default_locations

WINDOWS_EXE = r"C:\Users\Jane Doe\AppData\Roaming\Python\Python312\Scripts\keybroker.exe"


def test_posix_helper_commands_are_quoted_for_sh_as_before() -> None:
    assert helper_command("/home/jane doe/bin/keybroker", "litellm") == (
        "'/home/jane doe/bin/keybroker' get litellm"
    )
    assert command_line("/usr/bin/keybroker", "get", "p", platform="darwin") == (
        "/usr/bin/keybroker get p"
    )


def test_windows_helper_commands_are_quoted_for_cmd() -> None:
    assert command_line(WINDOWS_EXE, "get", "litellm", platform="win32") == (
        f'"{WINDOWS_EXE}" get litellm'
    )
    assert command_line(
        r"C:\kb\keybroker.exe", "get", "p", config=r"C:\Users\Jane Doe\kb.toml", platform="win32"
    ) == (r'C:\kb\keybroker.exe get p --config "C:\Users\Jane Doe\kb.toml"')
    with pytest.raises(UsageError, match="cannot quote"):
        quote_word(r"C:\Users\100%\keybroker.exe", "win32")
    with pytest.raises(UsageError, match="cannot quote"):
        quote_word('pro"file', "win32")


@pytest.mark.parametrize(
    ("platform", "dirs"),
    [
        ("linux", platformdirs.unix.Unix("keybroker", appauthor=False)),
        ("darwin", platformdirs.macos.MacOS("keybroker", appauthor=False)),
    ],
)
def test_default_paths_match_platformdirs(
    monkeypatch: pytest.MonkeyPatch, platform: str, dirs: platformdirs.unix.Unix
) -> None:
    default_locations(monkeypatch)
    monkeypatch.setattr(sys, "platform", platform)
    env = dict(os.environ)
    assert paths.cache_dir_str(env) == dirs.user_cache_dir
    assert paths.config_file_str(env) == os.path.join(dirs.user_config_dir, "config.toml")
    assert paths.data_dir_str(env) == dirs.user_data_dir


def fake_msvcrt() -> types.ModuleType:
    """``msvcrt.locking`` over flock: non-blocking lock and unlock of the file, as Windows'
    byte-range lock of byte 0 behaves for keybroker (a second opener is refused)."""
    import fcntl  # noqa: PLC0415 - POSIX only: on Windows the real msvcrt is tested

    module = types.ModuleType("msvcrt")
    module.LK_NBLCK = 2  # type: ignore[attr-defined]
    module.LK_UNLCK = 0  # type: ignore[attr-defined]

    def locking(fd: int, mode: int, nbytes: int) -> None:
        assert nbytes == 1
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # the byte locked is the one unlocked
        if mode == 2:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise PermissionError(13, "Permission denied") from None
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)

    module.locking = locking  # type: ignore[attr-defined]
    return module


def windows_lock_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """keybroker.cache.lock as Windows loads it: the real one on Windows; elsewhere a separate
    module object loaded with ``sys.platform = "win32"`` and the fake msvcrt (the real
    keybroker.cache.lock stays as it is)."""
    if sys.platform == "win32":
        return real
    monkeypatch.setitem(sys.modules, "msvcrt", fake_msvcrt())
    monkeypatch.setattr(sys, "platform", "win32")
    spec = importlib.util.spec_from_file_location("windows_lock", real.__file__)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.undo()
    assert "msvcrt" in module._try_lock.__code__.co_names  # the Windows branch was taken
    return module


def test_the_windows_lock_path_excludes_a_second_holder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    windows = windows_lock_module(monkeypatch)
    path = tmp_path / "x.lock"
    with windows.EntryLock(path, Deadline(5)) as first:
        assert first.held
        with windows.EntryLock(path, Deadline(5), wait=False) as second:
            assert not second.held
        with pytest.raises(windows.LockTimeout):
            windows.EntryLock(path, Deadline(0.05)).__enter__()
    with windows.EntryLock(path, Deadline(5), wait=False) as again:
        assert again.held
