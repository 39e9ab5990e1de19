"""The encrypted store: sealing, tamper and garbage handling, modes, unsafe directories."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from keybroker.cache.crypto import KEY_FILE, MAGIC, aesgcm, seal, unseal
from keybroker.cache.entry import Entry
from keybroker.cache.store import Cache
from keybroker.errors import CacheError
from tests.conftest import KbEnv
from tests.kb import assert_fails, assert_key, assert_nowhere, run

SECRET = "sk-cache-test-9b8a7c6d5e"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")


def make_entry(eid: str = "a" * 64, value: str = SECRET) -> Entry:
    return Entry(id=eid, value=value, fetched_at=1000.0, expires_at=5000.0, source="t", label="t")


def counter_profile(kb_env: KbEnv) -> Path:
    counter = kb_env.base / "count"
    script = kb_env.base / "src.py"
    script.write_text(f"open({str(counter)!r}, 'a').write('x')\nprint({SECRET!r})\n")
    kb_env.write_config(
        f'[profiles.p]\nsource = "command"\ncommand = [{json.dumps(sys.executable)}, '
        f"{json.dumps(str(script))}]\n"
    )
    return counter


def test_round_trip_and_secret_not_on_disk(kb_env: KbEnv) -> None:
    cache = Cache.open(kb_env)
    cache.write(make_entry())
    entry = cache.read("a" * 64)
    assert entry is not None
    assert entry.value == SECRET
    assert_nowhere(SECRET, dirs=[kb_env.cache_dir, kb_env.data_dir])


def test_modes_0700_and_0600(kb_env: KbEnv) -> None:
    cache = Cache.open(kb_env)
    cache.write(make_entry())
    assert stat.S_IMODE(os.stat(kb_env.cache_dir).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(kb_env.data_dir).st_mode) == 0o700
    for path in [*kb_env.cache_dir.iterdir(), kb_env.data_dir / KEY_FILE]:
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path


def test_entry_moved_to_another_id_does_not_open(kb_env: KbEnv) -> None:
    cache = Cache.open(kb_env)
    cache.write(make_entry("a" * 64))
    os.replace(cache.path("a" * 64), cache.path("b" * 64))
    assert cache.read("b" * 64) is None
    assert not cache.path("b" * 64).exists()  # removed as unusable


def test_tampered_header_or_ciphertext_does_not_open(kb_env: KbEnv) -> None:
    cache = Cache.open(kb_env)
    key = cache.key()
    blob = seal(key, "a" * 64, make_entry().encode(), SECRET)
    # flip one bit inside the clear header (the expiry, the id…): authentication must fail
    tampered_header = blob[:20] + bytes([blob[20] ^ 1]) + blob[21:]
    assert tampered_header != blob
    flipped = blob[:-1] + bytes([blob[-1] ^ 1])
    for bad in (tampered_header, flipped, blob[: len(blob) // 2], b"", MAGIC + b"\xff" * 4):
        cache.path("a" * 64).write_bytes(bad)
        assert cache.read("a" * 64) is None
    with pytest.raises(Exception):  # noqa: B017 - any failure to open is fine here
        unseal(key, "a" * 64, flipped)


def test_entry_sealed_with_another_data_key_is_a_miss(kb_env: KbEnv) -> None:
    cache = Cache.open(kb_env)
    cache.write(make_entry())
    (kb_env.data_dir / KEY_FILE).unlink()
    fresh = Cache.open(kb_env)
    assert fresh.read("a" * 64) is None


def test_garbage_in_every_cache_file_next_call_still_answers(kb_env: KbEnv) -> None:
    counter = counter_profile(kb_env)
    assert_key(run(["keybroker", "get", "p"], kb_env), SECRET)
    for path in kb_env.cache_dir.iterdir():
        path.write_bytes(os.urandom(200))
    result = run(["keybroker", "get", "p"], kb_env)
    assert_key(result, SECRET)
    assert result.err == b""
    assert counter.read_text() == "xx"
    assert_key(run(["keybroker", "get", "p"], kb_env), SECRET)
    assert counter.read_text() == "xx"  # the rewritten entry is good again


def test_damaged_data_key_is_exit_7_with_the_fix(kb_env: KbEnv) -> None:
    counter_profile(kb_env)
    assert_key(run(["keybroker", "get", "p"], kb_env), SECRET)
    (kb_env.data_dir / KEY_FILE).write_bytes(b"short")
    assert_fails(run(["keybroker", "get", "p"], kb_env), 7, "damaged", "rm ")


def test_symlinked_cache_dir_is_refused(kb_env: KbEnv, tmp_path: Path) -> None:
    counter_profile(kb_env)
    real = tmp_path / "elsewhere"
    real.mkdir(mode=0o700)
    kb_env.cache_dir.parent.mkdir(parents=True, exist_ok=True)
    kb_env.cache_dir.symlink_to(real)
    assert_fails(run(["keybroker", "get", "p"], kb_env), 7, "symlink")


def test_group_writable_cache_dir_is_refused(kb_env: KbEnv) -> None:
    counter_profile(kb_env)
    kb_env.cache_dir.mkdir(parents=True)
    os.chmod(kb_env.cache_dir, 0o770)
    assert_fails(run(["keybroker", "get", "p"], kb_env), 7, "writable by group", "chmod 700")
    with pytest.raises(CacheError):
        Cache.open(kb_env)


def test_foreign_owned_cache_dir_is_refused(kb_env: KbEnv) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root to chown")  # CI runs as root
    kb_env.cache_dir.mkdir(parents=True, mode=0o700)
    os.chown(kb_env.cache_dir, 12345, 12345)
    with pytest.raises(CacheError, match="belongs to uid 12345"):
        Cache.open(kb_env)


def test_readable_data_key_is_refused(kb_env: KbEnv) -> None:
    cache = Cache.open(kb_env)
    cache.write(make_entry())
    os.chmod(kb_env.data_dir / KEY_FILE, 0o644)
    with pytest.raises(CacheError, match="readable by others"):
        Cache.open(kb_env).read("a" * 64)


def test_env_source_does_not_need_a_safe_cache(kb_env: KbEnv) -> None:
    """storage = none never touches the cache, so an unsafe cache dir does not block it."""
    kb_env.cache_dir.mkdir(parents=True)
    os.chmod(kb_env.cache_dir, 0o777)
    kb_env.write_config('[profiles.e]\nsource = "env"\nvar = "K"\n')
    assert_key(run(["keybroker", "get", "e"], dict(kb_env, K=SECRET)), SECRET)


def test_unwritable_entry_still_prints_key_with_warning(kb_env: KbEnv) -> None:
    """A cache write that fails (here: a directory squats the entry's name, which defeats
    even root) costs the caching, not the key: printed, with a warning on stderr."""
    counter = counter_profile(kb_env)
    assert_key(run(["keybroker", "get", "p"], kb_env), SECRET)
    (entry,) = kb_env.cache_dir.glob("*.entry")
    entry.unlink()
    entry.mkdir()
    result = run(["keybroker", "get", "p"], kb_env)
    assert result.code == 0, result
    assert result.out == SECRET.encode() + b"\n"
    assert b"warning: could not write the cache" in result.err
    assert SECRET.encode() not in result.err
    assert counter.read_text() == "xx"


def test_cache_list_and_clear(kb_env: KbEnv) -> None:
    counter = counter_profile(kb_env)
    assert_key(run(["keybroker", "get", "p"], kb_env), SECRET)
    listed = run(["keybroker", "cache", "list"], kb_env)
    assert listed.code == 0
    assert b" p " in listed.out
    assert SECRET.encode() not in listed.out + listed.err
    as_json = json.loads(run(["keybroker", "cache", "list", "--json"], kb_env).out)
    assert as_json["version"] == 1
    assert as_json["entries"][0]["profiles"] == ["p"]
    assert as_json["entries"][0]["source"] == "command"
    cleared = run(["keybroker", "cache", "clear", "p"], kb_env)
    assert cleared.code == 0
    assert b"removed cached key for profile 'p'" in cleared.err
    assert_key(run(["keybroker", "get", "p"], kb_env), SECRET)
    assert counter.read_text() == "xx"
    assert run(["keybroker", "cache", "clear"], kb_env).code == 0
    assert json.loads(run(["keybroker", "cache", "list", "--json"], kb_env).out)["entries"] == []


def test_cheap_aesgcm_is_cryptographys_public_class() -> None:
    """The hit path takes AES-GCM from the binding; it must be the documented class."""
    assert aesgcm() is AESGCM


def test_clear_keeps_young_temp_files_and_removes_orphans(kb_env: KbEnv) -> None:
    """A young .tmp may be a concurrent writer's (just before os.replace); an old one is an
    orphan of a killed writer."""
    cache = Cache.open(kb_env)
    cache.write(make_entry())
    young = kb_env.cache_dir / ".x.entry.1.aa.tmp"
    old = kb_env.cache_dir / ".y.entry.2.bb.tmp"
    young.write_bytes(b"in flight")
    old.write_bytes(b"orphan")
    os.utime(old, (1_000_000, 1_000_000))
    assert cache.clear_all() == 1
    assert young.exists()
    assert not old.exists()
    assert list(kb_env.cache_dir.glob("*.entry")) == []


# --- the one secure writer (cache entries, the data key, ci export's files) ---


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes")
def test_atomic_write_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    from keybroker.cache.files import atomic_write  # noqa: PLC0415

    old = os.umask(0o477)  # would leave the owner without read: open's mode is masked
    try:
        atomic_write(tmp_path / "f", b"data")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "f").stat().st_mode) == 0o600
    assert (tmp_path / "f").read_bytes() == b"data"


def test_atomic_write_replaces_nothing_when_the_last_check_refuses(tmp_path: Path) -> None:
    from keybroker.cache.files import atomic_write  # noqa: PLC0415

    target = tmp_path / "f"
    target.write_bytes(b"old")

    def refuse() -> None:
        raise CacheError("the target changed")

    with pytest.raises(CacheError, match="the target changed"):
        atomic_write(target, b"new", before_replace=refuse)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["f"]  # no temp file left behind
