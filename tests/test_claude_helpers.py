"""The helper contracts of newer Claude Code besides apiKeyHelper (issue 15).

- ``keybroker credential`` for ``inferenceCredentialHelper``: a bare token or JSON
  ``{"token", "headers"}``; a sign-in only when ``CLAUDE_HELPER_CONTEXT=interactive``.
- ``keybroker headers --format value`` for ``claude self-hosted-runner
  --proxy-authorization-command`` (stdout is the full header value, run by a shell).
- :mod:`keybroker.claude.render`'s ``ANTHROPIC_CUSTOM_HEADERS`` text for ``keybroker exec``.

Claude Code 2.1.332 runs inferenceCredentialHelper only for an organization ("3p") sign-in,
which a test cannot set up, so the command is run here exactly as its contract says: the
absolute executable with the argument list, no shell, stdout trimmed and parsed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import pytest

from keybroker.claude import render
from keybroker.errors import UsageError
from tests.conftest import KbEnv
from tests.fixtures.claude_settings import env_profiles, run_like_claude
from tests.fixtures.openbao import OpenBao
from tests.kb import SCRIPTS, Result, assert_fails, assert_key, assert_nowhere, run

KEY = "sk-credential-7d9f1b3c5e"
CONTEXTS = ("mid-session-refresh", "background", "scheduled-task", "setup-test", "")
SSO = (
    '[profiles.sso]\nsource = "oidc"\nissuer = "http://127.0.0.1:9"\n'
    'client_id = "claude-code"\ngrant = "device_code"\n'
)


@pytest.fixture
def cred_env(kb_env: KbEnv) -> KbEnv:
    return env_profiles(kb_env, SSO, litellm=("LITELLM_KEY", KEY))


def parse_like_claude(stdout: bytes) -> dict[str, object]:
    """What Claude Code's parser keeps: trimmed; JSON with a string token, or one bare line."""
    text = stdout.decode().strip()
    if text.startswith("{"):
        data: dict[str, object] = json.loads(text)
        assert isinstance(data["token"], str)
        assert data["token"].strip()
        return data
    assert "\n" not in text
    assert "{" not in text
    return {"token": text}


def run_without_shell(env: Mapping[str, str], *args: str) -> Result:
    """inferenceCredentialHelper: absolute path + args, no shell (stdin left open)."""
    return run([str(SCRIPTS / "keybroker"), *args], env)


def test_credential_prints_a_bare_token(cred_env: KbEnv) -> None:
    result = run_without_shell(cred_env, "credential", "litellm")
    assert_key(result, KEY)
    assert parse_like_claude(result.out) == {"token": KEY}


def test_credential_json_with_headers(cred_env: KbEnv) -> None:
    cred_env["CLAUDE_HELPER_CONTEXT"] = "background"  # as Claude Code runs it: stderr stays clean
    result = run_without_shell(
        cred_env,
        "credential",
        "litellm",
        "--format",
        "json",
        "--header",
        "X-Api-Key: {}",
        "--header",
        "X-Team: infra",
    )
    assert result.code == 0, result
    assert result.err == b""
    assert result.out.endswith(b"}\n")
    assert result.out.count(b"\n") == 1
    assert parse_like_claude(result.out) == {
        "token": KEY,
        "headers": {"X-Api-Key": KEY, "X-Team": "infra"},
    }


@pytest.mark.parametrize("spec", ["X-Api-Key", "Bad Name: {}", ": {}", "X-A: "])
def test_credential_refuses_bad_header_specs(cred_env: KbEnv, spec: str) -> None:
    result = run_without_shell(
        cred_env, "credential", "litellm", "--format", "json", "--header", spec
    )
    assert_fails(result, 2, "--header")


def test_credential_header_needs_json(cred_env: KbEnv) -> None:
    result = run_without_shell(cred_env, "credential", "litellm", "--header", "X-Api-Key: {}")
    assert_fails(result, 2, "--format json", secrets=[KEY])


@pytest.mark.parametrize("context", CONTEXTS)
def test_credential_never_signs_in_outside_interactive(cred_env: KbEnv, context: str) -> None:
    env = dict(cred_env)
    if context:
        env["CLAUDE_HELPER_CONTEXT"] = context
    result = run_without_shell(env, "credential", "sso")
    assert_fails(result, 8, "run: keybroker login sso")


def test_credential_signs_in_when_interactive(cred_env: KbEnv) -> None:
    """Interactive: the login flow runs (here it reaches for the unreachable issuer: exit 3),
    instead of the exit 8 every other context gets."""
    env = dict(cred_env, CLAUDE_HELPER_CONTEXT="interactive")
    result = run_without_shell(env, "credential", "sso")
    assert result.code == 3, result
    assert result.out == b""
    assert b"127.0.0.1:9" in result.err, result
    assert b"run: keybroker login" not in result.err


def test_credential_interactive_non_oidc_profile_is_just_served(cred_env: KbEnv) -> None:
    env = dict(cred_env, CLAUDE_HELPER_CONTEXT="interactive")
    assert_key(run_without_shell(env, "credential", "litellm"), KEY)


# --- claude self-hosted-runner --proxy-authorization-command ---------------------------------
def test_headers_value_is_the_full_proxy_authorization_value(cred_env: KbEnv) -> None:
    proc = run_like_claude(f"{SCRIPTS / 'keybroker'} headers litellm --format value", cred_env)
    assert (proc.returncode, proc.stdout, proc.stderr) == (0, f"Bearer {KEY}\n".encode(), b"")


def test_headers_value_of_a_non_auth_header_is_the_raw_key(cred_env: KbEnv) -> None:
    proc = run_like_claude(
        f"{SCRIPTS / 'keybroker'} headers litellm --format value --header X-Api-Key", cred_env
    )
    assert (proc.returncode, proc.stdout) == (0, f"{KEY}\n".encode())


def test_headers_value_takes_one_header(cred_env: KbEnv) -> None:
    result = run(
        ["keybroker", "headers", "litellm", "--format", "value", "--header", "A", "--header", "B"],
        cred_env,
    )
    assert_fails(result, 2, "one header", secrets=[KEY])
    assert_nowhere(KEY, result)


# --- ANTHROPIC_CUSTOM_HEADERS for keybroker exec --header ------------------------------------
def test_custom_headers_text() -> None:
    headers = [
        render.parse_header("Proxy-Authorization: Bearer {}"),
        render.parse_header("X-Team:infra"),
    ]
    assert render.custom_headers(headers, KEY) == (
        f"Proxy-Authorization: Bearer {KEY}\nX-Team: infra"
    )


@pytest.mark.parametrize("spec", ["Proxy-Authorization", "Bad Name: x", "X: a\nb"])
def test_custom_header_specs_are_checked(spec: str) -> None:
    with pytest.raises(UsageError):
        render.parse_header(spec)


def test_credential_interactive_never_runs_a_login_for_a_non_oidc_profile(
    cred_env: KbEnv, openbao: OpenBao, tmp_path: Path
) -> None:
    """A Vault profile with no token needs 'vault login', which keybroker does not run: even
    under CLAUDE_HELPER_CONTEXT=interactive it keeps exit 8 and its own hint."""
    cred_env.write_config(
        f'[profiles.bao]\nsource = "vault"\naddr = "{openbao.addr}"\n'
        'path = "nothing/here"\nfield = "key"\n'
    )
    env = {k: v for k, v in cred_env.items() if k != "VAULT_TOKEN"}
    env.update(CLAUDE_HELPER_CONTEXT="interactive", HOME=str(tmp_path))
    result = run_without_shell(env, "credential", "bao")
    assert_fails(result, 8, "vault login")
