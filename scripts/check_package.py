#!/usr/bin/env python3
"""Build keybroker's sdist and wheel, check them, and run the demo from the installed wheel.

Called by scripts/test, so a packaging error fails CI. Steps:

1. ``python -m build``: the sdist, then the wheel built *from the sdist* (so a file missing
   from the sdist breaks the wheel too).
2. ``twine check --strict``: the metadata and the README render as PyPI would show them.
3. The wheel's file list against the source tree: every module, every subpackage, py.typed
   if the tree has it, the console scripts, and the version equal to ``keybroker.__version__``.
4. A clean virtualenv (not editable, not this checkout on sys.path) with the wheel and
   ``[all]``: ``keybroker get demo`` prints a demo key and ``keybroker-vault --version``
   prints the version.

``--dist DIR`` keeps the artefacts (default: a temp dir that is removed).
"""

from __future__ import annotations

import argparse
import ast
import os
import re
import subprocess
import sys
import tempfile
import tomllib
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
SRC = REPO / "src"


def say(message: str) -> None:
    print(f"check_package: {message}", file=sys.stderr, flush=True)


def source_version() -> str:
    """``__version__`` from the package root, read without importing it."""
    tree = ast.parse((SRC / "keybroker" / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
        ):
            return str(ast.literal_eval(node.value))
    raise SystemExit("check_package: src/keybroker/__init__.py has no __version__")


def expected_files(src: Path = SRC) -> set[str]:
    """What the wheel must hold: every file of the package tree but caches."""
    return {
        p.relative_to(src).as_posix()
        for p in (src / "keybroker").rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix not in (".pyc", ".pyo")
    }


def wheel_problems(wheel: Path, src: Path = SRC, version: str | None = None) -> list[str]:
    """Everything wrong with ``wheel`` compared with the source tree (empty when it is right)."""
    version = version or source_version()
    problems: list[str] = []
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        dist_info = f"keybroker-{version}.dist-info"
        for missing in sorted(expected_files(src) - names):
            problems.append(f"missing from the wheel: {missing}")
        packages = {n.rsplit("/", 1)[0] for n in names if n.endswith(".py")}
        for pkg in sorted(packages):
            if f"{pkg}/__init__.py" not in names and pkg.startswith("keybroker"):
                problems.append(f"package without __init__.py in the wheel: {pkg}")
        for stray in sorted(n for n in names if not n.startswith(("keybroker/", dist_info))):
            problems.append(f"unexpected file in the wheel: {stray}")
        if f"{dist_info}/METADATA" not in names:
            return [*problems, f"no {dist_info}/METADATA (version is not {version}?)"]
        metadata = archive.read(f"{dist_info}/METADATA").decode()
        if f"\nVersion: {version}\n" not in metadata:
            problems.append(f"METADATA does not say Version: {version}")
        entry_points = (
            archive.read(f"{dist_info}/entry_points.txt").decode()
            if f"{dist_info}/entry_points.txt" in names
            else ""
        )
    scripts = tomllib.loads((src.parent / "pyproject.toml").read_text())["project"]["scripts"]
    for name, target in scripts.items():
        if not re.search(rf"^{re.escape(name)} = {re.escape(target)}$", entry_points, re.M):
            problems.append(f"console script missing from the wheel: {name} = {target}")
    return problems


def run(argv: list[str], **kwargs: object) -> str:
    say("$ " + " ".join(argv))
    proc = subprocess.run(argv, check=False, capture_output=True, text=True, **kwargs)  # type: ignore[call-overload]
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout + proc.stderr)
        raise SystemExit(f"check_package: {Path(argv[0]).name} failed ({proc.returncode})")
    return str(proc.stdout)


def check(dist: Path) -> None:
    version = source_version()
    run([sys.executable, "-m", "build", "--outdir", str(dist), str(REPO)])
    wheels = sorted(dist.glob(f"keybroker-{version}-*.whl"))
    sdists = sorted(dist.glob(f"keybroker-{version}.tar.gz"))
    if len(wheels) != 1 or len(sdists) != 1:
        raise SystemExit(
            f"check_package: expected one wheel and one sdist of {version} "
            f"in {dist}, found {[p.name for p in dist.iterdir()]}"
        )
    run([sys.executable, "-m", "twine", "check", "--strict", str(wheels[0]), str(sdists[0])])
    problems = wheel_problems(wheels[0])
    if problems:
        raise SystemExit("check_package: " + "\ncheck_package: ".join(problems))
    say(f"{wheels[0].name}: {len(expected_files())} package files, scripts and version ok")

    venv = dist / "venv"
    run([sys.executable, "-m", "venv", str(venv)])
    python = venv / "bin" / "python"
    run([str(python), "-m", "pip", "install", "--quiet", f"{wheels[0]}[all]"])
    home = dist / "home"
    home.mkdir(exist_ok=True)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("KEYBROKER_", "PYTHON", "VIRTUAL_ENV"))
    }
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        XDG_DATA_HOME=str(home / "data"),
        XDG_STATE_HOME=str(home / "state"),
        XDG_RUNTIME_DIR=str(home / "run"),
    )
    (home / "run").mkdir(mode=0o700, exist_ok=True)
    where = run(
        [str(python), "-c", "import keybroker; print(keybroker.__file__)"], env=env, cwd=home
    )
    if not where.startswith(str(venv)):
        raise SystemExit(f"check_package: keybroker imported from {where.strip()}, not the venv")
    key = run([str(venv / "bin" / "keybroker"), "get", "demo"], env=env, cwd=home)
    if not re.fullmatch(r"kb-demo-[0-9a-f]+\n", key):
        raise SystemExit(f"check_package: keybroker get demo printed {key!r}")
    for exe in ("keybroker", "keybroker-vault"):
        printed = run([str(venv / "bin" / exe), "--version"], env=env, cwd=home)
        if version not in printed:
            raise SystemExit(f"check_package: {exe} --version printed {printed!r}")
    say(f"clean venv: keybroker get demo and keybroker-vault --version ({version}) ok")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dist", type=Path, help="keep the artefacts in this directory")
    args = parser.parse_args()
    if args.dist:
        args.dist.mkdir(parents=True, exist_ok=True)
        check(args.dist.resolve())
    else:
        with tempfile.TemporaryDirectory(prefix="kb-dist-") as tmp:
            check(Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
