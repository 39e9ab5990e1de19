"""The aws source against moto's server over real HTTP (DESIGN section 7).

Subprocess tests run the real ``keybroker`` / ``keybroker-aws`` executables with
``AWS_ENDPOINT_URL`` pointing at a :class:`RecordingProxy` in front of moto, so they can count
GetSecretValue / DescribeSecret / AssumeRole calls and inject AWS errors over HTTP. Each test
uses its own secret names (moto's state is shared by the session).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from mypy_boto3_secretsmanager import SecretsManagerClient

from keybroker.errors import InvalidSecret
from keybroker.model import Deadline, Request
from keybroker.sources.aws import SOURCE, Target, parse_expiry
from keybroker.sources.base import FetchContext
from tests.conftest import KbEnv
from tests.fixtures.moto_server import (
    RecordingProxy,
    aws_env,
    closed_port_url,
    silent_endpoint,
    unique_name,
)
from tests.kb import assert_fails, assert_key, assert_nowhere, python, run

ROLE_ARN = "arn:aws:iam::123456789012:role/keybroker-reader"


def new_key(prefix: str = "sk-aws-") -> str:
    return prefix + secrets.token_hex(16)


def new_secret(secretsmanager: SecretsManagerClient) -> tuple[str, str]:
    """A new secret holding a new key: its name and the key."""
    name, key = unique_name(), new_key()
    secretsmanager.create_secret(Name=name, SecretString=key)
    return name, key


def profile(name: str, **settings: Any) -> str:
    """One ``[profiles.NAME]`` table with source = "aws"."""
    lines = [f"[profiles.{name}]", 'source = "aws"']
    lines += [f"{key} = {json.dumps(value)}" for key, value in settings.items()]
    return "\n".join(lines) + "\n"


@pytest.fixture
def env(kb_env: KbEnv, aws_proxy: RecordingProxy) -> KbEnv:
    """A test's isolated environment whose AWS calls go through the recording proxy."""
    kb_env.update(aws_env(aws_proxy.url))
    return kb_env


def json_secret(secretsmanager: SecretsManagerClient, **fields: Any) -> str:
    name = unique_name()
    secretsmanager.create_secret(Name=name, SecretString=json.dumps(fields))
    return name


def rotate(secretsmanager: SecretsManagerClient, name: str, value: str) -> tuple[str, str]:
    """Rotation by hand: a new version as AWSPENDING, then AWSCURRENT moved onto it."""
    stages = secretsmanager.describe_secret(SecretId=name)["VersionIdsToStages"]
    current = next(v for v, labels in stages.items() if "AWSCURRENT" in labels)
    pending = secretsmanager.put_secret_value(
        SecretId=name, SecretString=value, VersionStages=["AWSPENDING"]
    )["VersionId"]
    return current, pending


def promote(secretsmanager: SecretsManagerClient, name: str, old: str, new: str) -> None:
    secretsmanager.update_secret_version_stage(
        SecretId=name, VersionStage="AWSCURRENT", MoveToVersionId=new, RemoveFromVersionId=old
    )


# --- fetching through the real executables ---


def test_json_field_by_profile_and_standalone_share_one_entry(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    key, password = new_key(), new_key("pw-")
    name = json_secret(secretsmanager, key=key, password=password)
    env.write_config(profile("litellm", secret_id=name, field="key"))

    first = run(["keybroker", "get", "litellm"], env)
    assert_key(first, key)
    assert first.err == b""
    # the same request as flags; AWS_ENDPOINT_URL (no endpoint_url setting) reaches the proxy
    second = run(["keybroker-aws", "--secret-id", name, "--field", "key"], env)
    assert_key(second, key)
    assert second.err == b""
    third = run(["keybroker-aws", "--profile", "litellm"], env)
    assert_key(third, key)

    assert aws_proxy.count("GetSecretValue") == 1, aws_proxy.operations
    for value in (key, password):
        assert_nowhere(value, first, second, third, dirs=[env.base])


def test_endpoint_flag_and_service_specific_env_share_one_entry(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    name, key = new_secret(secretsmanager)
    dead = closed_port_url()
    env["AWS_ENDPOINT_URL"] = dead  # the generic variable loses to the flag / specific variable

    by_flag = run(["keybroker-aws", "--secret-id", name, "--endpoint-url", aws_proxy.url], env)
    assert_key(by_flag, key)
    env.write_config(profile("p", secret_id=name))
    env["AWS_ENDPOINT_URL_SECRETS_MANAGER"] = aws_proxy.url
    by_env = run(["keybroker", "get", "p"], env)
    assert_key(by_env, key)
    assert aws_proxy.count("GetSecretValue") == 1, aws_proxy.operations


def test_plain_secret_string_as_is_and_arn_gives_the_region(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    key = new_key()
    arn = secretsmanager.create_secret(Name=unique_name(), SecretString=key)["ARN"]
    del env["AWS_REGION"]
    result = run(["keybroker-aws", "--secret-id", arn], env)
    assert_key(result, key)
    assert result.err == b""


def test_rotation_stages_no_cache_and_previous(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    old_key, new_key_ = new_key(), new_key()
    name = unique_name()
    secretsmanager.create_secret(Name=name, SecretString=old_key)
    env.write_config(profile("p", secret_id=name))
    assert_key(run(["keybroker", "get", "p"], env), old_key)

    old, pending = rotate(secretsmanager, name, new_key_)
    assert_key(run(["keybroker", "get", "p"], env), old_key)  # AWSCURRENT has not moved
    assert_key(
        run(["keybroker-aws", "--secret-id", name, "--version-stage", "AWSPENDING"], env), new_key_
    )

    promote(secretsmanager, name, old, pending)
    # inside the reuse window (T = 5 min) the cached key is still served ...
    assert_key(run(["keybroker", "get", "p"], env), old_key)
    # ... --no-cache asks Secrets Manager now
    assert_key(run(["keybroker", "get", "p", "--no-cache"], env), new_key_)
    assert_key(run(["keybroker-aws", "--secret-id", name, "--no-cache"], env), new_key_)
    # the previous version stays readable by its stage and by its VersionId
    assert_key(
        run(["keybroker-aws", "--secret-id", name, "--version-stage", "AWSPREVIOUS"], env), old_key
    )
    assert_key(run(["keybroker-aws", "--secret-id", name, "--version-id", old], env), old_key)


def test_describe_secret_revalidation_avoids_a_second_fetch(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    """After the reuse window, DescribeSecret decides: same version → extend, moved → fetch."""
    first_key, second_key = new_key(), new_key()
    name = json_secret(secretsmanager, key=first_key)
    env.write_config(profile("p", secret_id=name, field="key", max_age="1s"))

    assert_key(run(["keybroker", "get", "p"], env), first_key)
    assert (aws_proxy.count("GetSecretValue"), aws_proxy.count("DescribeSecret")) == (1, 0)

    for round_ in (1, 2):
        time.sleep(1.3)  # past max_age: every call below is a revalidation, however slow
        assert_key(run(["keybroker", "get", "p"], env), first_key)
        assert aws_proxy.count("DescribeSecret") == round_, aws_proxy.operations
        assert aws_proxy.count("GetSecretValue") == 1, aws_proxy.operations

    time.sleep(1.3)
    doc = json.loads(run(["keybroker", "print-token", "p", "--json"], env).out)
    assert doc["cache"]["state"] == "revalidated", doc
    assert doc["key_version"], doc

    old, pending = rotate(secretsmanager, name, json.dumps({"key": second_key}))
    promote(secretsmanager, name, old, pending)
    time.sleep(1.3)
    assert_key(run(["keybroker", "get", "p"], env), second_key)
    assert aws_proxy.count("DescribeSecret") == 4, aws_proxy.operations
    assert aws_proxy.count("GetSecretValue") == 2, aws_proxy.operations
    doc = json.loads(run(["keybroker", "print-token", "p", "--json"], env).out)
    assert doc["key_version"] == pending, doc


def test_expiry_from_the_json_expires_at_field(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    key = new_key()
    expires = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    name = json_secret(
        secretsmanager, key=key, expires_at=expires.isoformat().replace("+00:00", "Z")
    )
    env.write_config(profile("p", secret_id=name, field="key"))
    assert_key(run(["keybroker", "get", "p"], env), key)
    doc = json.loads(run(["keybroker", "print-token", "p", "--json"], env).out)
    assert doc["expires_at"] == expires.isoformat().replace("+00:00", "Z"), doc
    assert doc["cache"]["state"] == "hit", doc
    assert aws_proxy.count("GetSecretValue") == 1


def test_secret_binary_that_is_a_key_and_one_that_is_not(
    env: KbEnv, secretsmanager: SecretsManagerClient
) -> None:
    key = new_key()
    text_name, blob_name = unique_name(), unique_name()
    secretsmanager.create_secret(Name=text_name, SecretBinary=key.encode() + b"\n")
    secretsmanager.create_secret(Name=blob_name, SecretBinary=b"\x00\xffsk-\x80binary")

    assert_key(run(["keybroker-aws", "--secret-id", text_name], env), key)
    result = run(["keybroker-aws", "--secret-id", blob_name], env)
    assert_fails(result, 6, "holds binary data (SecretBinary)", "SecretString")
    assert result.err.count(b"\n") == 1


def test_whole_json_document_with_star(env: KbEnv, secretsmanager: SecretsManagerClient) -> None:
    secret_key = new_key("sak-")
    name = json_secret(secretsmanager, AccessKeyId="AKIAEXAMPLE", SecretAccessKey=secret_key)
    result = run(["keybroker-aws", "--secret-id", name, "--field", "*"], env)
    assert result.code == 0, result
    assert json.loads(result.out) == {"AccessKeyId": "AKIAEXAMPLE", "SecretAccessKey": secret_key}
    assert b" " not in result.out.strip()


# --- failures: exit codes and messages, never a value ---


def test_missing_secret_field_and_stage_exit_5(
    env: KbEnv, secretsmanager: SecretsManagerClient
) -> None:
    key, password = new_key(), new_key("pw-")
    name = json_secret(secretsmanager, key=key, password=password)

    missing = run(["keybroker-aws", "--secret-id", unique_name("absent")], env)
    assert_fails(missing, 5, "not found in us-east-1", "list-secrets")
    assert missing.err.count(b"\n") == 1

    field = run(["keybroker-aws", "--secret-id", name, "--field", "api_key"], env)
    assert_fails(
        field,
        5,
        secrets=[key, password],
        exactly=(
            f"keybroker: aws: field 'api_key' is not in secret '{name}'; fields: key, password; "
            "fix field (--field)\n"
        ),
    )

    stage = run(["keybroker-aws", "--secret-id", name, "--version-stage", "AWSPENDING"], env)
    assert_fails(stage, 5, "no version has stage AWSPENDING")

    env.write_config(profile("p", secret_id=name))
    whole = run(["keybroker", "get", "p"], env)
    assert_fails(
        whole,
        6,
        "profile 'p'",
        "is a JSON object, not a key",
        "fields: key, password",
        secrets=[key, password],
    )

    debug = run(["keybroker-aws", "--secret-id", name, "--field", "nope", "--debug"], env)
    assert debug.code == 5, debug
    assert debug.out == b""
    assert_nowhere(key, debug)
    assert_nowhere(password, debug)


def test_non_string_field_and_bad_expiry_exit_6(
    env: KbEnv, secretsmanager: SecretsManagerClient
) -> None:
    key = new_key()
    name = json_secret(secretsmanager, key=key, port=4000, expires_at="next tuesday")
    number = run(["keybroker-aws", "--secret-id", name, "--field", "port"], env)
    assert_fails(number, 6, "field 'port'", "is a number, not a string")
    expiry = run(["keybroker-aws", "--secret-id", name, "--field", "key"], env)
    assert_fails(expiry, 6, "'expires_at' is not a time", secrets=[key, "next tuesday"])


@pytest.mark.parametrize(
    ("status", "code", "exit_code", "needles"),
    [
        (400, "DecryptionFailure", 4, ("could not decrypt", "kms:Decrypt")),
        (
            400,
            "AccessDeniedException",
            4,
            ("access denied: secretsmanager:GetSecretValue", "IAM policy"),
        ),
        (400, "ExpiredTokenException", 4, ("credentials have expired", "aws sso login")),
        (403, "UnrecognizedClientException", 4, ("rejected the credentials",)),
        (400, "ThrottlingException", 3, ("throttled", "after 3 attempts")),
        (500, "InternalServiceError", 3, ("HTTP 500", "after 3 attempts")),
    ],
)
def test_aws_errors_map_to_exit_codes(
    env: KbEnv,
    aws_proxy: RecordingProxy,
    secretsmanager: SecretsManagerClient,
    status: int,
    code: str,
    exit_code: int,
    needles: tuple[str, ...],
) -> None:
    name, key = new_secret(secretsmanager)
    aws_proxy.faults["secretsmanager.GetSecretValue"] = (status, code)
    result = run(["keybroker-aws", "--secret-id", name], env)
    assert_fails(result, exit_code, f"({code})", *needles, secrets=[key])
    assert result.err.count(b"\n") == 1, result
    # throttling and 5xx are retried (3 attempts by default); refusals are not
    expected = 3 if exit_code == 3 else 1
    assert aws_proxy.count("GetSecretValue") == expected, aws_proxy.operations


def test_no_credentials_exit_4_and_no_region_exit_2(
    env: KbEnv, secretsmanager: SecretsManagerClient
) -> None:
    name = unique_name()
    secretsmanager.create_secret(Name=name, SecretString=new_key())
    bare = {k: v for k, v in env.items() if k not in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")}
    bare["AWS_CONFIG_FILE"] = str(env.base / "no-aws-config")
    bare["AWS_SHARED_CREDENTIALS_FILE"] = str(env.base / "no-aws-credentials")
    result = run(["keybroker-aws", "--secret-id", name], bare)
    assert_fails(result, 4, "no AWS credentials found")

    no_region = {k: v for k, v in env.items() if k != "AWS_REGION"}
    result = run(["keybroker-aws", "--secret-id", name], no_region)
    assert_fails(result, 2, "no AWS region is set", "AWS_REGION")

    missing_id = run(["keybroker-aws", "--region", "us-east-1"], env)
    assert_fails(missing_id, 2, "missing setting 'secret_id'", "--secret-id")


def test_named_aws_profile_from_shared_files(
    env: KbEnv, secretsmanager: SecretsManagerClient
) -> None:
    name, key = new_secret(secretsmanager)
    aws_dir = Path(env["HOME"]) / ".aws"
    aws_dir.mkdir()
    (aws_dir / "config").write_text("[profile dev]\nregion = us-east-1\n")
    (aws_dir / "credentials").write_text(
        "[dev]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
    )
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION"):
        del env[var]
    env.write_config(profile("p", secret_id=name, aws_profile="dev"))
    assert_key(run(["keybroker", "get", "p"], env), key)
    unknown = run(["keybroker-aws", "--secret-id", name, "--aws-profile", "nope"], env)
    assert_fails(unknown, 2, "AWS profile 'nope' is not in ~/.aws/config")


@pytest.mark.serial  # a 2 s deadline and a time bound
def test_unreachable_endpoints_exit_3_within_the_deadline(env: KbEnv) -> None:
    """Refused and silent endpoints end in exit 3 from keybroker's own timeouts, in time."""
    env["KEYBROKER_TIMEOUT"] = "2"
    env["AWS_ENDPOINT_URL"] = closed_port_url()
    refused = run(["keybroker-aws", "--secret-id", "litellm"], env, timeout=30)
    assert_fails(refused, 3, f"cannot reach {env['AWS_ENDPOINT_URL']}")

    url, stop = silent_endpoint()
    try:
        env["AWS_ENDPOINT_URL"] = url
        started = time.monotonic()
        tight = run(["keybroker-aws", "--secret-id", "litellm"], env, timeout=30)
        elapsed = time.monotonic() - started
        # short read timeouts leave room for retries, each one bounded
        env["KEYBROKER_TIMEOUT"] = "5"
        retried = run(
            [
                "keybroker-aws",
                "--secret-id",
                "litellm",
                "--read-timeout",
                "1",
                "--connect-timeout",
                "1",
            ],
            env,
            timeout=30,
        )
    finally:
        stop()
    # the read timeout is capped by what is left of the 2 s budget (or, on a machine so loaded
    # that start-up ate the budget, the deadline check stops the call): never the watchdog
    assert_fails(tight, 3)
    assert (
        f"no answer from {url}".encode() in tight.err
        or b"gave up after 2s (KEYBROKER_TIMEOUT)" in tight.err
    ), tight
    assert b"ran past its deadline" not in tight.err
    assert elapsed < 15, elapsed  # 2 s + start-up; far below the 20 s default budget
    assert_fails(retried, 3, f"no answer from {url}", "read_timeout")
    assert b"ran past its deadline" not in retried.err


# --- roles: AssumeRole for reading, and credentials for awsCredentialExport ---


def test_assume_role_then_read_reuses_role_credentials(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    name, key = new_secret(secretsmanager)
    env.write_config(profile("p", secret_id=name, role_arn=ROLE_ARN, external_id="ext-1"))
    assert_key(run(["keybroker", "get", "p"], env), key)
    assert run(["keybroker", "cache", "clear", "p"], env).code == 0  # the key, not the role
    assert_key(run(["keybroker", "get", "p"], env), key)
    assert aws_proxy.count("AssumeRole") == 1, aws_proxy.operations
    assert aws_proxy.count("GetSecretValue") == 2, aws_proxy.operations
    # --no-cache skips cached logins too (issue 12): a fresh AssumeRole
    assert_key(run(["keybroker", "get", "p", "--no-cache"], env), key)
    assert aws_proxy.count("AssumeRole") == 2, aws_proxy.operations

    aws_proxy.faults["sts.AssumeRole"] = (403, "AccessDenied")
    denied = run(["keybroker-aws", "--secret-id", name, "--role-arn", ROLE_ARN + "-other"], env)
    assert_fails(denied, 4, "access denied: sts:AssumeRole", "trust policy")


def test_role_credentials_output_for_aws_credentials(env: KbEnv, aws_proxy: RecordingProxy) -> None:
    env.write_config(profile("bedrock", role_arn=ROLE_ARN, output="credentials"))
    result = run(["keybroker", "aws-credentials", "bedrock"], env)
    assert result.code == 0, result
    assert result.err == b""
    creds = json.loads(result.out)["Credentials"]
    assert creds["AccessKeyId"].startswith("ASIA"), creds
    assert creds["Expiration"].endswith("Z"), creds
    again = run(["keybroker", "aws-credentials", "bedrock"], env)
    assert again.out == result.out  # cached until near its expiry
    assert aws_proxy.count("AssumeRole") == 1
    assert_nowhere(creds["SecretAccessKey"], result, again, dirs=[env.base])
    assert_nowhere(creds["SessionToken"], result, again, dirs=[env.base])

    helper = run(["keybroker-aws", "--role-arn", ROLE_ARN, "--output", "credentials"], env)
    assert helper.code == 0, helper
    assert json.loads(helper.out)["SessionToken"] == creds["SessionToken"]


def test_concurrent_cold_calls_make_one_fetch(
    env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    name, key = new_secret(secretsmanager)
    env.write_config(profile("p", secret_id=name))
    procs = [
        subprocess.Popen(
            ["keybroker", "get", "p"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for _ in range(6)
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert (proc.returncode, out, err) == (0, key.encode() + b"\n", b"")
    assert aws_proxy.count("GetSecretValue") == 1, aws_proxy.operations


# --- import cost: the module is light, the hit path never loads botocore ---


def test_module_and_hit_path_do_not_import_botocore(
    env: KbEnv, secretsmanager: SecretsManagerClient
) -> None:
    light = subprocess.run(
        [
            python(),
            "-c",
            "import sys, keybroker.sources.aws as a; a.SOURCE.canonical("
            "{'secret_id': 'x'}, {}); print(sorted(m for m in sys.modules "
            "if m.split('.')[0] in ('boto3', 'botocore')))",
        ],
        env=env,
        capture_output=True,
        check=True,
    )
    assert light.stdout == b"[]\n", light

    name, key = new_secret(secretsmanager)
    env.write_config(profile("p", secret_id=name))
    assert_key(run(["keybroker", "get", "p"], env), key)
    hit = run([python(), "-X", "importtime", "-m", "keybroker.cli.entry", "get", "p"], env)
    assert hit.code == 0, hit
    assert hit.out == key.encode() + b"\n"
    assert b"botocore" not in hit.err


# --- in-process: canonical requests, expiry parsing, doctor ---


def test_canonical_fills_defaults_and_env_fallbacks() -> None:
    env = {
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://generic",
        "AWS_PROFILE": "dev",
    }
    flags = {"secret_id": "litellm", "field": "key"}
    canonical = {
        "secret_id": "litellm",
        "field": "key",
        "version_stage": "AWSCURRENT",
        "region": "eu-west-1",
        "endpoint_url": "http://generic",
        "aws_profile": "dev",
    }
    # connect_timeout and external_id are settings the canonical request leaves out
    profile_settings = dict(canonical, connect_timeout=1.0, external_id="x")
    assert SOURCE.canonical(flags, env) == SOURCE.canonical(profile_settings, {}) == canonical
    specific = dict(env, AWS_REGION="us-east-2", AWS_ENDPOINT_URL_SECRETS_MANAGER="http://sm")
    target = Target.of(flags, specific)
    assert (target.region, target.endpoint_url) == ("us-east-2", "http://sm")
    ignored = Target.of(flags, dict(specific, AWS_IGNORE_CONFIGURED_ENDPOINT_URLS="true"))
    assert ignored.endpoint_url is None
    arn = "arn:aws:secretsmanager:ap-south-1:123456789012:secret:litellm-AbCdEf"
    assert Target.of({"secret_id": arn}, specific).region == "ap-south-1"
    pinned = SOURCE.canonical({"secret_id": "s", "version_id": "v1"}, {})
    assert pinned == {"secret_id": "s", "version_id": "v1"}
    assert SOURCE.canonical({"secret_id": "s", "field": "a"}, {}) != SOURCE.canonical(
        {"secret_id": "s", "field": "b"}, {}
    )
    assert SOURCE.describe({"secret_id": "s", "field": "k", "version_stage": "AWSPREVIOUS"}) == (
        "s#k@AWSPREVIOUS"
    )


def test_parse_expiry_forms() -> None:
    assert parse_expiry(1_900_000_000, "w") == 1_900_000_000.0
    assert parse_expiry("1900000000", "w") == 1_900_000_000.0
    assert parse_expiry("2030-01-01T00:00:00Z", "w") == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    assert (
        parse_expiry("2030-01-01T02:00:00+02:00", "w")
        == datetime(2030, 1, 1, tzinfo=UTC).timestamp()
    )
    for bad in ("soon", True, None, [1]):
        with pytest.raises(InvalidSecret):
            parse_expiry(bad, "w")


@pytest.fixture
def in_process_aws(
    monkeypatch: pytest.MonkeyPatch, aws_proxy: RecordingProxy, tmp_path: Path
) -> dict[str, str]:
    """os.environ for botocore in this process (its credential chain reads os.environ)."""
    values = aws_env(aws_proxy.url)
    values["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    values["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    for key in [k for k in os.environ if k.startswith("AWS_")]:
        monkeypatch.delenv(key)
    for key, value in values.items():
        monkeypatch.setenv(key, value)
    return dict(os.environ)


def test_doctor_checks_region_credentials_role_and_describe(
    in_process_aws: dict[str, str],
    aws_proxy: RecordingProxy,
    secretsmanager: SecretsManagerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    name = json_secret(secretsmanager, key=new_key())
    ctx = FetchContext(Deadline(30), in_process_aws)
    checks = SOURCE.doctor(Request("aws", {"secret_id": name, "role_arn": ROLE_ARN}), ctx)
    assert [(c.ok, c.label) for c in checks] == [
        (True, "AWS region"),
        (True, "Secrets Manager endpoint"),
        (True, "AWS credentials (sts:GetCallerIdentity)"),
        (True, "sts:AssumeRole"),
        (True, "secretsmanager:DescribeSecret"),
    ], checks
    assert checks[1].detail == aws_proxy.url
    assert "credentials from env" in checks[2].detail
    assert "AWSCURRENT is version" in checks[4].detail
    assert aws_proxy.count("GetSecretValue") == 0  # doctor never reads the value

    absent = unique_name("absent")
    missing = SOURCE.doctor(Request("aws", {"secret_id": absent}, profile="p"), ctx)
    assert [c.ok for c in missing] == [True, True, True, False], missing
    assert missing[-1].detail == f"secret '{absent}' not found in us-east-1", missing[-1]
    assert "list-secrets" in missing[-1].fix
    stage = SOURCE.doctor(Request("aws", {"secret_id": name, "version_stage": "AWSPENDING"}), ctx)
    assert not stage[-1].ok
    assert "no version" in stage[-1].detail

    monkeypatch.delenv("AWS_REGION")
    no_region = dict(os.environ)
    checks = SOURCE.doctor(
        Request("aws", {"secret_id": name}), FetchContext(Deadline(30), no_region)
    )
    assert [(c.ok, c.label) for c in checks] == [
        (False, "AWS region"),
        (True, "Secrets Manager endpoint"),
    ], checks
    assert "AWS_REGION" in checks[0].fix


def test_revalidate_answers_per_stage_and_pinned_version(
    in_process_aws: dict[str, str], secretsmanager: SecretsManagerClient
) -> None:
    name = unique_name()
    first = secretsmanager.create_secret(Name=name, SecretString=new_key())["VersionId"]
    ctx = FetchContext(Deadline(30), in_process_aws)
    current = Request("aws", {"secret_id": name})
    assert SOURCE.revalidate(current, first, ctx) is True
    old, pending = rotate(secretsmanager, name, new_key())
    assert SOURCE.revalidate(current, first, ctx) is True
    promote(secretsmanager, name, old, pending)
    assert SOURCE.revalidate(current, first, ctx) is False
    assert SOURCE.revalidate(current, pending, ctx) is True
    previous = Request("aws", {"secret_id": name, "version_stage": "AWSPREVIOUS"})
    assert SOURCE.revalidate(previous, first, ctx) is True
    pinned = Request("aws", {"secret_id": name, "version_id": first})
    assert SOURCE.revalidate(pinned, first, ctx) is True
    assert SOURCE.revalidate(current, None, ctx) is None
