#!/usr/bin/env python3
"""Install keybroker from this checkout for the current user, then print the demo key.

Why this script: on PEP 668 systems (Debian 12, Ubuntu 24.04, Homebrew) ``pip install`` into
the system Python is refused, and stock Debian has no ``python3-venv`` either. So keybroker is
installed as an isolated *tool* (its own virtualenv, its commands linked into ~/.local/bin) by

1. ``uv`` if it is on PATH, else
2. ``pipx`` if it is on PATH, else
3. a private ``uv`` bootstrapped with nothing but this Python's standard library: the uv wheel
   for this platform is read from the package index (the one pip is configured to use), its
   sha256 is checked against the digest the index publishes, and the ``uv`` binary is unpacked
   into ``$XDG_DATA_HOME/keybroker-install/uv-VERSION/`` (no pip, venv or ensurepip needed).

No root, no ``--break-system-packages``. It honours the index and CA settings pip uses here:
``UV_DEFAULT_INDEX``/``UV_INDEX_URL``, else ``PIP_INDEX_URL``, else ``index-url`` in pip's
config files, else the standard default index; ``SSL_CERT_FILE``, else ``PIP_CERT``, else
``cert`` in pip's config. Re-running it upgrades keybroker to the checkout's version.

Runs on Python 3.8+ so it can start on old systems; keybroker itself needs 3.11+ (uv fetches a
suitable Python when this one is older). Messages go to stderr; stdout is the demo key only.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import platform
import re
import shutil
import ssl
import stat
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path

UV_VERSION = "0.13.9"  # the uv bootstrapped when none is installed (KEYBROKER_UV_VERSION overrides)
# sha256 of UV_VERSION's wheels, as published when it was pinned. Only these files are ever
# run: a candidate whose name is not listed here is never chosen (a tampered wheel renamed to
# another platform tag valid here would otherwise rank first), and the chosen file's bytes
# must hash to its pinned digest (the index's digest must agree too). A platform without a
# pinned wheel, or another uv version (KEYBROKER_UV_VERSION), needs KEYBROKER_UV_SHA256: the
# digest you pin yourself. Nothing is accepted on the index's word alone.
# fmt: off
PINNED_DIGESTS = {
    "uv-0.13.9-py3-none-macosx_10_12_x86_64.whl":
        "c16ed11e013557536b3e60065f1b912f6407bd6518e041b961e23ef9e6b4fbf5",
    "uv-0.13.9-py3-none-macosx_11_0_arm64.whl":
        "66c512266d633bef48384a1f53003f41f2a8e7b36fe6e7fbfd3e0fd52d96fa63",
    "uv-0.13.9-py3-none-manylinux_2_17_aarch64.manylinux2014_aarch64.musllinux_1_1_aarch64.whl":
        "5435c5ce14a56431208ca0996416d310f1598e8c2c8ba707688985a16bb82dbe",
    "uv-0.13.9-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl":
        "d7f459fe4fd247d830351c75686d3996ace3c6f3f728eb0e85a30b7ada0cef19",
    "uv-0.13.9-py3-none-musllinux_1_1_x86_64.whl":
        "2c45530751517d6c3bbc69a19473f6effe47cce047bede01ffd8af7ea7b36b25",
    "uv-0.13.9-py3-none-win_amd64.whl":
        "6a44b2ed8111d2f60d2b92627c5dccda3f7ed7570b18ce115e569cd68c28246b",
}
# fmt: on
DEFAULT_INDEX = "https://pypi.org/simple"
REPO = Path(__file__).resolve().parent.parent
EXTRAS = "all"


def say(message: str) -> None:
    print(f"install: {message}", file=sys.stderr, flush=True)


def fail(message: str) -> None:
    print(f"install: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


# --- where pip would look: index and CA bundle ----------------------------------------------


def pip_config(keys: tuple[str, ...] = ("index-url", "cert")) -> dict[str, str]:
    """``keys`` (``index-url`` and ``cert``) from pip's config files, later files winning (as
    pip does)."""
    home = Path.home()
    xdg_dirs = os.environ.get("XDG_CONFIG_DIRS", "/etc/xdg").split(os.pathsep)
    xdg_home = Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config")
    files = [Path("/etc/pip.conf")]
    files += [Path(d) / "pip" / "pip.conf" for d in reversed(xdg_dirs) if d]
    files += [home / ".pip" / "pip.conf", xdg_home / "pip" / "pip.conf"]
    if os.environ.get("PIP_CONFIG_FILE"):
        files.append(Path(os.environ["PIP_CONFIG_FILE"]))
    found: dict[str, str] = {}
    for path in files:
        parser = configparser.RawConfigParser()
        try:
            parser.read(path)
        except (OSError, configparser.Error):
            continue
        for section in ("global", "install"):
            for key in keys:
                if parser.has_option(section, key):
                    found[key] = parser.get(section, key).strip()
    return found


def index_url() -> str:
    for name in ("UV_DEFAULT_INDEX", "UV_INDEX_URL", "PIP_INDEX_URL"):
        if os.environ.get(name):
            return os.environ[name].rstrip("/")
    return pip_config().get("index-url", DEFAULT_INDEX).rstrip("/")


def ca_bundle() -> str | None:
    for name in ("SSL_CERT_FILE", "PIP_CERT"):
        if os.environ.get(name):
            return os.environ[name]
    return pip_config().get("cert")


def tool_environment() -> dict[str, str]:
    """The environment for uv/pipx: pip's index and CA settings carried over."""
    env = dict(os.environ)
    url = index_url()
    if url != DEFAULT_INDEX and not (env.get("UV_DEFAULT_INDEX") or env.get("UV_INDEX_URL")):
        env["UV_DEFAULT_INDEX"] = url
    cert = ca_bundle()
    if cert and not env.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = cert
    return env


def dev_environment() -> dict[str, str]:
    """:func:`tool_environment` plus pip's extra indexes, find-links and constraints, so the
    test venv gets what ``pip install`` would get on this machine (mirrors, pinned sets)."""
    env = tool_environment()
    config = pip_config(("extra-index-url", "find-links", "constraint"))
    for pip_name, uv_name in (
        ("extra-index-url", "UV_INDEX"),
        ("find-links", "UV_FIND_LINKS"),
        ("constraint", "UV_CONSTRAINT"),
    ):
        value = os.environ.get("PIP_" + pip_name.upper().replace("-", "_")) or config.get(pip_name)
        if value and not env.get(uv_name):
            env[uv_name] = " ".join(value.split())
    if env.get("UV_INDEX"):
        # pip picks the best version across *all* its indexes; uv by default stops at the
        # first index that has the name, which makes a mirror split over several indexes
        # unsatisfiable. Resolve as pip does.
        env.setdefault("UV_INDEX_STRATEGY", "unsafe-best-match")
    return env


# --- bootstrapping uv from its wheel -----------------------------------------------------------


def fetch(url: str, accept: str | None = None) -> tuple[bytes, str]:
    """(body, content type) of ``url`` with the configured CA bundle; file:// works too."""
    if url.startswith("file:") and url.endswith("/"):
        url += "index.html"  # a directory index on disk, as pip reads it
    # file:// is allowed on purpose: pip accepts file:// indexes, and so does this script.
    request = urllib.request.Request(url, headers={"Accept": accept} if accept else {})  # noqa: S310
    context = ssl.create_default_context(cafile=ca_bundle())
    with urllib.request.urlopen(request, timeout=120, context=context) as response:  # noqa: S310
        return response.read(), response.headers.get("Content-Type", "")


def wheel_files(project: str) -> list[tuple[str, str, str]]:
    """(filename, url, sha256) of every file of ``project`` the index lists (PEP 691 or 503)."""
    base = index_url() + f"/{project}/"
    body, ctype = fetch(base, "application/vnd.pypi.simple.v1+json, text/html;q=0.1")
    files: list[tuple[str, str, str]] = []
    if "json" in ctype:
        for entry in json.loads(body)["files"]:
            if entry.get("yanked"):
                continue
            digest = entry.get("hashes", {}).get("sha256", "")
            files.append((entry["filename"], urllib.parse.urljoin(base, entry["url"]), digest))
        return files
    for attrs, name in re.findall(r"<a\s([^>]*)>([^<]+)</a>", body.decode()):
        href = re.search(r'href="([^"]+)"', attrs)
        if href is None or "data-yanked" in attrs:
            continue
        url, _, fragment = href.group(1).replace("&amp;", "&").partition("#")
        digest = fragment[len("sha256=") :] if fragment.startswith("sha256=") else ""
        files.append((name.strip(), urllib.parse.urljoin(base, url), digest))
    return files


def platform_tags() -> list[str]:
    """Regexes for the uv wheel tags that run here, best first."""
    machine = platform.machine().lower()
    if sys.platform == "darwin":
        arch = "arm64" if machine in ("arm64", "aarch64") else "x86_64"
        return [rf"macosx_\d+_\d+_{arch}"]
    if sys.platform == "win32":
        return [{"amd64": "win_amd64", "arm64": "win_arm64"}.get(machine, "win32")]
    arch = {"amd64": "x86_64", "arm64": "aarch64", "armv8l": "aarch64"}.get(machine, machine)
    libc, version = platform.libc_ver()
    if libc == "glibc":
        major, minor = (int(x) for x in version.split(".")[:2])
        tags = [rf"manylinux_{major}_{m}_{arch}" for m in range(minor, -1, -1)]
        tags += [rf"manylinux2014_{arch}"] if (major, minor) >= (2, 17) else []
        return tags
    return [rf"musllinux_\d+_\d+_{arch}"]


def pinned_digests(version: str) -> dict[str, str]:
    """File name → sha256 of the uv wheels this run may use; ``{}`` means "any name, one
    digest" and is only returned with KEYBROKER_UV_SHA256 (see ``pinned_digest``)."""
    return PINNED_DIGESTS if version == UV_VERSION else {}


def pinned_digest(name: str, version: str) -> str | None:
    """The sha256 ``name`` must have: this script's pin, else KEYBROKER_UV_SHA256, else None."""
    own = os.environ.get("KEYBROKER_UV_SHA256", "").strip().lower()
    return pinned_digests(version).get(name) or own or None


def pick_wheel(files: list[tuple[str, str, str]], version: str) -> tuple[str, str, str, str]:
    """(name, url, index digest, pinned digest) of the best uv wheel for this platform among
    the files that have a pinned digest; the others are never considered."""
    wheels = [f for f in files if f[0].startswith(f"uv-{version}-") and f[0].endswith(".whl")]
    unpinned: list[str] = []
    for tag in platform_tags():
        for name, url, digest in wheels:
            tags = name[: -len(".whl")].split("-")[-1]
            if not any(re.fullmatch(tag, t) for t in tags.split(".")):
                continue
            pin = pinned_digest(name, version)
            if pin is None:
                unpinned.append(name)
                continue
            return name, url, digest, pin
    if unpinned:
        fail(
            f"no sha256 is pinned for {', '.join(sorted(set(unpinned)))} (uv {version}); "
            "refusing to run an unpinned binary: install uv or pipx and re-run, or set "
            "KEYBROKER_UV_SHA256 to the wheel's sha256 from a source you trust"
        )
    fail(
        f"the index has no uv {version} wheel for this platform "
        f"({sys.platform} {platform.machine()}); install uv or pipx and re-run"
    )
    raise AssertionError  # unreachable


def bootstrap_uv() -> Path:
    version = os.environ.get("KEYBROKER_UV_VERSION", UV_VERSION)
    data = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    home = data / "keybroker-install" / f"uv-{version}"
    exe = home / ("uv.exe" if sys.platform == "win32" else "uv")
    if exe.is_file() and os.access(exe, os.X_OK):
        return exe
    say(f"no uv or pipx on PATH: fetching uv {version} from {index_url()}")
    name, url, digest, pin = pick_wheel(wheel_files("uv"), version)
    if not re.fullmatch(r"[0-9a-f]{64}", digest):
        fail(f"the index publishes no sha256 for {name}; refusing to run an unverified binary")
    if digest != pin:
        fail(f"{name}: the index's sha256 {digest} is not the one pinned in this script")
    body, _ = fetch(url)
    actual = hashlib.sha256(body).hexdigest()
    if actual != digest:
        fail(f"{name}: sha256 {actual} does not match the index's {digest}")
    if actual != pin:  # implied by the two checks above; kept so the rule reads on its own
        fail(f"{name}: sha256 {actual} is not the one pinned in this script")
    say(f"{name}: sha256 verified against the pinned digest")
    home.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=home) as scratch:
        wheel = Path(scratch) / name
        wheel.write_bytes(body)
        with zipfile.ZipFile(wheel) as archive:
            member = next(
                (
                    m
                    for m in archive.namelist()
                    if re.fullmatch(r"uv-[^/]+\.data/scripts/uv(\.exe)?", m)
                ),
                None,
            )
            if member is None:
                fail(f"{name} has no uv binary")
            staged = Path(scratch) / exe.name
            staged.write_bytes(archive.read(str(member)))
        staged.chmod(staged.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
        os.replace(staged, exe)
    return exe


# --- installing keybroker ----------------------------------------------------------------------


def installer(choice: str) -> tuple[str, Path]:
    """("uv" | "pipx", executable)."""
    if choice in ("auto", "uv") and shutil.which("uv"):
        return "uv", Path(str(shutil.which("uv")))
    if choice in ("auto", "pipx") and shutil.which("pipx"):
        return "pipx", Path(str(shutil.which("pipx")))
    if choice == "pipx":
        fail("pipx is not on PATH")
    return "uv", bootstrap_uv()


def run(argv: list[str], env: dict[str, str]) -> str:
    say("$ " + " ".join(argv))
    proc = subprocess.run(argv, env=env, stdout=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        fail(f"{Path(argv[0]).name} exited with {proc.returncode}")
    return proc.stdout.decode(errors="replace")


def install(kind: str, tool: Path, env: dict[str, str]) -> Path:
    """Install (or upgrade to) this checkout; the directory keybroker's commands went to."""
    spec = f"{REPO}[{EXTRAS}]"
    if kind == "pipx":
        run([str(tool), "install", "--force", spec], env)
        out = run([str(tool), "environment", "--value", "PIPX_BIN_DIR"], env)
        return Path(os.path.normpath(out.strip()))
    command = [str(tool), "tool", "install", "--force", "--reinstall-package", "keybroker"]
    if sys.version_info >= (3, 11):  # noqa: UP036 - this script itself runs on 3.8+
        command += ["--python", sys.executable]  # else uv finds or fetches a Python >= 3.11
    run([*command, spec], env)
    return Path(os.path.normpath(run([str(tool), "tool", "dir", "--bin"], env).strip()))


def path_note(bin_dir: Path, exe: Path, path: str, kind: str, tool: Path) -> str | None:
    """What to tell the person about PATH, or None when ``keybroker`` already runs ``exe``.

    Two different problems with two different fixes: ``bin_dir`` is not on PATH at all (add
    it), or it is, but another ``keybroker`` in an earlier directory wins (move it first, or
    remove the other one).
    """
    on_path = shutil.which("keybroker", path=path)
    if on_path is not None and Path(on_path).resolve() == exe.resolve():
        return None
    entries = [os.path.normpath(os.path.expanduser(p)) for p in path.split(os.pathsep) if p]
    listed = any(_same_dir(Path(entry), bin_dir) for entry in entries)
    if not listed or on_path is None:
        fix = f"{tool} tool update-shell" if kind == "uv" else "pipx ensurepath"
        return (
            f'note: {bin_dir} is not on PATH; add it, e.g. export PATH="{bin_dir}:$PATH" '
            f"(or run: {fix}), then open a new shell"
        )
    return (
        f"note: {bin_dir} is on PATH, but `keybroker` runs {on_path}, found in an earlier "
        f"directory; put {bin_dir} before {Path(str(on_path)).parent} in PATH, or remove "
        "the other keybroker"
    )


def _same_dir(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return False


def dev_venv(venv: Path, choice: str) -> int:
    """The test command's own virtualenv (scripts/test): made by uv (on PATH, else the pinned
    bootstrap), so neither pip nor python3-venv is needed, with keybroker editable with
    ``[all,test]`` and the example plugin. An existing ``venv`` is updated in place."""
    env = dev_environment()
    kind, tool = installer("uv" if choice == "auto" else choice)
    if kind != "uv":
        fail("--dev-venv needs uv (on PATH or bootstrapped)")
    python = venv / ("Scripts/python.exe" if sys.platform == "win32" else "bin/python")
    if not python.exists():
        run([str(tool), "venv", "--quiet", "--python", sys.executable, str(venv)], env)
    pip = [str(tool), "pip", "install", "--quiet", "--python", str(python)]
    run([*pip, "-e", f"{REPO}[all,test]"], env)
    run([*pip, "--no-deps", "-e", str(REPO / "tests" / "plugin_example")], env)
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--with",
        dest="choice",
        choices=("auto", "uv", "pipx"),
        default="auto",
        help="installer to use (default: uv, else pipx, else a bootstrapped uv)",
    )
    parser.add_argument("--no-demo", action="store_true", help="do not run `keybroker get demo`")
    parser.add_argument(
        "--dev-venv",
        metavar="DIR",
        type=Path,
        help="instead: make DIR a venv for the tests (scripts/test uses .venv)",
    )
    args = parser.parse_args()
    if not (REPO / "pyproject.toml").is_file():
        fail(f"{REPO} is not a keybroker checkout")
    if args.dev_venv:
        return dev_venv(args.dev_venv.absolute(), args.choice)
    env = tool_environment()
    kind, tool = installer(args.choice)
    bin_dir = install(kind, tool, env)
    exe = bin_dir / ("keybroker.exe" if sys.platform == "win32" else "keybroker")
    say(f"installed {exe} (and keybroker-vault, -aws, -keychain, -oidc) with {kind}")
    note = path_note(bin_dir, exe, os.environ.get("PATH", ""), kind, tool)
    if note:
        say(note)
    if args.no_demo:
        return 0
    say("$ keybroker get demo")
    return subprocess.run([str(exe), "get", "demo"], check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
