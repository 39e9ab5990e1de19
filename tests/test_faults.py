"""Fault injection with real processes: what the helper does when things go wrong.

- kill -9 at random points of a cold call (fetch, lock, write): the cache never serves a
  torn entry and the next call always answers;
- concurrent writers and readers with ``cache clear`` in between;
- a backend that stalls (accepts, never answers), resets connections, or answers 500/429:
  the helper answers within its deadline, serves a still-valid cached key where the rules
  allow (advisory window, with a warning), and never an expired one;
- clock jumps seen by a real process (entries fetched "in the future", or past expiry);
- a full or read-only cache dir: the key is still printed, with a warning on stderr;
- hostile config and secret values: a clear error, nothing on stdout, nothing leaked.

The upstream in most tests is the ``command`` source running a tiny shell script that counts
its runs (one line per upstream fetch) and mints a random key; the stalling and failing
backends are the stand-ins of tests/fixtures/standin.py served from this process, reached
through the ``command`` source and through the ``vault`` source (real hvac over HTTP).
Timing bounds below are deliberately loose (deadline + watchdog grace + a wide slack): they
catch a hang, not a slow machine.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import pytest

from keybroker.cache.crypto import MAGIC
from keybroker.cache.store import Cache
from tests.conftest import KbEnv
from tests.fixtures.standin import FaultProxy, Reply, StandIn
from tests.kb import (
    RANDOM_KEY,
    Result,
    assert_fails,
    assert_key,
    exe,
    fetches,
    minting_profile,
    plant,
    run,
)

KEY_LINE = re.compile(rb"^sk-[0-9a-f]{32}\n\Z")
#: KEYBROKER_TIMEOUT for the stalling tests, and how much later than it a call may end
#: (watchdog grace 1.5 s, process start-up on a loaded 2-core machine): a hang bound only.
DEADLINE = 2.0
SLACK = 20.0


# --- upstream stand-ins --------------------------------------------------------------


def is_key(result: Result) -> bool:
    return result.code == 0 and KEY_LINE.match(result.out) is not None


@pytest.fixture
def fault_server(request: pytest.FixtureRequest) -> Iterator[FaultProxy]:
    """A listener with nothing behind it that stalls or resets (``request.param``)."""
    server = FaultProxy(None, request.param)
    yield server
    server.close()


@pytest.fixture
def broken_server(
    request: pytest.FixtureRequest, stand_in: Callable[..., StandIn]
) -> Iterator[str]:
    """The address of a server that stalls, resets, or answers every request with HTTP 500
    or 429 (a JSON error body, ``Retry-After: 1``), as ``request.param`` says."""
    mode = request.param
    if mode in ("500", "429"):
        yield stand_in(
            Reply(
                int(mode),
                {"errors": ["injected fault"]},
                {"Retry-After": "1", "Connection": "close"},
            )
        ).url
        return
    server = FaultProxy(None, mode)
    yield server.url
    server.close()


def stalling_command_profile(
    kb_env: KbEnv, server: FaultProxy, name: str = "s", extra: str = ""
) -> None:
    """A ``command`` profile whose command connects to ``server`` and waits for an answer."""
    client = (
        "import socket, sys\n"
        "try:\n"
        f"    d = socket.create_connection(('127.0.0.1', {server.port})).recv(64)\n"
        "except OSError as exc:\n"
        "    sys.exit(f'upstream: {type(exc).__name__}')\n"
        "sys.exit(0 if d else 'upstream: closed')\n"
    )
    argv = json.dumps([sys.executable, "-c", client])
    kb_env.write_config(f'[profiles.{name}]\nsource = "command"\ncommand = {argv}\n{extra}')


def timed(args: list[str], env: Mapping[str, str]) -> tuple[Result, float]:
    start = time.monotonic()
    result = run(args, env, timeout=DEADLINE + SLACK + 30)
    return result, time.monotonic() - start


# --- kill -9 ------------------------------------------------------------------------


KILL_TRIALS = 120


@pytest.mark.serial  # kills land in a span timed on earlier calls
def test_kill_9_at_random_points_of_fetch_and_write(kb_env: KbEnv) -> None:
    """120 cold calls killed at random moments; after each, the cache is whole or empty.

    Each trial drops the entry first, so the killed call is a miss: lock → fetch (the
    command) → seal → temp file → fsync → rename. The kill lands anywhere in that span (the
    delays spread over a measured cold call). Afterwards: every entry on disk opens; stdout of
    the killed call is empty or one whole key line; and every few trials a real call answers
    with a key (the lock of a killed process is released by the kernel, a leftover temp file
    is ignored).
    """
    counter = minting_profile(kb_env, mint=RANDOM_KEY)
    env = dict(kb_env)
    argv = [exe("keybroker"), "get", "p"]
    assert is_key(run(argv, env))
    cache = Cache.open(kb_env)
    eid = next(cache.root.glob("*.entry")).name.removesuffix(".entry")

    # how long a cold call takes here, to spread the kills over it
    cold = []
    for _ in range(3):
        cache.remove(eid)
        start = time.monotonic()
        assert is_key(run(argv, env))
        cold.append(time.monotonic() - start)
    span = max(cold) * 1.2

    seed = int(os.environ.get("KB_FAULT_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    outcomes = {"killed": 0, "finished": 0}
    for trial in range(KILL_TRIALS):
        if rng.random() < 0.85:
            cache.remove(eid)  # mostly cold calls: the write path is what can tear
        proc = subprocess.Popen(
            argv, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        time.sleep(rng.uniform(0, span))
        proc.send_signal(signal.SIGKILL)
        out, err = proc.communicate(timeout=60)
        if proc.returncode == -signal.SIGKILL:
            outcomes["killed"] += 1
        else:
            outcomes["finished"] += 1
            assert proc.returncode == 0, (seed, trial, out, err)
            assert KEY_LINE.match(out), (seed, trial, out, err)
        assert out == b"" or KEY_LINE.match(out), f"seed {seed} #{trial}: torn stdout {out!r}"
        assert b"Traceback" not in err, (seed, trial, err)
        # every entry on disk is whole: it opens, or is not there at all
        for path in cache.root.glob("*.entry"):
            blob = path.read_bytes()
            assert blob.startswith(MAGIC), (seed, trial)
            entry = cache.read(path.name.removesuffix(".entry"))
            assert entry is not None, f"seed {seed} trial {trial}: a torn entry on disk"
            assert entry.value.startswith("sk-")
        if trial % 5 == 4:
            assert is_key(run(argv, env, timeout=60)), (seed, trial)
    assert outcomes["killed"] >= KILL_TRIALS // 4, (seed, outcomes)  # kills really landed
    final = run(argv, env)
    assert is_key(final), final
    # every call that was not served from cache fetched at most once
    assert fetches(counter) <= 1 + 3 + KILL_TRIALS + KILL_TRIALS // 5 + 1


# --- concurrency with cache clear ---------------------------------------------------------


def test_concurrent_writers_readers_and_cache_clear(kb_env: KbEnv) -> None:
    """Rounds of 16 concurrent helpers, each round with `cache clear` running among them.

    Every helper prints a key (a reader racing a clear sees a whole entry or a miss it then
    fills); nothing ever fails or prints a traceback; `cache clear` always succeeds.
    """
    minting_profile(kb_env, extra='max_age = "1h"\n', mint=RANDOM_KEY)
    env = dict(kb_env)
    kb = exe("keybroker")
    for _ in range(4):
        procs = []
        for i in range(16):
            argv = [kb, "cache", "clear"] if i in (5, 11) else [kb, "get", "p"]
            procs.append(
                (
                    argv,
                    subprocess.Popen(
                        argv,
                        env=env,
                        stdin=subprocess.PIPE,
                        stdout=subprocess.PIPE,
                        stderr=subprocess.PIPE,
                    ),
                )
            )
        for argv, proc in procs:
            out, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, (argv, out, err)
            assert b"Traceback" not in err
            if argv[-1] == "p":
                assert KEY_LINE.match(out), (out, err)
                assert err == b"", err
    assert is_key(run([kb, "get", "p"], env))


# --- backends that stall, reset, or fail ---------------------------------------------------


@pytest.mark.parametrize("fault_server", ["stall", "reset"], indirect=True)
def test_cold_call_to_a_broken_backend_fails_within_the_deadline(
    kb_env: KbEnv, fault_server: FaultProxy
) -> None:
    stalling_command_profile(kb_env, fault_server)
    env = dict(kb_env, KEYBROKER_TIMEOUT=str(DEADLINE))
    result, elapsed = timed(["keybroker", "get", "s"], env)
    assert_fails(result, 3, "keybroker: profile 's'")
    assert elapsed < DEADLINE + SLACK, elapsed
    assert fault_server.accepted >= 1


@pytest.mark.parametrize("fault_server", ["stall"], indirect=True)
def test_stalled_refresh_serves_a_still_valid_key_with_a_warning(
    kb_env: KbEnv, fault_server: FaultProxy
) -> None:
    """Advisory window (remaining between T+m and T+m+advisory): the refresh stalls, the
    cached key is served with a warning, and the call still ends within its deadline."""
    stalling_command_profile(kb_env, fault_server)
    now = time.time()
    plant(kb_env, "s", "sk-cached-still-valid", now - 3000, now + 500)  # T+m=360 < 500 < 660
    env = dict(kb_env, KEYBROKER_TIMEOUT=str(DEADLINE))
    result, elapsed = timed(["keybroker", "get", "s"], env)
    assert result.code == 0, result
    assert result.out == b"sk-cached-still-valid\n"
    assert result.err.startswith(b"keybroker: warning: could not refresh profile 's'"), result
    assert b"serving the cached key" in result.err
    assert b"sk-cached" not in result.err
    assert elapsed < DEADLINE + SLACK, elapsed


@pytest.mark.parametrize("fault_server", ["stall"], indirect=True)
def test_stalled_refresh_in_the_mandatory_window_serves_the_still_valid_key(
    kb_env: KbEnv, fault_server: FaultProxy
) -> None:
    """Issue 14: inside T + margin a stalled refresh serves the key that is still valid for
    minutes (with a warning) instead of failing the session."""
    stalling_command_profile(kb_env, fault_server)
    now = time.time()
    plant(kb_env, "s", "sk-cached-still-300s", now - 3300, now + 300)
    env = dict(kb_env, KEYBROKER_TIMEOUT=str(DEADLINE))
    result, elapsed = timed(["keybroker", "get", "s"], env)
    assert result.code == 0, result
    assert result.out == b"sk-cached-still-300s\n"
    assert b"serving the cached key" in result.err
    assert elapsed < DEADLINE + SLACK, elapsed


@pytest.mark.parametrize(
    ("fetched_ago", "expires_in", "why"),
    [
        (3500, -1, "expired a second ago"),
        (7200, -3600, "expired an hour ago"),
        # issue 12: valid when the refresh began, expired once the stalled refresh gave up
        (3600, 1, "one second left"),
    ],
)
@pytest.mark.parametrize("fault_server", ["stall"], indirect=True)
def test_stalled_refresh_never_serves_an_expired_or_too_short_key(
    kb_env: KbEnv, fault_server: FaultProxy, fetched_ago: int, expires_in: int, why: str
) -> None:
    stalling_command_profile(kb_env, fault_server)
    now = time.time()
    plant(kb_env, "s", "sk-cached-too-old", now - fetched_ago, now + expires_in)
    env = dict(kb_env, KEYBROKER_TIMEOUT=str(DEADLINE))
    result, elapsed = timed(["keybroker", "get", "s"], env)
    assert_fails(result, 3, "profile 's'", secrets=["sk-cached-too-old"])
    assert elapsed < DEADLINE + SLACK, (why, elapsed)


@pytest.mark.parametrize("broken_server", ["stall", "reset", "500", "429"], indirect=True)
def test_vault_source_against_a_broken_server(kb_env: KbEnv, broken_server: str) -> None:
    """The real vault source (hvac over HTTP) against each fault: cold → exit 3 in time;
    with a cached key in its advisory window → that key, with a warning."""
    kb_env.write_config(
        f'[profiles.v]\nsource = "vault"\naddr = "{broken_server}"\n'
        'path = "litellm"\nfield = "key"\n'
    )
    env = dict(kb_env, KEYBROKER_TIMEOUT=str(DEADLINE), VAULT_TOKEN="hvs.fault-token-0001")
    result, elapsed = timed(["keybroker", "get", "v"], env)
    assert_fails(result, 3, "keybroker: ", secrets=["hvs.fault-token-0001"])
    assert elapsed < DEADLINE + SLACK, elapsed

    now = time.time()
    plant(env, "v", "sk-vault-cached", now - 3000, now + 500)
    result, elapsed = timed(["keybroker", "get", "v"], env)
    assert result.code == 0, result
    assert result.out == b"sk-vault-cached\n"
    assert b"warning: could not refresh" in result.err, result
    assert b"hvs.fault-token" not in result.err
    assert b"sk-vault" not in result.err
    assert elapsed < DEADLINE + SLACK, elapsed

    now = time.time()
    plant(env, "v", "sk-vault-expired", now - 3700, now - 100)
    result, _ = timed(["keybroker", "get", "v"], env)
    assert_fails(result, 3, "keybroker: ", secrets=["sk-vault-expired", "hvs.fault-token-0001"])


# --- clock jumps, seen by a real process ------------------------------------------------


def test_entry_from_the_future_is_distrusted_and_refetched(kb_env: KbEnv) -> None:
    """The clock went back an hour after the fetch: the entry is not served, a new key is."""
    counter = minting_profile(kb_env, mint=RANDOM_KEY)
    now = time.time()
    plant(kb_env, "p", "sk-from-the-future", now + 3600, now + 7200)
    result = run(["keybroker", "get", "p"], kb_env)
    assert is_key(result), result
    assert b"sk-from-the-future" not in result.out
    assert fetches(counter) == 1


def test_clock_jumped_past_expiry_refetches(kb_env: KbEnv) -> None:
    counter = minting_profile(kb_env, mint=RANDOM_KEY)
    now = time.time()
    plant(kb_env, "p", "sk-long-expired", now - 90000, now - 86400)
    result = run(["keybroker", "get", "p"], kb_env)
    assert is_key(result), result
    assert b"sk-long-expired" not in result.out
    assert fetches(counter) == 1
    again = run(["keybroker", "get", "p"], kb_env)
    assert again.out == result.out  # the new entry is a hit
    assert fetches(counter) == 1


# --- full or read-only cache dir ---------------------------------------------------------


def _can_mount() -> bool:
    """Root on Linux may mount (a real tmpfs, a read-only bind); anyone else gets fallbacks.
    KB_FAULT_NO_MOUNT=1 forces the full-disk fallback, to test it as root."""
    if os.environ.get("KB_FAULT_NO_MOUNT"):
        return False
    return sys.platform.startswith("linux") and os.geteuid() == 0


@contextlib.contextmanager
def small_tmpfs(path: Path, size: str = "64k") -> Iterator[None]:
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0700", "tmpfs", str(path)], check=True
    )
    try:
        yield
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def fill(directory: Path) -> None:
    """Write until the filesystem says ENOSPC."""
    fd = os.open(directory / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        with contextlib.suppress(OSError):
            while True:
                os.write(fd, b"\0" * 4096)
    finally:
        os.close(fd)


def test_full_cache_dir_still_prints_the_key_with_a_warning(kb_env: KbEnv) -> None:
    """A cache dir on a full filesystem: a real tmpfs filled to ENOSPC when we may mount;
    otherwise a file-size limit of 0 (RLIMIT_FSIZE), which fails the same writes with EFBIG.
    Under the limit the upstream script could not write its counter either, so that variant
    uses the built-in demo source and checks the key changes (nothing was cached)."""
    counter = minting_profile(kb_env, mint=RANDOM_KEY)
    run(["keybroker", "get", "demo"], kb_env)  # data key and cache dir exist already
    cache_dir = kb_env.cache_dir
    for path in cache_dir.iterdir():
        path.unlink()
    if _can_mount():
        with small_tmpfs(cache_dir):
            fill(cache_dir)
            results = [run(["keybroker", "get", "p"], kb_env) for _ in range(2)]
        assert fetches(counter) == 2  # nothing could be cached, so both fetched
    else:

        def limit() -> None:
            import resource  # noqa: PLC0415

            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))

        def limited() -> Result:
            proc = subprocess.run(
                [exe("keybroker"), "get", "demo"],
                env=dict(kb_env),
                stdin=subprocess.PIPE,
                capture_output=True,
                preexec_fn=limit,
                timeout=60,
                check=False,
            )
            return Result(proc.returncode, proc.stdout, proc.stderr)

        results = [limited() for _ in range(2)]
        assert results[0].out != results[1].out  # not cached: the demo minted twice
    for res in results:
        assert res.code == 0, res
        assert re.match(rb"^(sk|kb-demo)-[0-9a-f]{32}\n\Z", res.out), res
        assert res.err.startswith(b"keybroker: warning: could not write the cache"), res
        assert res.out.strip() not in res.err


def test_read_only_cache_dir_still_prints_the_key_with_a_warning(kb_env: KbEnv) -> None:
    """Read-only: a read-only bind mount as root (root ignores mode bits), else mode 0500."""
    counter = minting_profile(kb_env, mint=RANDOM_KEY)
    as_root = os.geteuid() == 0
    run(["keybroker", "get", "demo"], kb_env)
    cache_dir = kb_env.cache_dir
    for path in cache_dir.iterdir():
        path.unlink()
    if as_root:
        subprocess.run(["mount", "--bind", str(cache_dir), str(cache_dir)], check=True)
        subprocess.run(["mount", "-o", "remount,bind,ro", str(cache_dir)], check=True)
    else:
        os.chmod(cache_dir, 0o500)
    try:
        result = run(["keybroker", "get", "p"], kb_env)
    finally:
        if as_root:
            subprocess.run(["umount", "-l", str(cache_dir)], check=False)
        else:
            os.chmod(cache_dir, 0o700)
    assert is_key(result), result
    assert result.err.startswith(b"keybroker: warning:"), result
    assert b"Traceback" not in result.err
    assert fetches(counter) == 1


# --- hostile config and secret values ---------------------------------------------------


HOSTILE_CONFIGS = {
    "huge value": '[profiles.h]\nsource = "env"\nvar = "' + "A" * 5_000_000 + '"\n',
    "NUL byte": '[profiles.h]\nsource = "env"\nvar = "A\0B"\n',
    "escaped NUL": '[profiles.h]\nsource = "env"\nvar = "A\\u0000B"\n',
    "control chars": '[profiles.h]\nsource = "env"\nvar = "\x1b[2J\x07"\n',
    "binary": b"\xff\xfe[profiles.h]\x00\x9c".decode("latin-1"),
    "unicode name": '[profiles."ключ🔑"]\nsource = "env"\nvar = "K"\n',
    "wrong type": '[profiles.h]\nsource = "env"\nvar = ["a", "b"]\n',
    "unknown source": '[profiles.h]\nsource = "\u202eevil"\n',
    "deep nesting": "x = " + "[" * 5000 + "]" * 5000 + "\n",
    "newline in command": '[profiles.h]\nsource = "command"\ncommand = "echo\\nrm -rf /"\n',
}


@pytest.mark.parametrize("name", list(HOSTILE_CONFIGS))
def test_hostile_config_is_a_clear_error_and_nothing_on_stdout(kb_env: KbEnv, name: str) -> None:
    text = HOSTILE_CONFIGS[name]
    kb_env.config_path.parent.mkdir(parents=True, exist_ok=True)
    kb_env.config_path.write_bytes(text.encode("latin-1") if name == "binary" else text.encode())
    env = dict(kb_env, K="sk-should-not-print")
    profile = "ключ🔑" if name == "unicode name" else "h"
    result = run(["keybroker", "get", profile], env)
    if name == "unicode name":
        # a unicode profile name is legal TOML: it works, and its key is printed
        assert_key(result, "sk-should-not-print")
        return
    assert result.out == b"", result
    assert result.code in (2, 3, 5, 6), result
    assert result.err.startswith(b"keybroker: "), result
    assert b"Traceback" not in result.err
    assert len(result.err) < 4000, f"stderr is {len(result.err)} bytes"
    for control in (b"\x1b", b"\0", b"\x07"):
        assert control not in result.err, result


HOSTILE_VALUES = {
    "huge": "sk-" + "a" * 20000,
    "NUL": "sk-abc\0def",
    "newline": "sk-abc\r\nX-Injected: 1",
    "escape": "sk-\x1b[31mred",
    "unicode": "sk-ключ-🔑",
    "invalid utf-8": b"sk-\xff\xfe\xfd".decode("latin-1"),
    "only whitespace": " \t ",
    "DEL": "sk-abc\x7f",
}


def hostile_file(kb_env: KbEnv, filename: str, name: str) -> Path:
    """``HOSTILE_VALUES[name]`` in a file under the test's base dir (the invalid UTF-8 one as
    the bytes it stands for)."""
    value = HOSTILE_VALUES[name]
    path = kb_env.base / filename
    path.write_bytes(value.encode("latin-1") if name == "invalid utf-8" else value.encode())
    return path


def assert_refused_unleaked(
    result: Result, codes: tuple[int, ...], name: str, kb_env: KbEnv
) -> None:
    """``HOSTILE_VALUES[name]`` was refused (one of ``codes``) without a traceback, without
    a piece of it on stderr, and without being cached."""
    value = HOSTILE_VALUES[name]
    assert result.out == b"", result
    assert result.code in codes, result
    assert result.err.startswith(b"keybroker: "), result
    assert b"Traceback" not in result.err
    for fragment in ("abc", "def", "ключ", "red", "Injected", "a" * 40):
        if fragment in value:
            assert fragment.encode() not in result.err, f"value leaked: {result.err!r}"
    assert not list(kb_env.cache_dir.glob("*.entry")), "an invalid value was cached"


@pytest.mark.parametrize("name", list(HOSTILE_VALUES))
def test_hostile_secret_values_from_a_file_are_refused(kb_env: KbEnv, name: str) -> None:
    secret_file = hostile_file(kb_env, "secret", name)
    kb_env.write_config(f'[profiles.f]\nsource = "file"\npath = "{secret_file}"\n')
    result = run(["keybroker", "get", "f"], kb_env)
    assert_refused_unleaked(result, (5, 6), name, kb_env)


@pytest.mark.parametrize("name", ["huge", "NUL", "newline", "escape", "unicode", "invalid utf-8"])
def test_hostile_secret_values_from_a_command_are_refused(kb_env: KbEnv, name: str) -> None:
    out_file = hostile_file(kb_env, "value.bin", name)
    kb_env.write_config(f'[profiles.c]\nsource = "command"\ncommand = ["/bin/cat", "{out_file}"]\n')
    result = run(["keybroker", "get", "c"], kb_env)
    assert_refused_unleaked(result, (6,), name, kb_env)
