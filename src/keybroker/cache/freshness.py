"""The freshness rules of DESIGN section 4, as one pure function of the clock.

``T`` is Claude Code's helper TTL (``CLAUDE_CODE_API_KEY_HELPER_TTL_MS``): after the helper
prints a key, Claude Code may use it for T and a little more, so a key is served from cache
only while it will outlive ``T + margin``. Before that, an *advisory* window refreshes
opportunistically (serving the cached key if the source fails); inside ``T + margin`` the
window is *mandatory* (refresh or fail). Nothing here reads the clock: callers pass ``now``,
so the rules are tested against any clock, including one that jumps backwards.
"""

from __future__ import annotations

from keybroker.options import Options

#: A clock this far behind an entry's fetch time means the clock moved back: distrust the entry.
CLOCK_SKEW = 5.0


class State:
    """What the cache may do with an entry. Plain strings: this module is on the hit path."""

    FRESH = "fresh"  # serve it
    ADVISORY = "advisory"  # refresh; if that fails, serve it with a warning
    MANDATORY = "mandatory"  # refresh, or fail
    EXPIRED = "expired"  # never served again


class Verdict:
    __slots__ = ("reason", "short_lived", "state")

    def __init__(self, state: str, reason: str, short_lived: bool = False) -> None:
        self.state = state
        self.reason = reason
        #: the key's whole lifetime is shorter than T + margin (Claude Code may outlive it)
        self.short_lived = short_lived

    def __repr__(self) -> str:
        return f"Verdict({self.state!r}, {self.reason!r}, short_lived={self.short_lived})"


#: The freshness rules read only the serving options (ttl, margin, advisory, max_age,
#: max_stale): one class, :class:`keybroker.options.Options`, for both paths.
Policy = Options


def advisory_window(policy: Policy, lifetime: float) -> float:
    """The advisory window, never more than half of what the key has beyond ``T + margin``.

    A fixed window would make every key shorter than ``T + margin + advisory`` refresh on
    every call; scaling it keeps such keys reusable for part of their life.
    """
    return max(0.0, min(policy.advisory, (lifetime - policy.need) / 2))


def assess(fetched_at: float, expires_at: float | None, now: float, policy: Policy) -> Verdict:
    """Decide what the cache may do with an entry fetched at ``fetched_at``."""
    if expires_at is not None and now >= expires_at:
        return Verdict(State.EXPIRED, "expired")
    if now < fetched_at - CLOCK_SKEW:
        return Verdict(State.MANDATORY, "the clock is earlier than the fetch time")
    age = now - fetched_at
    if expires_at is None:
        reuse = policy.max_age if policy.max_age is not None else policy.ttl
        if age < reuse:
            return Verdict(State.FRESH, f"no known expiry; reused for {reuse:g}s")
        if age < reuse + policy.max_stale:
            return Verdict(State.ADVISORY, f"no known expiry; older than {reuse:g}s")
        limit = reuse + policy.max_stale
        return Verdict(State.MANDATORY, f"no known expiry; older than {limit:g}s")
    remaining = expires_at - now
    lifetime = expires_at - fetched_at
    if lifetime < policy.need:
        return Verdict(
            State.MANDATORY,
            f"the key lives {lifetime:.0f}s, less than TTL + margin ({policy.need:g}s)",
            short_lived=True,
        )
    if remaining < policy.need:
        return Verdict(State.MANDATORY, "expires within TTL + margin")
    if remaining < policy.need + advisory_window(policy, lifetime):
        return Verdict(State.ADVISORY, "expires soon (advisory refresh window)")
    if policy.max_age is not None and age >= policy.max_age:
        return Verdict(State.ADVISORY, f"older than max_age ({policy.max_age:g}s)")
    return Verdict(State.FRESH, "valid beyond TTL + margin")


def covers(expires_at: float | None, now: float, policy: Policy) -> bool | None:
    """Whether a key with this expiry outlives Claude Code's TTL + margin (None: unknown)."""
    if expires_at is None:
        return None
    return expires_at - now >= policy.need


def stale_ok(fetched_at: float, expires_at: float | None, now: float, policy: Policy) -> bool:
    """Whether a cached key may still be served when it cannot be refreshed (with a warning).

    Never past its expiry; never when the clock moved back past the fetch (its expiry can no
    longer be trusted); a key without known expiry at most ``max_stale`` past its reuse window.
    Callers pass the clock read *now*, not the one read before a slow fetch.
    """
    if now < fetched_at - CLOCK_SKEW:
        return False
    if expires_at is not None:
        return now < expires_at
    reuse = policy.max_age if policy.max_age is not None else policy.ttl
    return now - fetched_at < reuse + policy.max_stale
