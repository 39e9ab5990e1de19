"""The process table of Windows: the ToolHelp snapshot, ``GetProcessTimes`` and the PEB.

- ``CreateToolhelp32Snapshot`` + ``Process32FirstW``/``Process32NextW`` → parent pid and the
  executable's file name for every process (one snapshot per table);
- ``OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)`` + ``GetProcessTimes`` → the creation time
  (FILETIME), and ``QueryFullProcessImageNameW`` → the executable's full path;
- ``NtQueryInformationProcess(ProcessCommandLineInformation)`` (Windows 8.1 and later) → the
  command line, split here with the rules of ``CommandLineToArgvW``;
- the environment is not offered by any documented API: it is read from the target's PEB
  (``ProcessBasicInformation`` → ``PEB.ProcessParameters`` → ``Environment`` /
  ``EnvironmentSize``) with ``ReadProcessMemory``, 64-bit processes only.

What Windows cannot give, and how the caller rule degrades: a process of another user, an
elevated or protected process, or a 32-bit one answers None for the environment, and the
rule then never calls a helper run that carries Claude's variables a refusal (a missed
detection, never a false one). Windows does not re-parent orphans: the snapshot keeps the
dead parent's pid, which may be reused — the rule therefore requires a parent to have
started before its child. Checked here by type (``mypy --platform win32``) and, for the
command-line splitting, by unit tests on Linux; the Win32 calls run only on Windows (the
``portable`` CI workflow).
"""

from __future__ import annotations

import ctypes
import os
import sys

from keybroker.cache.proctable import Proc

TH32CS_SNAPPROCESS = 0x2
PROCESS_QUERY_LIMITED_INFORMATION = 0x1000
PROCESS_VM_READ = 0x0010
PROCESS_COMMAND_LINE_INFORMATION = 60
PROCESS_BASIC_INFORMATION = 0
MAX_PATH = 260
INVALID_HANDLE = ctypes.c_void_p(-1).value
#: x64 offsets: PEB.ProcessParameters; RTL_USER_PROCESS_PARAMETERS.Environment, .EnvironmentSize
PEB_PARAMETERS = 0x20
PARAMS_ENVIRONMENT = 0x80
PARAMS_ENVIRONMENT_SIZE = 0x3F0
ENVIRONMENT_LIMIT = 1 << 20


class ProcessEntry32W(ctypes.Structure):
    _fields_ = (
        ("dwSize", ctypes.c_uint32),
        ("cntUsage", ctypes.c_uint32),
        ("th32ProcessID", ctypes.c_uint32),
        ("th32DefaultHeapID", ctypes.c_size_t),
        ("th32ModuleID", ctypes.c_uint32),
        ("cntThreads", ctypes.c_uint32),
        ("th32ParentProcessID", ctypes.c_uint32),
        ("pcPriClassBase", ctypes.c_int32),
        ("dwFlags", ctypes.c_uint32),
        ("szExeFile", ctypes.c_wchar * MAX_PATH),
    )


class FileTime(ctypes.Structure):
    _fields_ = (("low", ctypes.c_uint32), ("high", ctypes.c_uint32))


class ProcessBasicInformation(ctypes.Structure):
    _fields_ = (
        ("ExitStatus", ctypes.c_ssize_t),
        ("PebBaseAddress", ctypes.c_void_p),
        ("AffinityMask", ctypes.c_size_t),
        ("BasePriority", ctypes.c_ssize_t),
        ("UniqueProcessId", ctypes.c_size_t),
        ("InheritedFromUniqueProcessId", ctypes.c_size_t),
    )


class UnicodeString(ctypes.Structure):
    _fields_ = (
        ("Length", ctypes.c_uint16),
        ("MaximumLength", ctypes.c_uint16),
        ("Buffer", ctypes.c_void_p),
    )


class WindowsTable:
    """ToolHelp + process handles; the snapshot is taken once, on the first question."""

    name = "windows toolhelp"

    def __init__(self) -> None:
        self._parents: dict[int, tuple[int, str]] | None = None
        self._error = ""
        self._kernel32: ctypes.CDLL | None = None
        self._ntdll: ctypes.CDLL | None = None

    def _libs(self) -> tuple[ctypes.CDLL, ctypes.CDLL] | None:
        if self._kernel32 is None and not self._error:
            if sys.platform == "win32":
                try:
                    self._kernel32 = ctypes.WinDLL("kernel32", use_last_error=True)
                    self._ntdll = ctypes.WinDLL("ntdll")
                except OSError as exc:
                    self._error = f"cannot load kernel32/ntdll ({exc})"
            else:
                self._error = "the Windows process table runs on Windows only"
        if self._kernel32 is None or self._ntdll is None:
            return None
        return self._kernel32, self._ntdll

    def _snapshot(self) -> dict[int, tuple[int, str]]:
        if self._parents is not None:
            return self._parents
        self._parents = {}
        libs = self._libs()
        if libs is None:
            return self._parents
        kernel32 = libs[0]
        kernel32.CreateToolhelp32Snapshot.restype = ctypes.c_void_p
        handle = kernel32.CreateToolhelp32Snapshot(
            ctypes.c_uint32(TH32CS_SNAPPROCESS), ctypes.c_uint32(0)
        )
        if handle is None or handle == INVALID_HANDLE:
            self._error = "CreateToolhelp32Snapshot failed"
            return self._parents
        try:
            entry = ProcessEntry32W()
            entry.dwSize = ctypes.sizeof(entry)
            ok = kernel32.Process32FirstW(ctypes.c_void_p(handle), ctypes.byref(entry))
            while ok:
                self._parents[int(entry.th32ProcessID)] = (
                    int(entry.th32ParentProcessID),
                    str(entry.szExeFile),
                )
                ok = kernel32.Process32NextW(ctypes.c_void_p(handle), ctypes.byref(entry))
        finally:
            kernel32.CloseHandle(ctypes.c_void_p(handle))
        return self._parents

    def _open(self, pid: int, access: int) -> int | None:
        libs = self._libs()
        if libs is None:
            return None
        kernel32 = libs[0]
        kernel32.OpenProcess.restype = ctypes.c_void_p
        handle = kernel32.OpenProcess(
            ctypes.c_uint32(access), ctypes.c_int(0), ctypes.c_uint32(pid)
        )
        return int(handle) if handle else None

    def _close(self, handle: int) -> None:
        libs = self._libs()
        if libs is not None:
            libs[0].CloseHandle(ctypes.c_void_p(handle))

    def proc(self, pid: int) -> Proc | None:
        known = self._snapshot().get(pid)
        libs = self._libs()
        if known is None or libs is None:
            return None
        ppid, name = known
        handle = self._open(pid, PROCESS_QUERY_LIMITED_INFORMATION)
        if handle is None:
            return None  # gone, or not ours to ask: no start time, no answer
        try:
            kernel32 = libs[0]
            created, exited, kernel, user = FileTime(), FileTime(), FileTime(), FileTime()
            if not kernel32.GetProcessTimes(
                ctypes.c_void_p(handle),
                ctypes.byref(created),
                ctypes.byref(exited),
                ctypes.byref(kernel),
                ctypes.byref(user),
            ):
                return None
            path = ctypes.create_unicode_buffer(32768)
            size = ctypes.c_uint32(len(path))
            ok = kernel32.QueryFullProcessImageNameW(
                ctypes.c_void_p(handle), ctypes.c_uint32(0), path, ctypes.byref(size)
            )
            exe = path.value if ok else ""
        finally:
            self._close(handle)
        start = (int(created.high) << 32) | int(created.low)
        return Proc(pid, ppid, name, exe, start)

    def argv(self, pid: int) -> list[str] | None:
        libs = self._libs()
        handle = None if libs is None else self._open(pid, PROCESS_QUERY_LIMITED_INFORMATION)
        if libs is None or handle is None:
            return None
        try:
            ntdll = libs[1]
            buffer = ctypes.create_string_buffer(65536 + ctypes.sizeof(UnicodeString))
            returned = ctypes.c_uint32(0)
            status = ntdll.NtQueryInformationProcess(
                ctypes.c_void_p(handle),
                ctypes.c_int(PROCESS_COMMAND_LINE_INFORMATION),
                buffer,
                ctypes.c_uint32(len(buffer)),
                ctypes.byref(returned),
            )
            if status != 0:
                return None
            text = UnicodeString.from_buffer(buffer)
            if not text.Buffer:
                return []
            line = ctypes.wstring_at(text.Buffer, text.Length // 2)
        finally:
            self._close(handle)
        return split_command_line(line)

    def environ(self, pid: int) -> dict[str, str] | None:
        libs = self._libs()
        if libs is None or ctypes.sizeof(ctypes.c_void_p) != 8:
            return None
        handle = self._open(pid, PROCESS_QUERY_LIMITED_INFORMATION | PROCESS_VM_READ)
        if handle is None:
            return None
        try:
            return self._read_environment(libs, handle)
        finally:
            self._close(handle)

    def _read_environment(
        self, libs: tuple[ctypes.CDLL, ctypes.CDLL], handle: int
    ) -> dict[str, str] | None:
        kernel32, ntdll = libs
        basic = ProcessBasicInformation()
        if (
            ntdll.NtQueryInformationProcess(
                ctypes.c_void_p(handle),
                ctypes.c_int(PROCESS_BASIC_INFORMATION),
                ctypes.byref(basic),
                ctypes.c_uint32(ctypes.sizeof(basic)),
                None,
            )
            != 0
        ):
            return None

        def read(address: int, size: int) -> bytes | None:
            buffer = ctypes.create_string_buffer(size)
            done = ctypes.c_size_t(0)
            if not kernel32.ReadProcessMemory(
                ctypes.c_void_p(handle),
                ctypes.c_void_p(address),
                buffer,
                ctypes.c_size_t(size),
                ctypes.byref(done),
            ):
                return None
            return buffer.raw[: done.value]

        if not basic.PebBaseAddress:
            return None
        raw = read(int(basic.PebBaseAddress) + PEB_PARAMETERS, 8)
        if raw is None or len(raw) != 8:
            return None
        params = int.from_bytes(raw, "little")
        env_ptr = read(params + PARAMS_ENVIRONMENT, 8)
        env_size = read(params + PARAMS_ENVIRONMENT_SIZE, 8)
        if not env_ptr or not env_size:
            return None
        size = min(int.from_bytes(env_size, "little"), ENVIRONMENT_LIMIT)
        block = read(int.from_bytes(env_ptr, "little"), size)
        return None if block is None else parse_environment_block(block)

    def problem(self) -> str:
        if self._libs() is None:
            return self._error
        if self.proc(os.getpid()) is None:
            return self._error or "the process snapshot does not describe this process"
        if self.argv(os.getpid()) is None:
            return "NtQueryInformationProcess gives no command line (Windows older than 8.1?)"
        return ""


def parse_environment_block(block: bytes) -> dict[str, str]:
    """A UTF-16-LE environment block: ``NAME=value`` strings up to an empty one. Names are
    case-insensitive on Windows; the caller rule compares upper-case names."""
    env: dict[str, str] = {}
    text = block.decode("utf-16-le", errors="replace")
    for item in text.split("\0"):
        if not item:
            break
        name, eq, value = item[1:].partition("=")  # "=C:=C:\\" entries start with "="
        if eq:
            env[(item[0] + name).upper()] = value
    return env


def split_command_line(line: str) -> list[str]:
    """Split a Windows command line as ``CommandLineToArgvW`` does: whitespace separates,
    double quotes group, ``2n`` backslashes before a quote make ``n`` and the quote counts,
    ``2n+1`` make ``n`` and a literal quote; the program name (first) ends at the first
    whitespace outside quotes, backslashes taken as they are."""
    args: list[str] = []
    i, n = 0, len(line)
    # the program name: no escapes
    while i < n and line[i] in " \t":
        i += 1
    if i >= n:
        return args
    if line[i] == '"':
        end = line.find('"', i + 1)
        end = n if end < 0 else end
        args.append(line[i + 1 : end])
        i = end + 1
    else:
        start = i
        while i < n and line[i] not in " \t":
            i += 1
        args.append(line[start:i])
    while True:
        while i < n and line[i] in " \t":
            i += 1
        if i >= n:
            return args
        current: list[str] = []
        quoted = False
        while i < n and (quoted or line[i] not in " \t"):
            if line[i] == "\\":
                run = i
                while i < n and line[i] == "\\":
                    i += 1
                count = i - run
                if i < n and line[i] == '"':
                    current.append("\\" * (count // 2))
                    if count % 2:
                        current.append('"')
                        i += 1
                else:
                    current.append("\\" * count)
            elif line[i] == '"':
                if quoted and i + 1 < n and line[i + 1] == '"':
                    current.append('"')  # "" inside quotes: a literal quote (post-2008 rule)
                    i += 2
                    continue
                quoted = not quoted
                i += 1
            else:
                current.append(line[i])
                i += 1
        args.append("".join(current))
