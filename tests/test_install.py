"""Install and packaging: the README's first command, ``--version``, the wheel's contents.

The acceptance test runs the README's main command from a fresh copy of the repository with
Debian's externally managed ``/usr/bin/python3`` (PEP 668) as the only Python on PATH, HOME
and the XDG dirs in a temp dir, no uv or pipx anywhere on PATH, and ``pip``, ``venv`` and
``ensurepip`` made unimportable (stock Debian has no python3-venv): it must install keybroker
for the user and print a demo key.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

import keybroker
from tests.conftest import KbEnv
from tests.fixtures.install import (
    REPO,
    fresh_copy,
    machine_install_env,
    run_in,
    script_module,
)
from tests.kb import isolated_env, run

SOURCES = ("vault", "aws", "keychain", "oidc")
DEMO_KEY = re.compile(rb"kb-demo-[0-9a-f]+\n")


# --- version ---------------------------------------------------------------------------------


def test_version_is_single_sourced() -> None:
    assert re.fullmatch(r"\d+\.\d+\.\d+([.+-][0-9A-Za-z.]+)?", keybroker.__version__)
    assert importlib.metadata.version("keybroker") == keybroker.__version__
    assert 'dynamic = ["version"]' in (REPO / "pyproject.toml").read_text()
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert "## [Unreleased]" in changelog


#: A ref that docs and shipped snippets tell people to pin: ``@vX``, ``--branch vX``,
#: ``checkout vX``, ``KEYBROKER_REF: "vX"``, ``ref: vX``.
PIN = re.compile(r"""(?:@|--branch[ =]|checkout |_REF:\s*["']?|\bref:\s*["']?)(v\d[\w.+-]*)""")


def pinned_refs() -> list[tuple[str, str]]:
    """(file, ref) for every keybroker pin in README, docs and helpers (not third-party
    actions such as actions/cache@v4, pinned by commit anyway)."""
    files = [
        REPO / "README.md",
        *sorted((REPO / "docs").rglob("*.md")),
        *sorted(p for p in (REPO / "helpers").rglob("*") if p.is_file()),
    ]
    found = []
    for path in files:
        for line in path.read_text().splitlines():
            if "actions/" in line and "keybroker" not in line:
                continue
            found += [(str(path.relative_to(REPO)), ref.rstrip(".")) for ref in PIN.findall(line)]
    return found


def test_every_pin_is_the_released_version() -> None:
    """Issue 22: docs and the GitLab snippet pinned v0.2.0 while the package said 0.1.0 and
    no such tag existed. Every pin is v{__version__}, and CHANGELOG has that version."""
    pins = pinned_refs()
    assert {name for name, _ in pins} >= {
        "docs/ci.md",
        "docs/rollout.md",
        "helpers/gitlab/keybroker.gitlab-ci.yml",
        "helpers/github-action/action.yml",
    }, pins
    wrong = [(name, ref) for name, ref in pins if ref != f"v{keybroker.__version__}"]
    assert wrong == [], f"pins other than v{keybroker.__version__}: {wrong}"
    changelog = (REPO / "CHANGELOG.md").read_text()
    assert re.search(rf"^## \[{re.escape(keybroker.__version__)}\]", changelog, re.M)


@pytest.mark.parametrize("exe", ["keybroker", *(f"keybroker-{s}" for s in SOURCES)])
def test_version_flag_on_every_executable(exe: str, kb_env: KbEnv) -> None:
    result = run([exe, "--version"], kb_env)
    assert (result.code, result.stdout, result.err) == (0, f"{exe} {keybroker.__version__}\n", b"")


@pytest.mark.parametrize(
    "argv",
    [
        ["--profile", "demo", "--version"],
        ["--version", "--profile", "demo"],
        ["--addr", "http://127.0.0.1:9", "--path", "p", "--version"],
    ],
)
def test_standalone_version_is_not_swallowed_by_the_hit_path(
    argv: list[str], kb_env: KbEnv
) -> None:
    """A warm cache must not answer ``--version`` with a key (the hit path skips unknown flags)."""
    kb_env.write_config('[profiles.demo]\nsource = "demo"\n')
    warm = run(["keybroker", "get", "demo"], kb_env)
    assert warm.code == 0, warm
    result = run(["keybroker-vault", *argv], kb_env)
    assert (result.code, result.stdout) == (0, f"keybroker-vault {keybroker.__version__}\n")


# --- the wheel's contents --------------------------------------------------------------------


@pytest.mark.slow
def test_wheel_lists_every_module_and_a_broken_wheel_is_caught(tmp_path: Path) -> None:
    check_package = script_module("check_package")
    proc = subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--outdir", str(tmp_path), str(REPO)],
        capture_output=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    (wheel,) = tmp_path.glob("keybroker-*.whl")
    assert check_package.wheel_problems(wheel) == []
    names = zipfile.ZipFile(wheel).namelist()
    for sub in ("cache", "cli", "sources"):
        assert f"keybroker/{sub}/__init__.py" in names

    broken = tmp_path / "broken" / wheel.name
    broken.parent.mkdir()
    with zipfile.ZipFile(wheel) as good, zipfile.ZipFile(broken, "w") as bad:
        for item in good.infolist():
            if item.filename == "keybroker/sources/vault/spec.py":
                continue
            data = good.read(item)
            if item.filename.endswith("entry_points.txt"):
                data = b"\n".join(
                    line for line in data.splitlines() if not line.startswith(b"keybroker-aws")
                )
            bad.writestr(item, data)
        bad.writestr("tests/stray.py", "")
    problems = check_package.wheel_problems(broken)
    assert "missing from the wheel: keybroker/sources/vault/spec.py" in problems
    assert "unexpected file in the wheel: tests/stray.py" in problems
    missing_script = "console script missing from the wheel: keybroker-aws"
    assert any(p.startswith(missing_script) for p in problems)


# --- the README's first command on a PEP 668 machine -----------------------------------------


def readme_commands() -> list[str]:
    """The README's ```sh blocks, in order."""
    return re.findall(r"```sh\n(.*?)```", (REPO / "README.md").read_text(), re.S)


def test_readme_first_command_installs_and_second_is_the_test_command() -> None:
    first, second = readme_commands()[:2]
    assert "./install.sh" in first
    assert "pip install" not in first
    assert second.strip() == "./scripts/test"
    ci = (REPO / ".ci" / "run").read_text()
    assert ci.rstrip().endswith("exec ./scripts/test")


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_readme_install_on_externally_managed_python(
    pep668_env: dict[str, str], tmp_path: Path
) -> None:
    env = pep668_env
    home = Path(env["HOME"]).parent  # isolated_env: HOME and the XDG dirs under one base
    refused = subprocess.run(
        ["python3", "-m", "pip", "install", "keybroker"], env=env, capture_output=True, check=False
    )
    assert refused.returncode != 0
    repo = fresh_copy(tmp_path / "keybroker")
    first = readme_commands()[0].strip()
    # The README says `git clone … && cd keybroker && ./install.sh`: run what follows the clone.
    command = first.split("&& cd keybroker &&", 1)[1].strip()

    started = time.monotonic()
    result = run_in(repo, command, env)
    took = time.monotonic() - started
    sys.stderr.write(f"\ninstall from a fresh copy took {took:.1f} s\n")
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert DEMO_KEY.fullmatch(result.stdout), result.stdout
    assert b"externally-managed" not in result.stderr
    installed = re.search(rb"install: installed (\S+) ", result.stderr)
    assert installed, result.stderr
    bin_keybroker = Path(installed.group(1).decode())
    # uv's rule: $XDG_BIN_HOME, else $XDG_DATA_HOME/../bin, else ~/.local/bin
    assert bin_keybroker.parent == Path(env["XDG_DATA_HOME"]).parent / "bin"
    assert bin_keybroker.exists()
    assert str(home) in str(bin_keybroker)
    assert (Path(env["XDG_DATA_HOME"]) / "uv" / "tools" / "keybroker").is_dir()
    for name in ("keybroker-vault", "keybroker-aws", "keybroker-keychain", "keybroker-oidc"):
        assert (bin_keybroker.parent / name).exists(), name
    again = subprocess.run(
        [str(bin_keybroker), "get", "demo"], env=env, capture_output=True, check=False, timeout=60
    )
    assert DEMO_KEY.fullmatch(again.stdout), again

    # Re-running it from an updated checkout upgrades in place (the documented upgrade).
    init = repo / "src" / "keybroker" / "__init__.py"
    init.write_text(
        init.read_text().replace(
            f'__version__ = "{keybroker.__version__}"', '__version__ = "99.0.0"'
        )
    )
    upgraded = run_in(repo, command, env)
    assert upgraded.returncode == 0, upgraded.stderr.decode()[-3000:]
    assert b"fetching uv" not in upgraded.stderr  # the bootstrapped uv is reused
    version = subprocess.run(
        [str(bin_keybroker.parent / "keybroker-vault"), "--version"],
        env=env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert version.stdout == b"keybroker-vault 99.0.0\n"

    # A uv on PATH is preferred to the bootstrapped one.
    bootstrapped = next(Path(env["XDG_DATA_HOME"]).glob("keybroker-install/uv-*/uv"))
    (Path(env["PATH"]) / "uv").symlink_to(bootstrapped)
    with_uv = run_in(repo, command, env)
    assert with_uv.returncode == 0, with_uv.stderr.decode()[-3000:]
    assert f"$ {Path(env['PATH']) / 'uv'} tool install".encode() in with_uv.stderr
    assert DEMO_KEY.fullmatch(with_uv.stdout), with_uv.stdout

    # The README's uninstall.
    gone = subprocess.run(
        [str(bootstrapped), "tool", "uninstall", "keybroker"],
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert gone.returncode == 0, gone
    assert not bin_keybroker.exists()
    assert not (Path(env["XDG_DATA_HOME"]) / "uv" / "tools" / "keybroker").exists()


def test_scripts_test_runs_everything_with_its_own_venv() -> None:
    """Issue 22: ``./scripts/test`` ran ``python3 -m pip install -e``, refused by an externally
    managed Python (PEP 668). Now it fills .venv (git-ignored) with uv and runs every tool
    with that venv's Python."""
    script = (REPO / "scripts" / "test").read_text()
    assert "python3 -m pip" not in script
    assert "python3 scripts/install.py --dev-venv .venv\n" in script
    for tool in (
        '"$PY" -m ruff',
        '"$PY" -m mypy',
        '"$PY" scripts/check_package.py',
        '"$PY" -m pytest',
    ):
        assert tool in script, tool
    assert re.search(r"^PY=\.venv/bin/python$", script, re.M)
    # nothing else runs with the system python3 (it has no ruff, mypy or pytest)
    assert re.findall(r"^\s*python3? .*$", script, re.M) == [
        "python3 scripts/install.py --dev-venv .venv"
    ]
    assert ".venv/" in (REPO / ".gitignore").read_text().splitlines()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_scripts_test_setup_on_externally_managed_python(
    pep668_env: dict[str, str], tmp_path: Path
) -> None:
    """scripts/test's setup from a fresh copy with Debian's python3 (PEP 668, no pip, no
    venv, no uv on PATH), then one quick test file with the venv it made."""
    repo = fresh_copy(tmp_path / "keybroker")
    setup = next(
        line
        for line in (repo / "scripts" / "test").read_text().splitlines()
        if "--dev-venv" in line
    )
    started = time.monotonic()
    made = run_in(repo, setup, pep668_env)
    sys.stderr.write(
        f"\nscripts/test's venv from a fresh copy took {time.monotonic() - started:.1f} s\n"
    )
    assert made.returncode == 0, made.stderr.decode()[-3000:]
    assert b"externally-managed" not in made.stderr
    venv_python = repo / ".venv" / "bin" / "python"
    quick = subprocess.run(
        [str(venv_python), "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_units.py"],
        cwd=repo,
        env=pep668_env,
        capture_output=True,
        check=False,
        timeout=600,
    )
    assert quick.returncode == 0, quick.stdout.decode()[-3000:]
    assert re.search(rb"\d+ passed", quick.stdout)
    assert b"skipped" not in quick.stdout
    plugin = subprocess.run(
        [
            str(venv_python),
            "-c",
            "import importlib.metadata as m; print("
            "[e.name for e in m.entry_points(group='keybroker.sources')])",
        ],
        env=pep668_env,
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert b"'jsonfile'" in plugin.stdout, plugin  # tests/plugin_example's source


def test_other_user_is_made_when_sbin_is_off_path(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 22: 4 tests skipped ("needs root and useradd") because useradd lives in
    /usr/sbin, off a plain user's PATH."""
    from tests.fixtures.users import OsUser  # noqa: PLC0415

    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    assert shutil.which("useradd") is None
    user = request.getfixturevalue("other_user")  # root: made; else the fixture's own rule
    assert isinstance(user, OsUser)
    assert user.uid != os.geteuid()


PLAIN_TAG = "manylinux_2_17_x86_64.manylinux2014_x86_64"
OTHER_TAGS = (
    "macosx_11_0_arm64",
    "macosx_10_12_x86_64",
    "musllinux_1_1_x86_64",
    "manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64",
    "win_amd64",
)


def fake_index(
    root: Path, version: str, digest: str | None, tags: tuple[str, ...] = (PLAIN_TAG, *OTHER_TAGS)
) -> str:
    """A file:// simple index with a tampered uv ``version`` under each platform tag of
    ``tags``; each link carries ``digest`` (None: the file's true sha256). The tampered uv
    leaves a mark in ``root/ran`` when it runs. Returns the index URL."""
    index = root / "index" / "uv"
    index.mkdir(parents=True)
    for tag in tags:
        wheel = index / f"uv-{version}-py3-none-{tag}.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(
                f"uv-{version}.data/scripts/uv", f"#!/bin/sh\necho tampered >> {root / 'ran'}\n"
            )
    links = "".join(
        f'<a href="{p.name}#sha256={digest or hashlib.sha256(p.read_bytes()).hexdigest()}">'
        f"{p.name}</a>\n"
        for p in sorted(index.iterdir())
    )
    (index / "index.html").write_text(f"<html><body>{links}</body></html>")
    return (root / "index").as_uri()


def run_installer(
    tmp_path: Path, version: str, url: str, configured_by: str, **extra: str
) -> subprocess.CompletedProcess[bytes]:
    env = isolated_env(tmp_path / "user")
    env = {
        k: v
        for k, v in env.items()
        if k
        not in (
            "UV_DEFAULT_INDEX",
            "UV_INDEX_URL",
            "PIP_INDEX_URL",
            "PIP_CONFIG_FILE",
            "KEYBROKER_UV_SHA256",
        )
    }
    env.update(
        PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin",
        KEYBROKER_UV_VERSION=version,
        **extra,
    )
    if configured_by == "pip.conf":
        (tmp_path / "pip.conf").write_text(f"[global]\nindex-url = {url}\n")
        env["PIP_CONFIG_FILE"] = str(tmp_path / "pip.conf")
    else:
        env[configured_by] = url
    assert shutil.which("uv", path=env["PATH"]) is None
    proc = subprocess.run(
        [sys.executable, str(REPO / "scripts" / "install.py"), "--with", "uv"],
        env=env,
        capture_output=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == b""
    assert f"fetching uv {version} from {url}".encode() in proc.stderr, proc.stderr
    assert not list(Path(env["XDG_DATA_HOME"]).rglob("uv")), "an unverified uv was kept"
    return proc


@pytest.mark.parametrize("configured_by", ["UV_DEFAULT_INDEX", "PIP_INDEX_URL", "pip.conf"])
def test_installer_refuses_a_wheel_whose_digest_does_not_match(
    tmp_path: Path, configured_by: str
) -> None:
    """The bootstrap reads the index pip is configured with (env or pip.conf; a file:// index
    here) and checks the uv wheel against the sha256 that index publishes (and pins: another
    uv version needs KEYBROKER_UV_SHA256)."""
    proc = run_installer(
        tmp_path,
        "0.0.1",
        fake_index(tmp_path, "0.0.1", "0" * 64),
        configured_by,
        KEYBROKER_UV_SHA256="0" * 64,
    )
    assert b"does not match the index's " + b"0" * 64 in proc.stderr, proc.stderr


def test_installer_refuses_a_pinned_version_served_with_another_digest(tmp_path: Path) -> None:
    """For the pinned uv version, a mirror's consistent but different file is refused too."""
    version = script_module("install").UV_VERSION
    proc = run_installer(tmp_path, version, fake_index(tmp_path, version, None), "UV_DEFAULT_INDEX")
    assert b"is not the one pinned in this script" in proc.stderr, proc.stderr


def test_installer_never_runs_an_unpinned_file_under_another_platform_tag(tmp_path: Path) -> None:
    """Issue 20 item 6. Before: the pin covered one file name, so a tampered uv wheel renamed
    to ``manylinux_<this glibc>_<arch>`` (valid here, ranked above the pinned 2_17 name)
    passed "sha256 verified" on the index's word and ran. Now only files with a pinned digest
    are candidates; here the genuine name carries a tampered file too, so it is refused by its
    pin."""
    install = script_module("install")
    version = install.UV_VERSION
    best = install.platform_tags()[0]  # glibc: manylinux_<this glibc>_<arch>, ranked first
    if re.escape(best) != best:
        pytest.skip("builds the alternate tag for glibc Linux")  # pragma: no cover - CI is
    genuine = next(
        name
        for name in install.PINNED_DIGESTS
        if any(
            re.fullmatch(t, tag)
            for t in install.platform_tags()
            for tag in name[:-4].split("-")[-1].split(".")
        )
    )
    assert best not in genuine
    genuine_tag = genuine[:-4].split("-")[-1]
    for tags, needle in [
        ((best, genuine_tag), b"is not the one pinned in this script"),
        ((best,), b"no sha256 is pinned for uv-" + version.encode()),
    ]:
        root = tmp_path / str(len(tags))
        proc = run_installer(
            root, version, fake_index(root, version, None, tags), "UV_DEFAULT_INDEX"
        )
        assert needle in proc.stderr, proc.stderr
        assert f"{best}.whl: sha256 verified".encode() not in proc.stderr
        assert not (root / "ran").exists(), "the tampered uv ran"


def test_installer_pins_a_chosen_version_only_with_a_digest_given(tmp_path: Path) -> None:
    """Another uv version is only bootstrapped with KEYBROKER_UV_SHA256 (a pin of your own)."""
    proc = run_installer(tmp_path, "0.0.2", fake_index(tmp_path, "0.0.2", None), "UV_DEFAULT_INDEX")
    assert b"no sha256 is pinned for uv-0.0.2-py3-none-" in proc.stderr, proc.stderr
    assert not (tmp_path / "ran").exists()


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            "{other}",
            'note: {bin} is not on PATH; add it, e.g. export PATH="{bin}:$PATH" '
            "(or run: /t/uv tool update-shell), then open a new shell",
        ),
        (
            "",
            'note: {bin} is not on PATH; add it, e.g. export PATH="{bin}:$PATH" '
            "(or run: /t/uv tool update-shell), then open a new shell",
        ),
        (
            "{shadow}:{bin}",
            "note: {bin} is on PATH, but `keybroker` runs {shadow}/keybroker, found "
            "in an earlier directory; put {bin} before {shadow} in PATH, or remove "
            "the other keybroker",
        ),
        ("{bin}:{shadow}", None),
    ],
)
def test_installer_path_note_says_what_is_wrong(
    tmp_path: Path, path: str, expected: str | None
) -> None:
    """Issue 22: "not first on PATH" was said when the directory was not on PATH at all."""
    install = script_module("install")
    dirs = {name: tmp_path / name for name in ("bin", "shadow", "other")}
    for name in ("bin", "shadow"):
        dirs[name].mkdir()
        exe = dirs[name] / "keybroker"
        exe.write_text("#!/bin/sh\n")
        exe.chmod(0o755)
    dirs["other"].mkdir()
    fill = {name: str(d) for name, d in dirs.items()}
    note = install.path_note(
        dirs["bin"], dirs["bin"] / "keybroker", path.format(**fill), "uv", Path("/t/uv")
    )
    assert note == (expected.format(**fill) if expected else None)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root")
def test_per_machine_install_serves_another_user(
    pep668_env: dict[str, str], machine_dir: Path, tmp_path: Path
) -> None:
    """docs/rollout.md's per-machine install (as root, UV_TOOL_DIR/UV_TOOL_BIN_DIR) runs for
    an unprivileged user who has no config of their own."""
    env = machine_install_env(pep668_env, machine_dir)
    shared = machine_dir
    repo = fresh_copy(tmp_path / "keybroker")
    result = run_in(repo, "./install.sh --no-demo", env)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert result.stdout == b""
    user_home = shared / "home-nobody"
    user_home.mkdir()
    shutil.chown(user_home, "nobody")
    command = (
        f"HOME={user_home} XDG_CACHE_HOME={user_home}/c XDG_DATA_HOME={user_home}/d "
        f"XDG_CONFIG_HOME={user_home}/cfg {shared}/bin/keybroker get demo"
    )
    other = subprocess.run(
        ["su", "nobody", "-s", "/bin/sh", "-c", command],
        capture_output=True,
        check=False,
        timeout=120,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert DEMO_KEY.fullmatch(other.stdout), other
    assert not (shared / "tools").stat().st_mode & 0o022  # not writable by others


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_install_with_pipx_when_pipx_is_on_path(pep668_env: dict[str, str], tmp_path: Path) -> None:
    """With pipx on PATH (and no uv) the installer uses pipx and still prints the demo key."""
    tools = tmp_path / "pipx-venv"
    subprocess.run([sys.executable, "-m", "venv", str(tools)], check=True, timeout=300)
    proc = subprocess.run(
        [str(tools / "bin" / "python"), "-m", "pip", "install", "--quiet", "pipx>=1.5"],
        capture_output=True,
        check=False,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    env = dict(pep668_env)
    (Path(env["PATH"]) / "pipx").symlink_to(tools / "bin" / "pipx")
    repo = fresh_copy(tmp_path / "keybroker")
    result = run_in(repo, "./install.sh", env)
    assert result.returncode == 0, result.stderr.decode()[-3000:]
    assert b"pipx install --force" in result.stderr
    assert b"fetching uv" not in result.stderr
    assert b"with pipx" in result.stderr
    assert DEMO_KEY.fullmatch(result.stdout), result.stdout
