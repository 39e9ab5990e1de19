"""Hostile and broken servers: what keybroker sends them and how much of their answer it reads.

Stand-ins on 127.0.0.1 (tests/fixtures/standin.py) play a Vault, an OIDC provider and an AWS
endpoint that redirect the token elsewhere, answer JSON nested 100000 deep, or stream
100 MB. The real executables run against them (tests/kb.py): every case ends with its exit
code and one clear line, never a traceback, with the token never arriving where it must not
and memory bounded (the child's max RSS is measured by a wrapper process, so other children
of pytest do not count).
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.conftest import KbEnv
from tests.fixtures.standin import Reply, Seen, StandIn, self_signed
from tests.kb import Result, assert_fails, assert_key, exe, run

TOKEN = "hvs.redirect-victim-token-0123456789"
KEY = "sk-served-by-the-stand-in-0123456789"
DEEP = 100_000
HUGE = 100 * 1024 * 1024
#: A bounded read of a 100 MB answer stays well under this (a whole read took 345 MB).
RSS_LIMIT_KB = 150 * 1024


def kv2(value: str) -> Reply:
    return Reply(200, {"data": {"data": {"key": value}, "metadata": {"version": 1}}})


DEEP_ANSWER = Reply(200, b'{"data":' + b"[" * DEEP + b"]" * DEEP + b"}")


def huge(head: bytes, tail: bytes) -> Iterator[bytes]:
    """100 MB of one JSON string between ``head`` and ``tail``."""
    yield head
    chunk = b"a" * (1024 * 1024)
    for _ in range(HUGE // len(chunk)):
        yield chunk
    yield tail


def huge_answer(seen: Seen) -> Reply:
    """100 MB of one JSON string, close-delimited (no Content-Length to refuse it by)."""
    return Reply(200, huge(b'{"data":{"data":{"key":"', b'"}}}'))


def redirect(location: str) -> Reply:
    return Reply(307, b"", {"Location": location})


def html_page(status: int, page: bytes) -> Reply:
    return Reply(status, page, {"Content-Type": "text/html"})


def measured(args: list[str], env: dict[str, str], timeout: float = 60) -> tuple[Result, int]:
    """Run ``args`` under a wrapper that reports the child's max RSS (KiB) on its last line."""
    wrapper = (
        "import resource, subprocess, sys\n"
        "p = subprocess.run(sys.argv[1:], stdin=subprocess.DEVNULL, capture_output=True)\n"
        "sys.stdout.buffer.write(p.stdout)\n"
        "sys.stderr.buffer.write(p.stderr)\n"
        "rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
        "sys.stderr.write('\\nRSS %d\\n' % rss)\n"
        "sys.exit(p.returncode)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", wrapper, *args],
        env=env,
        capture_output=True,
        timeout=timeout,
        check=False,
    )
    err, _, rss = proc.stderr.rpartition(b"\nRSS ")
    return Result(proc.returncode, proc.stdout, err), int(rss.strip())


def vault_env(kb_env: KbEnv, addr: str) -> dict[str, str]:
    return dict(kb_env, VAULT_ADDR=addr, VAULT_TOKEN=TOKEN, KEYBROKER_TIMEOUT="20")


VAULT_GET = ["keybroker-vault", "--path", "x", "--field", "key", "--no-cache"]


# --- redirects: the token stays with the origin it was meant for ---


def test_vault_token_never_follows_a_redirect_to_another_origin(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    elsewhere = stand_in(kv2(KEY))
    hostile = stand_in(lambda seen: redirect(elsewhere.url + seen.target))
    result = run(VAULT_GET, vault_env(kb_env, hostile.url))
    assert_fails(
        result,
        3,
        secrets=[TOKEN],
        exactly=(
            f"keybroker: vault: {hostile.url}: redirected to another origin ({elsewhere.url}); "
            "refused, nothing was sent there; point the address at the server itself (the active "
            "node, or the load balancer in front of all nodes), not at one that redirects\n"
        ),
    )
    assert hostile.paths == ["/v1/secret/data/x"]
    assert elsewhere.seen == []  # the token never left for the other origin


def test_vault_same_origin_redirect_is_followed(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(
        {"/v1/secret/data/x": redirect("/v1/secret/data/moved"), "/v1/secret/data/moved": kv2(KEY)}
    )
    assert_key(run(VAULT_GET, vault_env(kb_env, server.url)), KEY)
    assert server.paths == ["/v1/secret/data/x", "/v1/secret/data/moved"]
    assert all(seen.headers.get("X-Vault-Token") == TOKEN for seen in server.seen)


# --- answers bounded in depth and size ---


def test_vault_answer_nested_100000_deep_is_exit_6(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(DEEP_ANSWER)
    result = run(VAULT_GET, vault_env(kb_env, server.url))
    assert_fails(
        result, 6, "the answer's JSON nests deeper than 64 levels; refused", secrets=[TOKEN]
    )
    assert b"RecursionError" not in result.err


@pytest.mark.serial  # a time bound
def test_vault_answer_of_100_mb_is_exit_6_quickly_with_bounded_memory(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(huge_answer)
    began = time.monotonic()
    result, rss_kb = measured([exe(VAULT_GET[0]), *VAULT_GET[1:]], vault_env(kb_env, server.url))
    took = time.monotonic() - began
    assert_fails(result, 6, "the answer is larger than 1024 KiB; refused", secrets=[TOKEN])
    assert rss_kb < RSS_LIMIT_KB, f"max RSS {rss_kb} KiB"
    assert took < 10, took


@pytest.mark.serial  # a time bound
def test_vault_declared_length_over_the_bound_is_refused_before_reading(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    # "{" and then nothing: a reader that waited would time out
    server = stand_in(Reply(200, b"{", {"Content-Length": str(HUGE)}))
    began = time.monotonic()
    result = run(VAULT_GET, vault_env(kb_env, server.url))
    assert_fails(result, 6, "larger than 1024 KiB")
    assert time.monotonic() - began < 10


def oidc_env(kb_env: KbEnv, issuer: str) -> dict[str, str]:
    kb_env.write_config(
        f'[profiles.gw]\nsource = "oidc"\nissuer = "{issuer}"\nclient_id = "c"\n'
        'client_secret_env = "GW_SECRET"\n'
    )
    return dict(kb_env, GW_SECRET="oidc-client-secret-0123456789", KEYBROKER_TIMEOUT="20")


def test_oidc_discovery_nested_100000_deep_is_exit_6(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(DEEP_ANSWER)
    result = run(["keybroker", "get", "gw", "--no-cache"], oidc_env(kb_env, server.url))
    assert_fails(
        result,
        6,
        f"oidc: discovery for {server.url}: the answer's JSON nests deeper",
        secrets=["oidc-client-secret-0123456789"],
    )


def test_oidc_token_answer_of_100_mb_is_exit_6_with_bounded_memory(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    def provider(seen: Seen) -> Reply:
        if seen.path.startswith("/.well-known/"):
            issuer = f"http://{seen.headers['Host']}"
            return Reply(200, {"issuer": issuer, "token_endpoint": issuer + "/token"})
        return huge_answer(seen)

    server = stand_in(provider)
    result, rss_kb = measured(
        [exe("keybroker"), "get", "gw", "--no-cache"], oidc_env(kb_env, server.url)
    )
    assert_fails(
        result,
        6,
        "token request: the answer is larger than 1024 KiB",
        secrets=["oidc-client-secret-0123456789"],
    )
    assert rss_kb < RSS_LIMIT_KB, f"max RSS {rss_kb} KiB"


def aws_env(kb_env: KbEnv, endpoint: str) -> dict[str, str]:
    return dict(
        kb_env,
        AWS_ACCESS_KEY_ID="AKIATESTTESTTESTTEST",
        AWS_SECRET_ACCESS_KEY="aws-secret-never-shown-0123456789",
        AWS_REGION="us-east-1",
        KEYBROKER_TIMEOUT="20",
    )


AWS_GET = ["keybroker-aws", "--secret-id", "s", "--no-cache"]


def test_aws_answer_nested_100000_deep_is_exit_6(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(DEEP_ANSWER)
    result = run([*AWS_GET, "--endpoint-url", server.url], aws_env(kb_env, server.url))
    assert_fails(
        result,
        6,
        "the answer's JSON nests deeper than 64 levels",
        secrets=["aws-secret-never-shown-0123456789"],
    )


def test_aws_answer_of_100_mb_is_exit_6_with_bounded_memory(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(
        lambda seen: Reply(
            200,
            huge(b'{"Name":"s","SecretString":"', b'"}'),
            {"Content-Type": "application/x-amz-json-1.1"},
        )
    )
    result, rss_kb = measured(
        [exe(AWS_GET[0]), *AWS_GET[1:], "--endpoint-url", server.url], aws_env(kb_env, server.url)
    )
    assert_fails(
        result,
        6,
        "the answer is larger than 1024 KiB",
        secrets=["aws-secret-never-shown-0123456789"],
    )
    assert rss_kb < RSS_LIMIT_KB, f"max RSS {rss_kb} KiB"


def test_a_secret_string_nested_100000_deep_is_exit_6(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    """The secret itself (a JSON SecretString, read for its field) nests absurdly deep."""
    inner = "[" * 5000 + "]" * 5000
    server = stand_in(Reply(200, {"Name": "s", "SecretString": '{"key": ' + inner + "}"}))
    result = run(
        [*AWS_GET, "--endpoint-url", server.url, "--field", "key"], aws_env(kb_env, server.url)
    )
    assert_fails(result, 6, "the secret's JSON: the answer's JSON nests deeper")


def test_origins_compare_scheme_host_and_port() -> None:
    """The redirect rule: a downgrade (https → http) on the same host is another origin."""
    from keybroker.sources.httpsession import origin  # noqa: PLC0415

    assert origin("https://Vault.example:443/v1/a") == origin("https://vault.example/v1/b")
    assert origin("https://vault.example/v1/a") != origin("http://vault.example/v1/a")
    assert origin("https://vault.example:8200/") != origin("https://vault.example:8201/")
    assert origin("https://vault.example/") != origin("https://vault.example.evil/")


# --- TLS: VAULT_SKIP_VERIFY read as Vault reads it; a plain-HTTP server named as such ---


@pytest.fixture
def tls_stand_in(tmp_path: Path, stand_in: Callable[..., StandIn]) -> StandIn:
    """A Vault stand-in behind a self-signed certificate, serving KEY to anyone."""
    context, _ = self_signed(tmp_path)
    return stand_in(kv2(KEY), tls=context)


@pytest.mark.parametrize("value", ["FALSE", "f", "F", "0", "false", "False", ""])
def test_skip_verify_false_in_any_spelling_verifies_the_certificate(
    kb_env: KbEnv, tls_stand_in: StandIn, value: str
) -> None:
    env = dict(vault_env(kb_env, tls_stand_in.url), VAULT_SKIP_VERIFY=value)
    result = run(VAULT_GET, env)
    assert_fails(
        result,
        3,
        f"vault: {tls_stand_in.url}: TLS verification failed",
        "set ca_cert (or VAULT_CACERT)",
        secrets=[TOKEN],
    )
    assert tls_stand_in.seen == []  # the handshake failed: the token never went out


@pytest.mark.parametrize("value", ["TRUE", "t", "1", "True"])
def test_skip_verify_true_in_any_spelling_skips_it(
    kb_env: KbEnv, tls_stand_in: StandIn, value: str
) -> None:
    env = dict(vault_env(kb_env, tls_stand_in.url), VAULT_SKIP_VERIFY=value)
    result = run(VAULT_GET, env)
    assert_key(result, KEY)
    assert result.err == b""  # asked for explicitly: no urllib3 warning on the helper's stderr


@pytest.mark.parametrize("value", ["no", "off", "yes", "on", " true", "2", "FaLsE"])
def test_skip_verify_unknown_value_is_a_config_error_naming_it(
    kb_env: KbEnv, tls_stand_in: StandIn, value: str
) -> None:
    for name in ("VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"):
        env = dict(vault_env(kb_env, tls_stand_in.url), **{name: value})
        result = run(VAULT_GET, env)
        assert_fails(
            result,
            2,
            exactly=(
                f"keybroker: vault: {name}={value!r} is not a boolean; set {name} to true or false "
                "(as Vault reads it: 1, t, true, 0, f, false), or unset it\n"
            ),
        )
    assert tls_stand_in.seen == []


def test_https_address_of_a_plain_http_server_says_so(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(kv2(KEY))
    addr = server.url.replace("http://", "https://")
    result = run(VAULT_GET, vault_env(kb_env, addr))
    assert_fails(
        result,
        3,
        secrets=[TOKEN],
        exactly=(
            f"keybroker: vault: {addr}: the server answered plain HTTP, not TLS, while reading "
            "secret/data/x; use an http:// address, or check the port (https is usually on "
            "another one)\n"
        ),
    )
    debug = run([*VAULT_GET, "--debug"], vault_env(kb_env, addr))
    assert debug.code == 3
    assert b"the server answered plain HTTP, not TLS, while reading secret/data/x (SSL: " in (
        debug.err
    ), debug  # OpenSSL's own reason, under --debug


def test_a_server_that_is_not_vault_is_named_as_such(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(html_page(404, b"<!doctype html><title>Not Found</title><h1>Not Found</h1>"))
    result = run(VAULT_GET, vault_env(kb_env, server.url))
    assert_fails(
        result,
        2,
        secrets=[TOKEN],
        exactly=(
            f"keybroker: vault: {server.url} is not a Vault server ({server.url}/v1/sys/health "
            "answered HTTP 404 without Vault's health JSON); point addr (or VAULT_ADDR) at the "
            "Vault/OpenBao server, e.g. https://vault.example.com:8200 (no path after the port)\n"
        ),
    )

    html = stand_in(html_page(200, b"<!doctype html><title>Welcome</title>"))
    assert_fails(
        run(VAULT_GET, vault_env(kb_env, html.url)),
        2,
        f"{html.url} is not a Vault server",
        secrets=[TOKEN],
    )
    kb_env.write_config('[profiles.x]\nsource = "vault"\npath = "x"\nfield = "key"\n')
    doctor = run(["keybroker", "doctor", "x"], vault_env(kb_env, server.url))
    assert doctor.code != 0
    assert f"✗ profile 'x' address: {server.url} is not a Vault server (" in doctor.stdout, doctor


def test_addr_ending_in_v1_is_a_config_error_with_the_fix(kb_env: KbEnv) -> None:
    for addr in ("http://127.0.0.1:8200/v1", "https://vault.example.com/v1/"):
        result = run(VAULT_GET, vault_env(kb_env, addr))
        bare = addr.rstrip("/")[:-3]
        assert_fails(
            result,
            2,
            exactly=(
                f"keybroker: vault: addr {addr.rstrip('/')!r} ends in /v1; the API prefix is added "
                f"by keybroker; set addr (or VAULT_ADDR) to {bare!r}\n"
            ),
        )


def test_https_issuer_of_a_plain_http_server_says_so(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in(Reply(200, b"{}"))
    issuer = server.url.replace("http://", "https://")
    result = run(["keybroker", "get", "gw", "--no-cache"], oidc_env(kb_env, issuer))
    assert_fails(
        result,
        3,
        secrets=["oidc-client-secret-0123456789"],
        exactly=(
            f"keybroker: oidc: discovery for {issuer}: {issuer} answered plain HTTP, not TLS; "
            "check the issuer's scheme and port\n"
        ),
    )
