"""Issue 14 with the real Claude Code CLI (both pinned versions): one caller is one helper, no
refetch storm on a 401 that is not about the key, and a valid key still works in an outage.

The fake gateway (tests/e2e/anthropic_server.py) can ask Claude Code to run a Bash command
(a ``RUNBASH:`` prompt), so a session really runs ``keybroker get`` through its Bash tool.
"""

from __future__ import annotations

import json
import shlex
import time

import pytest

from keybroker.cache.repeats import BACKOFF_CAP, BACKOFF_FACTOR, BACKOFF_FIRST
from tests.e2e.anthropic_server import RUNBASH
from tests.e2e.cli import ClaudeRun, claude_env, run_claude
from tests.fixtures.claude_e2e import (
    DEPLOYMENT_ENV,
    E2E,
    Minter,
    get,
)
from tests.kb import exe, plant

pytestmark = pytest.mark.claude_e2e


def session(
    e2e: E2E,
    helper: str,
    *,
    prompt: str | None = None,
    retries: int = 0,
    extra_args: tuple[str, ...] = (),
) -> ClaudeRun:
    env = claude_env(e2e.env, e2e.api.url, retries=retries)
    env.update(DEPLOYMENT_ENV["anthropic"](e2e.api.url))
    if prompt is None:
        return run_claude(e2e.cli.exe, env, e2e.project, helper=helper, extra_args=extra_args)
    return run_claude(
        e2e.cli.exe, env, e2e.project, helper=helper, extra_args=extra_args, prompt=prompt
    )


def test_bash_tool_and_mcp_headers_helper_cause_no_extra_fetch(e2e: E2E) -> None:
    """Before: the Bash tool's `keybroker get` and the MCP headersHelper ran by the same claude
    process counted as refusals of the apiKeyHelper's key: each caused an upstream fetch."""
    minter = Minter(e2e.env.base, "sk-e2e-one-caller-7f3a")
    e2e.env.write_config(
        minter.profile("p") + '[mcp.servers]\ngw = { profile = "p", url = '
        f'"{e2e.api.url}/mcp/gw" }}\n'
    )
    mcp = {
        "mcpServers": {
            "gw": {
                "type": "http",
                "url": f"{e2e.api.url}/mcp/gw",
                "headersHelper": f"{shlex.quote(exe('keybroker'))} headers",
            }
        }
    }
    run = session(
        e2e,
        get("p"),
        prompt=f"{RUNBASH} {shlex.quote(exe('keybroker'))} get p",
        extra_args=("--mcp-config", json.dumps(mcp), "--allowedTools", "Bash"),
    )
    assert run.ok, run
    # the Bash tool really ran keybroker: its output came back as the tool result
    results = [
        json.dumps(r.body) for r in e2e.api.messages() if '"tool_result"' in json.dumps(r.body)
    ]
    assert results, "Claude Code did not run the Bash tool"
    assert [r.headers.get("authorization") for r in e2e.api.requests if r.path == "/mcp/gw"][
        :1
    ] == ["Bearer sk-e2e-one-caller-7f3a"]
    assert len(minter.runs()) == 1, minter.runs()  # apiKeyHelper, headersHelper, Bash: 1 fetch


#: Claude Code's retries after a 401 in the storm test: enough that the refused requests
#: outnumber what the backoff lets through in the time they take, on a slow machine too.
STORM_RETRIES = 4


def fetches_the_backoff_allows(elapsed: float) -> int:
    """The first fetch, the refetch that returns the refused key, then one more each time a
    backoff wait (1 s, ×4, capped: keybroker.cache.repeats) has run out within ``elapsed``."""
    allowed, waited, wait = 2, 0.0, BACKOFF_FIRST
    while waited + wait <= elapsed:
        waited += wait
        allowed += 1
        wait = min(wait * BACKOFF_FACTOR, BACKOFF_CAP)
    return allowed


@pytest.mark.serial  # slow retries outlive the backoff
def test_a_401_that_is_not_about_the_key_does_not_storm_the_source(e2e: E2E) -> None:
    """A gateway that refuses a key the source keeps returning (its own upstream credential is
    refused): Claude Code re-runs the helper before each retry. Before, every re-run fetched;
    now the refetch that returns the same key backs off (1 s, 4 s, 16 s …)."""
    key = "sk-e2e-gateway-fault-1d2e"
    minter = Minter(e2e.env.base, key)
    e2e.env.write_config(minter.profile("p"))
    e2e.api.revoke(key)
    start = time.monotonic()
    run = session(e2e, get("p"), retries=STORM_RETRIES)
    elapsed = time.monotonic() - start
    assert not run.ok
    refused = [r for r in e2e.api.messages() if r.status == 401]
    assert len(refused) >= e2e.cli.attempts(STORM_RETRIES) - 1, refused
    fetches = len(minter.runs())
    # one helper run per refused request; the fetches follow the backoff's clock instead
    assert fetches <= fetches_the_backoff_allows(elapsed), (fetches, len(refused), elapsed)
    assert fetches < len(refused), (fetches, len(refused), elapsed)
    kinds = [json.loads(x)["kind"] for x in _events(e2e)]
    assert "backoff" in kinds, kinds


def test_a_session_started_during_an_outage_works_while_the_key_is_valid(e2e: E2E) -> None:
    """Before: in the mandatory window (less than T + margin left) a failed refresh failed the
    helper, so a session started during a source outage could not start."""
    e2e.env.write_config('[profiles.p]\nsource = "command"\ncommand = ["/bin/false"]\n')
    now = time.time()
    key = "sk-e2e-outage-still-valid-9c1b"
    plant(e2e.env, "p", key, now - 3400, now + 200)
    run = session(e2e, get("p"))
    assert run.ok, run
    assert [m.key for m in e2e.api.messages()] == [key]
    kinds = [json.loads(x)["kind"] for x in _events(e2e)]
    assert kinds == ["stale-served"], kinds


def _events(e2e: E2E) -> list[str]:
    from tests.kb import run  # noqa: PLC0415

    listed = run(["keybroker", "events", "--json"], e2e.env)
    assert listed.code == 0, listed
    return listed.stdout.splitlines()
