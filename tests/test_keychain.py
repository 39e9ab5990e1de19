"""The keychain source against a real Secret Service (gnome-keyring on a private D-Bus)."""

from __future__ import annotations

from tests.conftest import KbEnv
from tests.kb import assert_fails, assert_key, assert_nowhere, run

SECRET = "sk-keychain-5d4c3b2a19"


def test_set_then_standalone_get(keychain_env: KbEnv) -> None:
    """The issue's acceptance: printf 'v\\n' | keybroker keychain set svc user, then get."""
    stored = run(["keybroker", "keychain", "set", "svc", "user"], keychain_env, stdin=b"v\n")
    assert stored.code == 0, stored
    assert stored.out == b""
    result = run(["keybroker-keychain", "--service", "svc", "--username", "user"], keychain_env)
    assert_key(result, "v")


def test_profile_get_cache_and_invalidation_on_set(keychain_env: KbEnv) -> None:
    keychain_env.write_config(
        '[profiles.kc]\nsource = "keychain"\nservice = "litellm"\nusername = "me"\n'
    )
    assert (
        run(
            ["keybroker", "keychain", "set", "litellm", "me"],
            keychain_env,
            stdin=SECRET.encode() + b"\n",
        ).code
        == 0
    )
    first = run(["keybroker", "get", "kc"], keychain_env)
    assert_key(first, SECRET)
    rotated = SECRET + "-v2"
    stored = run(
        ["keybroker", "keychain", "set", "litellm", "me"], keychain_env, stdin=rotated.encode()
    )
    assert stored.code == 0
    assert rotated.encode() not in stored.err
    second = run(["keybroker", "get", "kc"], keychain_env)
    assert_key(second, rotated)  # set removed the cached entry: no stale key
    # the standalone helper and the profile share the entry
    report = run(["keybroker", "print-token", "kc", "--json"], keychain_env)
    assert b'"state": "hit"' in report.out
    assert_nowhere(rotated, first, second, dirs=[keychain_env.cache_dir])


def test_default_username(keychain_env: KbEnv) -> None:
    assert run(["keybroker", "keychain", "set", "solo"], keychain_env, stdin=b"k-1\n").code == 0
    assert_key(run(["keybroker-keychain", "--service", "solo"], keychain_env), "k-1")


def test_missing_entry_is_5_with_the_command_to_fix_it(keychain_env: KbEnv) -> None:
    result = run(["keybroker-keychain", "--service", "absent", "--username", "u"], keychain_env)
    assert_fails(result, 5, "no keychain entry", "run: keybroker keychain set absent u")


def test_delete(keychain_env: KbEnv) -> None:
    run(["keybroker", "keychain", "set", "gone", "u"], keychain_env, stdin=b"k-2\n")
    assert_key(
        run(["keybroker-keychain", "--service", "gone", "--username", "u"], keychain_env), "k-2"
    )
    deleted = run(["keybroker", "keychain", "delete", "gone", "u"], keychain_env)
    assert deleted.code == 0
    assert_fails(
        run(["keybroker-keychain", "--service", "gone", "--username", "u"], keychain_env), 5
    )
    assert_fails(run(["keybroker", "keychain", "delete", "gone", "u"], keychain_env), 5)


def test_set_refuses_invalid_values_without_echoing_them(keychain_env: KbEnv) -> None:
    result = run(
        ["keybroker", "keychain", "set", "bad", "u"], keychain_env, stdin=b"has space inside\n"
    )
    assert_fails(result, 6, "whitespace")
    assert b"has space" not in result.err


def test_value_never_in_argv_usage(keychain_env: KbEnv) -> None:
    """There is no way to pass the value as an argument: extra arguments are refused."""
    result = run(["keybroker", "keychain", "set", "svc", "user", SECRET], keychain_env, stdin=b"")
    assert_fails(result, 2, "no value on the command line", secrets=[SECRET])


def test_no_backend_names_what_is_missing(kb_env: KbEnv) -> None:
    env = dict(kb_env, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    result = run(["keybroker-keychain", "--service", "svc"], env)
    assert_fails(result, 2, "no OS keychain backend", "Secret Service")


def test_unreachable_secret_service_is_3(kb_env: KbEnv) -> None:
    env = dict(
        kb_env,
        PYTHON_KEYRING_BACKEND="keyring.backends.SecretService.Keyring",
        DBUS_SESSION_BUS_ADDRESS=f"unix:path={kb_env.base}/no-bus",
    )
    result = run(["keybroker-keychain", "--service", "svc"], env)
    assert_fails(result, 3, "keychain service is not reachable", "DBUS_SESSION_BUS_ADDRESS")


def test_data_key_in_the_keychain(keychain_env: KbEnv) -> None:
    """KEYBROKER_DATA_KEY_STORE=keychain: no key file on disk, the cache still works."""
    env = dict(keychain_env, KEYBROKER_DATA_KEY_STORE="keychain")
    first = run(["keybroker", "get", "demo"], env)
    assert first.code == 0, first
    assert_key(run(["keybroker", "get", "demo"], env), first.stdout.strip())  # a hit
    assert not (keychain_env.data_dir / "cache.key").exists()
    stored = run(
        [
            "keybroker-keychain",
            "--service",
            "keybroker",
            "--username",
            "cache-data-key",
            "--no-cache",
        ],
        keychain_env,
    )
    assert stored.code == 0
    assert len(stored.stdout.strip()) == 64  # 32 bytes, hex
    assert_nowhere(stored.stdout.strip(), first, dirs=[keychain_env.cache_dir])
    # the file-kept key is a different key: its entries are misses, never wrong answers
    other = run(["keybroker", "get", "demo"], keychain_env)
    assert other.code == 0
    assert other.stdout != first.stdout


def test_damaged_keychain_data_key_is_exit_7(keychain_env: KbEnv) -> None:
    env = dict(keychain_env, KEYBROKER_DATA_KEY_STORE="keychain")
    run(
        ["keybroker", "keychain", "set", "keybroker", "cache-data-key"],
        keychain_env,
        stdin=b"not-hex\n",
    )
    assert_fails(
        run(["keybroker", "get", "demo"], env),
        7,
        "damaged",
        "keybroker keychain delete keybroker cache-data-key",
    )
    run(["keybroker", "keychain", "delete", "keybroker", "cache-data-key"], keychain_env)
    assert run(["keybroker", "get", "demo"], env).code == 0  # a new key is made


def test_bad_data_key_store_value_is_exit_7(kb_env: KbEnv) -> None:
    result = run(["keybroker", "get", "demo"], dict(kb_env, KEYBROKER_DATA_KEY_STORE="vault"))
    assert_fails(result, 7, "KEYBROKER_DATA_KEY_STORE")
