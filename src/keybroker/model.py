"""The values every layer passes around: what is asked (Request) and what a source answers."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keybroker.deadline import Deadline
from keybroker.options import Options

__all__ = ["AuxEntry", "Deadline", "Options", "Request", "Secret"]


@dataclass
class AuxEntry:
    """A side secret (login token, refresh token) kept encrypted next to the cache."""

    value: str = field(repr=False)
    expires_at: float | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Secret:
    """A source's answer. ``value`` is excluded from repr so a stray log line cannot show it."""

    value: str = field(repr=False)
    expires_at: float | None = None
    version: str | None = None
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Request:
    """One credential to resolve: the source, its settings, and the serving options.

    ``settings`` hold only what the source needs (never a secret: config names where
    secrets live). ``profile`` is a display name for messages; it does not change the answer.
    """

    source: str
    settings: Mapping[str, Any]
    options: Options = field(default_factory=Options)
    profile: str | None = None

    def where(self) -> str:
        """How messages name this request: the profile, or the source for standalone calls."""
        return f"profile '{self.profile}'" if self.profile else f"{self.source}"
