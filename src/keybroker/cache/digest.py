"""The request digest: a stable hash of what a request asks for (no secrets in it).

Kept apart from :mod:`keybroker.cache.ids` because it needs ``json``: the full path computes
it, the index stores it, and the hit path only ever reads it back.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keybroker._hash import hexdigest


def request_digest(source: str, canonical: Mapping[str, Any]) -> str:
    """A stable hash of the request (no secrets in it): what the index stores per profile."""
    text = json.dumps({"source": source, "settings": canonical}, sort_keys=True, default=str)
    return hexdigest(text.encode())
