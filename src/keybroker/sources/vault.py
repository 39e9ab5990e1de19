"""``vault``: not implemented in this version yet; every use says so (exit 2)."""

from __future__ import annotations

from keybroker.sources.base import UnavailableSource

SOURCE = UnavailableSource(
    "vault",
    "the vault source is not available in this version of keybroker yet",
    "use a 'command' profile in front of your existing helper meanwhile",
)
