"""Where the hit path's time goes beyond its floor: ``python -X importtime``, attributed.

Lists each module the hit path imports that the floor does not, as imported by a keybroker
module (so "keybroker.cache.store → dataclasses: 6.1 ms" reads as "store.py's import of
dataclasses costs 6 ms"), plus the keybroker modules' own execution time. importtime inflates
absolute figures a little; the ranking is what matters.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from report import Report, Row


@dataclass
class Imp:
    name: str
    self_us: int
    cum_us: int
    depth: int
    parent: str = "(top)"


def importtime(argv: Sequence[str], env: Mapping[str, str]) -> list[Imp]:
    proc = subprocess.run(
        [argv[0], "-X", "importtime", *argv[1:]],
        env=dict(env),
        capture_output=True,
        check=False,
        timeout=120,
    )
    imps: list[Imp] = []
    pending: dict[int, list[Imp]] = {}
    for line in proc.stderr.decode(errors="replace").splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        _, self_us, cum_us, name = _split(line)
        depth = (len(name) - len(name.lstrip(" "))) // 2
        imp = Imp(name.strip(), int(self_us), int(cum_us), depth)
        for child in pending.pop(depth + 1, []):
            child.parent = imp.name
        pending.setdefault(depth, []).append(imp)
        imps.append(imp)
    return imps


def _split(line: str) -> tuple[str, str, str, str]:
    body = line.split(":", 1)[1]
    self_us, cum_us, name = body.split("|", 2)
    return "", self_us.strip(), cum_us.strip(), name[1:]


def attribute(floor: list[Imp], hit: list[Imp], top: int = 12) -> list[tuple[str, float]]:
    """(``importer → module``, ms) for modules beyond the floor imported by keybroker code."""
    have = {i.name for i in floor}
    found: list[tuple[str, float]] = []
    mine: list[tuple[str, float]] = []
    for imp in hit:
        if imp.name.startswith("keybroker"):
            mine.append((f"{imp.name} (its own code, self time)", imp.self_us / 1000))
            continue
        if imp.name in have:
            continue
        if imp.parent.startswith("keybroker") or imp.parent == "(top)":
            by = "a call at run time" if imp.parent == "(top)" else imp.parent
            found.append((f"{imp.name} (first imported by {by})", imp.cum_us / 1000))
    own = sum(ms for _, ms in mine)
    found.sort(key=lambda item: -item[1])
    mine.sort(key=lambda item: -item[1])
    return [("keybroker modules' own code, all", own), *mine[:4], *found[:top]]


def run_for(
    report: Report,
    section: str,
    floor_argv: Sequence[str],
    hit_argv: Sequence[str],
    env: Mapping[str, str],
) -> None:
    floor = importtime(floor_argv, env)
    hit = importtime(hit_argv, env)
    extra = sum(i.self_us for i in hit if i.name not in {f.name for f in floor}) / 1000
    report.add(
        Row(
            section,
            "imports beyond the floor (importtime, self total)",
            f"{extra:.1f} ms",
            f"{len([i for i in hit if i.name not in {f.name for f in floor}])} modules",
        )
    )
    for what, ms in attribute(floor, hit):
        report.add(Row(section, f"import: {what}", f"{ms:.1f} ms", "importtime"))
