"""Config: TOML profiles, precedence, errors that name file/table/key, and the hot-path index."""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import pytest

from keybroker import config
from keybroker.cache.store import Cache
from keybroker.cli.common import load_config
from keybroker.errors import ConfigError, UsageError
from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.fixtures.vault_setup import enable, new_key, read_policy, uid
from tests.kb import assert_fails, assert_key, run

GOOD = """
[defaults]
margin = "90s"
timeout = "10s"

[defaults.command]
cwd = "/tmp"

[profiles.litellm]
source = "env"
var = "LITELLM_KEY"
max_age = "1h"

[profiles.op]
source = "command"
command = ["op", "read", "op://vault/item/key"]
storage = "disk"
"""


def test_profiles_defaults_and_options(kb_env: KbEnv) -> None:
    kb_env.write_config(GOOD)
    cfg = config.load(kb_env)
    req = config.request_for(cfg, "litellm", kb_env)
    assert req.source == "env"
    assert req.settings == {"var": "LITELLM_KEY"}
    assert req.options.max_age == 3600
    assert req.options.margin == 90
    assert req.options.timeout == 10
    assert req.options.storage == "none"  # env's default storage
    op = config.request_for(cfg, "op", kb_env)
    assert op.settings["cwd"] == "/tmp"  # inherited from [defaults.command]
    assert op.options.storage == "disk"


def test_precedence_flags_profile_env_defaults(kb_env: KbEnv) -> None:
    kb_env.write_config(GOOD)
    cfg = config.load(kb_env)
    env = dict(kb_env, KEYBROKER_TIMEOUT="7", KEYBROKER_MARGIN="30")
    req = config.request_for(cfg, "litellm", env)
    assert req.options.timeout == 7  # env beats [defaults]
    assert req.options.margin == 30
    cfg.profiles["litellm"].options["margin"] = 45.0
    assert config.request_for(cfg, "litellm", env).options.margin == 45  # profile beats env
    flagged = config.request_for(cfg, "litellm", env, {"margin": 5.0}, {"var": "OTHER"})
    assert flagged.options.margin == 5  # flags beat everything
    assert flagged.settings["var"] == "OTHER"


def test_ttl_from_claude_code_env(kb_env: KbEnv) -> None:
    cfg = config.load(kb_env)
    env = dict(kb_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS="60000")
    assert config.request_for(cfg, "demo", env).options.ttl == 60
    assert config.request_for(cfg, "demo", kb_env).options.ttl == 300
    with pytest.raises(UsageError, match="CLAUDE_CODE_API_KEY_HELPER_TTL_MS"):
        config.request_for(cfg, "demo", dict(kb_env, CLAUDE_CODE_API_KEY_HELPER_TTL_MS="soon"))


@pytest.mark.parametrize(
    ("text", "needles"),
    [
        ("[profiles.a]\nsource = 'env'\nvar = 'X'\nmax_age = '5x'\n", ["[profiles.a]", "max_age"]),
        ("[profiles.a]\nsource = 'env'\nvarr = 'X'\n", ["[profiles.a]", "unknown key 'varr'"]),
        ("[profiles.a]\nvar = 'X'\n", ["[profiles.a]", "missing key 'source'"]),
        ("[profiles.a]\nsource = 'nope'\n", ["[profiles.a]", "key 'source'", "unknown source"]),
        ("[profiles.a]\nsource = 'command'\ncommand = 3\n", ["[profiles.a]", "'command'"]),
        ("[profiles.a]\nsource = 'env'\nvar = 'X'\nstorage = 'ram'\n", ["'storage'"]),
        ("[defaults]\nbogus = 1\n", ["[defaults]", "unknown key 'bogus'"]),
        ("[profiles.a\n", ["invalid TOML"]),
    ],
)
def test_errors_name_file_table_and_key(kb_env: KbEnv, text: str, needles: list[str]) -> None:
    path = kb_env.write_config(text)
    with pytest.raises(ConfigError) as info:
        config.load(kb_env)
    message = info.value.render()
    assert str(path) in message
    for needle in needles:
        assert needle in message
    assert info.value.exit_code == 2


def test_unknown_profile_lists_known_ones(kb_env: KbEnv) -> None:
    kb_env.write_config(GOOD)
    with pytest.raises(UsageError, match=r"unknown profile 'nope'.*litellm"):
        config.load(kb_env).profile("nope")


def test_missing_config_still_has_demo(kb_env: KbEnv) -> None:
    cfg = config.load(kb_env)
    assert not cfg.exists
    assert "demo" in cfg.profiles


def test_missing_explicit_config_is_an_error(kb_env: KbEnv, tmp_path: Path) -> None:
    env = dict(kb_env, KEYBROKER_CONFIG=str(tmp_path / "absent.toml"))
    with pytest.raises(ConfigError, match="does not exist"):
        config.load(env)


def test_index_is_reused_and_invalidated_by_changes(kb_env: KbEnv) -> None:
    kb_env.write_config(GOOD)
    kb_env.cache_dir.mkdir(parents=True, mode=0o700)
    first = load_config(kb_env, Cache.open(kb_env))
    assert list(kb_env.cache_dir.glob("index-*.bin"))
    # A config change (different size and mtime) must be seen at once.
    kb_env.write_config(GOOD.replace('var = "LITELLM_KEY"', 'var = "OTHER_KEY_NAME"'))
    st = os.stat(kb_env.config_path)
    os.utime(kb_env.config_path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    second = load_config(kb_env, Cache.open(kb_env))
    assert first.profiles["litellm"].settings["var"] == "LITELLM_KEY"
    assert second.profiles["litellm"].settings["var"] == "OTHER_KEY_NAME"


def test_index_garbage_is_ignored(kb_env: KbEnv) -> None:
    kb_env.write_config(GOOD)
    kb_env.cache_dir.mkdir(parents=True, mode=0o700)
    load_config(kb_env, Cache.open(kb_env))
    for index in kb_env.cache_dir.glob("index-*.bin"):
        index.write_bytes(b"\x00garbage{")
    assert load_config(kb_env, Cache.open(kb_env)).profiles["litellm"].source == "env"


# --- issue 22: shared profiles that fit each person (DESIGN section 5) ----------------------

SHARED = """[profiles.team]
source = "vault"
path = "{path}"
field = "key"
auth_method = "userpass"
description = "the team's gateway key"
"""


def _person(openbao: OpenBao, kb_env: KbEnv) -> tuple[dict[str, str], dict[str, str]]:
    """A Vault userpass person, a system layer with the shared profile, and their env."""
    enable(openbao, "auth", "userpass", {"type": "userpass"})
    path, user, key = f"shared-{uid()}", f"dev-{uid()}", new_key()
    password = "pw-" + secrets.token_hex(12)
    openbao.kv_put(path, {"key": key, "other": key + "-other"})
    openbao.api(
        "POST",
        f"auth/userpass/users/{user}",
        {
            "password": password,
            "token_policies": [read_policy(openbao, f"secret/data/{path}")],
            "token_ttl": "1h",
        },
    )
    system = kb_env.base / "system.toml"
    system.write_text(SHARED.format(path=path))
    system.chmod(0o644)
    env = dict(kb_env, VAULT_ADDR=openbao.addr, KEYBROKER_SYSTEM_CONFIG=str(system))
    return {"user": user, "password": password, "key": key, "path": path}, env


def test_user_table_without_source_adds_to_the_system_profile(
    openbao: OpenBao, kb_env: KbEnv
) -> None:
    """Before: a user's [profiles.team] username = "…" failed with "missing key 'source'"."""
    person, env = _person(openbao, kb_env)
    kb_env.write_config(f'[profiles.team]\nusername = "{person["user"]}"\nfield = "other"\n')
    login = run(
        ["keybroker", "login", "team", "--password-stdin"],
        env,
        stdin=person["password"].encode() + b"\n",
    )
    assert login.code == 0, login
    assert_key(run(["keybroker", "get", "team"], env), person["key"] + "-other")
    shown = run(["keybroker", "config", "show", "--json"], env)
    assert shown.code == 0, shown
    team = json.loads(shown.out)["profiles"]["team"]
    assert team["from"] == f"{kb_env.base / 'system.toml'} + {kb_env.config_path}", team
    assert team["settings"]["username"] == person["user"]
    assert team["settings"]["path"] == person["path"]


def test_username_defaults_to_the_login_name(openbao: OpenBao, kb_env: KbEnv) -> None:
    """Before: the shared userpass profile without username failed: "needs a username"."""
    person, env = _person(openbao, kb_env)
    env.update(LOGNAME=person["user"], USER=person["user"])
    before = run(["keybroker", "get", "team"], env)
    assert_fails(before, 8, f"no userpass login as '{person['user']}'", "keybroker login team")
    login = run(
        ["keybroker", "login", "team", "--password-stdin"],
        env,
        stdin=person["password"].encode() + b"\n",
    )
    assert login.code == 0, login
    assert_key(run(["keybroker", "get", "team"], env), person["key"])


def test_user_table_with_source_replaces_the_system_profile(kb_env: KbEnv) -> None:
    system = kb_env.base / "system.toml"
    system.write_text(SHARED.format(path="p"))
    kb_env.write_config('[profiles.team]\nsource = "env"\nvar = "MINE"\n')
    env = dict(kb_env, KEYBROKER_SYSTEM_CONFIG=str(system), MINE="sk-mine-1")
    assert_key(run(["keybroker", "get", "team"], env), "sk-mine-1")
    shown = json.loads(run(["keybroker", "config", "show", "--json"], env).out)
    assert shown["profiles"]["team"]["settings"] == {"var": "MINE"}


@pytest.mark.parametrize(
    ("user_text", "needles"),
    [
        (
            '[profiles.teem]\nusername = "x"\n',
            [
                ":1: [profiles.teem]: missing key 'source'",
                "no system profile 'teem'",
                "did you mean 'team'?",
            ],
        ),
        (
            '[profiles.team]\nusername = "x"\nfeild = "key"\n',
            [
                ":3: [profiles.team]: unknown key 'feild' for source 'vault'",
                "did you mean 'field'?",
            ],
        ),
    ],
)
def test_user_table_without_source_errors_say_where(
    kb_env: KbEnv, user_text: str, needles: list[str]
) -> None:
    system = kb_env.base / "system.toml"
    system.write_text(SHARED.format(path="p"))
    kb_env.write_config(user_text)
    result = run(["keybroker", "get", "team"], dict(kb_env, KEYBROKER_SYSTEM_CONFIG=str(system)))
    assert_fails(result, 2, str(kb_env.config_path), *needles)
