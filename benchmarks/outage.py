"""Helper latency while the key source hangs (DESIGN section 4, "Outages fail fast").

A real OpenBao sits behind the test suite's fault proxy (``tests/fixtures/standin.py``). The
secret carries its own ``expires_at`` five minutes out, so the cached key is inside the
mandatory window (T + m = 6 min) and every call wants to refresh it — the situation of every
Claude Code session while Vault is down and the key is still good. Then the proxy stalls
(accepts, never answers: a stopped Vault) and ``keybroker get`` runs call after call.

Reported: the first call (it has to find out), and the median and worst of the calls after
it. Before outages failed fast, every call waited out the Vault client's timeout (~10.7 s);
now the calls inside the shared window answer at once and one call per window probes with a
short budget. No data is needed besides this tree: it needs no internal API, so
``--python`` can point it at an older install for the "before" figure.
"""

from __future__ import annotations

import statistics
import sys
import time
from contextlib import ExitStack
from pathlib import Path

from report import Report, Row
from sandbox import Sandbox
from timing import Command, check, spawn_and_wait

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-bench-outage-" + "7" * 24
SECTION = "outage: a hung Vault, a still-valid key cached"
CALLS = 12


def run(sb: Sandbox, report: Report, runs: int) -> None:
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    from tests.fixtures.openbao import start_openbao  # noqa: PLC0415
    from tests.fixtures.standin import FaultProxy, upstream_of  # noqa: PLC0415

    with ExitStack() as stack:
        bao = start_openbao(sb.base / "openbao")
        stack.callback(bao.stop)
        bao.kv_put("litellm", {"key": KEY, "expires_at": int(time.time()) + 300})
        proxy = FaultProxy(upstream_of(bao.addr))
        stack.callback(proxy.close)
        sb.write_config(
            f'[profiles.vault]\nsource = "vault"\naddr = "{proxy.url}"\n'
            'path = "litellm"\nfield = "key"\n'
        )
        env = sb.with_env(VAULT_TOKEN=bao.root_token)
        kb = sb.exe("keybroker")
        check(Command("fill", [kb, "get", "vault"], env, expect=KEY.encode() + b"\n"))
        proxy.set("stall")
        times = [spawn_and_wait([kb, "get", "vault"], env) for _ in range(max(3, min(CALLS, runs)))]
        first, rest = times[0], times[1:]
        report.raw["outage: get vault, call after call"] = times
        report.add(
            Row(
                SECTION,
                "first call (finds the outage)",
                f"{first * 1000:.0f} ms",
                "the Vault client's own timeout, or the deadline",
            )
        )
        median = statistics.median(rest)
        report.add(
            Row(
                SECTION,
                "calls after it: median",
                f"{median * 1000:.0f} ms",
                f"n={len(rest)}, worst {max(rest) * 1000:.0f} ms (a probe after the window)",
                "≤ 1 s",
                median <= 1.0,
            )
        )
