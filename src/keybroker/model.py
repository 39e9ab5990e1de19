"""The values every layer passes around: what is asked (Request) and what a source answers.

They are ``NamedTuple`` classes, not dataclasses: immutable and typed all the same, and
creating one costs ~0.1 ms at import where a frozen dataclass costs ~1 ms (its methods are
generated and compiled). These modules load on every cache miss, whose budget is ≤ 1.1× a
plain hvac script (docs/performance.md); ``tests/test_hot_path.py`` keeps ``dataclasses`` off
a real cold Vault call.
Values that are secrets are left out of ``repr`` (:func:`keybroker.redact.masked_repr`).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, NamedTuple

from keybroker.deadline import Deadline
from keybroker.options import Options
from keybroker.redact import masked_repr

__all__ = ["AuxEntry", "Deadline", "Options", "Request", "Secret"]

#: The default ``metadata``: empty and read-only, so one instance is safely shared.
NO_METADATA: Mapping[str, Any] = MappingProxyType({})
#: The default serving options (``Options`` is immutable by convention).
DEFAULT_OPTIONS = Options()


class AuxEntry(NamedTuple):
    """A side secret (login token, refresh token) kept encrypted next to the cache."""

    value: str
    expires_at: float | None = None
    metadata: Mapping[str, Any] = NO_METADATA

    def __repr__(self) -> str:
        return masked_repr(self, "value")


class Secret(NamedTuple):
    """A source's answer. ``value`` is excluded from repr so a stray log line cannot show it."""

    value: str
    expires_at: float | None = None
    version: str | None = None
    source: str = ""
    metadata: Mapping[str, Any] = NO_METADATA

    def __repr__(self) -> str:
        return masked_repr(self, "value")


class Request(NamedTuple):
    """One credential to resolve: the source, its settings, and the serving options.

    ``settings`` hold only what the source needs (never a secret: config names where
    secrets live). ``profile`` is a display name for messages; it does not change the answer.
    """

    source: str
    settings: Mapping[str, Any]
    options: Options = DEFAULT_OPTIONS
    profile: str | None = None

    def where(self) -> str:
        """How messages name this request: the profile, or the source for standalone calls."""
        return f"profile '{self.profile}'" if self.profile else f"{self.source}"
