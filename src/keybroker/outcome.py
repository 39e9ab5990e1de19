"""What a resolve did: the key, and for people (print-token) where it came from and why.

:class:`Outcome` and the two ways one is made — from a cached entry, or from a fresh fetch (the
place a short-lived key is noticed and reported).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keybroker import clock, events
from keybroker.cache.entry import Entry
from keybroker.cache.freshness import Policy
from keybroker.model import Request, Secret
from keybroker.redact import sensitive


@dataclass
class Outcome:
    """What resolve did, for the helper (value) and for print-token (everything else)."""

    value: str = field(repr=False)
    state: str  # hit | miss | refresh | stale | bypass | revalidated | backoff
    reason: str
    source: str
    label: str
    fetched_at: float
    expires_at: float | None
    version: str | None
    entry_id: str | None
    policy: Policy
    short_lived: bool = False
    warnings: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)


class Timer:
    def __init__(self) -> None:
        self.timings: dict[str, float] = {}
        self._start = time.perf_counter()

    def add(self, step: str, since: float) -> float:
        now = time.perf_counter()
        self.timings[step] = self.timings.get(step, 0.0) + (now - since) * 1000.0
        return now

    def total(self) -> dict[str, float]:
        self.timings["total"] = (time.perf_counter() - self._start) * 1000.0
        return self.timings


def cached_outcome(
    entry: Entry,
    state: str,
    reason: str,
    request: Request,
    policy: Policy,
    timer: Timer,
) -> Outcome:
    sensitive(entry.value)
    label = entry.label.split(":", 1)[1] if ":" in entry.label else entry.label
    short = entry.expires_at is not None and entry.expires_at - entry.fetched_at < policy.need
    outcome = Outcome(
        value=entry.value,
        state=state,
        reason=reason,
        source=request.source,
        label=label,
        fetched_at=entry.fetched_at,
        expires_at=entry.expires_at,
        version=entry.version,
        entry_id=entry.id,
        policy=policy,
        short_lived=short,
        metadata=dict(entry.meta),
    )
    outcome.timings = timer.total()
    return outcome


def fresh_outcome(
    secret: Secret,
    state: str,
    reason: str,
    request: Request,
    label: str,
    eid: str | None,
    policy: Policy,
    timer: Timer,
    env: Mapping[str, str],
) -> Outcome:
    now = clock.now()
    outcome = Outcome(
        value=secret.value,
        state=state,
        reason=reason,
        source=request.source,
        label=label,
        fetched_at=now,
        expires_at=secret.expires_at,
        version=secret.version,
        entry_id=eid,
        policy=policy,
        metadata=dict(secret.metadata),
    )
    if secret.expires_at is not None and secret.expires_at - now < policy.need:
        outcome.short_lived = True
        message = (
            f"{request.where()}: the key expires in {secret.expires_at - now:.0f}s, less than "
            f"Claude Code's helper TTL + margin ({policy.need:g}s); Claude Code may use it "
            "after it expires. Lengthen the key's lifetime or lower "
            "CLAUDE_CODE_API_KEY_HELPER_TTL_MS"
        )
        outcome.warnings.append(f"warning: {message}")
        events.record(env, "short-lived", request.profile or request.source, message)
    outcome.timings = timer.total()
    return outcome
