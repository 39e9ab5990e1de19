"""Issue 21: the caller rule on every OS, through one fake process table, and visibly off where
no table answers.

The process shapes below are the ones Claude Code makes (docs/platforms.md says where each was
found): on Linux and macOS ``/bin/sh -c '<setting>'`` under the native binary or under
``node …/cli.js``; on Windows ``%ComSpec% /d /s /c "<setting>"`` (Node's and Bun's
``shell: true``), hooks through Git Bash's ``bash.exe -c`` or ``pwsh -Command``, and the
console-script launcher ``keybroker.exe`` between the shell and Python. The last tests run the
real Linux table, and the acceptance test hides ``/proc`` in a private mount namespace.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keybroker import events
from keybroker.cache import caller
from keybroker.cache.caller import for_platform, identify
from keybroker.cache.proc_linux import LinuxTable, parse_stat
from keybroker.cache.proc_macos import MacTable, ProcBsdInfo, parse_procargs2
from keybroker.cache.proc_windows import (
    ProcessEntry32W,
    WindowsTable,
    parse_environment_block,
    split_command_line,
)
from keybroker.cache.proctable import NoTable
from tests.conftest import KbEnv
from tests.fixtures.fake_claude import RUNNER
from tests.kb import exe, fetches, minting_profile
from tests.process_fakes import FakeTable

HELPER = "/home/jane/.local/bin/keybroker get litellm"
ME = 400  # the helper's Python in every tree below
BASH_TOOL = {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": "s-1"}
HOOK = {**BASH_TOOL, "CLAUDE_PROJECT_DIR": "/src/app"}
HEADERS_HELPER = {"CLAUDE_CODE_MCP_SERVER_NAME": "gw", "CLAUDE_CODE_MCP_SERVER_URL": "https://gw"}


def ask(
    table: FakeTable,
    env: dict[str, str] | None = None,
    strict: bool = True,
    own: tuple[str, ...] = ("keybroker", "get", "litellm"),
) -> str | None:
    found, problem = identify(table, env or {}, strict, pid=ME, own_argv=list(own))
    assert problem == ""
    return found


def linux(
    claude_argv: tuple[str, ...] = ("claude",),
    claude_exe: str = "/home/jane/.local/share/claude/versions/2.1.197",
    command: str = HELPER,
    claude_env: dict[str, str] | None = None,
    name: str = "claude",
) -> FakeTable:
    """systemd → claude → /bin/sh -c '<setting>' → keybroker (python)."""
    return (
        FakeTable()
        .add(1, 0, "systemd", "/sbin/init")
        .add(100, 1, name, *claude_argv, exe=claude_exe, env=claude_env or {})
        .add(200, 100, "sh", "/bin/sh", "-c", command, exe="/usr/bin/dash")
        .add(
            ME,
            200,
            "keybroker",
            "python3",
            "/home/jane/.local/bin/keybroker",
            "get",
            "litellm",
            exe="/usr/bin/python3.11",
        )
    )


# --- Linux shapes ---


def test_linux_native_binary_under_sh_is_a_caller_bound_to_claude_and_the_command() -> None:
    first = ask(linux())
    assert first is not None
    assert first.startswith("100:100:")
    assert ask(linux()) == first  # the same Claude re-running the same helper: a repeat
    assert ask(linux(command=HELPER + " --max-age 60")) != first  # another helper command


def test_linux_node_launcher_is_claude() -> None:
    node = ("node", "/usr/lib/node_modules/@anthropic-ai/claude-code/cli.js")
    assert ask(linux(node, "/usr/bin/node", name="node")) is not None
    other_node = ("node", "/srv/app/server.js")
    assert ask(linux(other_node, "/usr/bin/node", name="node")) is None


def test_linux_bash_that_execs_away_leaves_claude_as_the_parent() -> None:
    table = (
        FakeTable()
        .add(100, 1, "claude", "claude", exe="/usr/local/bin/claude")
        .add(ME, 100, "keybroker", "python3", "keybroker", exe="/usr/bin/python3")
    )
    assert ask(table) == ask(table) is not None
    assert ask(table, own=("keybroker", "get", "other")) != ask(table)


def test_the_bash_tool_hooks_and_headers_helpers_are_never_callers() -> None:
    bash_tool = linux(command=f"source /tmp/snap.sh && eval '{HELPER}'")
    assert ask(bash_tool, BASH_TOOL) is None
    assert ask(linux(), HOOK) is None
    assert ask(linux(), HEADERS_HELPER) is None


def test_a_nested_claude_passes_inherited_variables_on_unchanged() -> None:
    assert ask(linux(claude_env=dict(BASH_TOOL)), dict(BASH_TOOL)) is not None
    # … but a variable it does not have itself was added for this helper: not apiKeyHelper
    assert ask(linux(claude_env=dict(BASH_TOOL)), HOOK) is None


def test_an_unreadable_claude_environment_is_never_a_refusal() -> None:
    table = linux()
    del table.envs[100]
    assert ask(table, HOOK) is None
    assert ask(table) is not None  # no added variable: nothing to compare


def test_orphans_are_never_callers() -> None:
    reparented = linux()
    reparented.procs[ME].ppid = 1  # claude exited: SIGTERM to sh, the helper re-parented
    assert ask(reparented) is None
    shell_orphaned = linux()
    shell_orphaned.procs[200].ppid = 1  # claude was SIGKILLed: the sh itself re-parented
    assert ask(shell_orphaned) is None
    subreaper = linux()
    subreaper.add(50, 1, "systemd", "/lib/systemd/systemd", "--user", start=50)
    subreaper.procs[200].ppid = 50  # re-parented to a user-level subreaper
    assert ask(subreaper) is None


def test_not_claude_is_not_a_caller_unless_repeat_is_on() -> None:
    table = linux(("bash",), "/usr/bin/bash", name="bash")
    assert ask(table) is None
    assert ask(table, strict=False) is not None


# --- macOS shapes ---


def mac(claude_name: str, claude_exe: str, shell_exe: str = "/bin/bash") -> FakeTable:
    """launchd → claude → /bin/sh (which execs bash, keeping argv) -c … → keybroker."""
    return (
        FakeTable()
        .add(1, 0, "launchd", "/sbin/launchd", exe="/sbin/launchd")
        .add(100, 1, claude_name, "claude", exe=claude_exe)
        .add(200, 100, shell_exe.rsplit("/", 1)[-1], "sh", "-c", HELPER, exe=shell_exe)
        .add(ME, 200, "Python", "python3", "keybroker", exe="/opt/homebrew/bin/python3")
    )


def test_macos_native_binary_whose_comm_is_its_version() -> None:
    table = mac("2.1.197", "/Users/jane/.local/share/claude/versions/2.1.197")
    assert ask(table) is not None


def test_macos_homebrew_cask_and_zsh() -> None:
    table = mac("claude", "/opt/homebrew/Caskroom/claude-code/2.1.197/claude", "/bin/zsh")
    assert ask(table) is not None


def test_macos_orphan_under_launchd() -> None:
    table = mac("claude", "/usr/local/bin/claude")
    table.procs[200].ppid = 1
    assert ask(table) is None


# --- Windows shapes ---

KEYBROKER_EXE = r"C:\Users\Jane Doe\AppData\Roaming\Python\Python312\Scripts\keybroker.exe"
CMD_LINE = rf'C:\WINDOWS\system32\cmd.exe /d /s /c ""{KEYBROKER_EXE}" get litellm"'


def windows(
    claude: tuple[str, ...] = (r"C:\Users\Jane Doe\.local\bin\claude.exe",),
    claude_exe: str = r"C:\Users\Jane Doe\.local\bin\claude.exe",
    shell: list[str] | None = None,
    shell_exe: str = r"C:\WINDOWS\system32\cmd.exe",
    claude_env: dict[str, str] | None = None,
) -> FakeTable:
    """explorer → claude.exe → cmd.exe /d /s /c "…" → keybroker.exe (launcher) → python.exe."""
    shell_argv = shell if shell is not None else split_command_line(CMD_LINE)
    return (
        FakeTable()
        .add(10, 4, "explorer.exe", "explorer.exe", exe=r"C:\WINDOWS\explorer.exe")
        .add(100, 10, claude_exe.rsplit("\\", 1)[-1], *claude, exe=claude_exe, env=claude_env or {})
        .add(200, 100, shell_exe.rsplit("\\", 1)[-1], *shell_argv, exe=shell_exe)
        .add(300, 200, "keybroker.exe", KEYBROKER_EXE, "get", "litellm", exe=KEYBROKER_EXE)
        .add(ME, 300, "python.exe", "python.exe", "keybroker", exe=r"C:\Python312\python.exe")
    )


def test_windows_cmd_under_claude_exe_through_the_console_script_launcher() -> None:
    first = ask(windows())
    assert first is not None
    assert first.startswith("100:100:")
    other = list(split_command_line(CMD_LINE))
    other[-1] = other[-1].replace("litellm", "bedrock")
    assert ask(windows(shell=other)) not in (None, first)


def test_windows_npm_install_is_node_exe_running_cli_js() -> None:
    node = (
        r"C:\Program Files\nodejs\node.exe",
        r"C:\Users\Jane Doe\AppData\Roaming\npm\node_modules\@anthropic-ai\claude-code\cli.js",
    )
    assert ask(windows(node, r"C:\Program Files\nodejs\node.exe")) is not None


def test_windows_git_bash_and_powershell_hooks() -> None:
    git_bash = [r"C:\Program Files\Git\bin\bash.exe", "-c", HELPER]
    assert ask(windows(shell=git_bash, shell_exe=r"C:\Program Files\Git\bin\bash.exe")) is not None
    pwsh = ["pwsh.exe", "-NoProfile", "-Command", HELPER]
    pwsh_exe = r"C:\Program Files\PowerShell\7\pwsh.exe"
    assert ask(windows(shell=pwsh, shell_exe=pwsh_exe)) is not None
    assert ask(windows(shell=pwsh, shell_exe=pwsh_exe), HOOK) is None  # a hook: never


def test_windows_environment_names_are_case_insensitive() -> None:
    upper = {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": "s-1"}
    assert ask(windows(claude_env=upper), BASH_TOOL) is not None  # inherited, unchanged


def test_windows_a_dead_parents_reused_pid_is_an_orphan() -> None:
    """Windows does not re-parent: cmd.exe keeps naming claude's pid after claude exits, and
    that pid may now be another process — one that started after cmd.exe."""
    table = windows()
    table.procs[100].start = 250
    assert ask(table) is None
    table = windows()
    table.procs[200].start = 350  # the launcher's "parent" started after it
    assert ask(table) is None


def test_a_python_process_outside_windows_is_never_taken_for_a_launcher() -> None:
    table = linux()
    table.add(350, 200, "python3", "python3", exe="/usr/bin/python3")
    table.procs[ME].ppid = 350
    assert ask(table) is None  # python under sh is not Claude's shell's direct child


# --- no table answers ---


def test_a_table_that_cannot_describe_this_process_says_why() -> None:
    table = FakeTable(problem="/proc/400/stat cannot be read (/proc hidden or not mounted?)")
    assert identify(table, {}, True, pid=ME, own_argv=[]) == (
        None,
        "/proc/400/stat cannot be read (/proc hidden or not mounted?)",
    )
    assert identify(NoTable("sunos5"), {}, True, pid=ME, own_argv=[]) == (
        None,
        "keybroker has no process table for sunos5",
    )


def test_a_table_without_command_lines_is_unavailable_not_silent() -> None:
    """Before: a table that described processes but gave no argv (sysctl refused, an old
    Windows) made every shell look like "not claude": recovery off, and nothing said so."""
    table = linux()
    table.argvs.clear()
    assert identify(table, {}, True, pid=ME, own_argv=[]) == (None, "fake gives no command lines")
    table = windows()
    table.procs[300].exe = ""  # QueryFullProcessImageNameW refused: the snapshot's name counts
    assert ask(table) is not None


def test_hidden_proc_is_reported_by_the_linux_table(tmp_path: Path) -> None:
    table = LinuxTable(str(tmp_path))  # an empty /proc, as a tmpfs mounted over it
    assert table.proc(os.getpid()) is None
    assert "hidden or not mounted" in table.problem()


def test_the_unavailable_notice_is_rate_limited(kb_env: KbEnv) -> None:
    cache = kb_env.cache_dir
    cache.mkdir(mode=0o700, exist_ok=True)
    kb_env.data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)  # events live there
    table = FakeTable(problem="no facts")
    assert caller.caller_for(kb_env, True, str(cache), table) is None
    assert caller.caller_for(kb_env, True, str(cache), table) is None
    found = [e for e in events.read(kb_env) if e["kind"] == "repeat-unavailable"]
    assert [e["message"] for e in found] == [
        "401 recovery unavailable: no facts; a re-run of apiKeyHelper after a 401 cannot be "
        "recognised, so a refused key is served again until its entry ages out"
    ]
    stamp = cache / caller.NOTICE_FILE
    old = time.time() - caller.NOTICE_EVERY - 1
    os.utime(stamp, (old, old))
    assert caller.notice_unavailable(kb_env, str(cache), "no facts")


# --- the adapters' own parsing, and the selection by platform ---


def test_this_platforms_real_table_describes_this_process() -> None:
    """The real adapter of the OS the suite runs on (Linux here; macOS and Windows on the
    portable CI runners): the five facts of this very process."""
    table = for_platform()
    assert table.problem() == ""
    me = table.proc(os.getpid())
    assert me is not None
    assert me.ppid == os.getppid()
    parent = table.proc(me.ppid)
    assert parent is not None
    assert parent.start <= me.start
    argv = table.argv(os.getpid()) or []
    assert argv, "no argv for this process"
    # its tail is our arguments (none on a pytest-xdist worker: `python -u -c CODE`)
    assert argv[len(argv) - len(sys.argv[1:]) :] == sys.argv[1:]
    env = table.environ(os.getpid()) or {}
    assert any(name.upper() == "PATH" for name in env)


def test_stat_with_spaces_and_parens_in_the_name() -> None:
    raw = b"42 (a) b (c)) S 7 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 987654 0 0"
    assert parse_stat(raw) == ("a) b (c)", 7, 987654)
    assert parse_stat(b"garbage") is None


def test_kern_procargs2_buffer() -> None:
    raw = (
        (3).to_bytes(4, "little")
        + b"/bin/sh\0\0\0\0"
        + b"sh\0-c\0keybroker get p\0"
        + b"HOME=/Users/jane\0CLAUDECODE=1\0\0junk"
    )
    assert parse_procargs2(raw) == (
        ["sh", "-c", "keybroker get p"],
        {"HOME": "/Users/jane", "CLAUDECODE": "1"},
    )
    assert parse_procargs2(b"\x05\0\0\0/x\0a\0") is None  # argc larger than what follows
    assert ProcBsdInfo.pbi_start_tvsec.offset == 120
    assert len(bytes(ProcBsdInfo())) == 136


def test_windows_command_lines_split_like_commandlinetoargvw() -> None:
    # cmd's own /s /c "…" quoting is not argv quoting: the arguments after /c split at the
    # space in "Jane Doe", and the rule joins them back (the command string, as cmd runs it)
    split = split_command_line(CMD_LINE)
    assert split[:4] == [r"C:\WINDOWS\system32\cmd.exe", "/d", "/s", "/c"]
    assert split[4:] == [r"C:\Users\Jane", KEYBROKER_EXE.split(" ", 1)[1] + " get litellm"]
    assert " ".join(split[4:]) == f"{KEYBROKER_EXE} get litellm"
    assert split_command_line(r'"C:\Program Files\x.exe" a\\\"b "c d" e\\f') == [
        r"C:\Program Files\x.exe",
        'a\\"b',
        "c d",
        r"e\\f",
    ]
    assert split_command_line("") == []
    block = "=C:=C:\\x\0Path=C:\\bin\0claudecode=1\0\0".encode("utf-16-le")
    assert parse_environment_block(block) == {"=C:": "C:\\x", "PATH": "C:\\bin", "CLAUDECODE": "1"}
    width = 8 if sys.maxsize > 2**32 else 4
    assert ProcessEntry32W.szExeFile.offset == 28 + 2 * width  # 44 on 64-bit Windows


def test_the_table_is_chosen_by_platform() -> None:
    assert isinstance(for_platform("linux"), LinuxTable)
    assert isinstance(for_platform("darwin"), MacTable)
    assert isinstance(for_platform("win32"), WindowsTable)
    assert isinstance(for_platform("sunos5"), NoTable)
    if sys.platform != "win32":
        assert for_platform("win32").problem() == "the Windows process table runs on Windows only"
    if sys.platform != "darwin":
        assert "cannot load" in for_platform("darwin").problem()  # no libSystem here


# --- acceptance: /proc hidden, a re-run after a 401 is reported, not silently missed ---

HIDE_PROC = 'mount -t tmpfs none /proc && exec "$@"'


def hidden_proc(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", HIDE_PROC, "sh", *argv],
        env=env,
        capture_output=True,
        timeout=120,
        check=False,
    )


@pytest.mark.linux_backend
@pytest.mark.skipif(
    getattr(os, "geteuid", lambda: -1)() != 0 or not shutil.which("unshare"),
    reason="needs root and util-linux unshare (a mount namespace)",
)
def test_with_proc_hidden_a_rerun_after_a_401_is_reported_in_doctor_and_events(
    kb_env: KbEnv,
) -> None:
    """Before: the stand-in Claude got the refused key back, and nothing said why."""
    counter = minting_profile(kb_env)
    link = kb_env.base / "claude"
    link.symlink_to(sys.executable)
    helper = f"{exe('keybroker')} get p"
    plan = [{"command": helper}, {"command": helper, "sleep": 1.2}]
    env = dict(kb_env, CLAUDE_CODE_ENTRYPOINT="cli")
    run = hidden_proc([str(link), "-c", RUNNER, json.dumps(plan)], env)
    assert run.returncode == 0, run.stderr
    first, second = json.loads(run.stdout)
    assert first == second
    assert fetches(counter) == 1

    shown = subprocess.run(
        [exe("keybroker"), "events"], env=kb_env, capture_output=True, timeout=60, check=False
    )
    assert shown.returncode == 0, shown.stderr
    lines = [x for x in shown.stdout.decode().splitlines() if "repeat-unavailable" in x]
    assert len(lines) == 1, shown.stdout
    assert "401 recovery unavailable: /proc/" in lines[0]
    assert "cannot be read (/proc hidden or not mounted?)" in lines[0]

    inside = hidden_proc([exe("keybroker"), "doctor"], dict(kb_env))
    assert inside.returncode == 1
    line = next(x for x in inside.stdout.decode().splitlines() if "401 recovery" in x)
    assert line.startswith("✗ 401 recovery unavailable: /proc/"), line
    assert (
        "(/proc hidden or not mounted?); a re-run of apiKeyHelper after a 401 cannot be "
        "recognised" in line
    )

    outside = subprocess.run(
        [exe("keybroker"), "doctor"], env=kb_env, capture_output=True, timeout=60, check=False
    )
    line = next(x for x in outside.stdout.decode().splitlines() if "401 recovery" in x)
    assert line.startswith("✗ 401 recovery unavailable: under Claude Code at "), line
