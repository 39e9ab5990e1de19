"""Local real backends for the benchmarks: an OpenBao dev server and moto's Secrets Manager.

Started with the test suite's own fixtures (``tests/fixtures/openbao.py``,
``tests/fixtures/moto_server.py``), seeded with one key, and described by a config with a
``vault`` and an ``aws`` profile, so keybroker and every baseline read the same secret.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

from hit import FLOOR
from report import Report
from sandbox import Sandbox
from timing import Command, check, measure

ROOT = Path(__file__).resolve().parent.parent
BASELINES = Path(__file__).resolve().parent / "baselines"
KEY = "sk-bench-" + "5" * 32
SECTION_HIT = "hit vs plain helpers"
SECTION_COLD = "cold fetch"


class Backends:
    """Both servers, the env that reaches them, and the profiles' config text."""

    def __init__(self, sb: Sandbox, stack: ExitStack) -> None:
        if str(ROOT) not in sys.path:
            sys.path.insert(0, str(ROOT))
        from tests.fixtures.moto_server import (  # noqa: PLC0415
            REGION,
            RecordingProxy,
            aws_env,
            client,
            start_moto,
        )
        from tests.fixtures.openbao import start_openbao  # noqa: PLC0415

        self.bao = start_openbao(sb.base / "openbao")
        stack.callback(self.bao.stop)
        self.bao.kv_put("litellm", {"key": KEY})
        # counting forwarders: every HTTP request that reaches the server is recorded
        self.vault_proxy = RecordingProxy(self.bao.addr)
        stack.callback(self.vault_proxy.stop)
        endpoint, stop = start_moto()
        stack.callback(stop)
        sm = client("secretsmanager", endpoint)
        try:
            sm.create_secret(Name="litellm", SecretString=KEY)
        except sm.exceptions.ResourceExistsException:  # moto keeps state per process
            sm.put_secret_value(SecretId="litellm", SecretString=KEY)
        self.aws_proxy = RecordingProxy(endpoint)
        stack.callback(self.aws_proxy.stop)
        self.endpoint = endpoint
        self.env = sb.with_env(
            VAULT_ADDR=self.bao.addr,
            VAULT_TOKEN=self.bao.root_token,
            **aws_env(endpoint),
            AWS_DEFAULT_REGION=REGION,  # the AWS CLI v1 reads this one, not AWS_REGION
        )
        self.region = REGION

    def config(self, counted: bool = False) -> str:
        """The two profiles; ``counted`` routes them through the counting forwarders."""
        vault = self.vault_proxy.url if counted else self.bao.addr
        aws = self.aws_proxy.url if counted else self.endpoint
        return (
            f'[profiles.vault]\nsource = "vault"\naddr = "{vault}"\n'
            'path = "litellm"\nfield = "key"\n\n'
            f'[profiles.aws]\nsource = "aws"\nsecret_id = "litellm"\n'
            f'region = "{self.region}"\nendpoint_url = "{aws}"\n'
        )

    def vault_reads(self) -> int:
        """HTTP requests that reached OpenBao through the counting forwarder."""
        return len(self.vault_proxy.operations)

    def aws_reads(self) -> int:
        return self.aws_proxy.count("GetSecretValue")


def run(sb: Sandbox, report: Report, runs: int) -> None:
    with ExitStack() as stack:
        be = Backends(sb, stack)
        sb.write_config(be.config())
        timings(sb, be, report, runs)


def timings(sb: Sandbox, be: Backends, report: Report, runs: int) -> None:
    py, kb, env = sb.python(), sb.exe("keybroker"), be.env
    expect = KEY.encode() + b"\n"
    for profile in ("vault", "aws"):
        check(Command(f"fill {profile}", [kb, "get", profile], env, expect=expect))
    hvac_script = [py, str(BASELINES / "hvac_get.py")]
    boto3_script = [py, str(BASELINES / "boto3_get.py")]
    # the Go binary itself: the wheel's `bao` console script is a Python launcher in front of it
    bao_cli = [str(be.bao.bao), "kv", "get", "-field=key", "secret/litellm"]
    aws_cli = [
        sb.exe("aws"),
        "secretsmanager",
        "get-secret-value",
        "--secret-id",
        "litellm",
        "--query",
        "SecretString",
        "--output",
        "text",
    ]
    hits = [
        Command("floor: python -I -c 'import AESGCM'", [py, "-I", "-c", FLOOR], env),
        Command("keybroker get vault (hit)", [kb, "get", "vault"], env, expect=expect),
        Command("keybroker get aws (hit)", [kb, "get", "aws"], env, expect=expect),
        Command(
            "keybroker-vault --profile vault (hit)",
            [sb.exe("keybroker-vault"), "--profile", "vault"],
            env,
            expect=expect,
        ),
        Command("bao kv get -field=key (Go CLI)", bao_cli, env, expect=KEY.encode()),
        Command("plain hvac script", hvac_script, env, expect=expect),
        Command("aws secretsmanager get-secret-value (AWS CLI)", aws_cli, env, expect=expect),
        Command("plain boto3 script", boto3_script, env, expect=expect),
    ]
    s = measure(hits, runs)
    floor, kv, ka, kvs, bao, hvac, awscli, boto = (
        report.timing(SECTION_HIT, s[c.name]) for c in hits
    )
    report.ratio(SECTION_HIT, "vault hit / floor", kv, floor, at_most=1.3)
    report.ratio(SECTION_HIT, "aws hit / floor", ka, floor, at_most=1.3)
    report.ratio(SECTION_HIT, "vault hit vs bao CLI", kv, bao, at_least=1.6)
    report.ratio(SECTION_HIT, "vault hit vs plain hvac script", kv, hvac, at_least=5)
    report.ratio(SECTION_HIT, "aws hit vs AWS CLI", ka, awscli, at_least=1.6)
    report.ratio(SECTION_HIT, "aws hit vs plain boto3 script", ka, boto, at_least=5)
    report.ratio(SECTION_HIT, "keybroker-vault hit vs bao CLI", kvs, bao, at_least=1.6)

    def cold_get(profile: str) -> Command:
        """``keybroker get PROFILE`` with the entry dropped (untimed) before every run."""
        return Command(
            f"keybroker get {profile} (cold: fetch + write)",
            [kb, "get", profile],
            env,
            before=sb.drop_entries,
            expect=expect,
        )

    cold = [
        cold_get("vault"),
        Command("plain hvac script (cold group)", hvac_script, env, expect=expect),
        cold_get("aws"),
        Command("plain boto3 script (cold group)", boto3_script, env, expect=expect),
    ]
    s = measure(cold, max(10, runs // 2))
    cv, hv, ca, bo = (report.timing(SECTION_COLD, s[c.name]) for c in cold)
    report.ratio(SECTION_COLD, "vault cold / plain hvac script", cv, hv, at_most=1.1)
    report.ratio(SECTION_COLD, "aws cold / plain boto3 script", ca, bo, at_most=1.15)
