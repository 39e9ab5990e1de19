"""doctor on a VPC-endpoint network: STS unreachable, Secrets Manager reachable.

Where only Secrets Manager has an endpoint (``endpoint_url``), doctor skips the STS check
instead of failing the profile, and still fails STS when Secrets Manager fails too.
"""

from __future__ import annotations

from mypy_boto3_secretsmanager import SecretsManagerClient

from tests.conftest import KbEnv
from tests.kb import run

# --- doctor on a VPC-endpoint network: STS unreachable, Secrets Manager fine ---


def vpc_endpoint_env(kb_env: KbEnv, moto_endpoint: str) -> dict[str, str]:
    """Secrets Manager only through the profile's endpoint_url; STS refuses connections."""
    from tests.fixtures.moto_server import aws_env, closed_port_url  # noqa: PLC0415

    env = dict(kb_env, **aws_env(moto_endpoint))
    del env["AWS_ENDPOINT_URL"]  # nothing but the profile's endpoint_url reaches moto
    env["AWS_ENDPOINT_URL_STS"] = closed_port_url()
    return env


def test_doctor_with_only_a_secrets_manager_endpoint_skips_sts(
    kb_env: KbEnv, moto_endpoint: str, secretsmanager: SecretsManagerClient
) -> None:
    from tests.fixtures.moto_server import unique_name  # noqa: PLC0415

    name = unique_name()
    secretsmanager.create_secret(Name=name, SecretString="sk-aws-vpc-endpoint-1")
    kb_env.write_config(
        f'[profiles.vpc]\nsource = "aws"\nsecret_id = "{name}"\n'
        f'region = "us-east-1"\nendpoint_url = "{moto_endpoint}"\n'
    )
    env = vpc_endpoint_env(kb_env, moto_endpoint)
    assert run(["keybroker", "get", "vpc"], env).code == 0  # what the user saw working
    doctor = run(["keybroker", "doctor", "vpc"], env)
    lines = [ln for ln in doctor.stdout.splitlines() if ln[2:].startswith("profile 'vpc'")]
    identity = next(ln for ln in lines if "sts:GetCallerIdentity" in ln)
    assert identity.startswith(
        "– profile 'vpc' AWS credentials (sts:GetCallerIdentity): "
        "skipped: STS is not reachable from here"
    ), identity
    assert f"Secrets Manager accepts these credentials at {moto_endpoint}" in identity
    assert any(ln.startswith("✓ profile 'vpc' secretsmanager:DescribeSecret") for ln in lines)
    assert not [ln for ln in lines if ln.startswith("✗")], doctor
    assert doctor.code == 0, doctor


def test_doctor_still_fails_sts_when_secrets_manager_fails_too(
    kb_env: KbEnv, moto_endpoint: str
) -> None:
    kb_env.write_config(
        '[profiles.vpc]\nsource = "aws"\nsecret_id = "kb-absent-secret"\n'
        f'region = "us-east-1"\nendpoint_url = "{moto_endpoint}"\n'
    )
    env = vpc_endpoint_env(kb_env, moto_endpoint)
    doctor = run(["keybroker", "doctor", "vpc"], env)
    assert doctor.code == 1, doctor
    assert (
        "✗ profile 'vpc' AWS credentials (sts:GetCallerIdentity): cannot reach" in doctor.stdout
    ), doctor
    assert "✗ profile 'vpc' secretsmanager:DescribeSecret" in doctor.stdout
