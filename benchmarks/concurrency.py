"""Bursts of concurrent cold calls: how many reach the upstream, and how long the burst takes.

N helpers start at once on an empty cache (what N Claude sessions starting together, or a
CI matrix, do). Single flight should let one of them fetch and the rest wait for its entry.
"Without keybroker" runs the same N upstream calls directly: N fetches by construction, timed.
Upstreams: the ``command`` source with a counting script that takes 200 ms (a slow network
round trip), and the real OpenBao and moto servers behind counting forwarders.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Sequence
from contextlib import ExitStack

from backends import BASELINES, KEY, Backends
from hit import counter_profile
from report import Report, Row
from sandbox import Sandbox

SECTION = "concurrent cold burst"
SIZES = (32, 128)
UPSTREAM_DELAY = 0.2


def burst(argv: Sequence[str], env: dict[str, str], n: int) -> tuple[float, list[bytes], int]:
    """Start ``n`` copies at once; (wall seconds, outputs, failures)."""
    procs = []
    start = time.perf_counter()
    for _ in range(n):
        read_out, write_out = os.pipe()
        devnull = os.open(os.devnull, os.O_RDWR)
        pid = os.posix_spawn(
            argv[0],
            list(argv),
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, devnull, 0),
                (os.POSIX_SPAWN_DUP2, write_out, 1),
                (os.POSIX_SPAWN_DUP2, devnull, 2),
            ],
        )
        os.close(write_out)
        os.close(devnull)
        procs.append((pid, read_out))
    outputs, failures = [], 0
    for pid, read_out in procs:
        chunks = []
        while chunk := os.read(read_out, 65536):
            chunks.append(chunk)
        os.close(read_out)
        _, status = os.waitpid(pid, 0)
        failures += os.waitstatus_to_exitcode(status) != 0
        outputs.append(b"".join(chunks))
    return time.perf_counter() - start, outputs, failures


def one(
    report: Report,
    what: str,
    n: int,
    argv: Sequence[str],
    env: dict[str, str],
    count: Callable[[], int],
    reset: Callable[[], None],
    keybroker: bool,
) -> None:
    reset()
    wall, outputs, failures = burst(argv, env, n)
    fetched = count()
    distinct = len(set(outputs))
    detail = f"{n} processes, {failures} failed, {distinct} distinct output(s)"
    if keybroker:
        report.add(
            Row(
                SECTION,
                f"{what}: keybroker, {n} at once",
                f"{fetched} upstream request(s)",
                f"{detail}; wall {wall:.2f} s",
                "1 request",
                fetched == 1 and not failures,
            )
        )
    else:
        report.add(
            Row(
                SECTION,
                f"{what}: without keybroker, {n} at once",
                f"{fetched} upstream request(s)",
                f"{detail}; wall {wall:.2f} s",
            )
        )


def run(sb: Sandbox, report: Report, runs: int) -> None:
    kb = sb.exe("keybroker")
    counter = sb.work / "burst-counter"
    with ExitStack() as stack:
        be = Backends(sb, stack)
        sb.write_config(
            be.config(counted=True) + "\n" + counter_profile(sb, "slow", counter, UPSTREAM_DELAY)
        )
        env = be.env

        def lines() -> int:
            return len(counter.read_text().splitlines()) if counter.exists() else 0

        def clear_counter() -> None:
            counter.unlink(missing_ok=True)
            sb.drop_entries()

        upstream_script = [
            sb.python(),
            "-I",
            str(BASELINES.parent / "upstream" / "counter.py"),
            str(counter),
            str(UPSTREAM_DELAY),
        ]

        def reset_vault() -> None:
            sb.drop_entries()
            be.vault_proxy.reset()

        def reset_aws() -> None:
            sb.drop_entries()
            be.aws_proxy.reset()

        vault_env = dict(env, VAULT_ADDR=be.vault_proxy.url)
        aws_env = dict(env, AWS_ENDPOINT_URL=be.aws_proxy.url)
        for n in SIZES:
            one(
                report,
                "command (200 ms upstream)",
                n,
                [kb, "get", "slow"],
                env,
                lines,
                clear_counter,
                True,
            )
            one(
                report,
                "command (200 ms upstream)",
                n,
                upstream_script,
                env,
                lines,
                clear_counter,
                False,
            )

            one(
                report,
                "vault (OpenBao)",
                n,
                [kb, "get", "vault"],
                env,
                be.vault_reads,
                reset_vault,
                True,
            )
            one(
                report,
                "vault (OpenBao)",
                n,
                [str(be.bao.bao), "kv", "get", "-field=key", "secret/litellm"],
                vault_env,
                be.vault_reads,
                reset_vault,
                False,
            )

            one(report, "aws (moto)", n, [kb, "get", "aws"], env, be.aws_reads, reset_aws, True)
        one(
            report,
            "aws (moto)",
            SIZES[0],
            [sb.python(), str(BASELINES / "boto3_get.py")],
            aws_env,
            be.aws_reads,
            reset_aws,
            False,
        )
    report.notes.append(
        f"concurrent bursts: every keybroker process printed the same key ({KEY[:9]}… for "
        "vault/aws) when 'distinct output(s)' is 1; the plain boto3 burst is run at "
        f"{SIZES[0]} only (each process imports boto3: {SIZES[-1]} of them take minutes on 2 "
        "cores), and would make one fetch per process at any size. Requests are counted at the "
        "server: `bao kv get` makes two per run (a mount lookup, then the read)."
    )
