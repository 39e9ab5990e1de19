"""Text that servers and commands write reaches the terminal neutralised and scrubbed.

A provider's escape sequences (in a device code, an error description, an AWS VersionId) are
shown as text; a secret a server or a command echoes back, in any encoding, never reaches
stderr, not even under ``--debug`` (issue 12). Stand-ins (tests/fixtures/standin.py) give the
answers a real provider will not.
"""

from __future__ import annotations

import base64
import json
import secrets
import sys
import urllib.parse
from collections.abc import Callable

import pytest

from keybroker.redact import scrub_quoted
from tests.conftest import KbEnv
from tests.fixtures.standin import Reply, Seen, StandIn, device_login_at, oidc_profile
from tests.kb import assert_fails, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX")

KEY = "sk-gap-" + "7Qm2xR9vL4pZ8kW1"


# --- server strings reach the terminal neutralised ---

ESC_CODE = "AB\x1b[31mCD"
ESC_URI = "http://127.0.0.1:1/device\x1b]0;owned\x07"


def test_login_shows_the_providers_escape_sequences_as_text(
    kb_env: KbEnv, oidc_stand_in: Callable[..., StandIn]
) -> None:
    device = {
        "device_code": "dev-code-1234",
        "user_code": ESC_CODE,
        "verification_uri": ESC_URI,
        "verification_uri_complete": ESC_URI + "?c=1",
        "expires_in": 60,
        "interval": 1,
    }
    declined = {"error": "access_denied", "error_description": "no\x1b[2J way"}
    result, _ = device_login_at(
        kb_env, oidc_stand_in, Reply(200, device), Reply(400, declined), "client-secret-1"
    )
    assert result.code == 4, result
    assert b"\x1b" not in result.out + result.err, result
    assert b"AB\\x1b[31mCD" in result.err  # shown, as text
    assert b"\\x1b]0;owned\\x07" in result.err


def aws_stand_in_env(kb_env: KbEnv, url: str, **extra: str) -> dict[str, str]:
    kb_env.write_config('[profiles.a]\nsource = "aws"\nsecret_id = "litellm"\n')
    return dict(
        kb_env,
        AWS_ACCESS_KEY_ID="AKIAKBTEST0000000000",
        AWS_SECRET_ACCESS_KEY="kbtest-secret-access-key-0000000000000000",
        AWS_REGION="eu-west-1",
        AWS_ENDPOINT_URL=url,
        AWS_EC2_METADATA_DISABLED="true",
        **extra,
    )


def test_print_token_shows_a_servers_escape_sequences_as_text(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    # a Secrets Manager endpoint (endpoint_url may point anywhere) with a hostile VersionId
    answer = {
        "ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:litellm-AbCdEf",
        "Name": "litellm",
        "SecretString": KEY,
        "VersionId": "v1\x1b[2J\x1b]0;x\x07",
        "VersionStages": ["AWSCURRENT"],
        "CreatedDate": 1700000000,
    }
    server = stand_in({"/": Reply(200, answer)})
    result = run(["keybroker", "print-token", "a"], aws_stand_in_env(kb_env, server.url))
    assert result.code == 0, result
    assert b"\x1b" not in result.out + result.err, result
    assert b"v1\\x1b[2J\\x1b]0;x\\x07" in result.out


# --- scrubbing of encoded forms and of quoted third-party text ---

#: a client secret whose URL-encoded and base64 forms differ from it
CLIENT_SECRET = "cs/Zx+9q=Wm!7Lp~Rt#4"


def all_forms(value: str) -> list[str]:
    raw = value.encode()
    return [
        value,
        json.dumps(value)[1:-1],
        urllib.parse.quote(value, safe=""),
        urllib.parse.quote_plus(value),
        base64.b64encode(raw).decode(),
        base64.urlsafe_b64encode(raw).decode().rstrip("="),
    ]


def test_oidc_error_description_echoing_the_encoded_client_secret(
    kb_env: KbEnv, oidc_stand_in: Callable[..., StandIn]
) -> None:
    def echo(seen: Seen) -> Reply:
        # the form field as it arrived (URL-encoded), as careless providers echo it
        sent = [p for p in seen.body.decode().split("&") if p.startswith("client_secret=")]
        return Reply(
            401,
            {
                "error": "invalid_client",
                "error_description": f"bad credentials {sent[0]} for kb-client "
                f"(b64 {base64.b64encode(CLIENT_SECRET.encode())!r}); "
                f"signature {secrets.token_urlsafe(32)} rejected",
            },
        )

    server = oidc_stand_in({"/token": echo})
    kb_env.write_config(oidc_profile(server.url))
    result = run(["keybroker", "get", "o"], dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET))
    assert_fails(result, 4, "invalid_client", "bad credentials")
    for form in all_forms(CLIENT_SECRET):
        assert form.encode() not in result.err, (form, result)
    assert b"signature *** rejected" in result.err, result
    assert any(b"client_secret=" in seen.body for seen in server.seen)  # it was sent


def test_failing_command_that_prints_its_token_to_stderr(kb_env: KbEnv) -> None:
    token = "ghp_" + secrets.token_urlsafe(30)
    script = (
        'echo "error: token $UPSTREAM_TOKEN was refused" >&2; '
        'printf "%s" "$UPSTREAM_TOKEN" | base64 >&2; exit 1'
    )
    kb_env.write_config(
        f'[profiles.c]\nsource = "command"\nshell = true\ncommand = {json.dumps(script)}\n'
    )
    result = run(["keybroker", "get", "c"], dict(kb_env, UPSTREAM_TOKEN=token))
    assert_fails(result, 3, "exited with status 1", "was refused")
    for form in all_forms(token):
        assert form.encode() not in result.err, (form, result)


def test_aws_error_code_carrying_the_session_token(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    session_token = "IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(40)
    # moto never echoes a session token; a stand-in endpoint answers with it as the error
    # code and message, as a hostile or broken endpoint_url could
    server = stand_in(
        {
            "/": Reply(
                400,
                {"__type": f"Token{session_token}", "message": f"session {session_token} invalid"},
            )
        }
    )
    env = aws_stand_in_env(kb_env, server.url, AWS_SESSION_TOKEN=session_token)
    result = run(["keybroker", "get", "a"], env)
    assert result.code != 0, result
    assert result.out == b"", result
    for form in all_forms(session_token):
        assert form.encode() not in result.err, (form, result)
    debug = run(["keybroker", "get", "a", "--debug"], env)
    for form in all_forms(session_token):
        assert form.encode() not in debug.err, (form, debug)


def test_scrub_quoted_on_botocores_own_exception_text() -> None:
    """The exact text botocore builds for such an error (what --debug would quote)."""
    from botocore.exceptions import ClientError  # noqa: PLC0415 - the aws extra

    token = "IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(40)
    exc = ClientError(
        {"Error": {"Code": "ExpiredToken", "Message": f"token {token} expired"}}, "GetSecretValue"
    )
    text = scrub_quoted(str(exc))
    assert token not in text
    assert text == (
        "An error occurred (ExpiredToken) when calling the GetSecretValue "
        "operation: token *** expired"
    )
