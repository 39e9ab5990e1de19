"""``keybroker cache list`` and ``cache clear``, through the real executable.

``cache list`` says what each entry is (a key, a login token, a refresh token, role
credentials, discovery documents); ``cache clear`` keeps logins unless asked and says what it
removed, and clearing keys leaves an assumed role's credentials in place.
"""

from __future__ import annotations

import json

from mypy_boto3_secretsmanager import SecretsManagerClient

from tests.conftest import KbEnv
from tests.fixtures.moto_server import RecordingProxy
from tests.kb import assert_fails, run

# --- cache clear keeps logins unless asked; cache list says what each entry is ---

#: side-store names exactly as the sources write them (vault_auth, oidc_tokens, oidc_http,
#: oidc_doctor, aws)
AUX_NAMES = {
    ("vault", "token jwt:jwt/ci http://127.0.0.1:8200 ns=-"): "login token",
    ("oidc", "refresh:0123abcd"): "refresh token",
    ("aws", "role-0123456789abcdef"): "role credentials",
    ("oidc", "discovery:https://login.example.com"): "discovery",
    ("oidc", "jwks:https://login.example.com"): "jwks",
}


def seed_logins(kb_env: KbEnv) -> None:
    """Side-store entries written through the store's own CacheAux (what sources use)."""
    from keybroker.cache.store import Cache, CacheAux  # noqa: PLC0415
    from keybroker.sources.base import AuxEntry  # noqa: PLC0415

    cache = Cache.open(kb_env)
    for source, name in AUX_NAMES:
        CacheAux(cache, source).put(name, AuxEntry("not-a-real-token", None, {}))


def seed_key(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.c]\nsource = "command"\ncommand = ["echo", "kb-cmd-key"]\n')
    assert run(["keybroker", "get", "c"], kb_env).code == 0


def listed_kinds(kb_env: KbEnv) -> list[str]:
    listed = run(["keybroker", "cache", "list", "--json"], kb_env)
    assert listed.code == 0, listed
    return sorted(e["kind"] for e in json.loads(listed.out)["entries"])


def test_cache_list_labels_each_kind(kb_env: KbEnv) -> None:
    seed_key(kb_env)
    seed_logins(kb_env)
    listed = run(["keybroker", "cache", "list"], kb_env)
    assert listed.code == 0, listed
    for (source, name), kind in AUX_NAMES.items():
        line = next(ln for ln in listed.stdout.splitlines() if f"aux:{source}:{name}"[:40] in ln)
        assert f"({kind})" in line, (kind, line)
    assert "(login token)" in listed.stdout
    assert listed.stdout.count("(login token)") == 1  # the vault token only
    assert listed_kinds(kb_env) == sorted(
        ["key", "login-token", "refresh-token", "role-credentials", "discovery", "jwks"]
    )


def test_cache_clear_keeps_logins_and_says_what_it_removed(kb_env: KbEnv) -> None:
    seed_key(kb_env)
    seed_logins(kb_env)
    cleared = run(["keybroker", "cache", "clear"], kb_env)
    assert cleared.code == 0, cleared
    assert cleared.out == b""
    assert cleared.stderr == (
        "keybroker: removed 1 key; kept 5 logins (run 'keybroker cache clear --logins' to "
        "remove them, or --all for everything)\n"
    )
    assert listed_kinds(kb_env) == sorted(
        ["login-token", "refresh-token", "role-credentials", "discovery", "jwks"]
    )

    seed_key(kb_env)
    logins = run(["keybroker", "cache", "clear", "--logins"], kb_env)
    assert logins.code == 0, logins
    assert logins.stderr == (
        "keybroker: removed 1 discovery, 1 jwks, 1 login token, 1 refresh token, "
        "1 role credentials\n"
    )
    assert listed_kinds(kb_env) == ["key"]

    seed_logins(kb_env)
    everything = run(["keybroker", "cache", "clear", "--all"], kb_env)
    assert everything.stderr == (
        "keybroker: removed 1 discovery, 1 jwks, 1 key, 1 login token, 1 refresh token, "
        "1 role credentials\n"
    )
    assert listed_kinds(kb_env) == []
    empty = run(["keybroker", "cache", "clear"], kb_env)
    assert empty.stderr == "keybroker: no cache entries to remove\n"


def test_cache_clear_flags_that_do_not_go_together(kb_env: KbEnv) -> None:
    seed_key(kb_env)
    assert_fails(
        run(["keybroker", "cache", "clear", "--logins", "--all"], kb_env),
        2,
        "--logins and --all cannot be used together",
    )
    assert_fails(
        run(["keybroker", "cache", "clear", "c", "--all"], kb_env),
        2,
        "leave out the profile 'c'",
        "or run: keybroker cache clear c",
    )


def test_cleared_keys_leave_the_assumed_role_in_place(
    kb_env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    """The real thing: after 'cache clear' the next get reads the secret again but reuses the
    role credentials it had (no second AssumeRole, no login needed)."""
    from tests.fixtures.moto_server import aws_env, unique_name  # noqa: PLC0415

    kb_env.update(aws_env(aws_proxy.url))
    name = unique_name()
    secretsmanager.create_secret(Name=name, SecretString="sk-aws-clear-test-1")
    kb_env.write_config(
        f'[profiles.r]\nsource = "aws"\nsecret_id = "{name}"\n'
        'role_arn = "arn:aws:iam::123456789012:role/keybroker-reader"\n'
    )
    assert run(["keybroker", "get", "r"], kb_env).code == 0
    cleared = run(["keybroker", "cache", "clear"], kb_env)
    assert cleared.stderr.startswith("keybroker: removed 1 key; kept 1 login "), cleared
    assert run(["keybroker", "get", "r"], kb_env).code == 0
    assert aws_proxy.count("AssumeRole") == 1, aws_proxy.operations
    assert aws_proxy.count("GetSecretValue") == 2, aws_proxy.operations
