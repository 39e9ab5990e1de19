"""The vault source against a real OpenBao dev server (tests/fixtures/openbao.py).

Every path, policy and role is unique per test (the server is shared by the session). Helper
calls run the real executables in a subprocess, as Claude Code does, and check stdout, stderr
and the exit code byte for byte; secrets (values, tokens, secret_ids) are looked for in
everything the process wrote and in every file it left.
"""

from __future__ import annotations

import json
import re
import secrets
import socket
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao, OpenBaoError, free_port, start_openbao
from tests.fixtures.standin import Reply, Seen, StandIn, self_signed
from tests.fixtures.vault_setup import (
    JWT_AUDIENCE,
    assert_renewed_near_its_end,
    child_token,
    ci_jwt_role,
    enable,
    jwt_flags,
    new_key,
    read_policy,
    sign,
    state_dirs,
    trust_jwt_signer,
    uid,
    vault_cli,
    vault_env,
    vault_tokens,
)
from tests.kb import (
    Result,
    assert_fails,
    assert_key,
    assert_nowhere,
    python,
    require_backend,
    run,
)

if TYPE_CHECKING:  # cryptography is imported where a test needs it
    from cryptography.hazmat.primitives.asymmetric.rsa import RSAPrivateKey

pytestmark = pytest.mark.integration


# --- setup helpers ---


def print_token(profile: str, env: dict[str, str], *extra: str) -> dict[str, Any]:
    result = run(["keybroker", "print-token", profile, "--json", *extra], env)
    assert result.code == 0, result
    doc: dict[str, Any] = json.loads(result.out)
    return doc


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --- KV v2 / v1, profile and standalone ---


def test_kv2_profile_and_standalone_share_one_entry(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"litellm-{uid()}"
    key, rotated = new_key(), new_key()
    bao.kv_put(path, {"key": key, "note": "x"})
    token = child_token(bao, read_policy(bao, f"secret/data/{path}"))
    env = vault_env(kb_env, bao, token)
    kb_env.write_config(
        f'[profiles.litellm]\nsource = "vault"\naddr = "{bao.addr}/"\n'
        f'path = "/{path}"\nfield = "key"\n'
    )

    first = run(vault_cli(path), env)
    assert_key(first, key)
    assert first.err == b""
    bao.kv_put(path, {"key": rotated})  # a fetch now would see the new version
    second = run(["keybroker", "get", "litellm"], env)
    assert_key(second, key)
    assert second.err == b""
    doc = print_token("litellm", env)
    assert doc["cache"]["state"] == "hit"
    assert doc["key_version"] == "1"
    assert doc["location"] == f"secret/{path}#key"
    assert_nowhere(key, first, second, dirs=[kb_env.base])
    assert_nowhere(token, first, second, dirs=[kb_env.base])


def test_rotation_seen_with_no_cache_and_after_expiry(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"rot-{uid()}"
    old, new = new_key(), new_key()
    bao.kv_put(path, {"key": old})
    env = vault_env(kb_env, bao, bao.root_token)
    kb_env.write_config(
        f'[profiles.p]\nsource = "vault"\npath = "{path}"\nfield = "key"\nmax_age = "1s"\n'
    )
    assert_key(run(["keybroker", "get", "p"], env), old)
    assert bao.kv_put(path, {"key": new}) == 2
    assert_key(run(["keybroker", "get", "p", "--no-cache"], env), new)
    assert_key(run(vault_cli(path, "--no-cache"), env), new)

    # the entry written before the rotation is reused only for max_age, then refetched
    time.sleep(1.5)
    assert_key(run(["keybroker", "get", "p"], env), new)
    doc = print_token("p", env)
    assert doc["key_version"] == "2"


def test_pinned_secret_version(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"pin-{uid()}"
    first, second = new_key(), new_key()
    bao.kv_put(path, {"key": first})
    bao.kv_put(path, {"key": second})
    env = vault_env(kb_env, bao, bao.root_token)
    result = run(vault_cli(path, "--secret-version", "1"), env)
    assert_key(result, first)
    kb_env.write_config(
        f'[profiles.pinned]\nsource = "vault"\npath = "{path}"\nfield = "key"\nsecret_version = 1\n'
    )
    doc = print_token("pinned", env, "--reveal")
    assert doc["cache"]["state"] == "hit"
    assert doc["key"] == first
    assert doc["key_version"] == "1"
    missing = run(vault_cli(path, "--secret-version", "7"), env)
    assert_fails(missing, 5, f"no secret at secret/data/{path} (version 7)", secrets=[first])


def test_kv1_mount(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"app-{uid()}"
    key = new_key()
    bao.api("POST", f"kv1/{path}", {"key": key, "owner": "team"})
    env = vault_env(kb_env, bao, bao.root_token)
    result = run(vault_cli(path, "--mount", "kv1", "--kv-version", "1"), env)
    assert_key(result, key)
    assert result.err == b""
    # the same path read as KV v2 says how to fix it
    wrong = run(vault_cli(path, "--mount", "kv1"), env)
    assert_fails(wrong, 5, f"no secret at kv1/data/{path}", "kv_version = 1", secrets=[key])
    # and a KV v2 mount read as v1 says the opposite
    bao.kv_put(path, {"key": key})
    flipped = run(
        vault_cli(path, "--kv-version", "1", "--no-cache"),
        env,
    )
    assert_fails(flipped, 5, "'secret' is a KV v2 mount: set kv_version = 2", secrets=[key])


def test_whole_document_with_field_star_and_expires_at_field(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"json-{uid()}"
    expires = int(time.time()) + 7200
    data = {"api_key": new_key(), "expires_at": iso(expires), "region": "eu"}
    bao.kv_put(path, data)
    env = vault_env(kb_env, bao, bao.root_token)
    kb_env.write_config(f'[profiles.j]\nsource = "vault"\npath = "{path}"\nfield = "*"\n')
    result = run(["keybroker", "get", "j"], env)
    assert_key(result, json.dumps(data, sort_keys=True, separators=(",", ":")))
    doc = print_token("j", env)
    assert doc["cache"]["state"] == "hit"
    assert doc["expires_at"] == iso(expires)


def test_no_field_on_several_fields_exit_6_single_field_printed(
    bao: OpenBao, kb_env: KbEnv
) -> None:
    """Issue 17: no field used to print the whole JSON as the key (exit 0, doctor ✓)."""
    several, single = f"many-{uid()}", f"one-{uid()}"
    key, other = new_key(), new_key()
    bao.kv_put(several, {"key": key, "admin_key": other, "expires_at": int(time.time()) + 3600})
    bao.kv_put(single, {"key": key, "expires_at": int(time.time()) + 3600})
    env = vault_env(kb_env, bao, bao.root_token)
    kb_env.write_config(
        f'[profiles.many]\nsource = "vault"\npath = "{several}"\n'
        f'[profiles.one]\nsource = "vault"\npath = "{single}"\n'
    )
    refused = run(["keybroker", "get", "many"], env)
    assert_fails(
        refused,
        6,
        secrets=[key, other],
        exactly=(
            f"keybroker: profile 'many': vault: the secret at secret/data/{several} has several "
            "fields: admin_key, expires_at, key; set field (--field) to the one that holds the "
            'key, or field = "*" for the whole object as compact JSON\n'
        ),
    )
    standalone = run(["keybroker-vault", "--path", several], env)
    assert_fails(
        standalone, 6, "has several fields: admin_key, expires_at, key", secrets=[key, other]
    )
    doctor = run(["keybroker", "doctor", "many"], env)
    assert doctor.code == 1, doctor
    assert "✗ profile 'many' read: secret/data/" in doctor.stdout
    assert "no field is set and the secret has several fields" in doctor.stdout
    assert_nowhere(key, refused, standalone, doctor, dirs=[kb_env.base])
    # one field besides its expiry: that field is the key
    assert_key(run(["keybroker", "get", "one"], env), key)
    doctor = run(["keybroker", "doctor", "one"], env)
    assert "✓ profile 'one' read: secret/data/" in doctor.stdout, doctor
    assert "its only field 'key'" in doctor.stdout


def test_invalid_values_exit_6(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"bad-{uid()}"
    inner = new_key()
    bao.kv_put(
        path,
        {
            "nested": {"k": inner},
            "when": "soon",
            "key": new_key(),
            "expires_at": int(time.time()) + 3600,
        },
    )
    env = vault_env(kb_env, bao, bao.root_token)
    nested = run(vault_cli(path, field="nested"), env)
    assert_fails(
        nested,
        6,
        secrets=[inner],
        exactly=(
            f"keybroker: vault: field 'nested' of secret/data/{path} is a dict, not a string; "
            "point field at a string value\n"
        ),
    )
    kb_env.write_config(
        f'[profiles.w]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        'expires_field = "when"\n'
        f'[profiles.epoch]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
    )
    assert_fails(
        run(["keybroker", "get", "w"], env), 6, f"field 'when' of secret/data/{path} is not a time"
    )
    doc = print_token("epoch", env)
    assert doc["cache"]["state"] == "miss"
    assert doc["expires_at"] == iso(
        bao.api("GET", f"secret/data/{path}")["data"]["data"]["expires_at"]
    )


def test_read_engine_lease_gives_expiry(bao: OpenBao, kb_env: KbEnv) -> None:
    """engine = "read": any read path; the lease duration is the expiry (KV v1 leases its ttl)."""
    path = f"creds-{uid()}"
    creds = {"access_key": "AKIA" + uid().upper(), "secret_key": new_key(""), "ttl": "2h"}
    bao.api("POST", f"kv1/{path}", creds)
    env = vault_env(kb_env, bao, bao.root_token)
    kb_env.write_config(
        f'[profiles.dyn]\nsource = "vault"\nengine = "read"\npath = "kv1/{path}"\nfield = "*"\n'
    )
    before = time.time()
    result = run(["keybroker", "get", "dyn"], env)
    assert_key(result, json.dumps(creds, sort_keys=True, separators=(",", ":")))
    doc = print_token("dyn", env)
    assert doc["cache"]["state"] == "hit"
    expires = datetime.fromisoformat(doc["expires_at"].replace("Z", "+00:00")).timestamp()
    assert before + 7200 - 5 <= expires <= time.time() + 7200 + 5
    field = run(vault_cli(path, "--engine", "read", "--mount", "kv1", field="secret_key"), env)
    assert_key(field, creds["secret_key"])


# --- errors and exit codes ---


def test_denied_missing_and_field_errors(bao: OpenBao, kb_env: KbEnv) -> None:
    allowed, other = f"ok-{uid()}", f"private-{uid()}"
    key, hidden = new_key(), new_key()
    bao.kv_put(allowed, {"key": key, "org": "acme-org-value"})
    bao.kv_put(other, {"key": hidden})
    token = child_token(bao, read_policy(bao, f"secret/data/{allowed}"))
    env = vault_env(kb_env, bao, token)
    kb_env.write_config(f'[profiles.priv]\nsource = "vault"\npath = "{other}"\nfield = "key"\n')

    denied = run(["keybroker", "get", "priv"], env)
    assert_fails(
        denied,
        4,
        f"permission denied reading secret/data/{other}",
        "policies",
        "keybroker doctor priv",
        secrets=[token, hidden],
    )
    assert (
        denied.err
        == (
            f"keybroker: profile 'priv': vault: permission denied reading secret/data/{other}; "
            f"the token ($VAULT_TOKEN) may be expired, or its policies may not allow 'read' on "
            f"secret/data/{other}; run 'keybroker doctor priv'\n"
        ).encode()
    )

    field = run(vault_cli(allowed, field="nope"), env)
    assert_fails(
        field,
        5,
        secrets=[key, "acme-org-value", token],
        exactly=(
            f"keybroker: vault: field 'nope' not found in secret/data/{allowed}; "
            "fields present: key, org\n"
        ),
    )

    missing = run(
        vault_cli(f"none-{uid()}"),
        dict(env, VAULT_TOKEN=bao.root_token),
    )
    assert_fails(missing, 5, "no secret at secret/data/none-", "check mount and path")
    relative = run(
        vault_cli(f"secret/{allowed}"),
        dict(env, VAULT_TOKEN=bao.root_token),
    )
    assert_fails(relative, 5, f'try path = "{allowed}"')

    debug = run(["keybroker", "get", "priv", "--no-cache", "--debug"], env)
    assert debug.code == 4
    assert b"Traceback" in debug.err
    assert_nowhere(token, denied, field, missing, debug, dirs=[kb_env.base])
    assert_nowhere(hidden, denied, debug, dirs=[kb_env.base])


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--kv-version", "3"], "kv_version must be 1 or 2"),
        (["--auth-method", "approle"], "AppRole login needs a role_id"),
        (["--addr", "vault:8200"], "is not an http(s) URL"),
    ],
    ids=["kv_version", "approle_without_role_id", "addr_not_a_url"],
)
def test_bad_settings_exit_2(bao: OpenBao, kb_env: KbEnv, flags: list[str], says: str) -> None:
    env = vault_env(kb_env, bao, bao.root_token)
    assert_fails(run(["keybroker-vault", "--path", "x", *flags], env), 2, says)


def test_no_address_and_bad_profile_setting_exit_2(bao: OpenBao, kb_env: KbEnv) -> None:
    env = vault_env(kb_env, bao, bao.root_token)
    del env["VAULT_ADDR"]
    assert_fails(run(["keybroker-vault", "--path", "x"], env), 2, "no server address")
    kb_env.write_config('[profiles.bad]\nsource = "vault"\npath = "x"\nkv_version = "two"\n')
    assert_fails(run(["keybroker", "get", "bad"], env), 2, "[profiles.bad] key 'kv_version'")


def test_no_token_anywhere_exit_8(bao: OpenBao, kb_env: KbEnv) -> None:
    env = vault_env(kb_env, bao, None)
    result = run(vault_cli("anything"), env)
    assert_fails(result, 8, "no Vault token", "vault login")


def test_token_file_in_home(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"home-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    token = child_token(bao, read_policy(bao, f"secret/data/{path}"))
    Path(kb_env["HOME"], ".vault-token").write_text(token + "\n")
    env = vault_env(kb_env, bao, None)
    result = run(vault_cli(path), env)
    assert_key(result, key)
    assert_nowhere(token, result)


def test_token_env_setting(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"tenv-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    env = vault_env(kb_env, bao, "not-a-valid-token")  # token_env must win over VAULT_TOKEN
    env["CI_VAULT_TOKEN"] = child_token(bao, read_policy(bao, f"secret/data/{path}"))
    kb_env.write_config(
        f'[profiles.t]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        'token_env = "CI_VAULT_TOKEN"\n'
    )
    assert_key(run(["keybroker", "get", "t"], env), key)
    del env["CI_VAULT_TOKEN"]
    unset = run(["keybroker", "get", "t", "--no-cache"], env)
    assert_fails(unset, 2, "token_env names $CI_VAULT_TOKEN, which is not set")


def read_from_local_port(kb_env: KbEnv, port: int, token: str) -> Result:
    """``keybroker-vault`` with ``token`` against whatever is at 127.0.0.1:``port``, with a
    2-second deadline (KEYBROKER_TIMEOUT)."""
    env = dict(
        kb_env, VAULT_ADDR=f"http://127.0.0.1:{port}", VAULT_TOKEN=token, KEYBROKER_TIMEOUT="2"
    )
    return run(vault_cli("x"), env, timeout=30)


@pytest.mark.serial  # a 2 s deadline: slow start-up says 'gave up'
def test_unreachable_closed_port_exit_3(kb_env: KbEnv) -> None:
    port = free_port()  # nothing listens there
    result = read_from_local_port(kb_env, port, "s.token-never-sent")
    assert_fails(
        result, 3, f"http://127.0.0.1:{port}: cannot connect", secrets=["s.token-never-sent"]
    )


def test_unreachable_silent_listener_exit_3_within_deadline(kb_env: KbEnv) -> None:
    """A socket that accepts and never answers: the deadline ends the call with exit 3."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)
        result = read_from_local_port(kb_env, listener.getsockname()[1], "s.silent-token")
    assert result.code == 3, result
    assert result.out == b""
    assert result.err.startswith(b"keybroker: "), result
    assert b"did not answer in time" in result.err or b"KEYBROKER_TIMEOUT" in result.err, result
    assert b"s.silent-token" not in result.err


def test_sealed_server_exit_3(tmp_path: Path, kb_env: KbEnv) -> None:
    try:
        server = start_openbao(tmp_path / "sealed")
    except OpenBaoError as exc:
        require_backend("vault", str(exc))
    try:
        server.kv_put("k", {"key": new_key()})
        server.api("PUT", "sys/seal")
        env = vault_env(kb_env, server, server.root_token)
        result = run(vault_cli("k"), env)
        assert_fails(result, 3, "is sealed or unavailable (HTTP 503)", secrets=["root"])
        kb_env.write_config('[profiles.s]\nsource = "vault"\npath = "k"\nfield = "key"\n')
        doctor = run(["keybroker", "doctor", "s"], env)
        assert doctor.code != 0
        assert "seal: sealed" in doctor.stderr + doctor.stdout
    finally:
        server.stop()


def test_tls_with_ca_cert(tmp_path: Path, kb_env: KbEnv) -> None:
    try:
        server = start_openbao(tmp_path / "tls", tls=True)
    except OpenBaoError as exc:
        require_backend("vault", str(exc))
    assert server.ca_cert is not None
    try:
        key = new_key()
        server.kv_put("tls", {"key": key})
        env = vault_env(kb_env, server, server.root_token)
        untrusted = run(vault_cli("tls"), env)
        assert_fails(untrusted, 3, "TLS verification failed", "ca_cert")
        assert_key(
            run(
                vault_cli("tls"),
                dict(env, VAULT_CACERT=str(server.ca_cert)),
            ),
            key,
        )
        kb_env.write_config(
            f'[profiles.tls]\nsource = "vault"\npath = "tls"\nfield = "key"\n'
            f'ca_cert = "{server.ca_cert}"\n'
        )
        doc = print_token("tls", env)  # ca_cert does not change the entry: a hit
        assert doc["cache"]["state"] == "hit"
        assert_key(run(["keybroker", "get", "tls", "--no-cache"], env), key)
        insecure = run(
            vault_cli("tls", "--no-tls-verify", "--no-cache"),
            env,
        )
        assert_key(insecure, key)
        assert insecure.err == b""  # no urllib3 warning on the helper's stderr
    finally:
        server.stop()


# --- AppRole ---


def approle(server: OpenBao, policy: str, **options: Any) -> tuple[str, str]:
    """A role with ``policy``; returns (role_id, secret_id)."""
    name = f"role-{uid()}"
    server.api(
        "POST",
        f"auth/approle/role/{name}",
        {"token_policies": [policy], "token_ttl": "1h", "token_max_ttl": "4h", **options},
    )
    role_id = server.api("GET", f"auth/approle/role/{name}/role-id")["data"]["role_id"]
    secret_id = server.api("POST", f"auth/approle/role/{name}/secret-id")["data"]["secret_id"]
    return str(role_id), str(secret_id)


def test_approle_read_only_policy_and_cached_login(bao: OpenBao, kb_env: KbEnv) -> None:
    path, other = f"ar-{uid()}", f"ar-other-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    bao.kv_put(other, {"key": new_key()})
    # one use only: a second login would fail, so later calls prove the token was cached
    role_id, secret_id = approle(bao, read_policy(bao, f"secret/data/{path}"), secret_id_num_uses=1)
    env = vault_env(kb_env, bao, None)
    env["APPROLE_SECRET_ID"] = secret_id
    kb_env.write_config(
        f'[profiles.ar]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        f'auth_method = "approle"\nrole_id = "{role_id}"\nsecret_id_env = "APPROLE_SECRET_ID"\n'
        f'[profiles.ar2]\nsource = "vault"\npath = "{other}"\nfield = "key"\n'
        f'auth_method = "approle"\nrole_id = "{role_id}"\nsecret_id_env = "APPROLE_SECRET_ID"\n'
    )
    first = run(["keybroker", "get", "ar"], env)
    assert_key(first, key)
    again = run(["keybroker", "get", "ar"], env)
    assert_key(again, key)
    # read-only policy: another path is denied, with the cached token (no second login)
    denied = run(["keybroker", "get", "ar2"], env)
    assert_fails(denied, 4, f"permission denied reading secret/data/{other}", "approle")
    tokens = vault_tokens(kb_env)
    assert len(tokens) == 1
    for secret in (secret_id, tokens[0]):
        assert_nowhere(secret, first, again, denied, dirs=[kb_env.base])
    # the role_id is in the config the test wrote (and the profile index mirroring it) only
    assert_nowhere(role_id, first, again, denied, dirs=[kb_env.data_dir])
    for entry in kb_env.cache_dir.glob("*.entry"):
        assert role_id.encode() not in entry.read_bytes()


def test_approle_wrong_secret_id_exit_4(bao: OpenBao, kb_env: KbEnv) -> None:
    role_id, secret_id = approle(bao, read_policy(bao, "secret/data/none"))
    env = vault_env(kb_env, bao, None)
    wrong = secret_id[:-4] + "beef"
    env["SID"] = wrong
    result = run(
        [
            "keybroker-vault",
            "--path",
            "x",
            "--auth-method",
            "approle",
            "--role-id",
            role_id,
            "--secret-id-env",
            "SID",
            "--debug",
        ],
        env,
    )
    assert result.code == 4, result
    assert b"login refused while logging in with approle at auth/approle/login" in result.err
    assert_nowhere(wrong, result)
    assert_nowhere(secret_id, result)


def test_approle_secret_id_file_and_renewal(
    bao: OpenBao, tmp_path: Path, kb_env: KbEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    """In process with an injected clock: a renewable cached token near its end is renewed."""
    from keybroker import clock  # noqa: PLC0415
    from keybroker.cache.store import Cache, CacheAux  # noqa: PLC0415
    from keybroker.model import Deadline, Request  # noqa: PLC0415
    from keybroker.sources.base import FetchContext  # noqa: PLC0415
    from keybroker.sources.vault import SOURCE  # noqa: PLC0415

    path = f"renew-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    role_id, secret_id = approle(bao, read_policy(bao, f"secret/data/{path}"), secret_id_num_uses=1)
    sid_file = tmp_path / "secret-id"
    sid_file.write_text(secret_id + "\n")
    env = vault_env(kb_env, bao, None)
    settings = {
        "path": path,
        "field": "key",
        "auth_method": "approle",
        "role_id": role_id,
        "secret_id_file": str(sid_file),
    }
    aux = CacheAux(Cache.open(env), "vault")

    def fetch() -> str:
        ctx = FetchContext(Deadline(20), env, aux)
        return SOURCE.fetch(Request("vault", settings), ctx).value

    assert fetch() == key
    entry = assert_renewed_near_its_end(aux, fetch, key, monkeypatch)
    assert entry.metadata["renewable"] is True
    assert entry.metadata["ttl"] == 3600
    lookup = bao.api("POST", "auth/token/lookup", {"token": entry.value})["data"]
    assert lookup["ttl"] > 3500  # the server agrees: its TTL was reset

    # past the cached expiry the token is dropped and a new login is needed: the secret_id
    # was single-use, so this must fail as a refused login (exit 4)
    monkeypatch.setattr(clock, "now", lambda: time.time() + 3 * 3600)
    from keybroker.errors import AccessDenied  # noqa: PLC0415

    with pytest.raises(AccessDenied):
        fetch()


# --- JWT / OIDC CI tokens ---


@pytest.fixture(scope="module")
def jwt_role(bao: OpenBao) -> tuple[RSAPrivateKey, str, str]:
    """JWT auth trusting a key the test made; returns (private key, role name, readable path)."""
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    trust_jwt_signer(bao, "jwt", private)
    path = f"ci-{uid()}"
    role = f"ci-{uid()}"
    ci_jwt_role(bao, "jwt", role, f"secret/data/{path}")
    return private, role, path


def test_jwt_login_from_env_and_file(
    bao: OpenBao, jwt_role: tuple[RSAPrivateKey, str, str], kb_env: KbEnv, tmp_path: Path
) -> None:
    private, role, path = jwt_role
    key = new_key()
    bao.kv_put(path, {"key": key})
    token = sign(private)
    env = vault_env(kb_env, bao, None)
    env["CI_JOB_JWT"] = token
    kb_env.write_config(
        f'[profiles.ci]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        f'auth_method = "jwt"\nrole = "{role}"\njwt_env = "CI_JOB_JWT"\n'
    )
    result = run(["keybroker", "get", "ci"], env)
    assert_key(result, key)
    token_file = tmp_path / "id-token"
    token_file.write_text(sign(private))
    from_file = run(
        vault_cli(path, *jwt_flags(role, "--jwt-file", str(token_file)), "--no-cache"),
        vault_env(kb_env, bao, None),
    )
    assert_key(from_file, key)
    for secret in [token, token_file.read_text(), *vault_tokens(kb_env)]:
        assert_nowhere(secret, result, from_file, dirs=state_dirs(kb_env))


def test_jwt_signed_by_unknown_key_exit_4(
    bao: OpenBao, jwt_role: tuple[RSAPrivateKey, str, str], kb_env: KbEnv
) -> None:
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    _, role, path = jwt_role
    forged = sign(rsa.generate_private_key(public_exponent=65537, key_size=2048))
    env = vault_env(kb_env, bao, None)
    env["CI_JOB_JWT"] = forged
    result = run(vault_cli(path, *jwt_flags(role, "--jwt-env", "CI_JOB_JWT"), "--debug"), env)
    assert result.code == 4, result
    assert f"logging in with jwt as role '{role}' at auth/jwt/login".encode() in result.err
    assert_nowhere(forged, result)


def github_id_token_endpoint(bearer: str, jwt: str) -> Callable[[Seen], Reply]:
    """Stands in for GitHub Actions' ID-token endpoint (ACTIONS_ID_TOKEN_REQUEST_URL)."""

    def answer(seen: Seen) -> Reply:
        if seen.headers.get("Authorization") != f"bearer {bearer}":
            return Reply(403)
        return Reply(200, {"value": jwt})

    return answer


def audiences(server: StandIn) -> list[str]:
    """The ``audience`` each ID-token request asked for."""
    return [seen.query.get("audience", [""])[0] for seen in server.seen]


def test_jwt_from_github_actions_id_token(
    bao: OpenBao,
    jwt_role: tuple[RSAPrivateKey, str, str],
    kb_env: KbEnv,
    stand_in: Callable[..., StandIn],
) -> None:
    private, role, path = jwt_role
    key = new_key()
    bao.kv_put(path, {"key": key})
    bearer, jwt = "gh-request-" + secrets.token_hex(8), sign(private)
    server = stand_in(github_id_token_endpoint(bearer, jwt))
    env = vault_env(kb_env, bao, None)
    env["ACTIONS_ID_TOKEN_REQUEST_URL"] = f"{server.url}/token?api-version=2.0"
    env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = bearer
    from_github = jwt_flags(role, "--jwt-audience", JWT_AUDIENCE)
    result = run(vault_cli(path, *from_github), env)
    assert_key(result, key)
    assert audiences(server) == [JWT_AUDIENCE]
    again = run(vault_cli(path, *from_github, field="*"), env)
    # another entry (the whole document), the same job: its cached Vault login answers,
    # no new ID token is requested
    assert_key(again, json.dumps({"key": key}, separators=(",", ":")))
    assert len(audiences(server)) == 1
    env["ACTIONS_ID_TOKEN_REQUEST_TOKEN"] = "wrong-bearer"
    refused = run(vault_cli(path, *from_github, "--no-cache"), env)
    # another job's request token is another identity: it must get its own ID token,
    # and GitHub refuses this one; the first job's cached login is not used
    assert_fails(refused, 4, "GitHub Actions refused to issue an ID token")
    assert len(audiences(server)) == 2
    assert_nowhere(jwt, result, again, refused, dirs=[kb_env.base])
    assert_nowhere(bearer, result, again, refused, dirs=[kb_env.base])


# --- Vault Proxy / Agent listener ---


def test_through_openbao_proxy_without_token(bao: OpenBao, kb_env: KbEnv, tmp_path: Path) -> None:
    """A ``bao proxy`` listener with use_auto_auth_token: keybroker sends no token at all."""
    import subprocess  # noqa: PLC0415

    path = f"proxy-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    token_file = tmp_path / "proxy-token"
    token_file.write_text(child_token(bao, read_policy(bao, f"secret/data/{path}"), default=True))
    port = free_port()
    config = tmp_path / "proxy.hcl"
    config.write_text(
        f'vault {{ address = "{bao.addr}" }}\n'
        'auto_auth { method "token_file" { config = { '
        f'token_file_path = "{token_file}" }} }} }}\n'
        "api_proxy { use_auto_auth_token = true }\n"
        f'listener "tcp" {{\n  address = "127.0.0.1:{port}"\n  tls_disable = true\n}}\n'
    )
    proc = subprocess.Popen(
        [str(bao.bao), "proxy", f"-config={config}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={"HOME": str(bao.home), "PATH": "/usr/bin:/bin"},
    )
    try:
        env = dict(kb_env, VAULT_ADDR=f"http://127.0.0.1:{port}")
        deadline = time.monotonic() + 30
        result = None
        while time.monotonic() < deadline:
            result = run(vault_cli(path, "--no-cache"), env)
            if result.code == 0:
                break
            time.sleep(0.3)  # the proxy is still starting or authenticating
        assert result is not None
        assert_key(result, key)
        assert result.err == b""
    finally:
        proc.terminate()
        proc.wait(timeout=10)


# --- doctor ---


def test_doctor_checks(bao: OpenBao, kb_env: KbEnv) -> None:
    path = f"doc-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key, "extra": "x-extra-value"})
    policy = read_policy(bao, f"secret/data/{path}")
    token = child_token(bao, policy, ttl="30m", default=True)
    env = vault_env(kb_env, bao, token)
    kb_env.write_config(
        f'[profiles.d]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        f'[profiles.nofield]\nsource = "vault"\npath = "{path}"\nfield = "nope"\n'
    )
    result = run(["keybroker", "doctor", "d"], env)
    text = result.stdout + result.stderr
    assert f"address: {bao.addr} reachable" in text, result
    assert "seal: unsealed" in text
    assert re.search(r"token: valid \(\$VAULT_TOKEN; TTL (29m \d+s|30m 0s), renewable", text), text
    assert f"policies: default, {policy})" in text
    assert f"read: secret/data/{path}: allowed (version 1; field 'key' present)" in text
    bad = run(["keybroker", "doctor", "nofield"], env)
    assert "field 'nope' is missing (fields present: extra, key)" in bad.stdout + bad.stderr
    assert bad.code != 0
    assert_nowhere(key, result, bad)
    assert_nowhere(token, result, bad)
    assert_nowhere("x-extra-value", result, bad)
    for out in (result, bad):
        assert key.encode() not in out.out
        assert token.encode() not in out.out

    # a token without the 'default' policy cannot look itself up: the read decides
    narrow = child_token(bao, policy)
    limited = run(["keybroker", "doctor", "d"], dict(env, VAULT_TOKEN=narrow))
    assert "✓ profile 'd' token: accepted ($VAULT_TOKEN; TTL unknown" in limited.stdout, limited
    revoked = child_token(bao, policy)
    bao.api("POST", "auth/token/revoke", {"token": revoked})
    refused = run(["keybroker", "doctor", "d"], dict(env, VAULT_TOKEN=revoked))
    assert "✗ profile 'd' token: $VAULT_TOKEN: refused by the server" in refused.stdout, refused
    assert refused.code != 0
    assert_nowhere(narrow, limited)
    assert_nowhere(revoked, refused)


def test_doctor_unreachable_in_process(kb_env: KbEnv) -> None:
    from keybroker.model import Deadline, Request  # noqa: PLC0415
    from keybroker.sources.base import FetchContext  # noqa: PLC0415
    from keybroker.sources.vault import SOURCE  # noqa: PLC0415

    port = free_port()
    env = dict(kb_env, VAULT_ADDR=f"http://127.0.0.1:{port}")
    checks = SOURCE.doctor(Request("vault", {"path": "x"}), FetchContext(Deadline(5), env))
    assert [c.ok for c in checks] == [False]
    assert checks[0].label == "address"
    assert "cannot connect" in checks[0].detail


# --- the hot path and the contract of flags ---


def heavy_after(call: str) -> bytes:
    """Which of hvac, requests and the login module a child imports running ``call`` on the
    vault source module (``v``): the list it prints."""
    import subprocess  # noqa: PLC0415

    code = (
        f"import sys, keybroker.sources.vault as v; {call};"
        "print([m for m in ('hvac', 'requests', 'keybroker.sources.vault.auth') "
        "if m in sys.modules])"
    )
    return subprocess.run(
        [python(), "-c", code], capture_output=True, check=True, timeout=60
    ).stdout


def test_source_module_imports_cheaply() -> None:
    assert heavy_after("v.SOURCE.canonical({'path': 'p'}, {'VAULT_ADDR': 'http://x:1'})") == (
        b"[]\n"
    )


def test_canonical_fills_defaults_and_env() -> None:
    from keybroker.sources.vault import SOURCE  # noqa: PLC0415

    env = {"VAULT_ADDR": "https://vault.example:8200/", "VAULT_NAMESPACE": "team/"}
    short = SOURCE.canonical({"path": "litellm", "field": "key"}, env)
    full = SOURCE.canonical(
        {
            "addr": "https://vault.example:8200",
            "namespace": "team",
            "mount": "secret/",
            "path": "/litellm/",
            "field": "key",
            "kv_version": 2,
            "auth_method": "token",
            "token_env": "X",
            "tls_verify": False,
            "ca_cert": "/ca.pem",
        },
        {},
    )
    assert short == full
    assert SOURCE.canonical({"path": "litellm", "field": "key", "secret_version": 2}, env) != short
    pinned = SOURCE.canonical({"path": "p", "role_id": "rid-123456"}, env)
    assert "rid-123456" not in json.dumps(pinned)


def test_standalone_flags_per_design(kb_env: KbEnv) -> None:
    result = run(["keybroker-vault", "--help"], kb_env)
    assert result.code == 0
    for flag in (
        "--addr",
        "--path",
        "--mount",
        "--field",
        "--kv-version",
        "--secret-version",
        "--auth-method",
        "--role",
        "--no-cache",
        "--max-age",
        "--config",
        "--profile",
    ):
        assert flag.encode() in result.out, flag
    assert b"--secret-id " not in result.out  # secrets never come from argv
    assert b"--token " not in result.out


# --- Kubernetes ---


def token_review_api(valid_jwt: str) -> Callable[[Seen], Reply]:
    """Stands in for the Kubernetes API's TokenReview (what OpenBao asks to verify a pod)."""

    def answer(seen: Seen) -> Reply:
        token = json.loads(seen.body).get("spec", {}).get("token", "")
        status: dict[str, Any] = {"authenticated": False}
        if token == valid_jwt:
            status = {
                "authenticated": True,
                "user": {
                    "username": "system:serviceaccount:ci:claude",
                    "uid": "uid-claude",
                    "groups": ["system:serviceaccounts"],
                },
            }
        return Reply(
            201, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "status": status}
        )

    return answer


def service_account_jwt() -> str:
    """A service-account-shaped JWT (RS256, as Kubernetes signs them; OpenBao reads claims)."""
    import jwt  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    signer = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return str(
        jwt.encode(
            {
                "iss": "kubernetes/serviceaccount",
                "sub": "system:serviceaccount:ci:claude",
                "kubernetes.io/serviceaccount/namespace": "ci",
                "kubernetes.io/serviceaccount/service-account.name": "claude",
                "kubernetes.io/serviceaccount/service-account.uid": "uid-claude",
                "jti": uid(),
            },
            signer,
            algorithm="RS256",
        )
    )


def test_kubernetes_login_with_service_account_token(
    bao: OpenBao, kb_env: KbEnv, tmp_path: Path, stand_in: Callable[..., StandIn]
) -> None:
    mount = f"k8s-{uid()}"
    enable(bao, "auth", mount, {"type": "kubernetes"})
    pod_jwt = service_account_jwt()
    api = stand_in(token_review_api(pod_jwt))
    bao.api(
        "POST",
        f"auth/{mount}/config",
        {
            "kubernetes_host": api.url,
            # OpenBao insists on a CA certificate (the fake API is plain http): any will do
            "kubernetes_ca_cert": self_signed(tmp_path)[1].read_text(),
            "disable_local_ca_jwt": True,
        },
    )
    path = f"pod-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    bao.api(
        "POST",
        f"auth/{mount}/role/claude",
        {
            "bound_service_account_names": ["claude"],
            "bound_service_account_namespaces": ["ci"],
            "token_policies": [read_policy(bao, f"secret/data/{path}")],
            "token_ttl": "1h",
        },
    )
    sa_file = tmp_path / "sa-token"
    sa_file.write_text(pod_jwt)
    env = vault_env(kb_env, bao, None)
    kb_env.write_config(
        f'[profiles.pod]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        f'auth_method = "kubernetes"\nauth_mount = "{mount}"\nrole = "claude"\n'
        f'kubernetes_token_file = "{sa_file}"\n'
    )
    result = run(["keybroker", "get", "pod"], env)
    assert_key(result, key)
    assert [seen.target for seen in api.seen] == ["/apis/authentication.k8s.io/v1/tokenreviews"]

    other = tmp_path / "other-token"
    other.write_text(service_account_jwt())
    pod_login = ["--auth-method", "kubernetes", "--auth-mount", mount, "--role", "claude"]
    refused = run(
        vault_cli(path, *pod_login, "--kubernetes-token-file", str(other), "--no-cache"),
        dict(env, KEYBROKER_CACHE_DIR=str(tmp_path / "fresh-cache")),
    )
    assert refused.code == 4, refused
    assert f"logging in with kubernetes as role 'claude' at auth/{mount}/login".encode() in (
        refused.err
    )
    assert_nowhere(pod_jwt, result, refused, dirs=state_dirs(kb_env))
    assert_nowhere(other.read_text(), refused)


# --- identity binding of cached logins (issue 12) ---


def test_cached_jwt_login_is_bound_to_the_jwt_presented(bao: OpenBao, kb_env: KbEnv) -> None:
    """Job 2 of another project (its JWT refused by Vault) never reuses job 1's login.

    Before: the login was cached by role name only, so job 2 read with job 1's Vault token
    (exit 0), with a warm cache dir and even with --no-cache.
    """
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    mount = f"jwt-{uid()}"
    enable(bao, "auth", mount, {"type": "jwt"})
    trust_jwt_signer(bao, mount, private)
    first, second = f"bind-a-{uid()}", f"bind-b-{uid()}"
    key_a, key_b = new_key(), new_key()
    bao.kv_put(first, {"key": key_a})
    bao.kv_put(second, {"key": key_b})
    role = f"proj-{uid()}"
    ci_jwt_role(bao, mount, role, f"secret/data/{first}", f"secret/data/{second}")
    profiles = "".join(
        f'[profiles.{name}]\nsource = "vault"\npath = "{path}"\nfield = "key"\n'
        f'auth_method = "jwt"\nauth_mount = "{mount}"\nrole = "{role}"\njwt_env = "CI_JOB_JWT"\n'
        for name, path in (("a", first), ("b", second))
    )
    kb_env.write_config(profiles)
    job1 = vault_env(kb_env, bao, None)
    job1["CI_JOB_JWT"] = sign(private)
    assert_key(run(["keybroker", "get", "a"], job1), key_a)
    assert len(vault_tokens(kb_env)) == 1

    job2 = dict(job1, CI_JOB_JWT=sign(private, repository="evil/other"))
    # a cold entry for profile b, a warm login cache: job 2 must log in itself, and is refused
    other = run(["keybroker", "get", "b"], job2)
    assert_fails(
        other,
        4,
        f"login refused while logging in with jwt as role '{role}'",
        "server said: ",
        secrets=[key_b, *vault_tokens(kb_env)],
    )
    assert b"claim" in other.err  # OpenBao says which bound claim did not match
    bypass = run(["keybroker", "get", "a", "--no-cache"], job2)
    assert_fails(bypass, 4, "login refused", secrets=[key_a, *vault_tokens(kb_env)])
    # job 1 itself still shares its one login across processes
    assert_key(run(["keybroker", "get", "b"], job1), key_b)
    assert len(vault_tokens(kb_env)) == 1
    for token in vault_tokens(kb_env):
        for entry in kb_env.cache_dir.rglob("*"):
            if entry.is_file():
                assert job1["CI_JOB_JWT"].encode() not in entry.read_bytes()
                assert token.encode() not in entry.read_bytes()


def test_identity_inputs_are_pure_and_name_the_credential(tmp_path: Path) -> None:
    """What the lead's cache key is built from; no network, no hvac, no file read."""

    from keybroker.sources.vault import SOURCE  # noqa: PLC0415

    env = {"HOME": str(tmp_path), "VAULT_ADDR": "http://v:8200"}
    base = {"path": "p"}
    ident = SOURCE.identity_inputs
    assert ident(base, env) == [("file", f"{tmp_path}/.vault-token")]
    assert ident(base, dict(env, BAO_TOKEN="t")) == [("env", "BAO_TOKEN")]
    assert ident(base, dict(env, VAULT_TOKEN="t", BAO_TOKEN="u")) == [("env", "VAULT_TOKEN")]
    assert ident(dict(base, token_env="CI_T"), dict(env, VAULT_TOKEN="t")) == [("env", "CI_T")]
    approle_settings = dict(base, auth_method="approle", role_id="rid", secret_id_file="~/sid")
    assert ident(approle_settings, env) == [("literal", "role_id:rid"), ("file", f"{tmp_path}/sid")]
    assert ident(dict(base, auth_method="approle", role_id_env="R", secret_id_env="S"), env) == [
        ("env", "R"),
        ("env", "S"),
    ]
    assert ident(dict(base, auth_method="jwt", role="r", jwt_env="CI_JOB_JWT"), env) == [
        ("env", "CI_JOB_JWT")
    ]
    assert ident(dict(base, auth_method="jwt", role="r", jwt_file="/run/id"), env) == [
        ("file", "/run/id")
    ]
    assert ident(dict(base, auth_method="jwt", role="r"), env) == [
        ("env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
        ("env", "ACTIONS_ID_TOKEN_REQUEST_URL"),
    ]
    assert ident(dict(base, auth_method="kubernetes", role="r"), env) == [
        ("file", "/var/run/secrets/kubernetes.io/serviceaccount/token")
    ]
    assert ident(dict(base, auth_method="userpass", username="alice"), env) == [
        ("literal", "userpass:userpass:alice")
    ]
    assert ident(dict(base, auth_method="ldap", auth_mount="corp/", username="bob"), env) == [
        ("literal", "ldap:corp:bob")
    ]
    assert ident(dict(base, auth_method="oidc", role="dev"), env) == [("literal", "oidc:oidc:dev")]
    assert heavy_after("v.SOURCE.identity_inputs({'path': 'p', 'auth_method': 'jwt'}, {})") == (
        b"[]\n"
    )


# --- errors that say what to do (issue 17) ---

_HIDE_HVAC = '''
import sys

class _NoHvac:
    """Plays a machine where keybroker was installed without the [vault] extra."""

    def find_spec(self, name, path=None, target=None):
        if name == "hvac" or name.startswith("hvac."):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, _NoHvac())
'''


def test_hvac_missing_names_the_install_command(kb_env: KbEnv, tmp_path: Path) -> None:
    """Before: 'keybroker: internal error (ModuleNotFoundError); rerun with --debug'."""
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(_HIDE_HVAC)
    env = dict(
        kb_env, PYTHONPATH=str(hide), VAULT_ADDR="http://127.0.0.1:9", VAULT_TOKEN="s.never-sent"
    )
    kb_env.write_config(
        '[profiles.v]\nsource = "vault"\npath = "p"\nfield = "key"\n'
        '[profiles.person]\nsource = "vault"\npath = "p"\nauth_method = "userpass"\n'
        'username = "alice"\n'
    )
    expected = (
        "keybroker: profile 'v': the vault source needs hvac; install it: pip install "
        "'keybroker[vault]' (or: uv tool install 'keybroker[vault]')\n"
    )
    get = run(["keybroker", "get", "v"], env)
    assert get.err.decode() in (expected, expected.replace("profile 'v': ", ""))
    assert_fails(get, 2)
    standalone = run(vault_cli("p"), env)
    assert_fails(
        standalone,
        2,
        "the vault source needs hvac",
        "pip install 'keybroker[vault]'",
        "uv tool install 'keybroker[vault]'",
    )
    login = run(["keybroker", "login", "person", "--password-stdin"], env, stdin=b"pw\n")
    assert_fails(login, 2, "the vault source needs hvac", "pip install 'keybroker[vault]'")
    doctor = run(["keybroker", "doctor", "v"], env)
    assert doctor.code == 1, doctor
    assert "✗ profile 'v'" in doctor.stdout
    assert "the vault source needs hvac" in doctor.stdout
    assert "pip install 'keybroker[vault]'" in doctor.stdout
    assert "internal error" not in doctor.stdout + doctor.stderr
    for result in (get, standalone, login, doctor):
        assert b"ModuleNotFoundError" not in result.err + result.out


def test_path_copied_from_a_policy_gets_the_right_hint(bao: OpenBao, kb_env: KbEnv) -> None:
    """Before: path = "secret/data/x" suggested 'try path = "data/x"', also wrong."""
    name = f"litellm-{uid()}/claude"
    key = new_key()
    bao.kv_put(name, {"key": key})
    env = vault_env(kb_env, bao, bao.root_token)
    for written in (f"secret/data/{name}", f"secret/metadata/{name}", f"secret/{name}"):
        result = run(vault_cli(written), env)
        assert_fails(result, 5, f"path is relative to the mount 'secret': try path = \"{name}\"")
    # with the least-privilege policy the docs recommend, the same mistake is a 403
    token = child_token(bao, read_policy(bao, f"secret/data/{name}"))
    kb_env.write_config(
        f'[profiles.copied]\nsource = "vault"\npath = "secret/data/{name}"\nfield = "key"\n'
    )
    denied = run(["keybroker", "get", "copied"], dict(env, VAULT_TOKEN=token))
    assert_fails(
        denied,
        4,
        secrets=[token, key],
        exactly=(
            f"keybroker: profile 'copied': vault: permission denied reading "
            f"secret/data/secret/data/{name}; path is relative to the mount 'secret': "
            f'try path = "{name}"\n'
        ),
    )


def test_vaults_own_error_text_is_shown(
    bao: OpenBao, jwt_role: tuple[RSAPrivateKey, str, str], kb_env: KbEnv
) -> None:
    """Before: 'login refused …' only; the reason (the JWT's audience) needed --debug."""
    private, role, path = jwt_role
    env = vault_env(kb_env, bao, None)
    env["CI_JOB_JWT"] = sign(private, aud="someone-else")
    result = run(vault_cli(path, *jwt_flags(role, "--jwt-env", "CI_JOB_JWT")), env)
    assert_fails(
        result,
        4,
        "login refused while logging in with jwt",
        "(server said: error validating token: invalid audience (aud) claim",
        secrets=[env["CI_JOB_JWT"]],
    )
    assert len(result.err.split(b"server said: ")[1].split(b")")[0]) <= 200
    assert result.err.count(b"\n") == 1


def test_no_cache_context_logs_in_afresh(bao: OpenBao, kb_env: KbEnv) -> None:
    """The source side of '--no-cache skips cached logins' (issue 12): a context marked
    ``no_cache`` never uses a cached machine login. resolve() sets the mark (the lead's part);
    here it is set by hand, in process, with a single-use secret_id to tell the two apart."""
    from keybroker.cache.store import Cache, CacheAux  # noqa: PLC0415
    from keybroker.errors import AccessDenied  # noqa: PLC0415
    from keybroker.model import Deadline, Request  # noqa: PLC0415
    from keybroker.sources.base import FetchContext  # noqa: PLC0415
    from keybroker.sources.vault import SOURCE  # noqa: PLC0415

    path = f"nc-{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    role_id, secret_id = approle(bao, read_policy(bao, f"secret/data/{path}"), secret_id_num_uses=1)
    env = dict(vault_env(kb_env, bao, None), SID=secret_id)
    settings = {
        "path": path,
        "field": "key",
        "auth_method": "approle",
        "role_id": role_id,
        "secret_id_env": "SID",
    }
    aux = CacheAux(Cache.open(env), "vault")

    def fetch(no_cache: bool) -> str:
        ctx = FetchContext(Deadline(20), env, aux, no_cache=no_cache)
        return SOURCE.fetch(Request("vault", settings), ctx).value

    assert fetch(False) == key
    assert fetch(False) == key  # the cached login: the single-use secret_id is not spent again
    with pytest.raises(AccessDenied):
        fetch(True)  # a fresh login: the spent secret_id is refused


def test_a_missing_mount_is_named_as_such(bao: OpenBao, kb_env: KbEnv) -> None:
    """Vault answers a path under no mount with 'no handler for route': the mount is what is
    missing, not the secret."""
    mount = f"nomount-{uid()}"
    env = vault_env(kb_env, bao, bao.root_token)
    result = run(vault_cli("app", "--mount", mount), env)
    assert_fails(
        result,
        5,
        secrets=[bao.root_token],
        exactly=(
            f"keybroker: vault: there is no secrets engine mounted at '{mount}/' on {bao.addr}; "
            "set mount to where the KV engine is mounted (vault secrets list), or enable one: "
            f"vault secrets enable -path={mount} kv-v2\n"
        ),
    )
    # an existing mount without the secret keeps its own message
    assert_fails(
        run(vault_cli(f"none-{uid()}"), env),
        5,
        "no secret at secret/data/none-",
        "check mount and path",
    )
    # a token that may not look beyond its paths gets 403 for both; the preflight tells
    token = child_token(bao, read_policy(bao, "secret/data/app"))
    limited = run(
        vault_cli("app", "--mount", mount),
        dict(env, VAULT_TOKEN=token),
    )
    assert_fails(
        limited,
        4,
        secrets=[token],
        exactly=(
            f"keybroker: vault: permission denied reading {mount}/data/app: {bao.addr} has no "
            f"mount '{mount}/' this token may use (it does not exist, or the token's policies "
            "allow nothing under it); check mount (vault secrets list shows the mounts) and the "
            "token's policies\n"
        ),
    )
    denied = run(
        vault_cli(f"other-{uid()}"),
        dict(env, VAULT_TOKEN=token),
    )
    assert_fails(denied, 4, "may not allow 'read' on secret/data/other-")  # the mount exists


def test_missing_jwt_variable_in_gitlab_points_at_id_tokens(kb_env: KbEnv) -> None:
    kb_env.write_config(
        '[profiles.ci]\nsource = "vault"\npath = "app"\nfield = "key"\n'
        'auth_method = "jwt"\nrole = "ci"\njwt_env = "VAULT_ID_TOKEN"\n'
    )
    env = dict(kb_env, VAULT_ADDR="http://127.0.0.1:9", GITLAB_CI="true")
    gitlab = run(["keybroker", "get", "ci"], env)
    assert gitlab.err == (
        b"keybroker: profile 'ci': vault: jwt_env names $VAULT_ID_TOKEN, which is not set or "
        b"empty; add to the job in .gitlab-ci.yml:  id_tokens: { VAULT_ID_TOKEN: { aud: <the "
        b"audience the Vault role is bound to> } }\n"
    )
    assert_fails(gitlab, 2)
    elsewhere = run(["keybroker", "get", "ci"], dict(env, GITLAB_CI=""))
    assert_fails(elsewhere, 2, "export VAULT_ID_TOKEN (in CI: add it as a masked secret variable)")
