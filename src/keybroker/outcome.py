"""What a resolve did: the key, and for people (print-token) where it came from and why.

:class:`Outcome` and the two ways one is made — from a cached entry, or from a fresh fetch (the
place a short-lived key is noticed and reported).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any, NamedTuple

from keybroker import clock, events
from keybroker.cache.entry import Entry
from keybroker.cache.freshness import Policy
from keybroker.model import NO_METADATA, Request, Secret
from keybroker.redact import masked_repr, sensitive


class Outcome(NamedTuple):
    """What resolve did, for the helper (value) and for print-token (everything else).

    A ``NamedTuple`` like the other miss-path values (:mod:`keybroker.model` says why); made
    once, when everything it reports is known.
    """

    value: str
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
    warnings: tuple[str, ...] = ()
    timings: Mapping[str, float] = NO_METADATA
    metadata: Mapping[str, Any] = NO_METADATA

    def __repr__(self) -> str:
        return masked_repr(self, "value")


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
    return Outcome(
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
        timings=timer.total(),
        metadata=dict(entry.meta),
    )


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
    short = secret.expires_at is not None and secret.expires_at - now < policy.need
    warnings: tuple[str, ...] = ()
    if secret.expires_at is not None and short:
        message = (
            f"{request.where()}: the key expires in {secret.expires_at - now:.0f}s, less than "
            f"Claude Code's helper TTL + margin ({policy.need:g}s); Claude Code may use it "
            "after it expires. Lengthen the key's lifetime or lower "
            "CLAUDE_CODE_API_KEY_HELPER_TTL_MS"
        )
        warnings = (f"warning: {message}",)
        events.record(env, "short-lived", request.profile or request.source, message)
    return Outcome(
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
        short_lived=short,
        warnings=warnings,
        timings=timer.total(),
        metadata=dict(secret.metadata),
    )
