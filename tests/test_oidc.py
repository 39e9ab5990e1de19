"""The oidc source and ``keybroker login`` against a real OpenID Provider (oidc-provider 9).

Every test runs the real executables in subprocesses (as Claude Code does) and checks
stdout, stderr and the exit code byte for byte where they are known in advance. Tokens and
secrets are looked for in every byte the processes wrote and in the cache directories.
"""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from keybroker.cache.store import Cache, CacheAux
from keybroker.model import Deadline, Request
from keybroker.sources.base import FetchContext
from keybroker.sources.oidc import SOURCE
from keybroker.sources.oidc.tokens import login_key
from tests.conftest import KbEnv
from tests.fixtures.oidc_provider import CI_AUDIENCE, GITLAB_ISSUER, OidcProvider
from tests.fixtures.users import OsUser
from tests.kb import Result, assert_fails, assert_nowhere, exe, run

pytestmark = pytest.mark.integration

SIGN_IN = Path(__file__).resolve().parent / "oidc" / "sign_in.py"


# --- helpers ---


def verify(provider: OidcProvider, token: str) -> dict[str, Any]:
    """The token's claims, verified with the provider's published JWKS (as a gateway would)."""
    keys = jwt.PyJWKSet.from_dict(provider.jwks())
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in keys.keys if k.key_id == kid)
    return dict(
        jwt.decode(
            token, key.key, algorithms=["RS256"], audience=provider.resource, issuer=provider.issuer
        )
    )


def token_of(result: Result) -> str:
    """The success contract with an unknown token: one line, exit 0, nothing on stderr."""
    assert result.code == 0, result
    assert result.err == b"", result
    assert result.out.endswith(b"\n"), result
    assert result.out.count(b"\n") == 1, result
    token = result.stdout[:-1]
    assert re.fullmatch(r"[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+", token), result
    return token


def dirs(env: KbEnv) -> list[Path]:
    return [env.cache_dir, env.data_dir, env.config_path.parent]


def cc_profile(provider: OidcProvider, name: str = "gw", extra: str = "") -> str:
    return f"""
[profiles.{name}]
source = "oidc"
issuer = "{provider.issuer}"
client_id = "cc-client"
client_secret_env = "GW_CLIENT_SECRET"
scope = "api:read"
resource = "{provider.resource}"
{extra}
"""


def device_profile(
    provider: OidcProvider,
    name: str = "me",
    client: str = "device-client",
    grant: str = "device_code",
) -> str:
    return f"""
[profiles.{name}]
source = "oidc"
issuer = "{provider.issuer}"
client_id = "{client}"
grant = "{grant}"
scope = "openid offline_access api:read"
resource = "{provider.resource}"
"""


def stored_refresh_token(env: KbEnv, provider: OidcProvider, client: str) -> str | None:
    """Read the stored login the way keybroker does (test-side, to replay it on purpose)."""
    aux = CacheAux(Cache.open(env), "oidc")
    entry = aux.get(login_key(provider.issuer, client, "openid offline_access api:read"))
    return None if entry is None else entry.value


def device_login(env: KbEnv, profile: str) -> tuple[Result, str]:
    """Run ``keybroker login PROFILE --device`` and approve it in the provider's forms."""
    proc = subprocess.Popen(
        [exe("keybroker"), "login", profile, "--device"],
        env=dict(env),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    assert proc.stdout is not None
    assert proc.stdin is not None
    lines: list[bytes] = []
    complete = None
    for _ in range(3):
        line = proc.stderr.readline()
        lines.append(line)
        match = re.match(rb"keybroker: \(or open (\S+)\)\n", line)
        if match:
            complete = match.group(1).decode()
    assert complete is not None, lines
    signer = subprocess.run(
        [sys.executable, str(SIGN_IN), complete], capture_output=True, timeout=120, check=False
    )
    assert signer.returncode == 0, signer
    # read through the same buffered objects: communicate() would skip what readline buffered
    proc.wait(timeout=120)
    out, rest = proc.stdout.read(), proc.stderr.read()
    proc.stdin.close()
    return Result(proc.returncode, out, b"".join(lines) + rest), complete


def signed_in(env: KbEnv, provider: OidcProvider, profile: str) -> Result:
    """A device_code profile ``profile`` (the config's only one), signed in by
    :func:`device_login`; returns the login's result."""
    env.write_config(device_profile(provider, profile))
    login, _ = device_login(env, profile)
    assert login.code == 0, login
    return login


# --- client_credentials ---


def test_client_credentials_standalone_gives_a_jwt_that_verifies(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    kb_env["GW_CLIENT_SECRET"] = oidc_provider.cc_secret
    result = run(
        [
            "keybroker-oidc",
            "--issuer",
            oidc_provider.issuer,
            "--client-id",
            "cc-client",
            "--client-secret-env",
            "GW_CLIENT_SECRET",
            "--scope",
            "api:read",
            "--resource",
            oidc_provider.resource,
        ],
        kb_env,
    )
    token = token_of(result)
    claims = verify(oidc_provider, token)
    assert claims["client_id"] == "cc-client"
    assert claims["scope"] == "api:read"
    assert claims["exp"] - claims["iat"] == 3600
    assert_nowhere(oidc_provider.cc_secret, result, dirs=dirs(kb_env))
    assert_nowhere(token, dirs=dirs(kb_env))  # cached, but only encrypted


def test_profile_and_standalone_share_one_cache_entry(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    # grant, token and client_auth left to their defaults on one side, spelled out on the other
    kb_env.write_config(cc_profile(oidc_provider, "shared"))
    kb_env["GW_CLIENT_SECRET"] = oidc_provider.cc_secret
    before = oidc_provider.count("cc-client", "success client_credentials")
    first = run(["keybroker", "get", "shared"], kb_env)
    token = token_of(first)
    standalone = run(
        [
            "keybroker-oidc",
            "--issuer",
            oidc_provider.issuer + "/",
            "--client-id",
            "cc-client",
            "--client-secret-env",
            "GW_CLIENT_SECRET",
            "--scope",
            " api:read ",
            "--resource",
            oidc_provider.resource,
            "--grant",
            "client_credentials",
            "--token",
            "access_token",
            "--client-auth",
            "client_secret_basic",
        ],
        kb_env,
    )
    assert standalone.out == first.out, standalone
    assert standalone.err == b""
    report = run(["keybroker", "print-token", "shared", "--json"], kb_env)
    assert report.code == 0, report
    assert '"state": "hit"' in report.stdout
    assert token not in report.stdout  # redacted
    assert oidc_provider.count("cc-client", "success client_credentials") == before + 1


def test_client_secret_from_file(kb_env: KbEnv, oidc_provider: OidcProvider) -> None:
    secret_file = kb_env.base / "client-secret"
    secret_file.write_text(oidc_provider.cc_secret + "\n")
    kb_env.write_config(
        cc_profile(oidc_provider).replace(
            'client_secret_env = "GW_CLIENT_SECRET"', f'client_secret_file = "{secret_file}"'
        )
    )
    token = token_of(run(["keybroker", "get", "gw", "--no-cache"], kb_env))
    assert verify(oidc_provider, token)["client_id"] == "cc-client"


def test_private_key_jwt_client(kb_env: KbEnv, oidc_provider: OidcProvider) -> None:
    kb_env.write_config(f"""
[profiles.signed]
source = "oidc"
issuer = "{oidc_provider.issuer}"
client_id = "jwt-client"
private_key_file = "{oidc_provider.jwt_client_key_file}"
scope = "api:write"
""")
    token = token_of(run(["keybroker", "get", "signed"], kb_env))
    claims = verify(oidc_provider, token)  # the default resource applies
    assert claims["client_id"] == "jwt-client"
    assert claims["scope"] == "api:write"


# --- issuer and network errors ---


def test_bad_issuer_exits_2(kb_env: KbEnv, oidc_provider: OidcProvider) -> None:
    kb_env["GW_CLIENT_SECRET"] = oidc_provider.cc_secret
    wrong = oidc_provider.issuer + "/realms/nope"
    result = run(
        [
            "keybroker-oidc",
            "--issuer",
            wrong,
            "--client-id",
            "cc-client",
            "--client-secret-env",
            "GW_CLIENT_SECRET",
        ],
        kb_env,
    )
    assert_fails(
        result,
        2,
        exactly=(
            f"keybroker: oidc: {wrong} is not an OpenID Connect issuer ({wrong}/.well-known/"
            "openid-configuration answered HTTP 404); check the issuer setting: it is the URL "
            "before /.well-known/openid-configuration\n"
        ),
    )


def test_plain_http_issuer_is_refused(kb_env: KbEnv) -> None:
    result = run(
        ["keybroker-oidc", "--issuer", "http://login.example.com", "--client-id", "x"], kb_env
    )
    assert_fails(result, 2)
    assert result.err == (
        b"keybroker: oidc: issuer 'http://login.example.com' uses http; tokens must only travel "
        b"over https; use the https issuer URL\n"
    )


def test_unreachable_provider_exits_3(kb_env: KbEnv) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = run(
        ["keybroker-oidc", "--issuer", f"http://127.0.0.1:{port}", "--client-id", "x"], kb_env
    )
    assert_fails(
        result,
        3,
        exactly=(
            f"keybroker: oidc: discovery for http://127.0.0.1:{port}: cannot connect to "
            f"http://127.0.0.1:{port}; check the network, proxy settings and the issuer URL\n"
        ),
    )


# --- token exchange ---


def exchange_profile(provider: OidcProvider, extra: str) -> str:
    return f"""
[profiles.ci]
source = "oidc"
issuer = "{provider.issuer}"
client_id = "exchange-client"
client_secret_env = "EXCHANGE_SECRET"
grant = "token_exchange"
resource = "{provider.resource}"
{extra}
"""


def test_token_exchange_with_a_github_actions_id_token(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    kb_env.write_config(
        exchange_profile(
            oidc_provider, f'subject_token = "github"\nsubject_audience = "{CI_AUDIENCE}"'
        )
    )
    kb_env.update(oidc_provider.github.env(), EXCHANGE_SECRET=oidc_provider.exchange_secret)
    result = run(["keybroker", "get", "ci"], kb_env)
    token = token_of(result)
    claims = verify(oidc_provider, token)
    assert claims["client_id"] == "exchange-client"
    assert oidc_provider.github.requests[-1] == CI_AUDIENCE
    assert_nowhere(oidc_provider.github.request_token, result, dirs=dirs(kb_env))
    assert_nowhere(oidc_provider.exchange_secret, result, dirs=dirs(kb_env))


def test_token_exchange_with_a_gitlab_id_token_variable(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    kb_env.write_config(exchange_profile(oidc_provider, 'subject_token = "gitlab"'))
    kb_env["KEYBROKER_ID_TOKEN"] = oidc_provider.github.mint(CI_AUDIENCE, issuer=GITLAB_ISSUER)
    kb_env["EXCHANGE_SECRET"] = oidc_provider.exchange_secret
    token = token_of(run(["keybroker", "get", "ci"], kb_env))
    assert verify(oidc_provider, token)["client_id"] == "exchange-client"


def test_token_exchange_subject_for_another_audience_is_denied(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    subject_file = kb_env.base / "id-token"
    subject = oidc_provider.github.mint("https://someone-else.example")
    subject_file.write_text(subject)
    kb_env.write_config(
        exchange_profile(
            oidc_provider, f'subject_token = "file"\nsubject_token_file = "{subject_file}"'
        )
    )
    kb_env["EXCHANGE_SECRET"] = oidc_provider.exchange_secret
    result = run(["keybroker", "get", "ci"], kb_env)
    assert_fails(result, 4, secrets=[subject, oidc_provider.exchange_secret])
    assert result.err == (
        b"keybroker: profile 'ci': the provider rejected the subject token: invalid_grant "
        b"(grant request is invalid); check the provider's "
        b"trust policy for this CI job (issuer, audience, subject) and subject_audience\n"
    )


# --- profiles refused before any token, each with the one line that says why ---


@dataclass(frozen=True)
class Refusal:
    """A profile that ``argv`` refuses: the exit code and the whole of stderr (``{issuer}``:
    the provider's), the profile's config and the environment it runs with (both from the
    provider). By default the client_credentials profile ``gw`` of :func:`cc_profile`."""

    code: int
    says: str
    env: Callable[[OidcProvider], dict[str, str]] = lambda provider: {}
    profile: Callable[[OidcProvider], str] = cc_profile
    argv: tuple[str, ...] = ("keybroker", "get", "gw")


REFUSALS = {
    "wrong_client_secret_exits_4_without_the_secret": Refusal(
        4,
        "keybroker: profile 'gw': the provider refused the client: invalid_client "
        "(client authentication failed); check client_id 'cc-client', the client secret in "
        "GW_CLIENT_SECRET, and that the grant is allowed\n",
        env=lambda provider: {"GW_CLIENT_SECRET": "not-the-secret-" + provider.cc_secret[::-1]},
    ),
    "missing_secret_variable_is_a_usage_error": Refusal(
        2,
        "keybroker: profile 'gw': the client secret variable GW_CLIENT_SECRET is not set; "
        "export GW_CLIENT_SECRET, or set client_secret_file / client_secret_keychain\n",
    ),
    "id_token_on_request_without_one_is_exit_6": Refusal(
        6,
        "keybroker: profile 'gw': the token response has no id_token; "
        "add 'openid' to scope so the provider returns an ID token\n",
        env=lambda provider: {"GW_CLIENT_SECRET": provider.cc_secret},
        profile=lambda provider: cc_profile(provider, extra='token = "id_token"'),
    ),
    "login_refuses_a_profile_that_needs_none": Refusal(
        2,
        "keybroker: profile 'gw' uses grant 'client_credentials', which needs no login; "
        "run: keybroker get gw\n",
        argv=("keybroker", "login", "gw"),
    ),
    "token_exchange_outside_github_actions_says_so": Refusal(
        8,
        "keybroker: profile 'ci': no GitHub Actions ID token available "
        "(ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are not set); give the job "
        "'permissions: id-token: write', or use another subject_token\n",
        env=lambda provider: {"EXCHANGE_SECRET": provider.exchange_secret},
        profile=lambda provider: exchange_profile(provider, 'subject_token = "github"'),
        argv=("keybroker", "get", "ci"),
    ),
    "device_code_profile_without_login_exits_8": Refusal(
        8,
        "keybroker: profile 'me': not logged in to {issuer} "
        "(client device-client); run: keybroker login me\n",
        profile=device_profile,
        argv=("keybroker", "get", "me"),
    ),
}


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_a_refused_profile_says_why_in_one_line(
    refusal: Refusal, kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    kb_env.write_config(refusal.profile(oidc_provider))
    kb_env.update(refusal.env(oidc_provider))
    result = run(list(refusal.argv), kb_env)
    assert_fails(
        result,
        refusal.code,
        secrets=[*refusal.env(oidc_provider).values(), oidc_provider.cc_secret],
        exactly=refusal.says.format(issuer=oidc_provider.issuer),
    )


# --- people: device code, browser, refresh ---


def test_device_login_then_silent_refresh_then_reused_rotated_token(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    login = signed_in(kb_env, oidc_provider, "me")
    assert login.out == b""
    match = re.fullmatch(
        rb"keybroker: to sign in, open (\S+)/device\n"
        rb"keybroker: and enter the code: ([A-Z]{4}-[A-Z]{4})\n"
        rb"keybroker: \(or open \S+\)\n"
        rb"keybroker: waiting for you to approve the sign-in\.*\n"
        rb"keybroker: signed in as alice; 'keybroker get me' now works without "
        rb"prompting\n",
        login.err,
    )
    assert match, login
    assert match.group(1).decode() == oidc_provider.issuer
    first_refresh = stored_refresh_token(kb_env, oidc_provider, "device-client")
    assert first_refresh is not None

    # login primed the cache: the next helper call is answered without the provider
    refreshes = oidc_provider.count("device-client", "success refresh_token")
    primed = token_of(run(["keybroker", "get", "me"], kb_env))
    assert verify(oidc_provider, primed)["sub"] == "alice"
    assert oidc_provider.count("device-client", "success refresh_token") == refreshes

    # a helper refreshes silently with the stored refresh token, which the provider rotates
    refreshed = run(["keybroker", "get", "me", "--no-cache"], kb_env)
    new_token = token_of(refreshed)
    assert new_token != primed
    assert verify(oidc_provider, new_token)["sub"] == "alice"
    assert oidc_provider.count("device-client", "success refresh_token") == refreshes + 1
    rotated = stored_refresh_token(kb_env, oidc_provider, "device-client")
    assert rotated is not None
    assert rotated != first_refresh
    for secret in (first_refresh, rotated, primed):
        assert_nowhere(secret, login, refreshed, dirs=dirs(kb_env))

    # someone replays the consumed refresh token: the provider revokes the whole login
    replay = requests.post(
        oidc_provider.token_endpoint,
        timeout=30,
        data={
            "grant_type": "refresh_token",
            "refresh_token": first_refresh,
            "client_id": "device-client",
        },
    )
    assert replay.status_code == 400
    assert replay.json()["error"] == "invalid_grant"
    denied = run(["keybroker", "get", "me", "--no-cache"], kb_env)
    assert_fails(denied, 8, secrets=[first_refresh, rotated])
    assert denied.err == (
        b"keybroker: profile 'me': the provider no longer accepts the stored login "
        b"(invalid_grant: grant request is invalid); it expired, was revoked, or a rotated "
        b"refresh token was reused; run: keybroker login me\n"
    )
    # the dead login is forgotten: the next call says plainly that a login is needed
    assert stored_refresh_token(kb_env, oidc_provider, "device-client") is None
    again = run(["keybroker", "get", "me", "--no-cache"], kb_env)
    assert_fails(again, 8, "not logged in", "run: keybroker login me")


def test_concurrent_helpers_never_reuse_a_rotated_refresh_token(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    signed_in(kb_env, oidc_provider, "team")
    errors_before = oidc_provider.count("device-client", "error invalid_grant")
    results: list[Result] = []

    def one() -> None:
        results.append(run(["keybroker", "get", "team", "--no-cache"], kb_env, timeout=180))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 6
    tokens = {token_of(r) for r in results}
    assert len(tokens) == 6  # six refreshes, one after another, each with the latest token
    assert oidc_provider.count("device-client", "error invalid_grant") == errors_before


def test_browser_login_with_pkce_on_a_loopback_port(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    kb_env.write_config(
        device_profile(oidc_provider, "web", client="browser-client", grant="authorization_code")
    )
    browser = kb_env.base / "browser.sh"
    browser.write_text(f'#!/bin/sh\nexec "{sys.executable}" "{SIGN_IN}" "$1" bob\n')
    browser.chmod(0o755)
    kb_env["BROWSER"] = str(browser)
    login = run(["keybroker", "login", "web"], kb_env, timeout=180)
    assert login.code == 0, login
    assert login.out == b""
    lines = login.stderr.splitlines()
    assert lines[0] == "keybroker: sign in in your browser; if it does not open, visit:"
    assert lines[1].startswith(oidc_provider.issuer + "/auth?response_type=code&")
    assert "code_challenge_method=S256" in lines[1]
    assert lines[-1] == (
        "keybroker: signed in as bob; 'keybroker get web' now works without prompting"
    )
    refreshed = token_of(run(["keybroker", "get", "web", "--no-cache"], kb_env))
    assert verify(oidc_provider, refreshed)["sub"] == "bob"


def test_refresh_token_grant_seeded_from_the_environment(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    """A CI secret holding a refresh token: used once, then the rotated one is kept."""
    signed_in(kb_env, oidc_provider, "seed")
    seed = stored_refresh_token(kb_env, oidc_provider, "device-client")
    assert seed is not None
    other = KbEnv({k: v for k, v in kb_env.items()})
    other.base = kb_env.base / "other"
    for sub in ("cache", "config", "data"):
        (other.base / sub).mkdir(parents=True)
    other.update(
        XDG_CACHE_HOME=str(other.base / "cache"),
        XDG_CONFIG_HOME=str(other.base / "config"),
        XDG_DATA_HOME=str(other.base / "data"),
        SEED_REFRESH_TOKEN=seed,
    )
    other.write_config(
        device_profile(oidc_provider, "seeded", grant="refresh_token")
        + 'refresh_token_env = "SEED_REFRESH_TOKEN"\n'
    )
    first = run(["keybroker", "get", "seeded", "--no-cache"], other)
    second = run(["keybroker", "get", "seeded", "--no-cache"], other)  # uses the rotated one
    assert token_of(first) != token_of(second)
    assert_nowhere(seed, first, second, dirs=dirs(other))


def test_doctor_checks_discovery_jwks_secret_and_login(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    aux = CacheAux(Cache.open(kb_env), "oidc")
    settings = {
        "issuer": oidc_provider.issuer,
        "client_id": "device-client",
        "grant": "device_code",
        "scope": "openid offline_access api:read",
    }
    ctx = FetchContext(Deadline(60), kb_env, aux)
    checks = {c.label: c for c in SOURCE.doctor(Request("oidc", settings, profile="me"), ctx)}
    assert checks["oidc discovery"].ok
    assert checks["oidc jwks"].ok
    assert checks["oidc jwks"].detail.startswith("1 signing key(s)")
    assert checks["oidc grant"].ok
    assert not checks["oidc login"].ok
    assert checks["oidc login"].fix == "run: keybroker login me"

    cc = {
        "issuer": oidc_provider.issuer,
        "client_id": "cc-client",
        "client_secret_env": "NOT_SET_ANYWHERE",
    }
    checks = {c.label: c for c in SOURCE.doctor(Request("oidc", cc, profile="gw"), ctx)}
    assert not checks["oidc client secret"].ok
    assert "NOT_SET_ANYWHERE is not set" in checks["oidc client secret"].detail


HOSTILE_FIRST = """
import subprocess, sys, urllib.error, urllib.parse, urllib.request
url = sys.argv[1]
query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
redirect, state = query["redirect_uri"], query["state"]

def status(target):
    try:
        return urllib.request.urlopen(target, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code

seen = [status(redirect + "?error=access_denied")]  # a stray error, no state
seen.append(status(redirect + "?" + urllib.parse.urlencode(
    {"state": "not-" + state, "code": "forged"})))
# another local user, holding the victim's state and their own code
other = subprocess.run(["setpriv", "--reuid", sys.argv[3], "--regid", sys.argv[4],
                        "--clear-groups", "/usr/bin/python3", "-c",
                        "import sys, urllib.request, urllib.error\\n"
                        "try: print(urllib.request.urlopen(sys.argv[1], timeout=10).status)\\n"
                        "except urllib.error.HTTPError as e: print(e.code)",
                        redirect + "?" + urllib.parse.urlencode(
                            {"state": state, "code": "the-other-persons-code"})],
                       capture_output=True, text=True, check=False)
seen.append(int(other.stdout.strip() or 0))
open(sys.argv[5], "w").write(" ".join(map(str, seen)))
subprocess.run([sys.executable, sys.argv[2], url, "bob"], check=True)
"""


def test_browser_login_ignores_callbacks_that_are_not_the_persons(
    kb_env: KbEnv, oidc_provider: OidcProvider, other_user: OsUser
) -> None:
    """A stray ``?error=`` and a forged redirect (wrong state; right state from another local
    user) are answered 400/403 and ignored; the person's own redirect then signs them in."""
    kb_env.write_config(
        device_profile(oidc_provider, "web", client="browser-client", grant="authorization_code")
    )
    script = kb_env.base / "hostile_browser.py"
    script.write_text(HOSTILE_FIRST)
    statuses = kb_env.base / "statuses"
    browser = kb_env.base / "browser.sh"
    browser.write_text(
        f'#!/bin/sh\nexec "{sys.executable}" "{script}" "$1" "{SIGN_IN}" '
        f'{other_user.uid} {other_user.gid} "{statuses}"\n'
    )
    browser.chmod(0o755)
    kb_env["BROWSER"] = str(browser)
    login = run(["keybroker", "login", "web"], kb_env, timeout=180)
    assert login.code == 0, login
    assert statuses.read_text() == "400 400 403"
    assert login.stderr.splitlines()[-1] == (
        "keybroker: signed in as bob; 'keybroker get web' now works without prompting"
    )
    refreshed = token_of(run(["keybroker", "get", "web", "--no-cache"], kb_env))
    assert verify(oidc_provider, refreshed)["sub"] == "bob"


def test_an_id_token_with_another_nonce_is_refused() -> None:
    from keybroker.errors import AccessDenied  # noqa: PLC0415
    from keybroker.sources.oidc.flows import check_nonce  # noqa: PLC0415

    def id_token(**claims: Any) -> dict[str, Any]:
        return {"id_token": jwt.encode(claims, "k" * 32, algorithm="HS256")}

    check_nonce(id_token(sub="bob", nonce="n-1"), "n-1", "profile 'web'")
    check_nonce({"access_token": "x"}, "n-1", "profile 'web'")  # no ID token: nothing to check
    for body in (id_token(sub="mallory", nonce="n-2"), id_token(sub="mallory")):
        with pytest.raises(AccessDenied, match="the ID token does not answer this sign-in"):
            check_nonce(body, "n-1", "profile 'web'")


def test_interactive_credential_sign_in_slower_than_the_timeout_then_answers(
    kb_env: KbEnv, oidc_provider: OidcProvider
) -> None:
    """``keybroker credential`` in Claude Code's interactive context signs the person in; the
    person takes longer than KEYBROKER_TIMEOUT, and the answer after the sign-in still comes."""
    # storage "none": the answer after the sign-in is a fresh refresh at the provider
    kb_env.write_config(
        device_profile(oidc_provider, "web", client="browser-client", grant="authorization_code")
        + 'storage = "none"\n'
    )
    browser = kb_env.base / "slow_browser.sh"
    browser.write_text(f'#!/bin/sh\nsleep 5\nexec "{sys.executable}" "{SIGN_IN}" "$1" bob\n')
    browser.chmod(0o755)
    env = dict(
        kb_env, BROWSER=str(browser), KEYBROKER_TIMEOUT="3", CLAUDE_HELPER_CONTEXT="interactive"
    )
    answer = run(["keybroker", "credential", "web"], env, timeout=180)
    assert answer.code == 0, answer
    assert verify(oidc_provider, answer.stdout.strip())["sub"] == "bob"


def test_peer_uid_names_the_owner_of_a_loopback_connection() -> None:
    """/proc/net/tcp gives the connecting socket's owner (what the sign-in callback checks)."""
    import os  # noqa: PLC0415

    from keybroker.sources.oidc.peer import NO_OWNER, peer_uid  # noqa: PLC0415

    assert Path("/proc/net/tcp").exists(), "Linux with /proc: the callback checks the peer"
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        with socket.create_connection(listener.getsockname()) as client:
            accepted, address = listener.accept()
            with accepted:
                assert peer_uid(address, accepted.getsockname()) == os.getuid()
                # a client end that does not exist is no one's (never "ours")
                assert peer_uid(("127.0.0.1", 1), accepted.getsockname()) == NO_OWNER
                assert client.getsockname() == address


def test_peer_addresses_are_written_as_the_kernel_writes_them() -> None:
    from keybroker.sources.oidc.peer import _hex_address, _same  # noqa: PLC0415

    assert _hex_address("127.0.0.1", 8250) == "0100007F:203A"
    assert _hex_address("::1", 8250) == "00000000000000000000000001000000:203A"
    assert _hex_address("::ffff:127.0.0.1", 80) == "0100007F:0050"
    assert _same("0000000000000000FFFF00000100007F:0050", "0100007F:0050")
    assert not _same("0000000000000000FFFF00000200007F:0050", "0100007F:0050")
