"""Issue 12, the trust boundary: a key only for a caller the backend would serve, never an
expired one, from a config no one else controls — each promise through the real executables.

Every test here failed on the code before the change (noted per test).
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pytest

from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.fixtures.users import OsUser
from tests.fixtures.vault_setup import child_token, new_key, read_policy, uid, vault_env
from tests.kb import assert_fails, assert_key, assert_nowhere, exe, plant, run

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX ownership and modes")


def vault_profile(kb_env: KbEnv, server: OpenBao, path: str, name: str = "v") -> None:
    kb_env.write_config(
        f'[profiles.{name}]\nsource = "vault"\naddr = "{server.addr}"\npath = "{path}"\n'
        'field = "key"\n'
    )


def state(profile: str, env: Mapping[str, str]) -> str:
    result = run(["keybroker", "print-token", profile, "--json"], env)
    assert result.code == 0, result
    return str(json.loads(result.out)["cache"]["state"])


# --- 1. identity-bound entries -------------------------------------------------------------


def test_a_token_vault_refuses_never_gets_the_cached_key(bao: OpenBao, kb_env: KbEnv) -> None:
    """Before: the entry was keyed by location only, so any process of the user got the key
    another token had fetched (exit 0), even with no token at all."""
    path = f"trust/{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key})
    good = child_token(bao, read_policy(bao, f"secret/data/{path}"))
    refused = child_token(bao, read_policy(bao, "secret/data/elsewhere"))
    vault_profile(kb_env, bao, path)
    env = vault_env(kb_env, bao, good)
    assert_key(run(["keybroker", "get", "v"], env), key)
    assert_key(run(["keybroker", "get", "v"], env), key)  # the fast path's hit

    other = run(["keybroker", "get", "v"], dict(env, VAULT_TOKEN=refused))
    assert_fails(other, 4, "permission denied", secrets=[key, good, refused])
    standalone = run(
        ["keybroker-vault", "--addr", bao.addr, "--path", path, "--field", "key"],
        dict(env, VAULT_TOKEN=refused),
    )
    assert_fails(standalone, 4, secrets=[key])
    nobody = {k: v for k, v in env.items() if k != "VAULT_TOKEN"}
    none = run(["keybroker", "get", "v"], nobody)
    assert none.code in (4, 8), none
    assert none.out == b"", none

    assert state("v", env) == "hit"  # the same token in another process: one shared entry
    assert_nowhere(good, other, none, dirs=[kb_env.cache_dir, kb_env.data_dir])
    assert_nowhere(refused, other, dirs=[kb_env.cache_dir, kb_env.data_dir])


def test_env_profile_cached_on_disk_is_bound_to_its_value(kb_env: KbEnv) -> None:
    """Before: with storage = "disk" a caller whose variable held another value got the key
    cached by the first caller."""
    kb_env.write_config('[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n')
    assert_key(
        run(["keybroker", "get", "e"], dict(kb_env, K="sk-first-caller-1")), "sk-first-caller-1"
    )
    assert_key(
        run(["keybroker", "get", "e"], dict(kb_env, K="sk-second-caller-2")), "sk-second-caller-2"
    )


def test_ci_jobs_on_one_runner_user_do_not_share_cache(kb_env: KbEnv) -> None:
    """Before: two CI jobs running as one OS user shared ~/.cache (and its logins)."""
    counter = kb_env.base / "count"
    script = kb_env.base / "mint.sh"
    script.write_text(f"#!/bin/sh\necho x >> '{counter}'\necho sk-minted-$$\n")
    kb_env.write_config(f'[profiles.p]\nsource = "command"\ncommand = ["/bin/sh", "{script}"]\n')
    tmp = kb_env.base / "tmp"
    tmp.mkdir()
    job1 = dict(kb_env, CI="true", GITLAB_CI="true", CI_JOB_ID="101", TMPDIR=str(tmp))
    job2 = dict(job1, CI_JOB_ID="102")
    first = run(["keybroker", "get", "p"], job1)
    assert run(["keybroker", "get", "p"], job1).out == first.out  # shared within the job
    second = run(["keybroker", "get", "p"], job2)
    assert second.code == 0
    assert second.out != first.out
    assert counter.read_text().count("x") == 2
    assert not kb_env.cache_dir.exists()  # nothing in the runner user's ~/.cache
    job_dirs = sorted(p.name for p in tmp.iterdir())
    assert job_dirs == [f"keybroker-{os.getuid()}-101", f"keybroker-{os.getuid()}-102"]
    for job in tmp.iterdir():
        assert (job.stat().st_mode & 0o777) == 0o700
    # GitHub Actions: under RUNNER_TEMP, which the runner empties after each job
    runner_temp = kb_env.base / "runner-temp"
    runner_temp.mkdir()
    gh = dict(kb_env, CI="true", GITHUB_ACTIONS="true", RUNNER_TEMP=str(runner_temp))
    assert run(["keybroker", "get", "p"], gh).code == 0
    assert (runner_temp / "keybroker" / "cache").is_dir()


# --- 2./3. never expired, never a NaN expiry -------------------------------------------------


class Stall:
    """A TCP server that accepts and never answers (an upstream that hangs)."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []

    def close(self) -> None:
        self.sock.close()


def test_slow_failing_refresh_never_prints_a_key_that_expired_meanwhile(kb_env: KbEnv) -> None:
    """Before: an advisory-window refresh that stalled past the key's expiry served the key
    by the clock read *before* the fetch: a key that had expired seconds earlier, exit 0."""
    stall = Stall()
    client = f"import socket; socket.create_connection(('127.0.0.1', {stall.port})).recv(1)"
    argv = json.dumps([sys.executable, "-c", client])
    kb_env.write_config(f'[profiles.s]\nsource = "command"\ncommand = {argv}\n')
    env = dict(
        kb_env, KEYBROKER_TIMEOUT="2", KEYBROKER_MARGIN="0", CLAUDE_CODE_API_KEY_HELPER_TTL_MS="500"
    )
    now = time.time()
    # 1.5 s left: in the advisory window (need = 0.5 s), expires during the 2 s stall
    plant(env, "s", "sk-about-to-expire", now - 3598.5, now + 1.5)
    try:
        result = run(["keybroker", "get", "s"], env)
    finally:
        stall.close()
    assert_fails(result, 3, secrets=["sk-about-to-expire"])


@pytest.mark.parametrize("expiry", ["nan", "inf", "-inf", "1e400", "99999999999"])
def test_non_finite_or_absurd_expiry_is_an_invalid_value(
    bao: OpenBao, kb_env: KbEnv, expiry: str
) -> None:
    """Before: expires_at = "nan" made the entry fresh forever (exit 0)."""
    path = f"trust/{uid()}"
    key = new_key()
    bao.kv_put(path, {"key": key, "expires_at": expiry})
    vault_profile(kb_env, bao, path)
    env = vault_env(kb_env, bao, bao.root_token)
    assert_fails(run(["keybroker", "get", "v"], env), 6, "expir", secrets=[key])
    assert not list(kb_env.cache_dir.glob("*.entry"))


def test_entry_with_a_nan_expiry_is_a_miss_not_a_crash(kb_env: KbEnv) -> None:
    """Before: print-token and cache list crashed (internal error) on such an entry."""
    kb_env.write_config('[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n')
    env = dict(kb_env, K="sk-planted-nan")
    plant(env, "e", "sk-planted-nan", time.time(), float("nan"))
    listing = run(["keybroker", "cache", "list"], env)
    assert listing.code == 0, listing
    shown = run(["keybroker", "print-token", "e", "--json"], env)
    assert shown.code == 0, shown
    assert json.loads(shown.out)["cache"]["state"] == "miss"
    assert_key(run(["keybroker", "get", "e"], env), "sk-planted-nan")


# --- 4. config trust ------------------------------------------------------------------------


def marker_profile(kb_env: KbEnv) -> Path:
    marker = kb_env.base / "ran"
    kb_env.write_config(
        f'[profiles.c]\nsource = "command"\ncommand = ["/bin/sh", "-c", '
        f'"touch {marker}; echo sk-from-command"]\n'
    )
    return marker


def test_config_writable_by_others_is_refused(kb_env: KbEnv) -> None:
    """Before: a 0666 config was used as is, and its command profile ran as the victim."""
    marker = marker_profile(kb_env)
    kb_env.config_path.chmod(0o666)
    result = run(["keybroker", "get", "c"], kb_env)
    assert_fails(result, 2, "writable by group or others", "chmod go-w")
    assert not marker.exists()
    doctor = run(["keybroker", "doctor"], kb_env)
    assert doctor.code == 2
    assert "writable by group or others" in doctor.stdout


def test_config_in_a_directory_others_can_write_is_refused(kb_env: KbEnv) -> None:
    marker = marker_profile(kb_env)
    kb_env.config_path.parent.chmod(0o777)
    try:
        result = run(["keybroker", "get", "c"], kb_env)
    finally:
        kb_env.config_path.parent.chmod(0o700)
    assert_fails(result, 2, "writable by group or others")
    assert not marker.exists()


def test_config_owned_by_another_user_is_refused(kb_env: KbEnv, other_user: OsUser) -> None:
    marker = marker_profile(kb_env)
    os.chown(kb_env.config_path, other_user.uid, other_user.gid)
    result = run(["keybroker", "get", "c"], kb_env)
    assert_fails(result, 2, f"belongs to uid {other_user.uid}")
    assert not marker.exists()
    system = kb_env.base / "system.toml"
    system.write_text('[profiles.s]\nsource = "env"\nvar = "X"\n')
    os.chown(system, other_user.uid, other_user.gid)
    env = dict(kb_env, KEYBROKER_SYSTEM_CONFIG=str(system), X="sk-x")
    os.chown(kb_env.config_path, os.getuid(), os.getgid())
    assert_fails(run(["keybroker", "get", "s"], env), 2, "system config")


def test_index_built_from_a_trusted_config_is_not_used_after_chmod(kb_env: KbEnv) -> None:
    """The hit path must notice a config that became writable by others."""
    kb_env.write_config('[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n')
    env = dict(kb_env, K="sk-indexed-1")
    assert_key(run(["keybroker", "get", "e"], env), "sk-indexed-1")
    assert_key(run(["keybroker", "get", "e"], env), "sk-indexed-1")
    kb_env.config_path.chmod(0o666)
    assert_fails(run(["keybroker", "get", "e"], env), 2, "writable by group or others")


# --- 5. the cache's own neighbours ----------------------------------------------------------


@pytest.mark.parametrize("where", ["entry", "index"])
def test_a_fifo_in_the_cache_never_hangs_the_helper(kb_env: KbEnv, where: str) -> None:
    """Before: a FIFO in place of an entry or the index hung `get` forever, past the
    deadline."""
    kb_env.write_config('[profiles.e]\nsource = "env"\nvar = "K"\nstorage = "disk"\n')
    env = dict(kb_env, K="sk-fifo-1", KEYBROKER_TIMEOUT="3")
    assert_key(run(["keybroker", "get", "e"], env), "sk-fifo-1")
    pattern = "*.entry" if where == "entry" else "index-*.bin"
    (target,) = kb_env.cache_dir.glob(pattern)
    target.unlink()
    os.mkfifo(target, 0o600)
    assert_key(run(["keybroker", "get", "e"], env, timeout=15), "sk-fifo-1")


def test_a_fifo_as_the_data_key_is_refused_not_waited_on(kb_env: KbEnv) -> None:
    assert run(["keybroker", "get", "demo"], kb_env).code == 0
    key = kb_env.data_dir / "cache.key"
    key.unlink()
    os.mkfifo(key, 0o600)
    result = run(["keybroker", "get", "demo"], kb_env, timeout=15)
    assert_fails(result, 7, "not a regular file")


def test_directories_keybroker_creates_are_private_under_umask_000(tmp_path: Path) -> None:
    """Before: under umask 000 the parents it created (~/.cache, ~/.local/share) were 0777."""
    home = tmp_path / "home"
    home.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("XDG_", "KEYBROKER_", "CI", "GITHUB_", "GITLAB_", "RUNNER_"))
    }
    env.update(HOME=str(home), KEYBROKER_SYSTEM_CONFIG="")
    proc = subprocess.run(
        [exe("keybroker"), "get", "demo"],
        env=env,
        capture_output=True,
        preexec_fn=lambda: os.umask(0),
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    for created in (
        home / ".cache",
        home / ".cache" / "keybroker",
        home / ".local",
        home / ".local" / "share",
        home / ".local" / "share" / "keybroker",
    ):
        assert (created.stat().st_mode & 0o777) == 0o700, created


def test_a_failed_data_key_write_leaves_no_key_material_behind(kb_env: KbEnv) -> None:
    """Before: a full disk left `.cache.key.*` temp files (key material) in the data dir."""

    def small_files() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8, 8))

    proc = subprocess.run(
        [exe("keybroker"), "get", "demo"],
        env=kb_env,
        capture_output=True,
        preexec_fn=small_files,
        timeout=60,
        check=False,
    )
    assert proc.returncode != 0
    assert b"Traceback" not in proc.stderr
    leftovers = [p.name for p in kb_env.data_dir.iterdir()] if kb_env.data_dir.exists() else []
    assert not [n for n in leftovers if n.startswith(".cache.key")], leftovers


# --- issue 20 item 8: every directory up to / held to StrictModes; the file opened once --------

#: The attacker's loop: swap the victim's config dir with its own, atomically, as fast as it
#: can (Linux renameat2; the other_user fixture needs useradd, so these tests are Linux-only).
SWAPPER = """
import ctypes, os, sys, time
base, seconds = sys.argv[1], float(sys.argv[2])
cfg, evil = (os.path.join(base, n).encode() for n in ("cfg", "evil"))
libc = ctypes.CDLL(None, use_errno=True)
AT_FDCWD, RENAME_EXCHANGE = -100, 2
open(os.path.join(base, "swapping"), "w").close()
end = time.monotonic() + seconds
while time.monotonic() < end:
    libc.renameat2(AT_FDCWD, cfg, AT_FDCWD, evil, RENAME_EXCHANGE)  # atomic swap
"""

#: An interpreter the other user can run (the venv's may live in root's 0700 home).
SYSTEM_PYTHON = "/usr/bin/python3" if os.path.exists("/usr/bin/python3") else sys.executable


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A fresh directory in /tmp (which the other user can reach: pytest's own is 0700)."""
    base = Path(tempfile.mkdtemp(prefix="kb-shared-", dir="/tmp"))
    try:
        yield base
    finally:
        shutil.rmtree(base, ignore_errors=True)


def hostile_parent(base: Path, other_user: OsUser, name: str) -> tuple[Path, Path, Path]:
    """``base`` made a 0777 non-sticky parent with the victim's 0700 ``cfg/NAME`` and, ready
    to be swapped in, the other user's ``evil/NAME`` whose profile ``c`` runs a command."""
    base.chmod(0o777)
    good = base / "cfg"
    good.mkdir(mode=0o700)
    (good / name).write_text('[profiles.c]\nsource = "env"\nvar = "K"\n')
    (good / name).chmod(0o600)
    marker = base / "attacker-ran"
    evil = base / "evil"
    evil.mkdir()
    (evil / name).write_text(
        f'[profiles.c]\nsource = "command"\ncommand = ["/bin/sh", "-c", '
        f'"touch {marker}; echo sk-attacker"]\n'
    )
    for path in (evil, evil / name):
        os.chown(path, other_user.uid, other_user.gid)
    return base, good / name, marker


@pytest.mark.parametrize("layer", ["user", "system"])
def test_config_under_a_directory_others_can_rename_is_refused(
    kb_env: KbEnv, other_user: OsUser, shared_dir: Path, layer: str
) -> None:
    """Before: only the file and its parent were checked, so a 0700 dir under a 0777 parent
    was accepted (exit 0) although anyone can rename that dir and put their own in its place."""
    _, path, marker = hostile_parent(shared_dir, other_user, f"{layer}.toml")
    env = dict(kb_env, K="sk-victim")
    if layer == "user":
        env["KEYBROKER_CONFIG"] = str(path)
    else:
        env["KEYBROKER_SYSTEM_CONFIG"] = str(path)
    what = "system config" if layer == "system" else "config"
    result = run(["keybroker", "get", "c"], env)
    assert_fails(
        result,
        2,
        f"{what} {path} is under {path.parent.parent}",
        "writable by group or others (mode 0777)",
        "chmod go-w",
    )
    assert not marker.exists()


@pytest.mark.parametrize("layer", ["user", "system"])
def test_racing_swap_of_the_config_dir_never_runs_the_attackers_profile(
    kb_env: KbEnv, other_user: OsUser, shared_dir: Path, layer: str
) -> None:
    """Before: another user swapping the config's directory won the check-then-read race and
    its `command` profile ran as the victim inside a loop of real `keybroker get` calls."""
    base, path, marker = hostile_parent(shared_dir, other_user, f"{layer}.toml")
    env = dict(kb_env, K="sk-victim")
    env["KEYBROKER_CONFIG" if layer == "user" else "KEYBROKER_SYSTEM_CONFIG"] = str(path)
    swapper = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", SWAPPER, str(base), "8"], user=other_user.uid, group=other_user.gid
    )
    try:
        started = time.monotonic()
        while not (base / "swapping").exists():
            assert time.monotonic() - started < 10, "the swapping user did not start"
            time.sleep(0.01)
        codes = set()
        end = time.monotonic() + 5
        while time.monotonic() < end and not marker.exists():
            result = run(["keybroker", "get", "c", "--no-cache"], env)
            assert b"sk-attacker" not in result.out, result
            codes.add(result.code)
    finally:
        swapper.kill()
        swapper.wait()
    assert not marker.exists(), "the attacker's command ran as the victim"
    assert codes == {2}, codes


def test_config_load_under_a_racing_swap_never_returns_the_attackers_table(
    other_user: OsUser, shared_dir: Path
) -> None:
    """The same race, many more times than the executables can run in a test: before, about
    one load in a hundred (119 of 13,638 in 3 s here) returned the attacker's profile."""
    from keybroker.config import load  # noqa: PLC0415
    from keybroker.errors import ConfigError  # noqa: PLC0415

    _, path, _ = hostile_parent(shared_dir, other_user, "user.toml")
    swapper = subprocess.Popen(
        [SYSTEM_PYTHON, "-c", SWAPPER, str(shared_dir), "6"],
        user=other_user.uid,
        group=other_user.gid,
    )
    loads = refused = 0
    try:
        started = time.monotonic()
        while not (shared_dir / "swapping").exists():
            assert time.monotonic() - started < 10, "the swapping user did not start"
            time.sleep(0.01)
        end = time.monotonic() + 3
        while time.monotonic() < end:
            loads += 1
            try:
                config = load({"KEYBROKER_CONFIG": str(path)}, path)
            except ConfigError:
                refused += 1
                continue
            assert config.profiles["c"].source != "command", "the attacker's table was read"
    finally:
        swapper.kill()
        swapper.wait()
    assert refused == loads > 100


def test_sticky_shared_parent_is_accepted_for_a_dir_of_ours(kb_env: KbEnv) -> None:
    """A world-writable directory with the sticky bit (like /tmp) lets no one else rename or
    remove our entries in it: a config in our own dir below it is used."""
    base = kb_env.base / "sticky"
    base.mkdir()
    base.chmod(0o1777)
    (base / "cfg").mkdir(mode=0o700)
    path = base / "cfg" / "config.toml"
    path.write_text('[profiles.e]\nsource = "env"\nvar = "K"\n')
    assert_key(
        run(["keybroker", "get", "e"], dict(kb_env, KEYBROKER_CONFIG=str(path), K="sk-sticky")),
        "sk-sticky",
    )


def test_ancestor_owned_by_another_user_is_refused(kb_env: KbEnv, other_user: OsUser) -> None:
    """Its owner can chmod it and then rename what is below it, whatever its mode is now."""
    theirs = kb_env.base / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, other_user.uid, other_user.gid)
    (theirs / "cfg").mkdir(mode=0o700)
    path = theirs / "cfg" / "config.toml"
    path.write_text('[profiles.e]\nsource = "env"\nvar = "K"\n')
    result = run(["keybroker", "get", "e"], dict(kb_env, KEYBROKER_CONFIG=str(path), K="sk-x"))
    assert_fails(result, 2, f"is under {theirs}, which belongs to uid {other_user.uid}")


def test_symlinked_config_is_followed_safely(kb_env: KbEnv, other_user: OsUser) -> None:
    """Decision (docs/security.md): a config that is a symbolic link (dotfiles, home-manager)
    is followed when the link is ours or root's and its target passes the same rule; a link
    someone else owns, or a target under a directory others can write, is refused."""
    dotfiles = kb_env.base / "dotfiles"
    dotfiles.mkdir(mode=0o700)
    target = dotfiles / "keybroker.toml"
    target.write_text('[profiles.e]\nsource = "env"\nvar = "K"\n')
    kb_env.config_path.parent.mkdir(parents=True, exist_ok=True)
    kb_env.config_path.symlink_to(target)
    env = dict(kb_env, K="sk-linked")
    assert_key(run(["keybroker", "get", "e", "--no-cache"], env), "sk-linked")

    os.lchown(kb_env.config_path, other_user.uid, other_user.gid)
    assert_fails(
        run(["keybroker", "get", "e", "--no-cache"], env),
        2,
        f"the symbolic link {kb_env.config_path} belongs to uid {other_user.uid}",
    )

    kb_env.config_path.unlink()
    loose = kb_env.base / "loose"
    loose.mkdir(mode=0o777)
    loose.chmod(0o777)
    (loose / "keybroker.toml").write_text(target.read_text())
    kb_env.config_path.symlink_to(loose / "keybroker.toml")
    assert_fails(
        run(["keybroker", "get", "e", "--no-cache"], env),
        2,
        f"is under {loose}, which is writable by group or others",
    )


def test_config_that_is_a_fifo_is_refused_not_waited_on(kb_env: KbEnv) -> None:
    kb_env.config_path.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(kb_env.config_path, 0o600)
    assert_fails(run(["keybroker", "get", "e"], kb_env, timeout=20), 2, "not a regular file")
