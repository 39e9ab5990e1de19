"""Issue 14: only a re-run of the same apiKeyHelper by the same Claude process is a refusal.

A process named ``claude`` (a symlink to the interpreter: its comm is "claude", as the native
binary's is) runs keybroker through ``/bin/sh -c``, the way the real CLI does (established
with the real CLI; the e2e suite repeats the important cases with it). What differs between
the kinds of helper run is exactly what Claude Code changes: the command string and the
variables it adds for hooks, the Bash tool and MCP headersHelpers.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

from tests.conftest import KbEnv
from tests.fixtures.fake_claude import RUNNER
from tests.kb import exe, fetches, minting_profile


def claude(
    kb_env: KbEnv, plan: list[dict[str, object]], own_env: dict[str, str] | None = None
) -> list[str]:
    link = kb_env.base / "claude"
    if not link.exists():
        link.symlink_to(sys.executable)
    env = dict(kb_env, CLAUDE_CODE_ENTRYPOINT="cli", **(own_env or {}))
    out = subprocess.run(
        [str(link), "-c", RUNNER, json.dumps(plan)],
        env=env,
        capture_output=True,
        timeout=120,
        check=True,
    )
    keys: list[str] = json.loads(out.stdout)
    return keys


def helper(kb_env: KbEnv) -> str:
    return f"{exe('keybroker')} get p"


def test_api_key_helper_rerun_is_a_refusal(kb_env: KbEnv) -> None:
    counter = minting_profile(kb_env)
    first, second = claude(
        kb_env, [{"command": helper(kb_env)}, {"command": helper(kb_env), "sleep": 1.2}]
    )
    assert first != second
    assert fetches(counter) == 2


def test_headers_helper_bash_tool_and_hooks_are_never_refusals(kb_env: KbEnv) -> None:
    """Before: caller_id skipped shells up to claude, so a headersHelper, a hook or a Bash
    tool `keybroker get` after the apiKeyHelper each looked like a refusal and refetched."""
    counter = minting_profile(kb_env)
    plan: list[dict[str, object]] = [
        {"command": helper(kb_env)},  # apiKeyHelper at start
        {
            "command": helper(kb_env),
            "sleep": 1.2,
            "add": {"CLAUDE_CODE_MCP_SERVER_NAME": "gw", "CLAUDE_CODE_MCP_SERVER_URL": "http://x"},
        },
        {
            "command": f". /dev/null && eval '{helper(kb_env)}'",
            "sleep": 1.2,
            "add": {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": "s-1"},
        },  # the Bash tool
        {
            "command": helper(kb_env),
            "sleep": 1.2,
            "add": {
                "CLAUDECODE": "1",
                "CLAUDE_CODE_SESSION_ID": "s-1",
                "CLAUDE_PROJECT_DIR": "/tmp",
            },
        },  # a hook
    ]
    keys = claude(kb_env, plan)
    assert len(set(keys)) == 1, keys
    assert fetches(counter) == 1


def test_a_nested_claude_still_detects_its_own_refusals(kb_env: KbEnv) -> None:
    """A claude started from another claude's Bash tool inherits CLAUDECODE & co and passes
    them unchanged to its apiKeyHelper: that is still an apiKeyHelper run."""
    counter = minting_profile(kb_env)
    inherited = {"CLAUDECODE": "1", "CLAUDE_CODE_SESSION_ID": "outer"}
    first, second = claude(
        kb_env, [{"command": helper(kb_env)}, {"command": helper(kb_env), "sleep": 1.2}], inherited
    )
    assert first != second
    assert fetches(counter) == 2


def test_orphaned_helpers_are_never_refusals(kb_env: KbEnv) -> None:
    """Before: every helper re-parented to pid 1 looked like the same caller, so a second
    orphan within 0.8 T refetched."""
    counter = minting_profile(kb_env)
    out1, out2 = kb_env.base / "o1", kb_env.base / "o2"
    command = f"sleep 0.5; {helper(kb_env)}"
    claude(kb_env, [{"command": command, "orphan": str(out1)}])
    claude(kb_env, [{"command": command, "orphan": str(out2), "sleep": 1.5}])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not (out1.read_bytes() and out2.read_bytes()):
        time.sleep(0.1)
    assert out1.read_bytes() == out2.read_bytes() != b""
    assert fetches(counter) == 1
