"""Issue 12 item 5 (neighbouring gaps) and issue 17's ``exec P sh -c``: each through the real
executable, each failing on the code before the fix.

Where a real provider cannot produce the bad input (an ESC in a device code, ``Infinity`` in
``expires_in``, an http token endpoint under an https issuer), a tiny local HTTP server in the
test stands in for the provider; the thing under test is always the real ``keybroker``.
"""

from __future__ import annotations

import base64
import io
import json
import math
import os
import pwd
import secrets
import ssl
import stat
import subprocess
import sys
import threading
import urllib.parse
from collections.abc import Callable, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from keybroker import output
from keybroker.redact import scrub_quoted
from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.fixtures.users import system_tool
from tests.kb import IN_CI, assert_fails, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX")

KEY = "sk-gap-" + "7Qm2xR9vL4pZ8kW1"
#: python-dotenv's worst cases: expansion, quotes of both kinds, backslashes, a comment sign
NASTY = "sk-$HOME-${HOME}-${X:-y}-'q'-\"d\"-\\-\\'-#c-$"


def file_profile(env: KbEnv, value: str, name: str = "k") -> None:
    (env.base / f"{name}.txt").write_text(value + "\n")
    env.write_config(
        f'[profiles.{name}]\nsource = "file"\n'
        f'path = {json.dumps(str(env.base / f"{name}.txt"))}\n'
    )


# --- a stand-in server: canned answers a real provider will not give ---

#: path → answer(request body, headers) → (status, JSON document or raw text)
Route = Callable[[bytes, Mapping[str, str]], tuple[int, Any]]


class StandIn:
    """A few canned HTTP(S) answers on 127.0.0.1; each request is recorded (path, body)."""

    def __init__(self, routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> None:
        self.routes = routes
        self.requests: list[tuple[str, bytes]] = []
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def _answer(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                path = urllib.parse.urlsplit(self.path).path
                owner.requests.append((path, body))
                route = owner.routes.get(path)
                status, doc = (404, {"error": "not_found"}) if route is None else route(
                    body, dict(self.headers.items()))
                data = doc.encode() if isinstance(doc, str) else json.dumps(doc).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _answer

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        host = "localhost" if tls is not None else "127.0.0.1"
        self.url = f"{scheme}://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stand_in() -> Iterator[Callable[..., StandIn]]:
    servers: list[StandIn] = []

    def start(routes: dict[str, Route], tls: ssl.SSLContext | None = None) -> StandIn:
        servers.append(StandIn(routes, tls))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def fixed(status: int, doc: Any) -> Route:
    return lambda body, headers: (status, doc)


def discovery(server: StandIn, **endpoints: str) -> Route:
    """An OpenID discovery document for ``server`` (endpoints on it unless overridden)."""
    def answer(body: bytes, headers: Mapping[str, str]) -> tuple[int, Any]:
        doc = {"issuer": server.url, "token_endpoint": server.url + "/token",
               "device_authorization_endpoint": server.url + "/device",
               "authorization_endpoint": server.url + "/authorize",
               "jwks_uri": server.url + "/jwks"}
        doc.update(endpoints)
        return 200, doc
    return answer


def oidc_profile(issuer: str, name: str = "o", extra: str = "") -> str:
    return (f'[profiles.{name}]\nsource = "oidc"\nissuer = "{issuer}"\n'
            f'client_id = "kb-client"\nclient_secret_env = "KB_CLIENT_SECRET"\n'
            f'client_auth = "client_secret_post"\n{extra}\n')


# --- a second OS user, for ownership ---


@pytest.fixture
def other_user() -> Iterator[pwd.struct_passwd]:
    """A throwaway system user (root only; in CI a failure if it cannot be created)."""
    useradd = system_tool("useradd")  # /usr/sbin is often off PATH (issue 22)
    if os.geteuid() != 0 or useradd is None:
        if IN_CI:
            pytest.fail("creating a second OS user needs root and useradd in CI")
        pytest.skip("needs root and useradd to create a second OS user")
    name = f"kbtest-{secrets.token_hex(4)}"
    subprocess.run([useradd, "--system", "--no-create-home", "--shell", "/bin/false", name],
                   check=True, capture_output=True)
    try:
        yield pwd.getpwnam(name)
    finally:
        subprocess.run([system_tool("userdel") or "userdel", name], check=False,
                       capture_output=True)


def readable_by(path: Path, user: pwd.struct_passwd) -> bool:
    info = path.stat()
    if info.st_uid == user.pw_uid:
        return True
    if info.st_gid == user.pw_gid and info.st_mode & stat.S_IRGRP:
        return True
    return bool(info.st_mode & stat.S_IROTH)


def assert_not_for(user: pwd.struct_passwd, directory: Path, secret: str) -> None:
    """No file in ``directory`` that ``user`` owns or can read holds ``secret``."""
    for path in directory.iterdir():
        if path.is_file() and not path.is_symlink() and readable_by(path, user):
            assert secret.encode() not in path.read_bytes(), f"{user.pw_name} can read {path}"


# --- 1. ci export never writes into a file it does not own ---


@pytest.mark.parametrize(("fmt", "option"), [("dotenv", "--output"), ("shell", "-o"),
                                             ("json", "--output"),
                                             ("gitlab", "--dotenv-file")])
def test_export_refuses_another_users_world_writable_file(
    kb_env: KbEnv, other_user: pwd.struct_passwd, fmt: str, option: str
) -> None:
    file_profile(kb_env, KEY)
    out = kb_env.base / "out"
    out.mkdir()
    target = out / "ci.env"
    target.write_text("OTHER=kept\n")
    os.chown(target, other_user.pw_uid, other_user.pw_gid)
    target.chmod(0o666)
    result = run(["keybroker", "ci", "export", "k", "--format", fmt, option, str(target)], kb_env)
    assert_fails(result, 2, "belongs to another user", secrets=[KEY])
    assert_not_for(other_user, out, KEY)
    assert target.read_text() == "OTHER=kept\n"


def test_export_replaces_our_own_loose_file_with_a_private_one(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    target = kb_env.base / "ci.env"
    target.write_text("OLD=1\nANTHROPIC_AUTH_TOKEN=old\n")
    target.chmod(0o666)
    reader = os.open(target, os.O_RDONLY)  # someone who opened it before keeps the old file
    try:
        result = run(["keybroker", "ci", "export", "k", "--format", "gitlab",
                      "--dotenv-file", str(target)], kb_env)
        assert result.code == 0, result
        assert os.read(reader, 4096) == b"OLD=1\nANTHROPIC_AUTH_TOKEN=old\n"
    finally:
        os.close(reader)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert target.read_text() == f"OLD=1\nANTHROPIC_AUTH_TOKEN={KEY}\n"  # other lines kept
    assert [p.name for p in kb_env.base.iterdir() if "keybroker-" in p.name] == []


@pytest.mark.parametrize("fmt", ["dotenv", "gitlab"])
def test_export_to_a_symlink_is_a_clear_usage_error(kb_env: KbEnv, fmt: str) -> None:
    file_profile(kb_env, KEY)
    elsewhere = kb_env.base / "elsewhere"
    link = kb_env.base / "ci.env"
    link.symlink_to(elsewhere)
    result = run(["keybroker", "ci", "export", "k", "--format", fmt, "-o", str(link)], kb_env)
    assert_fails(result, 2, "is a symlink", secrets=[KEY])
    assert not elsewhere.exists()
    assert link.is_symlink()


# --- 6. --format dotenv reads back unchanged in python-dotenv ---


def dotenv_read(text: str) -> dict[str, str | None]:
    import dotenv  # noqa: PLC0415

    return dict(dotenv.dotenv_values(stream=io.StringIO(text)))


def test_dotenv_format_round_trips_through_python_dotenv(kb_env: KbEnv) -> None:
    file_profile(kb_env, NASTY)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv"], kb_env)
    assert result.code == 0, result
    assert dotenv_read(result.stdout) == {"ANTHROPIC_AUTH_TOKEN": NASTY}
    # and written to a file, read by load_dotenv's own path reader
    target = kb_env.base / ".env"
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "-o", str(target)],
                 kb_env)
    assert result.code == 0, result
    import dotenv  # noqa: PLC0415

    assert dotenv.dotenv_values(target) == {"ANTHROPIC_AUTH_TOKEN": NASTY}


def test_gitlab_format_stays_plain(kb_env: KbEnv) -> None:
    file_profile(kb_env, NASTY)
    target = kb_env.base / "report.env"
    result = run(["keybroker", "ci", "export", "k", "--format", "gitlab",
                  "--dotenv-file", str(target)], kb_env)
    assert result.code == 0, result
    assert target.read_text() == f"ANTHROPIC_AUTH_TOKEN={NASTY}\n"  # GitLab reads it literally


#: what validate_key lets through: printable ASCII without whitespace
KEY_TEXT = st.text(alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1)


@given(KEY_TEXT)
@settings(max_examples=500)
def test_dotenv_quote_round_trip_property(value: str) -> None:
    assert dotenv_read(output.dotenv([("K", value)])) == {"K": value}


@given(value=KEY_TEXT.filter(lambda v: len(v) >= 8))
@settings(max_examples=12, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_dotenv_round_trip_through_the_executable(kb_env: KbEnv, value: str) -> None:
    file_profile(kb_env, value)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "--no-cache"], kb_env)
    assert result.code == 0, result
    assert dotenv_read(result.stdout) == {"ANTHROPIC_AUTH_TOKEN": value}


# --- 7. exec PROFILE CMD -c … without -- ---


def test_exec_without_double_dash_passes_options_to_the_command(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    result = run(["keybroker", "exec", "k", "sh", "-c", 'printf "hi %s" "$ANTHROPIC_AUTH_TOKEN"'],
                 kb_env)
    assert result.code == 0, result
    assert result.out == f"hi {KEY}".encode()
    # keybroker's options before PROFILE (or before COMMAND), the command's after its name
    result = run(["keybroker", "exec", "--mask", "k", "sh", "-c", 'printf "%s %s" "$0" '
                  '"$ANTHROPIC_AUTH_TOKEN"', "--mask"], kb_env)
    assert result.code == 0, result
    assert result.out == b"--mask ***"


def test_exec_with_double_dash_still_works(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    result = run(["keybroker", "exec", "k", "--var", "T", "--mask", "--", "sh", "-c",
                  'printf "%s" "$T"'], kb_env)
    assert result.code == 0, result
    assert result.out == b"***"
    result = run(["keybroker", "exec", "k", "--bogus", "sh"], kb_env)
    assert result.code == 2, result
    assert b"No such option" in result.err


# --- 5. exec --mask: encoded forms, and a value split across stdout and stderr ---

#: a key whose JSON, URL and base64 forms all differ from it
ODD = 'sk-m/a+s"k\\x~=9Zq'


def test_mask_hides_a_value_split_between_stdout_and_stderr(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    split = ('v=$ANTHROPIC_AUTH_TOKEN; a=${v%????????}; b=${v#"$a"}; '
             'printf "out:%s" "$a"; printf "%s:err" "$b" >&2')
    # as a CI log sees it: both streams into one pipe
    command = " ".join(["exec", "keybroker", "exec", "--mask", "k", "sh", "-c",
                        "'" + split.replace("'", "'\\''") + "'", "2>&1"])
    result = run(["/bin/sh", "-c", command], kb_env)
    assert result.code == 0, result
    assert KEY.encode() not in result.out, result
    assert KEY[:-8].encode() + KEY[-8:].encode() not in result.out
    assert b"***" in result.out, result
    # and apart: *** on the stream where the value began, nothing of its end on stderr
    apart = run(["keybroker", "exec", "--mask", "k", "sh", "-c", split], kb_env)
    assert apart.code == 0, apart
    head, tail = KEY[:-8].encode(), KEY[-8:].encode()
    # stdout's half arrived first (the usual case): it became ***; had stderr's half been
    # read first, the halves came out in the other order, which spells nothing
    assert (apart.out, apart.err) in [(b"out:***", b":err"), (b"out:" + head, tail + b":err")]


def test_mask_hides_encoded_forms(kb_env: KbEnv) -> None:
    file_profile(kb_env, ODD)
    code = ("import base64, json, os, urllib.parse as u\n"
            "v = os.environ['ANTHROPIC_AUTH_TOKEN']\n"
            "b = v.encode()\n"
            "print(json.dumps(v)[1:-1]); print(u.quote(v, safe='')); print(u.quote_plus(v))\n"
            "print(base64.b64encode(b).decode()); print(base64.urlsafe_b64encode(b).decode())\n"
            "print(base64.b64encode(b).decode().rstrip('='))\n"
            "import sys; sys.stderr.write(u.quote_plus(v) + '\\n')\n")
    result = run(["keybroker", "exec", "--mask", "k", sys.executable, "-c", code], kb_env)
    assert result.code == 0, result
    raw = ODD.encode()
    forms = [json.dumps(ODD)[1:-1], urllib.parse.quote(ODD, safe=""),
             urllib.parse.quote_plus(ODD), base64.b64encode(raw).decode(),
             base64.urlsafe_b64encode(raw).decode().rstrip("=")]
    for form in forms:
        assert form.encode() not in result.out + result.err, form
    assert result.out == b"***\n" * 6, result
    assert result.err == b"***\n", result


# --- 2. server strings reach the terminal neutralised ---

ESC_CODE = "AB\x1b[31mCD"
ESC_URI = "http://127.0.0.1:1/device\x1b]0;owned\x07"


def test_login_shows_the_providers_escape_sequences_as_text(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in({})
    server.routes.update({
        "/.well-known/openid-configuration": discovery(server),
        "/device": fixed(200, {"device_code": "dev-code-1234", "user_code": ESC_CODE,
                               "verification_uri": ESC_URI,
                               "verification_uri_complete": ESC_URI + "?c=1",
                               "expires_in": 60, "interval": 1}),
        "/token": fixed(400, {"error": "access_denied",
                              "error_description": "no\x1b[2J way"}),
    })
    kb_env.write_config(oidc_profile(server.url, extra='grant = "device_code"'))
    result = run(["keybroker", "login", "o", "--device"],
                 dict(kb_env, KB_CLIENT_SECRET="client-secret-1"))
    assert result.code == 4, result
    assert b"\x1b" not in result.out + result.err, result
    assert b"AB\\x1b[31mCD" in result.err  # shown, as text
    assert b"\\x1b]0;owned\\x07" in result.err


def aws_stand_in_env(kb_env: KbEnv, url: str, **extra: str) -> dict[str, str]:
    kb_env.write_config('[profiles.a]\nsource = "aws"\nsecret_id = "litellm"\n')
    return dict(kb_env, AWS_ACCESS_KEY_ID="AKIAKBTEST0000000000",
                AWS_SECRET_ACCESS_KEY="kbtest-secret-access-key-0000000000000000",
                AWS_REGION="eu-west-1", AWS_ENDPOINT_URL=url, AWS_EC2_METADATA_DISABLED="true",
                **extra)


def test_print_token_shows_a_servers_escape_sequences_as_text(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    # a Secrets Manager endpoint (endpoint_url may point anywhere) with a hostile VersionId
    answer = {"ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:litellm-AbCdEf",
              "Name": "litellm", "SecretString": KEY, "VersionId": "v1\x1b[2J\x1b]0;x\x07",
              "VersionStages": ["AWSCURRENT"], "CreatedDate": 1700000000}
    server = stand_in({"/": fixed(200, answer)})
    result = run(["keybroker", "print-token", "a"], aws_stand_in_env(kb_env, server.url))
    assert result.code == 0, result
    assert b"\x1b" not in result.out + result.err, result
    assert b"v1\\x1b[2J\\x1b]0;x\\x07" in result.out


# --- 3. scrubbing of encoded forms and of quoted third-party text ---

#: a client secret whose URL-encoded and base64 forms differ from it
CLIENT_SECRET = "cs/Zx+9q=Wm!7Lp~Rt#4"


def all_forms(value: str) -> list[str]:
    raw = value.encode()
    return [value, json.dumps(value)[1:-1], urllib.parse.quote(value, safe=""),
            urllib.parse.quote_plus(value), base64.b64encode(raw).decode(),
            base64.urlsafe_b64encode(raw).decode().rstrip("=")]


def test_oidc_error_description_echoing_the_encoded_client_secret(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    def echo(body: bytes, headers: Mapping[str, str]) -> tuple[int, Any]:
        # the form field as it arrived (URL-encoded), as careless providers echo it
        sent = [p for p in body.decode().split("&") if p.startswith("client_secret=")]
        return 401, {"error": "invalid_client",
                     "error_description": f"bad credentials {sent[0]} for kb-client "
                                          f"(b64 {base64.b64encode(CLIENT_SECRET.encode())!r}); "
                                          f"signature {secrets.token_urlsafe(32)} rejected"}
    server = stand_in({})
    server.routes.update({"/.well-known/openid-configuration": discovery(server),
                          "/token": echo})
    kb_env.write_config(oidc_profile(server.url))
    result = run(["keybroker", "get", "o"], dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET))
    assert_fails(result, 4, "invalid_client", "bad credentials")
    for form in all_forms(CLIENT_SECRET):
        assert form.encode() not in result.err, (form, result)
    assert b"signature *** rejected" in result.err, result
    assert any(b"client_secret=" in body for _, body in server.requests)  # it was sent


def test_failing_command_that_prints_its_token_to_stderr(kb_env: KbEnv) -> None:
    token = "ghp_" + secrets.token_urlsafe(30)
    script = ('echo "error: token $UPSTREAM_TOKEN was refused" >&2; '
              'printf "%s" "$UPSTREAM_TOKEN" | base64 >&2; exit 1')
    kb_env.write_config(f'[profiles.c]\nsource = "command"\nshell = true\n'
                        f'command = {json.dumps(script)}\n')
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
    server = stand_in({"/": fixed(400, {"__type": f"Token{session_token}",
                                        "message": f"session {session_token} invalid"})})
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
    exc = ClientError({"Error": {"Code": "ExpiredToken", "Message": f"token {token} expired"}},
                      "GetSecretValue")
    text = scrub_quoted(str(exc))
    assert token not in text
    assert text == ("An error occurred (ExpiredToken) when calling the GetSecretValue "
                    "operation: token *** expired")


# --- 4. OIDC: https all the way, finite lifetimes, bounded device polling ---


def jwt_with(claims: dict[str, Any]) -> str:
    def part(doc: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(doc).encode()).decode().rstrip("=")
    return f"{part({'alg': 'none'})}.{part(claims)}.c2ln"


def token_answer(body: str) -> Route:
    """A token endpoint answering ``body`` as raw text (NaN and Infinity are not JSON)."""
    return lambda data, headers: (200, body)


@pytest.fixture(scope="module")
def tls_localhost(tmp_path_factory: pytest.TempPathFactory) -> tuple[ssl.SSLContext, Path]:
    """A server context with a self-signed certificate for localhost, and the cert file."""
    import datetime as dt  # noqa: PLC0415

    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    workdir = tmp_path_factory.mktemp("tls")
    cert_file, key_file = workdir / "cert.pem", workdir / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    return context, cert_file


GOOD_TOKEN = json.dumps({"access_token": "at-" + "x" * 30, "token_type": "Bearer",
                         "expires_in": 300})


@pytest.mark.parametrize("key", ["token_endpoint", "device_authorization_endpoint", "jwks_uri"])
def test_https_issuer_naming_an_http_endpoint_is_refused(
    kb_env: KbEnv, stand_in: Callable[..., StandIn],
    tls_localhost: tuple[ssl.SSLContext, Path], key: str,
) -> None:
    context, cert = tls_localhost
    server = stand_in({}, tls=context)
    server.routes.update({
        "/.well-known/openid-configuration": discovery(server, **{key: "http://login.invalid/x"}),
        "/token": token_answer(GOOD_TOKEN),
    })
    kb_env.write_config(oidc_profile(server.url, extra=f"ca_bundle = {json.dumps(str(cert))}"))
    result = run(["keybroker", "get", "o"], dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET))
    assert_fails(result, 2, f"publishes {key} 'http://login.invalid/x', which is not https",
                 secrets=[CLIENT_SECRET])
    assert all(path != "/token" for path, _ in server.requests)  # the secret never left


def test_https_issuer_with_a_loopback_http_endpoint_still_works(
    kb_env: KbEnv, stand_in: Callable[..., StandIn],
    tls_localhost: tuple[ssl.SSLContext, Path],
) -> None:
    context, cert = tls_localhost
    plain = stand_in({"/token": token_answer(GOOD_TOKEN)})
    server = stand_in({}, tls=context)
    server.routes["/.well-known/openid-configuration"] = discovery(
        server, token_endpoint=plain.url + "/token")
    kb_env.write_config(oidc_profile(server.url, extra=f"ca_bundle = {json.dumps(str(cert))}"))
    result = run(["keybroker", "get", "o"], dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET))
    assert result.code == 0, result
    assert result.out == b"at-" + b"x" * 30 + b"\n"


@pytest.mark.parametrize("body", [
    '{"access_token": "at-%s", "expires_in": NaN}',
    '{"access_token": "at-%s", "expires_in": Infinity}',
    '{"access_token": "at-%s", "expires_in": "Infinity"}',
    '{"access_token": "at-%s", "expires_in": -60}',
    '{"access_token": "at-%s", "expires_in": 400000000}',
    '{"access_token": "%s"}',
], ids=["nan", "infinity", "infinity-text", "negative", "13-years", "jwt-exp-infinity"])
def test_impossible_token_lifetimes_are_invalid_values(
    kb_env: KbEnv, stand_in: Callable[..., StandIn], body: str
) -> None:
    # the JWT's claims read {"exp": Infinity}, which Python's json module accepts
    token = jwt_with({"exp": math.inf}) if body == '{"access_token": "%s"}' else "y" * 30
    server = stand_in({"/token": token_answer(body % token)})
    server.routes["/.well-known/openid-configuration"] = discovery(server)
    kb_env.write_config(oidc_profile(server.url))
    env = dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET)
    result = run(["keybroker", "get", "o"], env)
    assert_fails(result, 6, "impossible lifetime", secrets=[token])
    again = run(["keybroker", "get", "o"], env)  # nothing fresh-forever was cached
    assert_fails(again, 6)


def test_device_login_with_an_infinite_interval_still_polls(
    kb_env: KbEnv, stand_in: Callable[..., StandIn]
) -> None:
    server = stand_in({})
    server.routes.update({
        "/.well-known/openid-configuration": discovery(server),
        "/device": lambda body, headers: (200, '{"device_code": "dc-1234", "user_code": "U-1", '
                                               '"verification_uri": "https://example.test/d", '
                                               '"interval": Infinity, "expires_in": Infinity}'),
        "/token": fixed(400, {"error": "access_denied"}),
    })
    kb_env.write_config(oidc_profile(server.url, extra='grant = "device_code"'))
    # before the fix this waited forever (run() fails the test after 45 s)
    result = run(["keybroker", "login", "o", "--device"],
                 dict(kb_env, KB_CLIENT_SECRET=CLIENT_SECRET), timeout=45)
    assert result.code == 4, result
    assert b"the sign-in was declined" in result.err
    assert any(path == "/token" for path, _ in server.requests)


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


def test_export_into_a_directory_others_can_write_is_refused(kb_env: KbEnv) -> None:
    file_profile(kb_env, KEY)
    shared = kb_env.base / "shared"
    shared.mkdir()
    shared.chmod(0o777)  # no sticky bit: anyone could swap the file after it is written
    target = shared / "ci.env"
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "-o", str(target)],
                 kb_env)
    assert_fails(result, 2, "not a safe place for a key file", secrets=[KEY])
    assert list(shared.iterdir()) == []
    shared.chmod(0o1777)  # sticky, like /tmp: others cannot rename or delete our file
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "-o", str(target)],
                 kb_env)
    assert result.code == 0, result
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
