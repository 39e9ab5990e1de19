"""Test helpers: run the real executables as Claude Code would, and check what they wrote.

Every helper test goes through :func:`run` at least once: a subprocess with stdin left open
and never written (as Claude Code leaves it), stdout and stderr captured as bytes.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Protocol, TypeVar

import pytest

from keybroker import config as configmod
from keybroker.cache.entry import Entry
from keybroker.cache.store import Cache
from keybroker.resolve import entry_name

if TYPE_CHECKING:
    from tests.conftest import KbEnv  # conftest imports this module

SCRIPTS = Path(sysconfig.get_path("scripts"))
T = TypeVar("T")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def exe(name: str) -> str:
    """Absolute path of an installed console script (not a pyenv shim)."""
    path = SCRIPTS / name
    if not path.exists():
        pytest.fail(f"{name} is not installed in {SCRIPTS}: run pip install -e '.[all,test]'")
    return str(path)


@dataclass
class Result:
    code: int
    out: bytes
    err: bytes

    @property
    def stdout(self) -> str:
        return self.out.decode()

    @property
    def stderr(self) -> str:
        return self.err.decode()

    def __repr__(self) -> str:
        return f"Result(code={self.code}, out={self.out!r}, err={self.err!r})"


def run(
    args: list[str],
    env: Mapping[str, str],
    *,
    timeout: float = 60,
    stdin: bytes | None = None,
    keep_stdin_open: bool = True,
) -> Result:
    """Run ``args`` (first item an executable name or path) like Claude Code runs a helper.

    Unless ``stdin`` is given, the child's stdin is a pipe that is never written or closed
    until it exits: a helper that reads stdin would hang and fail the timeout.
    """
    argv = list(args)
    if not os.path.isabs(argv[0]) and argv[0].startswith("keybroker"):
        argv[0] = exe(argv[0])
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=dict(env),
    )
    try:
        if stdin is not None:
            out, err = proc.communicate(stdin, timeout=timeout)
        elif keep_stdin_open:
            out, err = _communicate_keep_open(proc, timeout)
        else:
            out, err = proc.communicate(b"", timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"{argv} did not finish within {timeout}s (reading stdin?): {err!r}")
    return Result(proc.returncode, out, err)


def _communicate_keep_open(proc: subprocess.Popen[bytes], timeout: float) -> tuple[bytes, bytes]:
    import threading  # noqa: PLC0415

    assert proc.stdout is not None
    assert proc.stderr is not None
    chunks: dict[str, bytes] = {}

    def drain(name: str, stream: IO[bytes]) -> None:
        chunks[name] = stream.read()

    threads = [
        threading.Thread(target=drain, args=("out", proc.stdout)),
        threading.Thread(target=drain, args=("err", proc.stderr)),
    ]
    for t in threads:
        t.start()
    try:
        proc.wait(timeout=timeout)
    finally:
        for t in threads:
            t.join(timeout=5)
        if proc.stdin:
            proc.stdin.close()
    return chunks.get("out", b""), chunks.get("err", b"")


def assert_key(result: Result, key: str) -> None:
    """The output contract's success case, byte for byte."""
    assert result.code == 0, result
    assert result.out == key.encode() + b"\n", result
    assert key.encode() not in result.err, "the key leaked to stderr"


def assert_fails(
    result: Result,
    code: int,
    *needles: str,
    secrets: Iterable[str] = (),
    exactly: str | None = None,
) -> None:
    """The output contract's failure case: exit code, empty stdout, one useful stderr line.

    ``exactly`` is the whole of stderr, for a test that pins a message word for word."""
    assert result.code == code, result
    assert result.out == b"", result
    if exactly is not None:
        assert result.err == exactly.encode(), result
    assert result.err.startswith(b"keybroker: "), result
    assert b"Traceback" not in result.err, result
    for needle in needles:
        assert needle.encode() in result.err, (needle, result)
    for secret in secrets:
        assert secret.encode() not in result.err, "a secret leaked to stderr"


def assert_nowhere(secret: str, *results: Result, dirs: Iterable[Path] = ()) -> None:
    """``secret`` appears in no output and in no file (the encrypted cache included)."""
    needle = secret.encode()
    for result in results:
        assert needle not in result.err, "secret on stderr"
    for directory in dirs:
        for path in Path(directory).rglob("*"):
            if path.is_file():
                assert needle not in path.read_bytes(), f"secret readable in {path}"


def entry_file(env: Mapping[str, str], profile: str, suffix: str = ".entry") -> Path:
    """The cache file of ``profile``'s entry for the caller whose environment is ``env``."""
    config = configmod.load(env)
    request = configmod.request_for(config, profile, env)
    cache = Cache.open(env)
    return cache.path(entry_name(cache, request.source, request.settings, env), suffix)


def plant(
    env: Mapping[str, str], profile: str, value: str, fetched_at: float, expires_at: float | None
) -> Path:
    """Write a real, sealed entry for ``profile`` as if fetched at ``fetched_at``.

    This is how a test puts the cache in a given state for a *real process*: the freshness
    rules then see the entry exactly as they would after a clock jump, a long pause or an
    outage.
    """
    config = configmod.load(env)
    request = configmod.request_for(config, profile, env)
    cache = Cache.open(env)
    eid = entry_name(cache, request.source, request.settings, env)
    assert cache.write(
        Entry(
            id=eid,
            value=value,
            fetched_at=fetched_at,
            expires_at=expires_at,
            source=request.source,
            label=f"{request.source}:planted",
        )
    )
    return cache.path(eid)


def isolated_env(base: Path, **extra: str) -> dict[str, str]:
    """An environment with its own HOME, XDG dirs and no keybroker/Claude settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(
            (
                "KEYBROKER_",
                "CLAUDE_CODE_",
                "VAULT_",
                "AWS_",
                "XDG_",
                "GITHUB_",
                "GITLAB_",
                "RUNNER_",
                "CI_",
                "BAO_",
            )
        )
        and k
        not in (
            "PYTHON_KEYRING_BACKEND",
            "ANTHROPIC_API_KEY",
            "CI",
            "CLAUDECODE",
            "CLAUDE_PROJECT_DIR",
        )
    }
    home = base / "home"
    for sub in ("cache", "config", "data"):
        (base / sub).mkdir(parents=True, exist_ok=True)
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home),
        XDG_CACHE_HOME=str(base / "cache"),
        XDG_CONFIG_HOME=str(base / "config"),
        XDG_DATA_HOME=str(base / "data"),
        PATH=f"{SCRIPTS}{os.pathsep}{env.get('PATH', '')}",
        PYTHONDONTWRITEBYTECODE="1",
        # no system layer unless a test ships one (the machine's /etc must not leak in)
        KEYBROKER_SYSTEM_CONFIG="",
    )
    env.update(extra)
    return env


def default_locations(monkeypatch: pytest.MonkeyPatch) -> None:
    """The process environment without what moves keybroker's default locations: the XDG
    dirs, the CI markers (a CI job keeps its cache elsewhere) and keybroker's own overrides."""
    for var in (
        "XDG_CACHE_HOME",
        "XDG_CONFIG_HOME",
        "XDG_DATA_HOME",
        "CI",
        "GITHUB_ACTIONS",
        "GITLAB_CI",
        "KEYBROKER_CACHE_DIR",
        "KEYBROKER_CONFIG",
        "KEYBROKER_DATA_DIR",
    ):
        monkeypatch.delenv(var, raising=False)


def require_backend(name: str, why: str) -> None:
    """A backend that cannot start: a failure in CI (CI=true), a skip on a laptop."""
    message = f"{name} backend unavailable: {why}"
    if IN_CI:
        pytest.fail(message)
    pytest.skip(message)


@contextlib.contextmanager
def backend(
    name: str,
    start: Callable[[], T],
    stop: Callable[[T], object],
    unavailable: type[Exception] = Exception,
    why: Callable[[Exception], str] = str,
) -> Iterator[T]:
    """A backend for the session's tests: ``start()``, and ``stop`` it afterwards. One that
    cannot start (``unavailable``) is a failure in CI and a skip on a laptop."""
    try:
        started = start()
    except unavailable as exc:
        require_backend(name, why(exc))
        raise  # unreachable: require_backend skips or fails
    try:
        yield started
    finally:
        stop(started)


class _Server(Protocol):
    def stop(self) -> None: ...


S = TypeVar("S", bound=_Server)


def session_server(
    name: str,
    tmp_path_factory: pytest.TempPathFactory,
    start: Callable[[Path], S],
    unavailable: type[Exception],
) -> Iterator[S]:
    """For a session fixture (``yield from``): the ``name`` backend's server, ``start``ed in
    a new temporary directory and stopped after the session; see :func:`backend`."""
    with backend(
        name, lambda: start(tmp_path_factory.mktemp(name)), lambda s: s.stop(), unavailable
    ) as server:
        yield server


def python() -> str:
    return sys.executable


#: One profile of each source that needs an optional extra (aws, keychain, oidc): for tests of
#: what a missing extra says, and of anything that only needs their names.
EXTRA_PROFILES = """
[profiles.a]
source = "aws"
secret_id = "kb-absent"
region = "us-east-1"

[profiles.k]
source = "keychain"
service = "svc"

[profiles.o]
source = "oidc"
issuer = "http://127.0.0.1:9"
client_id = "c"
client_secret_env = "KB_TEST_CLIENT_SECRET"
"""


def file_profiles(env: KbEnv, **files: tuple[str, str | None]) -> None:
    """``file`` profiles, the config's only ones: ``name=(file, key)``, the key in ``file``
    under the test's base dir (None: the file is missing)."""
    config = ""
    for name, (file, value) in files.items():
        if value is not None:
            (env.base / file).write_text(value + "\n")
        config += f'[profiles.{name}]\nsource = "file"\npath = {json.dumps(str(env.base / file))}\n'
    env.write_config(config)


def file_profile(env: KbEnv, value: str, name: str = "k") -> None:
    """A ``file`` profile ``name`` whose key is ``value`` (the config holds only this one)."""
    file_profiles(env, **{name: (f"{name}.txt", value)})


#: A shell line printing a new random key (``sk-`` and 32 hex digits) each time it runs.
RANDOM_KEY = "printf 'sk-%s\\n' \"$(od -An -N16 -tx1 /dev/urandom | tr -d ' \\n')\""


def minting_profile(
    kb_env: KbEnv, name: str = "p", extra: str = "", mint: str = "echo sk-minted-$$"
) -> Path:
    """A ``command`` profile ``name`` added to the config: each fetch appends a line to the
    returned counter file (see :func:`fetches`), then ``mint`` prints the key."""
    counter = kb_env.base / f"fetches-{name}"
    script = kb_env.base / f"mint-{name}.sh"
    script.write_text(f"#!/bin/sh\necho x >> '{counter}'\n{mint}\n")
    existing = kb_env.config_path.read_text() if kb_env.config_path.exists() else ""
    kb_env.write_config(
        existing
        + f'\n[profiles.{name}]\nsource = "command"\ncommand = ["/bin/sh", "{script}"]\n{extra}'
    )
    return counter


def fetches(counter: Path) -> int:
    """How many fetches a :func:`minting_profile` made."""
    return len(counter.read_text().splitlines()) if counter.exists() else 0


def complete(kb_env: Mapping[str, str], words: str, shell: str = "bash") -> Result:
    """Run the completion protocol the script uses against the real executable."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    incomplete = "" if words.endswith(" ") else words.rsplit(maxsplit=1)[-1]
    env = dict(
        kb_env,
        _KEYBROKER_COMPLETE=f"{shell}_complete",
        COMP_WORDS=words,
        COMP_CWORD=incomplete if shell == "fish" else str(cword),
    )  # fish sends the word
    return run(["keybroker"], env)
