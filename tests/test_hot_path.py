"""The cache-hit path imports no click, boto3, hvac, keyring or requests (nor TOML/platformdirs).

Speed itself is measured in benchmarks/, not asserted here; this pins the imports that make it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from unittest.mock import patch

from freezegun import freeze_time

from keybroker import config
from keybroker.cache.store import Cache
from keybroker.cli.common import load_config
from keybroker.config import index
from keybroker.fastpath import main as fast
from keybroker.fastpath import reasons
from keybroker.resolve import resolve
from keybroker.sources import base
from tests import scripted
from tests.conftest import KbEnv
from tests.fixtures.modules import FULL_PATH_MODULES, HEAVY, loaded_modules
from tests.fixtures.openbao import OpenBao
from tests.kb import run


def test_get_hit_imports_nothing_heavy(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.x]\nsource = "env"\nvar = "X"\n')  # a config to index
    assert run(["keybroker", "get", "demo"], kb_env).code == 0  # miss: fills cache and index
    assert loaded_modules(kb_env, ["keybroker", "get", "demo"]).modules == []


def test_keychain_hit_does_not_import_keyring(keychain_env: KbEnv) -> None:
    keychain_env.write_config('[profiles.kc]\nsource = "keychain"\nservice = "hot"\n')
    run(["keybroker", "keychain", "set", "hot"], keychain_env, stdin=b"sk-hot-1\n")
    assert run(["keybroker", "get", "kc"], keychain_env).code == 0
    assert loaded_modules(keychain_env, ["keybroker", "get", "kc"]).modules == []
    # the first standalone call of a command line takes the full path and indexes it
    assert run(["keybroker-keychain", "--service", "hot"], keychain_env).code == 0
    loaded = loaded_modules(
        keychain_env, ["keybroker-keychain", "--service", "hot"], func="keychain_main"
    )
    assert loaded.modules == []


def test_hit_is_served_without_the_full_machinery(kb_env: KbEnv) -> None:
    assert run(["keybroker", "get", "demo"], kb_env).code == 0
    loaded = loaded_modules(kb_env, ["keybroker", "get", "demo"], FULL_PATH_MODULES)
    assert loaded.modules == []


def test_config_change_is_seen_at_once(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "A"\nstorage = "disk"\n')
    env = dict(kb_env, A="sk-from-a", B="sk-from-b")
    assert run(["keybroker", "get", "p"], env).out == b"sk-from-a\n"
    assert run(["keybroker", "get", "p"], env).out == b"sk-from-a\n"  # a hit
    kb_env.write_config('[profiles.p]\nsource = "env"\nvar = "B"\nstorage = "disk"\n')
    assert run(["keybroker", "get", "p"], env).out == b"sk-from-b\n"


def test_index_remembers_entry_ids_per_environment(kb_env: KbEnv) -> None:
    """A source whose entry id depends on the environment (like VAULT_ADDR) gets one index
    variant per environment, so the hit path works in each of them."""

    class EnvScripted(scripted.ScriptedSource):
        def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
            return {"id": settings["id"], "addr": env.get("SCRIPTED_ADDR", "default")}

    base.register(EnvScripted())
    try:
        kb_env.write_config('[profiles.s]\nsource = "scripted"\nid = "x"\n')
        with freeze_time("2026-01-01 12:00:00"):
            for addr in ("https://a.example", "https://b.example"):
                env = dict(kb_env, SCRIPTED_ADDR=addr)
                cache = Cache.open(env)
                cfg = load_config(env, cache)
                resolve(config.request_for(cfg, "s", env), env, cache=cache)
                with patch.dict(os.environ, env, clear=True):
                    probe = fast.try_get({"profile": "s"}, 0.0)
                    if addr == "https://b.example":
                        assert (probe.value, probe.why) == (None, reasons.ENV_CHANGED)
                        index.remember_profile(cfg, env, str(cache.root), "s")
                        probe = fast.try_get({"profile": "s"}, 0.0)
                key = probe.value
                assert key is not None, probe.why
            with patch.dict(
                os.environ, dict(kb_env, SCRIPTED_ADDR="https://a.example"), clear=True
            ):
                first = fast.try_get({"profile": "s"}, 0.0)
            assert first.value is not None
            assert first.value != key  # two environments, two entries
    finally:
        scripted.uninstall()


def test_standalone_hits_skip_the_full_machinery(keychain_env: KbEnv) -> None:
    """keybroker-keychain by flags and by --profile: a hit loads neither resolve nor keyring."""
    keychain_env.write_config('[profiles.kc]\nsource = "keychain"\nservice = "solo-hot"\n')
    run(["keybroker", "keychain", "set", "solo-hot"], keychain_env, stdin=b"sk-solo-1\n")
    assert run(["keybroker", "get", "kc"], keychain_env).out == b"sk-solo-1\n"  # fill + index
    # a standalone command line is indexed the first time the full path answers it
    for argv in (
        ["keybroker-keychain", "--service", "solo-hot"],
        ["keybroker-keychain", "--service=solo-hot", "--username", "keybroker"],
    ):
        assert run(argv, keychain_env).out == b"sk-solo-1\n"
    heavy = (*HEAVY, "keybroker.resolve", "argparse")
    for argv in (
        ["keybroker-keychain", "--service", "solo-hot"],
        ["keybroker-keychain", "--service=solo-hot", "--username", "keybroker"],
        ["keybroker-keychain", "--profile", "kc"],
    ):
        loaded = loaded_modules(keychain_env, argv, heavy, func="keychain_main")
        assert loaded.out == b"sk-solo-1\n"
        assert loaded.modules == [], (argv, loaded.err)


def test_standalone_profile_of_another_source_is_still_an_error(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n')
    env = dict(kb_env, K="sk-env-1")
    assert run(["keybroker", "get", "e"], env).out == b"sk-env-1\n"
    result = run(["keybroker-keychain", "--profile", "e"], env)
    assert result.code == 2
    assert result.out == b""
    assert b"uses source 'env', not 'keychain'" in result.err


def test_a_vault_miss_builds_its_values_without_dataclasses(kb_env: KbEnv, bao: OpenBao) -> None:
    """The miss path's values are NamedTuples and plain classes (keybroker.model says why):
    the cold Vault call's budget is 1.1× a plain hvac script, and ``@dataclass`` alone cost
    ~8 ms of it. A real miss against OpenBao (hvac loaded) must not load ``dataclasses``."""
    bao.kv_put("hot-path", {"key": "sk-hot-path-0123456789"})
    kb_env.write_config(f'[profiles.v]\nsource = "vault"\naddr = "{bao.addr}"\npath = "hot-path"\n')
    env = dict(kb_env, VAULT_TOKEN=bao.root_token)
    assert run(["keybroker", "get", "v"], env).code == 0  # indexes the profile
    for entry in kb_env.base.rglob("*.entry"):
        entry.unlink()  # the next call is a miss that fetches
    loaded = loaded_modules(env, ["keybroker", "get", "v"], ("hvac", "dataclasses"))
    assert loaded.out == b"sk-hot-path-0123456789\n"
    assert loaded.modules == ["hvac"]
