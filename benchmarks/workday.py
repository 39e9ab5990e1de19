"""A simulated working day: upstream requests with keybroker and without.

10 Claude Code sessions, started a few minutes apart, each running its apiKeyHelper at start
and then every ``CLAUDE_CODE_API_KEY_HELPER_TTL_MS`` (5 min) for 8 hours; the upstream hands
out keys that live 1 hour. Without keybroker every helper run is one upstream request. With
it, every run goes through the real ``resolve`` (real encrypted cache on disk, real lock,
real repeat detection with one caller id per session, as under Claude Code), with the clock
injected (``keybroker.clock.now`` is the single clock read), so 8 hours take a second.
"""

from __future__ import annotations

import heapq
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from report import Report, Row
from sandbox import Sandbox

SECTION = "working day"
SESSIONS = 10
STAGGER = 180.0  # a session starts every 3 minutes
TTL = 300.0
DAY = 8 * 3600.0
LIFETIME = 3600.0
START = 1_800_000_000.0


def simulate(base: Path) -> dict[str, Any]:
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache import caller  # noqa: PLC0415
    from keybroker.model import Options, Request, Secret  # noqa: PLC0415
    from keybroker.resolve import resolve  # noqa: PLC0415
    from keybroker.sources import base as sources  # noqa: PLC0415
    from keybroker.sources.base import BaseSource, FetchContext  # noqa: PLC0415

    class Upstream(BaseSource):
        """Counts requests; each answer is a new key that lives LIFETIME seconds."""

        name = "workday"
        default_storage = "disk"

        def __init__(self) -> None:
            self.requests = 0

        def describe(self, settings: Mapping[str, Any]) -> str:
            return "simulated upstream"

        def fetch(self, request: Request, ctx: FetchContext) -> Secret:
            self.requests += 1
            return Secret(f"sk-day-{self.requests:06d}", clock.now() + LIFETIME, None, self.name)

    now = [START]
    session = ["0"]
    saved = (clock.now, caller.caller_id)
    upstream = Upstream()
    sources.register(upstream, "workday")
    clock.now = lambda: now[0]  # type: ignore[method-assign]
    caller.caller_id = lambda *_, **__: f"session-{session[0]}"  # type: ignore[method-assign]
    env = {
        "KEYBROKER_CACHE_DIR": str(base / "cache"),
        "KEYBROKER_DATA_DIR": str(base / "data"),
        "CLAUDE_CODE_ENTRYPOINT": "cli",  # under Claude Code: repeat detection is on
        "CLAUDE_CODE_API_KEY_HELPER_TTL_MS": str(int(TTL * 1000)),
    }
    request = Request("workday", {}, Options(ttl=TTL), profile="day")
    calls = 0
    states: dict[str, int] = {}
    expired_served = 0
    try:
        queue = [(START + i * STAGGER, i) for i in range(SESSIONS)]
        heapq.heapify(queue)
        while queue:
            when, who = heapq.heappop(queue)
            now[0], session[0] = when, str(who)
            outcome = resolve(request, env)
            calls += 1
            states[outcome.state] = states.get(outcome.state, 0) + 1
            if outcome.expires_at is not None and outcome.expires_at - when < TTL:
                expired_served += 1  # would expire while Claude Code still uses it
            if when + TTL < START + who * STAGGER + DAY:
                heapq.heappush(queue, (when + TTL, who))
    finally:
        clock.now, caller.caller_id = saved  # type: ignore[method-assign]
        sources.unregister("workday")
    return {"calls": calls, "with": upstream.requests, "states": states, "short": expired_served}


def run(sb: Sandbox, report: Report, runs: int) -> None:
    with tempfile.TemporaryDirectory(dir=sb.base) as tmp:
        result = simulate(Path(tmp))
    calls, fetched = result["calls"], result["with"]
    states = ", ".join(f"{k} {v}" for k, v in sorted(result["states"].items()))
    report.add(
        Row(
            SECTION,
            f"{SESSIONS} sessions × 8 h, TTL 5 min, 1 h keys: without keybroker",
            f"{calls} upstream requests",
            "one per helper run",
        )
    )
    report.add(
        Row(
            SECTION,
            f"{SESSIONS} sessions × 8 h, TTL 5 min, 1 h keys: with keybroker",
            f"{fetched} upstream requests",
            f"{calls} helper runs: {states}",
        )
    )
    report.add(
        Row(
            SECTION,
            "reduction",
            f"{calls / max(fetched, 1):.0f}×",
            f"keys served that would expire within TTL: {result['short']}",
            "",
            None,
        )
    )
