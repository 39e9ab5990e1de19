"""What an OIDC provider (or a Vault entry) answers is checked: https all the way, finite
lifetimes, bounded device polling.

An https issuer naming an http endpoint is refused before the client secret leaves (a loopback
http endpoint is still fine); a token lifetime that is NaN, infinite, negative or absurd is an
invalid value and nothing is cached; a device flow asking for an infinite polling interval
still polls; a Vault ``expires_at`` that is not finite is exit 6 (issue 12). Stand-ins
(tests/fixtures/standin.py) give the answers a real provider will not.
"""

from __future__ import annotations

import base64
import json
import math
import secrets
import ssl
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.fixtures.standin import Reply, StandIn, device_login_at, oidc_profile, self_signed
from tests.kb import assert_fails, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX")

KEY = "sk-gap-" + "7Qm2xR9vL4pZ8kW1"
#: a client secret whose URL-encoded and base64 forms differ from it
CLIENT_SECRET = "cs/Zx+9q=Wm!7Lp~Rt#4"


# --- OIDC: https all the way, finite lifetimes, bounded device polling ---


def jwt_with(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")

    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


@pytest.fixture(scope="module")
def tls_localhost(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context with a self-signed certificate for localhost, and the cert file."""
    return self_signed(tmp_path_factory.mktemp("tls"))


GOOD_TOKEN = json.dumps(
    {"access_token": "at-" + "x" * 30, "token_type": "Bearer", "expires_in": 300}
)


@pytest.mark.parametrize("key", ["token_endpoint", "device_authorization_endpoint", "jwks_uri"])
def test_https_issuer_naming_an_http_endpoint_is_refused(
    kb_env: KbEnv,
    oidc_stand_in: Callable[..., StandIn],
    tls_localhost: tuple[ssl.SSLContext, Path],
    key: str,
) -> None:
    context, cert = tls_localhost
    server = oidc_stand_in(
        {"/token": Reply(200, GOOD_TOKEN)}, context, **{key: "http://login.invalid/x"}
    )
    kb_env.write_config(oidc_profile(server.url, extra=f"ca_bundle = {json.dumps(str(cert))}"))
    result = run(["keybroker", "get", "o"], dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET))
    assert_fails(
        result,
        2,
        f"publishes {key} 'http://login.invalid/x', which is not https",
        secrets=[CLIENT_SECRET],
    )
    assert "/token" not in server.paths  # the secret never left


def test_https_issuer_with_a_loopback_http_endpoint_still_works(
    kb_env: KbEnv,
    stand_in: Callable[..., StandIn],
    oidc_stand_in: Callable[..., StandIn],
    tls_localhost: tuple[ssl.SSLContext, Path],
) -> None:
    context, cert = tls_localhost
    plain = stand_in({"/token": Reply(200, GOOD_TOKEN)})
    server = oidc_stand_in({}, context, token_endpoint=plain.url + "/token")
    kb_env.write_config(oidc_profile(server.url, extra=f"ca_bundle = {json.dumps(str(cert))}"))
    result = run(["keybroker", "get", "o"], dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET))
    assert result.code == 0, result
    assert result.out == b"at-" + b"x" * 30 + b"\n"


@pytest.mark.parametrize(
    "body",
    [
        '{"access_token": "at-%s", "expires_in": NaN}',
        '{"access_token": "at-%s", "expires_in": Infinity}',
        '{"access_token": "at-%s", "expires_in": "Infinity"}',
        '{"access_token": "at-%s", "expires_in": -60}',
        '{"access_token": "at-%s", "expires_in": 400000000}',
        '{"access_token": "%s"}',
    ],
    ids=["nan", "infinity", "infinity-text", "negative", "13-years", "jwt-exp-infinity"],
)
def test_impossible_token_lifetimes_are_invalid_values(
    kb_env: KbEnv, oidc_stand_in: Callable[..., StandIn], body: str
) -> None:
    # the JWT's claims read {"exp": Infinity}, which Python's json module accepts
    token = jwt_with({"exp": math.inf}) if body == '{"access_token": "%s"}' else "y" * 30
    server = oidc_stand_in({"/token": Reply(200, body % token)})
    kb_env.write_config(oidc_profile(server.url))
    env = dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET)
    result = run(["keybroker", "get", "o"], env)
    assert_fails(result, 6, "impossible lifetime", secrets=[token])
    again = run(["keybroker", "get", "o"], env)  # nothing fresh-forever was cached
    assert_fails(again, 6)


def test_device_login_with_an_infinite_interval_still_polls(
    kb_env: KbEnv, oidc_stand_in: Callable[..., StandIn]
) -> None:
    device = Reply(
        200,
        '{"device_code": "dc-1234", "user_code": "U-1", '
        '"verification_uri": "https://example.test/d", '
        '"interval": Infinity, "expires_in": Infinity}',
    )
    declined = Reply(400, {"error": "access_denied"})
    # before the fix this waited forever (run() fails the test after 45 s)
    result, server = device_login_at(
        kb_env, oidc_stand_in, device, declined, CLIENT_SECRET, timeout=45
    )
    assert result.code == 4, result
    assert b"the sign-in was declined" in result.err
    assert "/token" in server.paths


@pytest.mark.integration
@pytest.mark.parametrize("when", ["inf", "-Infinity", "nan", "NaN"])
def test_vault_expires_at_that_is_not_finite_is_exit_6(
    openbao: OpenBao, kb_env: KbEnv, when: str
) -> None:
    path = f"gap-{secrets.token_hex(5)}"
    openbao.kv_put(path, {"key": KEY, "expires_at": when})
    kb_env.write_config(f'[profiles.v]\nsource = "vault"\npath = "{path}"\nfield = "key"\n')
    env = dict(kb_env, VAULT_ADDR=openbao.addr, VAULT_TOKEN=openbao.root_token)
    result = run(["keybroker", "get", "v"], env)
    assert_fails(result, 6, "field 'expires_at'", "is not a time", secrets=[KEY])
