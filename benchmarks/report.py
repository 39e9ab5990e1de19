"""The benchmark's output: one table of medians and ratios, as Markdown (pasted into docs)."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from timing import Sample


@dataclass
class Row:
    section: str
    what: str
    value: str  # the measured figure, formatted
    detail: str = ""  # spread, counts, what it is compared with
    target: str = ""
    ok: bool | None = None  # None: no target


@dataclass
class Report:
    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    raw: dict[str, list[float]] = field(default_factory=dict)

    def timing(self, section: str, sample: Sample, label: str | None = None) -> Sample:
        """A row for one timed command: median and the 10th–90th percentile spread."""
        self.raw[sample.name] = sample.times
        self.rows.append(
            Row(
                section,
                label or sample.name,
                f"{sample.median * 1000:.1f} ms",
                f"p10–p90 {sample.quantile(0.1) * 1000:.1f}–{sample.quantile(0.9) * 1000:.1f} ms,"
                f" n={len(sample.times)}",
            )
        )
        return sample

    def ratio(
        self,
        section: str,
        what: str,
        num: Sample,
        den: Sample,
        *,
        at_most: float | None = None,
        at_least: float | None = None,
    ) -> float:
        """``num``/``den`` of medians; a target ``at_most`` (slower by at most) or ``at_least``."""
        value = num.median / den.median
        target, ok = "", None
        if at_most is not None:
            target, ok = f"≤ {at_most:g}×", value <= at_most
        if at_least is not None:
            value = den.median / num.median
            target, ok = f"≥ {at_least:g}× faster", value >= at_least
        self.rows.append(Row(section, what, f"{value:.2f}×", "ratio of medians", target, ok))
        return value

    def add(self, row: Row) -> None:
        self.rows.append(row)

    def markdown(self) -> str:
        lines = [
            "| section | measurement | result | detail | target | met |",
            "|---|---|---|---|---|---|",
        ]
        for r in self.rows:
            met = "" if r.ok is None else ("yes" if r.ok else "**no**")
            cells = (r.section, r.what, r.value, r.detail, r.target, met)
            lines.append("| " + " | ".join(cells) + " |")
        if self.notes:
            lines.append("")
            lines.extend(f"- {note}" for note in self.notes)
        return "\n".join(lines)

    def save(self, directory: Path, stamp: str) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"{stamp}.md").write_text(self.markdown() + "\n")
        path = directory / f"{stamp}.json"
        path.write_text(
            json.dumps(
                {"rows": [asdict(r) for r in self.rows], "notes": self.notes, "raw": self.raw},
                indent=1,
            )
        )
        return path
