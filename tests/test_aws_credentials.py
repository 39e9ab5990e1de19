"""``keybroker aws-credentials``: awsCredentialExport JSON from a profile holding AWS keys.

Profiles here are ``command`` profiles printing the JSON a Vault AWS engine read or an STS
call gives, so the real cache sits in front of them as it would for the vault/aws sources.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from keybroker import output
from keybroker.errors import InvalidSecret, SecretNotFound
from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.kb import Result, assert_fails, assert_nowhere, run

SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION = "FwoGZXIvYXdzEBYaDH-session-token-example"
VAULT = {"access_key": "AKIAVAULTEXAMPLE", "secret_key": SECRET_KEY, "security_token": SESSION}
#: :data:`VAULT` under the names Claude Code reads (awsCredentialExport).
VAULT_EXPORTED = {
    "AccessKeyId": "AKIAVAULTEXAMPLE",
    "SecretAccessKey": SECRET_KEY,
    "SessionToken": SESSION,
}
STS = {
    "AccessKeyId": "ASIASTSEXAMPLE",
    "SecretAccessKey": SECRET_KEY,
    "SessionToken": SESSION,
    "Expiration": "2030-01-01T00:00:00Z",
}


def command_profile(base: Path, name: str, payload: str) -> str:
    """A profile whose command prints ``payload`` from a file (so the config holds no secret)."""
    path = base / f"{name}.json"
    path.write_text(payload)
    script = f"import sys; sys.stdout.write(open({str(path)!r}).read())"
    return (
        f'[profiles.{name}]\nsource = "command"\n'
        f'command = [{json.dumps(sys.executable)}, "-c", {json.dumps(script)}]\n'
    )


def compact(document: dict[str, Any]) -> str:
    return json.dumps(document, separators=(",", ":"))


def exported(result: Result) -> Any:
    """The credentials ``aws-credentials`` printed, after checking it succeeded silently."""
    assert result.code == 0, result
    assert result.err == b""
    return json.loads(result.out)["Credentials"]


@pytest.fixture
def aws_env(kb_env: KbEnv) -> KbEnv:
    kb_env.write_config(
        command_profile(kb_env.base, "vault", compact(VAULT))
        + command_profile(kb_env.base, "sts", compact(STS))
        + command_profile(kb_env.base, "nested", compact({"Credentials": STS}))
        + command_profile(
            kb_env.base,
            "static",
            compact({"AccessKeyId": "AKIASTATIC", "SecretAccessKey": SECRET_KEY}),
        )
        + command_profile(kb_env.base, "notjson", "sk-plain-key-not-json")
        + command_profile(kb_env.base, "partial", compact({"access_key": "AKIAONLY"}))
    )
    return kb_env


def test_vault_names_become_claude_code_shape(aws_env: KbEnv) -> None:
    result = run(["keybroker", "aws-credentials", "vault"], aws_env)
    assert exported(result) == VAULT_EXPORTED
    assert result.out.endswith(b"}}\n")
    # cached encrypted like any key: the secret parts are in no file in clear
    assert_nowhere(SECRET_KEY, result, dirs=[aws_env.cache_dir, aws_env.data_dir])
    again = run(["keybroker", "aws-credentials", "vault"], aws_env)
    assert again.out == result.out


@pytest.mark.parametrize("profile", ["sts", "nested"])
def test_sts_names_and_expiration_pass_through(aws_env: KbEnv, profile: str) -> None:
    result = run(["keybroker", "aws-credentials", profile], aws_env)
    assert result.code == 0, result
    assert json.loads(result.out) == {"Credentials": STS}
    assert list(json.loads(result.out)["Credentials"]) == [
        "AccessKeyId",
        "SecretAccessKey",
        "SessionToken",
        "Expiration",
    ]


def test_static_credentials_have_no_session_token(aws_env: KbEnv) -> None:
    result = run(["keybroker", "aws-credentials", "static"], aws_env)
    assert json.loads(result.out) == {
        "Credentials": {"AccessKeyId": "AKIASTATIC", "SecretAccessKey": SECRET_KEY}
    }


def test_not_json_is_invalid(aws_env: KbEnv) -> None:
    result = run(["keybroker", "aws-credentials", "notjson"], aws_env)
    assert_fails(result, 6, "not JSON", secrets=["sk-plain-key-not-json"])


def test_missing_field_is_not_found(aws_env: KbEnv) -> None:
    result = run(["keybroker", "aws-credentials", "partial"], aws_env)
    assert_fails(result, 5, "SecretAccessKey or secret_key", secrets=["AKIAONLY"])


def test_expiration_from_cache_expiry_when_secret_has_none() -> None:
    doc, parts = output.aws_credentials(json.dumps(VAULT), 1893456000.0, "profile 'x'")
    assert doc["Credentials"]["Expiration"] == "2030-01-01T00:00:00Z"
    assert parts == [SECRET_KEY, SESSION]


def test_expiration_in_secret_wins_and_epoch_numbers_are_converted() -> None:
    doc, _ = output.aws_credentials(json.dumps(STS), 1.0, "p")
    assert doc["Credentials"]["Expiration"] == "2030-01-01T00:00:00Z"
    epoch = dict(VAULT, expiration=1893456000)
    doc, _ = output.aws_credentials(json.dumps(epoch), None, "p")
    assert doc["Credentials"]["Expiration"] == "2030-01-01T00:00:00Z"


def test_errors_name_fields_not_values() -> None:
    with pytest.raises(InvalidSecret) as not_object:
        output.aws_credentials("[1,2]", None, "p")
    assert "not an object" in not_object.value.message
    with pytest.raises(SecretNotFound) as missing:
        output.aws_credentials(json.dumps({"secret_key": SECRET_KEY}), None, "p")
    assert SECRET_KEY not in missing.value.render()


@pytest.mark.integration
def test_vault_aws_engine_shaped_secret_through_openbao(openbao: OpenBao, kb_env: KbEnv) -> None:
    """A real Vault read with ``field = "*"``: the source returns the data object as JSON."""
    import time  # noqa: PLC0415
    import uuid  # noqa: PLC0415

    path = f"aws-creds-{uuid.uuid4().hex[:8]}"
    expires = int(time.time()) + 7200
    stamp = output.iso8601(expires)
    openbao.kv_put(path, dict(VAULT, expires_at=stamp))
    kb_env.update(VAULT_ADDR=openbao.addr, VAULT_TOKEN=openbao.root_token)
    kb_env.write_config(f'[profiles.bedrock]\nsource = "vault"\npath = "{path}"\nfield = "*"\n')
    result = run(["keybroker", "aws-credentials", "bedrock"], kb_env)
    assert exported(result) == dict(VAULT_EXPORTED, Expiration=stamp)
    assert_nowhere(SECRET_KEY, result, dirs=[kb_env.cache_dir, kb_env.data_dir])
    assert_nowhere(SESSION, result, dirs=[kb_env.cache_dir, kb_env.data_dir])
