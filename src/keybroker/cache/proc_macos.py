"""The process table of macOS: ``libproc`` and ``sysctl(KERN_PROCARGS2)`` through ctypes.

- ``proc_pidinfo(pid, PROC_PIDTBSDINFO)`` → ``struct proc_bsdinfo``: parent pid, ``pbi_comm``
  (the executable's name, at most 16 bytes) and the start time (seconds + microseconds);
- ``proc_pidpath(pid)`` → the executable's full path (the native Claude Code binary lives at
  ``~/.local/share/claude/versions/<version>``, so its comm is a version number);
- ``sysctl({CTL_KERN, KERN_PROCARGS2, pid})`` → ``argc``, the exec path, argv and then the
  environment, NUL-separated. The kernel gives another process's arguments only to its own
  user (and root); that is all the caller rule needs (Claude Code runs as the same user).

No third-party library (psutil would cost ~10 ms of import on every call under Claude Code;
docs/performance.md). Checked here by type (``mypy --platform darwin``) and, for the buffer
parsing, by unit tests on Linux; the ctypes calls themselves run only on macOS (the
``portable`` CI workflow).
"""

from __future__ import annotations

import ctypes
import os

from keybroker.cache.proc_linux import parse_environ
from keybroker.cache.proctable import Proc

PROC_PIDTBSDINFO = 3
PROC_PIDPATHINFO_MAXSIZE = 4096
MAXCOMLEN = 16
CTL_KERN = 1
KERN_ARGMAX = 8
KERN_PROCARGS2 = 49
LIBSYSTEM = "/usr/lib/libSystem.B.dylib"


class ProcBsdInfo(ctypes.Structure):
    """``struct proc_bsdinfo`` of <sys/proc_info.h> (136 bytes)."""

    _fields_ = (
        ("pbi_flags", ctypes.c_uint32),
        ("pbi_status", ctypes.c_uint32),
        ("pbi_xstatus", ctypes.c_uint32),
        ("pbi_pid", ctypes.c_uint32),
        ("pbi_ppid", ctypes.c_uint32),
        ("pbi_uid", ctypes.c_uint32),
        ("pbi_gid", ctypes.c_uint32),
        ("pbi_ruid", ctypes.c_uint32),
        ("pbi_rgid", ctypes.c_uint32),
        ("pbi_svuid", ctypes.c_uint32),
        ("pbi_svgid", ctypes.c_uint32),
        ("rfu_1", ctypes.c_uint32),
        ("pbi_comm", ctypes.c_char * MAXCOMLEN),
        ("pbi_name", ctypes.c_char * (2 * MAXCOMLEN)),
        ("pbi_nfiles", ctypes.c_uint32),
        ("pbi_pgid", ctypes.c_uint32),
        ("pbi_pjobc", ctypes.c_uint32),
        ("e_tdev", ctypes.c_uint32),
        ("e_tpgid", ctypes.c_uint32),
        ("pbi_nice", ctypes.c_int32),
        ("pbi_start_tvsec", ctypes.c_uint64),
        ("pbi_start_tvusec", ctypes.c_uint64),
    )


class MacTable:
    """libproc + sysctl; the library is opened on first use."""

    name = "macos libproc"

    def __init__(self) -> None:
        self._lib: ctypes.CDLL | None = None
        self._error = ""

    def _libc(self) -> ctypes.CDLL | None:
        if self._lib is None and not self._error:
            try:
                self._lib = ctypes.CDLL(LIBSYSTEM, use_errno=True)
            except OSError as exc:
                self._error = f"cannot load {LIBSYSTEM} ({exc})"
        return self._lib

    def proc(self, pid: int) -> Proc | None:
        lib = self._libc()
        if lib is None or pid <= 0:
            return None
        info = ProcBsdInfo()
        size = ctypes.sizeof(info)
        written = lib.proc_pidinfo(
            ctypes.c_int(pid),
            ctypes.c_int(PROC_PIDTBSDINFO),
            ctypes.c_uint64(0),
            ctypes.byref(info),
            ctypes.c_int(size),
        )
        if written != size:
            return None
        path = ctypes.create_string_buffer(PROC_PIDPATHINFO_MAXSIZE)
        length = lib.proc_pidpath(ctypes.c_int(pid), path, ctypes.c_uint32(len(path)))
        exe = path.raw[:length].decode(errors="replace") if length > 0 else ""
        start = int(info.pbi_start_tvsec) * 1_000_000 + int(info.pbi_start_tvusec)
        comm = bytes(info.pbi_comm).split(b"\0", 1)[0].decode(errors="replace")
        return Proc(pid, int(info.pbi_ppid), comm, exe, start)

    def _procargs(self, pid: int) -> bytes | None:
        lib = self._libc()
        if lib is None or pid <= 0:
            return None
        argmax = ctypes.c_int(0)
        size = ctypes.c_size_t(ctypes.sizeof(argmax))
        mib = (ctypes.c_int * 2)(CTL_KERN, KERN_ARGMAX)
        if lib.sysctl(mib, 2, ctypes.byref(argmax), ctypes.byref(size), None, 0) != 0:
            return None
        buffer = ctypes.create_string_buffer(max(int(argmax.value), 4096))
        size = ctypes.c_size_t(len(buffer))
        mib3 = (ctypes.c_int * 3)(CTL_KERN, KERN_PROCARGS2, pid)
        if lib.sysctl(mib3, 3, buffer, ctypes.byref(size), None, 0) != 0:
            return None
        return buffer.raw[: size.value]

    def argv(self, pid: int) -> list[str] | None:
        raw = self._procargs(pid)
        parsed = None if raw is None else parse_procargs2(raw)
        return None if parsed is None else parsed[0]

    def environ(self, pid: int) -> dict[str, str] | None:
        raw = self._procargs(pid)
        parsed = None if raw is None else parse_procargs2(raw)
        return None if parsed is None else parsed[1]

    def problem(self) -> str:
        if self._libc() is None:
            return self._error
        if self.proc(os.getpid()) is None:
            return "proc_pidinfo does not describe this process"
        if self.argv(os.getpid()) is None:
            return "sysctl(KERN_PROCARGS2) does not give this process's arguments"
        return ""


def parse_procargs2(raw: bytes) -> tuple[list[str], dict[str, str]] | None:
    """``KERN_PROCARGS2``: a native-endian int argc, the exec path, NUL padding, argc
    NUL-terminated arguments, then ``NAME=value`` strings up to an empty one."""
    if len(raw) < 4:
        return None
    argc = int.from_bytes(raw[:4], "little")  # every Mac keybroker runs on is little-endian
    rest = raw[4:]
    end = rest.find(b"\0")
    if end < 0:
        return None
    position = end
    while position < len(rest) and rest[position] == 0:
        position += 1  # the exec path's NUL padding
    strings = rest[position:].split(b"\0")
    if argc < 0 or len(strings) < argc:
        return None
    argv = [item.decode(errors="replace") for item in strings[:argc]]
    env_items: list[bytes] = []
    for item in strings[argc:]:
        if not item:
            break
        env_items.append(item)
    return argv, parse_environ(env_items)
