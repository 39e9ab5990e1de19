"""Durations as users write them: ``90``, ``90s``, ``5m``, ``1h``, ``2d``."""

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
        unit = 1.0
        if raw and raw[-1] in _UNITS:
            unit = _UNITS[raw[-1]]
            raw = raw[:-1]
        try:
            value = float(raw) * unit
        except ValueError:
            raise ValueError(
                f"{text!r} is not a duration (use seconds or 90s, 5m, 1h, 2d)"
            ) from None
    if not value >= 0 or value == float("inf"):
        raise ValueError(f"{text!r} is not a duration (must be a finite number ≥ 0)")
    return value


def format_duration(seconds: float) -> str:
    """Short human form for print-token and doctor: ``59m 12s``, ``-3s``."""
    sign = "-" if seconds < 0 else ""
    s = int(abs(seconds))
    if s >= 86400:
        return f"{sign}{s // 86400}d {s % 86400 // 3600}h"
    if s >= 3600:
        return f"{sign}{s // 3600}h {s % 3600 // 60}m"
    if s >= 60:
        return f"{sign}{s // 60}m {s % 60}s"
    return f"{sign}{s}s"
