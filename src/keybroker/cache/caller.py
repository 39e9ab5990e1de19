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
refusal — for anything else: headersHelper, hooks, the Bash tool, orphans, no /proc.

``strict=False`` (``repeat = "on"`` asked for explicitly, outside Claude Code): the parent of
``sh -c CMD`` (or the parent itself) need not be claude.
"""

from __future__ import annotations

import os
import sys

SHELLS = frozenset({"sh", "dash", "bash", "zsh", "ksh", "mksh", "ash", "busybox"})
#: Variables Claude adds for helpers that are not apiKeyHelper (compared with its own env).
ADDED_BY_CLAUDE = (
    "CLAUDECODE", "CLAUDE_CODE_SESSION_ID", "CLAUDE_PROJECT_DIR",
    "CLAUDE_CODE_MCP_SERVER_NAME", "CLAUDE_CODE_MCP_SERVER_URL",
)

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping


def _read(pid: int, name: str, limit: int = 1 << 16) -> bytes | None:
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            return handle.read(limit)
    except OSError:
        return None


def _stat(pid: int) -> tuple[str, int, str] | None:
    """(comm, ppid, starttime) from /proc/<pid>/stat, or None where /proc is unavailable."""
    raw = _read(pid, "stat")
    if raw is None:
        return None
    data = raw.decode(errors="replace")
    open_paren, close_paren = data.find("("), data.rfind(")")
    fields = data[close_paren + 2 :].split()
    try:
        return data[open_paren + 1 : close_paren], int(fields[1]), fields[19]
    except (IndexError, ValueError):
        return None


def _argv(pid: int) -> list[bytes]:
    raw = _read(pid, "cmdline") or b""
    return raw.split(b"\0")[:-1] if raw.endswith(b"\0") else raw.split(b"\0")


def is_claude(pid: int) -> bool:
    """The native binary (``claude``, ``…/claude/versions/…``) or node running Claude Code."""
    if pid <= 1:
        return False
    info = _stat(pid)
    if info is None:
        return False
    if info[0] == "claude":
        return True
    try:
        exe = os.readlink(f"/proc/{pid}/exe")
    except OSError:
        exe = ""
    base = exe.rsplit("/", 1)[-1]
    if base in ("claude", "claude.exe") or "/claude/versions/" in exe:
        return True
    argv = _argv(pid)
    return base.startswith("node") and any(
        a.endswith((b"claude-code/cli.js", b"/claude")) for a in argv[1:2]
    )


def _added_by_claude(claude: int, env: Mapping[str, str]) -> bool:
    """Whether Claude added one of its helper variables (so this is not apiKeyHelper)."""
    mine = {name: env.get(name) for name in ADDED_BY_CLAUDE}
    if not any(mine.values()):
        return False
    raw = _read(claude, "environ", 1 << 20)
    if raw is None:
        return True  # cannot compare: be safe, never call it a refusal
    theirs: dict[str, str] = {}
    for item in raw.split(b"\0"):
        name, eq, value = item.partition(b"=")
        if eq and name.startswith(b"CLAUDE"):
            theirs[name.decode(errors="replace")] = value.decode(errors="replace")
    return any(value != theirs.get(name) for name, value in mine.items())


def caller_id(env: Mapping[str, str] | None = None, strict: bool = True) -> str | None:
    """``pid:starttime:command`` of the Claude process re-running this helper, or None."""
    from keybroker._hash import hexdigest  # noqa: PLC0415

    env = os.environ if env is None else env
    parent = os.getppid()
    if parent <= 1:
        return None  # orphaned: Claude Code is gone
    argv = _argv(parent)
    if len(argv) >= 3 and argv[0].rsplit(b"/", 1)[-1].decode(errors="replace") in SHELLS and (
        argv[1] == b"-c"
    ):
        command = argv[2]
        info = _stat(parent)
        if info is None:
            return None
        claude = info[1]
    else:
        claude = parent
        command = " ".join(sys.argv).encode(errors="replace")
    if claude <= 1:
        return None  # an orphaned shell: its claude was killed
    if strict and not is_claude(claude):
        return None
    if _added_by_claude(claude, env):
        return None  # a hook, the Bash tool or an MCP headersHelper
    info = _stat(claude)
    if info is None:
        return None
    return f"{claude}:{info[2]}:{hexdigest(command)[:16]}"
