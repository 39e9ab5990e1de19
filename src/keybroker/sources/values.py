"""Reading structured secrets, shared by the sources that return JSON documents (vault, aws).

A JSON secret may hold several credentials; every string in it is registered for scrubbing,
errors list field *names* (never values), and an ``expires_at`` may be epoch seconds or an
ISO 8601 / RFC 3339 time.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from keybroker.redact import sensitive

MAX_LISTED_FIELDS = 20


def register_leaves(value: Any) -> None:
    """Register every string in a secret's document, so no other field can leak either."""
    if isinstance(value, str):
        sensitive(value)
    elif isinstance(value, dict):
        for item in value.values():
            register_leaves(item)
    elif isinstance(value, list):
        for item in value:
            register_leaves(item)


def field_names(doc: Mapping[str, Any]) -> str:
    """The document's field names for an error message (sorted, at most 20 shown)."""
    names = sorted(str(k) for k in doc)
    shown = ", ".join(names[:MAX_LISTED_FIELDS])
    if len(names) > MAX_LISTED_FIELDS:
        shown += f", … ({len(names)} in all)"
    return shown or "none (empty object)"


def parse_time(value: Any) -> float | None:
    """Epoch seconds (a number or numeric text) or an ISO 8601 time, as epoch seconds.

    A time without an offset is taken as UTC. Anything else (booleans included) is None, and
    so are NaN and infinities (``"inf"`` parses as a float): an expiry that never comes
    would make a cached key fresh forever.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) if math.isfinite(value) else None
    if not isinstance(value, str):
        return None
    text = value.strip()
    try:
        number = float(text)
    except ValueError:
        pass
    else:
        return number if math.isfinite(number) else None
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()
