"""Durations as users write them: ``90``, ``90s``, ``5m``, ``1h``, ``2d``, ``300000ms``.

``ms`` is accepted because Claude Code's helper TTL is written in milliseconds: a person who
copies ``300000ms`` from its docs into ``claude configure --ttl`` means five minutes.
"""

from __future__ import annotations

_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str | int | float) -> float:
    """Return seconds; raise ``ValueError`` with a message that shows the accepted forms."""
    if isinstance(text, bool):
        raise ValueError("expected a duration such as 90s, 5m, 1h or 2d")
    if isinstance(text, int | float):
        value = float(text)
    else:
        raw = text.strip().lower()
        unit, per = 1.0, 1.0
        if raw.endswith("ms"):
            per = 1000.0  # divided, not multiplied by 0.001: 300000ms is exactly 300 s
            raw = raw[:-2]
        elif raw and raw[-1] in _UNITS:
            unit = _UNITS[raw[-1]]
            raw = raw[:-1]
        try:
            value = float(raw) * unit / per
        except ValueError:
            raise ValueError(
                f"{text!r} is not a duration (use seconds or 90s, 5m, 1h, 2d, 300000ms)"
            ) from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r} is not a duration (must be a finite number ≥ 0)")
    return value


def format_duration(seconds: float, sub_second: bool = False) -> str:
    """Short human form for print-token and doctor: ``59m 12s``, ``-3s``; with
    ``sub_second``, ``300ms`` below a second (where "0s" would hide a TTL in the wrong
    unit)."""
    sign = "-" if seconds < 0 else ""
    if sub_second and 0 < abs(seconds) < 1:
        return f"{sign}{abs(seconds) * 1000:.0f}ms"
    s = int(abs(seconds))
    if s >= 86400:
        return f"{sign}{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{sign}{s // 3600}h {s % 3600 // 60}m"
    if s >= 60:
        return f"{sign}{s // 60}m {s % 60}s"
    return f"{sign}{s}s"
