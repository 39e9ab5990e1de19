"""Who is asking: one Claude Code process re-running one ``apiKeyHelper`` command.

Repeat = rejected (DESIGN section 4) must only count a re-run of the *same helper command* by
the *same Claude process*. Established with the real CLI (2.1.197 and 2.1.332, see
docs/claude-code.md "How Claude Code runs helpers"):

- Claude runs apiKeyHelper, hooks and MCP ``headersHelper`` as ``/bin/sh -c '<setting>'``
  (the string byte for byte), whose parent is the claude process; where ``/bin/sh`` is bash,
  the shell execs away and the helper's parent is claude itself.
- ``CLAUDE_CODE_ENTRYPOINT`` is set for every kind, so it cannot tell them apart. Claude *adds*
  ``CLAUDECODE``/``CLAUDE_CODE_SESSION_ID`` (hooks, Bash tool), ``CLAUDE_PROJECT_DIR`` (hooks)
  and ``CLAUDE_CODE_MCP_SERVER_NAME``/``_URL`` (headersHelper) to the others' environment, but
  never to apiKeyHelper's. A claude started from another claude inherits them, so the test is
  whether they *differ from the claude process's own environment*, not whether they are set.
- The Bash tool runs ``bash -c "source <snapshot> … eval …"``: another command string.
- When claude exits it SIGTERMs the ``sh``; the helper is re-parented (to pid 1 or a
  subreaper). After a SIGKILL of claude the ``sh`` survives, re-parented itself.

So the caller is ``(claude pid, its start time, the command string)``, and ``None`` — never a
refusal — for anything else: headersHelper, hooks, the Bash tool, orphans.

The facts come from a :class:`~keybroker.cache.proctable.ProcessTable` (``/proc``, libproc,
the Windows snapshot, or a fake in tests); the rule below is the same on every OS. Claude Code
on Windows runs the helper through ``%ComSpec% /d /s /c "<setting>"`` (Node's and Bun's
``shell: true``; docs/platforms.md says how that was established), so ``cmd`` counts as a
shell there, as do Git Bash's ``bash.exe -c`` and PowerShell's ``-Command`` (hooks). On
Windows the console script ``keybroker.exe`` is a launcher that starts Python as its child:
the rule looks past up to two launchers of ours. Windows does not re-parent orphans, so a
parent that started after its child is a reused pid: an orphan.

When the table cannot describe even this process (``/proc`` hidden, no adapter for the OS),
:func:`identify` says why, and :func:`caller_for` records a ``repeat-unavailable`` event
(at most one an hour per cache) so that rotation recovery is never off silently.

``strict=False`` (``repeat = "on"`` asked for explicitly, outside Claude Code): the parent of
``sh -c CMD`` (or the parent itself) need not be claude.
"""

from __future__ import annotations

import os
import sys

SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox"})
#: Windows shells and how each takes a command string (flags compared case-insensitively).
WINDOWS_SHELLS = {"cmd": ("/c", "/k"), "pwsh": ("-command", "-c"), "powershell": ("-command", "-c")}
#: Variables Claude adds for helpers that are not apiKeyHelper (compared with its own env).
ADDED_BY_CLAUDE = (
    "CLAUDECODE",
    "CLAUDE_CODE_SESSION_ID",
    "CLAUDE_PROJECT_DIR",
    "CLAUDE_CODE_MCP_SERVER_NAME",
    "CLAUDE_CODE_MCP_SERVER_URL",
)
#: How many launchers of ours (Windows' keybroker.exe, a venv's python.exe) may stand
#: between the helper's Python and the shell Claude started.
MAX_LAUNCHERS = 2
#: One ``repeat-unavailable`` event per cache per this many seconds.
NOTICE_EVERY = 3600.0
NOTICE_FILE = "repeat-unavailable.stamp"

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from keybroker.cache.proctable import Proc, ProcessTable


def _base(path: str) -> str:
    """The program name of a path, either separator, lower case, without ``.exe``."""
    name = path.replace("\\", "/").rsplit("/", 1)[-1].lower()
    return name[:-4] if name.endswith(".exe") else name


def shell_command(proc: Proc, argv: Sequence[str]) -> str | None:
    """The command string when ``proc`` is a shell running one (``sh -c CMD``,
    ``cmd /d /s /c "CMD"``, ``pwsh -NoProfile -Command CMD``), else None."""
    names = {_base(proc.name), _base(proc.exe)} | ({_base(argv[0])} if argv else set())
    if names & SHELLS:
        return argv[2] if len(argv) >= 3 and argv[1] == "-c" else None
    for shell, flags in WINDOWS_SHELLS.items():
        if shell in names:
            for index, arg in enumerate(argv[1:], 1):
                if arg.lower() in flags:
                    rest = argv[index + 1 :]
                    return " ".join(rest) if rest else None
            return None
    return None


def is_claude(proc: Proc, argv: Sequence[str] | None) -> bool:
    """The native binary (``claude``, ``claude.exe``, ``…/claude/versions/<v>``) or Node
    running Claude Code's ``cli.js``."""
    if proc.pid <= 1:
        return False
    exe = proc.exe.replace("\\", "/")
    if "claude" in (_base(proc.name), _base(exe)) or "/claude/versions/" in exe.lower():
        return True
    if not (_base(proc.name).startswith("node") or _base(exe).startswith("node")):
        return False
    script = (argv or [])[1:2]
    return any(a.replace("\\", "/").endswith(("claude-code/cli.js", "/claude")) for a in script)


def _launcher(proc: Proc) -> bool:
    """A launcher of ours between Claude's shell and this Python: Windows' console-script
    ``keybroker*.exe`` and a venv's ``python.exe`` redirector (no such thing on POSIX)."""
    exe = (proc.exe or proc.name).lower()  # the snapshot's name when the path is not given
    if not exe.endswith(".exe"):
        return False
    base = _base(exe)
    return base.startswith(("keybroker", "python", "py"))


def _added_by_claude(table: ProcessTable, claude: int, env: Mapping[str, str]) -> bool:
    """Whether Claude added one of its helper variables (so this is not apiKeyHelper)."""
    mine = {name: env.get(name) for name in ADDED_BY_CLAUDE}
    if not any(mine.values()):
        return False
    theirs = table.environ(claude)
    if theirs is None:
        return True  # cannot compare: be safe, never call it a refusal
    upper = {
        name.upper(): value for name, value in theirs.items() if name.upper().startswith("CLAUDE")
    }
    return any(value != upper.get(name) for name, value in mine.items())


def for_platform(platform: str = sys.platform) -> ProcessTable:
    """The adapter of ``platform`` (imported here, only when the caller rule runs)."""
    if platform == "darwin":
        from keybroker.cache.proc_macos import MacTable  # noqa: PLC0415

        return MacTable()
    if platform == "win32":
        from keybroker.cache.proc_windows import WindowsTable  # noqa: PLC0415

        return WindowsTable()
    if platform.startswith(("linux", "android")) or platform.startswith("cygwin"):
        from keybroker.cache.proc_linux import LinuxTable  # noqa: PLC0415

        return LinuxTable()
    from keybroker.cache.proctable import NoTable  # noqa: PLC0415

    return NoTable(platform)


def identify(
    table: ProcessTable,
    env: Mapping[str, str],
    strict: bool = True,
    pid: int | None = None,
    own_argv: Sequence[str] | None = None,
) -> tuple[str | None, str]:
    """``(caller, problem)``: ``pid:starttime:command`` of the Claude process re-running this
    helper (or None: not a refusal candidate), and why the table cannot answer at all
    (``""`` when it can). ``pid`` and ``own_argv`` default to this process's."""
    from keybroker._hash import hexdigest  # noqa: PLC0415

    pid = os.getpid() if pid is None else pid
    me = table.proc(pid)
    if me is None:
        return None, table.problem() or f"{table.name} does not describe this process"
    child = me
    parent = table.proc(me.ppid) if me.ppid > 1 else None
    launchers = 0
    while parent is not None and _launcher(parent) and launchers < MAX_LAUNCHERS:
        launchers += 1
        child, parent = parent, table.proc(parent.ppid) if parent.ppid > 1 else None
    if parent is None or parent.start > child.start:
        return None, ""  # orphaned (re-parented to 1, or a dead parent's reused pid)
    argv = table.argv(parent.pid)
    if argv is None and table.argv(pid) is None:  # no command lines at all: cannot tell
        return None, table.problem() or f"{table.name} gives no command lines"
    command = None if argv is None else shell_command(parent, argv)
    if command is not None:
        claude = table.proc(parent.ppid) if parent.ppid > 1 else None
        if claude is None or claude.start > parent.start:
            return None, ""  # an orphaned shell: its claude was killed
        claude_argv = table.argv(claude.pid)
    else:
        claude, claude_argv = parent, argv
        command = " ".join(sys.argv if own_argv is None else own_argv)
    if strict and not is_claude(claude, claude_argv):
        return None, ""
    if _added_by_claude(table, claude.pid, env):
        return None, ""  # a hook, the Bash tool or an MCP headersHelper
    digest = hexdigest(command.encode(errors="replace"))[:16]
    return f"{claude.pid}:{claude.start}:{digest}", ""


def caller_id(
    env: Mapping[str, str] | None = None, strict: bool = True, table: ProcessTable | None = None
) -> str | None:
    """``pid:starttime:command`` of the Claude process re-running this helper, or None."""
    env = os.environ if env is None else env
    return identify(table or for_platform(), env, strict)[0]


def caller_for(
    env: Mapping[str, str], strict: bool, cache_dir: str, table: ProcessTable | None = None
) -> str | None:
    """:func:`caller_id`, and when the table cannot answer, a ``repeat-unavailable`` event
    (rate-limited per cache dir): a re-run after a 401 cannot be recognised here."""
    caller, problem = identify(table or for_platform(), env, strict)
    if problem:
        notice_unavailable(env, cache_dir, problem)
    return caller


def notice_unavailable(env: Mapping[str, str], cache_dir: str, problem: str) -> bool:
    """Record that rotation recovery is off, at most once per :data:`NOTICE_EVERY` per cache
    (the stamp's mtime). Returns whether an event was written."""
    import time  # noqa: PLC0415

    stamp = os.path.join(cache_dir, NOTICE_FILE)
    now = time.time()
    try:
        if now - os.stat(stamp).st_mtime < NOTICE_EVERY:
            return False
    except OSError:
        pass
    try:
        fd = os.open(stamp, os.O_WRONLY | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o600)
        os.close(fd)
        os.utime(stamp, (now, now))
    except OSError:
        pass  # a read-only cache dir: the event is still worth writing
    from keybroker import events  # noqa: PLC0415 - only when the notice is due

    events.record(
        env,
        "repeat-unavailable",
        None,
        f"401 recovery unavailable: {problem}; a re-run of apiKeyHelper after a "
        "401 cannot be recognised, so a refused key is served again until its entry "
        "ages out",
    )
    return True
