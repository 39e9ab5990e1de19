"""The values every layer passes around: what is asked (Request) and what a source answers."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keybroker.errors import DeadlineExceeded

DEFAULT_TTL = 300.0
DEFAULT_MARGIN = 60.0
DEFAULT_ADVISORY = 300.0
DEFAULT_MAX_STALE = 3600.0
DEFAULT_TIMEOUT = 20.0


@dataclass(frozen=True)
class Secret:
    """A source's answer. ``value`` is excluded from repr so a stray log line cannot show it."""

    value: str = field(repr=False)
    expires_at: float | None = None
    version: str | None = None
    source: str = ""
    metadata: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Options:
    """How a request is served (not what it asks for): freshness, storage, deadline."""

    ttl: float = DEFAULT_TTL
    margin: float = DEFAULT_MARGIN
    advisory: float = DEFAULT_ADVISORY
    max_age: float | None = None
    max_stale: float = DEFAULT_MAX_STALE
    storage: str = "disk"
    repeat: str = "auto"
    timeout: float = DEFAULT_TIMEOUT


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


class Deadline:
    """The whole call's time budget (KEYBROKER_TIMEOUT), shared by every network step."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._end = time.monotonic() + seconds

    def remaining(self) -> float:
        return self._end - time.monotonic()

    def timeout(self, step: float | None = None) -> float:
        """A timeout for the next step: at most ``step``, never past the deadline."""
        left = self.remaining()
        if left <= 0:
            raise DeadlineExceeded(
                f"gave up after {self.seconds:g}s (KEYBROKER_TIMEOUT)",
                "the source is slow or unreachable; raise KEYBROKER_TIMEOUT or check the network",
            )
        return left if step is None else min(step, left)
