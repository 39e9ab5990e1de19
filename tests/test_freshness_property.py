"""Property-based tests (hypothesis) of the freshness rules, against an injected clock.

Two levels:
- ``assess`` itself, the pure rule of DESIGN section 4, over arbitrary policies, lifetimes
  and clock readings (including readings before the fetch: a clock that went back);
- ``resolve`` with the real encrypted cache and a scripted upstream, driven through random
  sequences of clock jumps (both ways), upstream failures and key lifetimes. A small model
  predicts from the entry on disk what each call must do, and the invariants the helper
  promises are checked on every answer: never an expired key, a served key always covers
  T + margin, a failing refresh serves the cached key exactly when the rules allow.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from keybroker import clock
from keybroker.cache.freshness import (
    CLOCK_SKEW,
    Policy,
    State,
    advisory_window,
    assess,
    stale_ok,
)
from keybroker.cache.outage import OUTAGE_WINDOW
from keybroker.cache.store import Cache
from keybroker.errors import KeybrokerError, Unreachable
from keybroker.model import Options, Request
from keybroker.resolve import resolve
from tests import scripted
from tests.kb import isolated_env

RANK = {State.FRESH: 0, State.ADVISORY: 1, State.MANDATORY: 2, State.EXPIRED: 3}
T0 = 1_800_000_000.0

seconds = st.floats(min_value=0.0, max_value=3 * 86400.0, allow_nan=False)
policies = st.builds(
    Policy,
    ttl=st.floats(min_value=1.0, max_value=3600.0),
    margin=st.floats(min_value=0.0, max_value=600.0),
    advisory=st.floats(min_value=0.0, max_value=1800.0),
    max_age=st.none() | st.floats(min_value=1.0, max_value=86400.0),
    max_stale=st.floats(min_value=0.0, max_value=86400.0),
)
lifetimes = st.none() | st.floats(min_value=0.001, max_value=2 * 86400.0)
offsets = st.floats(min_value=-3 * 86400.0, max_value=3 * 86400.0)


def expiry(fetched_at: float, lifetime: float | None) -> float | None:
    return None if lifetime is None else fetched_at + lifetime


@settings(max_examples=600, deadline=None)
@given(policy=policies, lifetime=lifetimes, offset=offsets)
def test_assess_invariants(policy: Policy, lifetime: float | None, offset: float) -> None:
    fetched_at = T0
    expires_at = expiry(fetched_at, lifetime)
    now = fetched_at + offset
    verdict = assess(fetched_at, expires_at, now, policy)
    served = verdict.state in (State.FRESH, State.ADVISORY)  # ADVISORY: served if refresh fails

    # never served past expiry, whatever the clock says
    if expires_at is not None and now >= expires_at:
        assert verdict.state == State.EXPIRED
    if served and expires_at is not None:
        # a served key outlives Claude Code's TTL + margin (so never an expired one)
        assert expires_at - now >= policy.need
    # a clock well behind the fetch time: the entry is distrusted, never served
    if now < fetched_at - CLOCK_SKEW:
        assert not served
    if verdict.state == State.FRESH:
        if expires_at is None:
            reuse = policy.max_age if policy.max_age is not None else policy.ttl
            # a clock that went back a little (< CLOCK_SKEW) extends reuse by at most that
            assert -CLOCK_SKEW <= now - fetched_at < reuse
        else:
            # FRESH is strictly before the advisory window opens
            window = advisory_window(policy, expires_at - fetched_at)
            assert expires_at - now >= policy.need + window
            if policy.max_age is not None:
                assert now - fetched_at < policy.max_age
    if verdict.short_lived:
        assert verdict.state == State.MANDATORY
        assert expires_at is not None
        assert expires_at - fetched_at < policy.need


@settings(max_examples=300, deadline=None)
@given(policy=policies, lifetime=lifetimes, a=seconds, b=seconds)
def test_assess_only_gets_worse_as_time_passes(
    policy: Policy, lifetime: float | None, a: float, b: float
) -> None:
    """From the fetch on, later never looks better: FRESH → ADVISORY → MANDATORY → EXPIRED."""
    fetched_at = T0
    expires_at = expiry(fetched_at, lifetime)
    early, late = sorted((a, b))
    first = assess(fetched_at, expires_at, fetched_at + early, policy)
    second = assess(fetched_at, expires_at, fetched_at + late, policy)
    assert RANK[first.state] <= RANK[second.state], (first, second)


@settings(max_examples=300, deadline=None)
@given(policy=policies, lifetime=st.floats(min_value=0.001, max_value=2 * 86400.0))
def test_a_key_that_covers_ttl_and_margin_is_fresh_when_fetched(
    policy: Policy, lifetime: float
) -> None:
    """No refresh loop: a just-fetched key that outlives T + margin is served as it is,
    and the advisory window never exceeds its setting or half the key's spare life."""
    expires_at = T0 + lifetime
    lifetime = expires_at - T0  # what assess sees, float rounding included
    window = advisory_window(policy, lifetime)
    assert 0.0 <= window <= policy.advisory
    verdict = assess(T0, expires_at, T0, policy)
    if lifetime >= policy.need:
        assert window <= (lifetime - policy.need) / 2
        assert verdict.state == State.FRESH
    else:
        assert verdict.state == State.MANDATORY
        assert verdict.short_lived


# --- resolve, with the real cache, through random clock jumps ---------------------------------


@pytest.fixture
def injected_clock(monkeypatch: pytest.MonkeyPatch) -> scripted.Clock:
    fake = scripted.Clock(T0)
    monkeypatch.setattr(clock, "now", fake.now)
    return fake


steps = st.lists(
    st.tuples(
        st.one_of(  # how the clock moves before the call: small steps, big jumps, backwards
            st.floats(min_value=0, max_value=400),
            st.floats(min_value=-7200, max_value=7200),
            st.sampled_from([0.0, 1.0, 3540.0, 3600.0, -3600.0, 86400.0]),
        ),
        st.booleans(),  # the upstream fails
        st.sampled_from([3600.0, 900.0, 400.0, 200.0, None]),  # lifetime of the next key
    ),
    min_size=1,
    max_size=25,
)


@settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(steps=steps, max_age=st.none() | st.sampled_from([120.0, 600.0]))
def test_resolve_never_serves_an_expired_key_through_clock_jumps(
    injected_clock: scripted.Clock,
    src: scripted.ScriptedSource,
    steps: list[tuple[float, bool, float | None]],
    max_age: float | None,
) -> None:
    options = Options(max_age=max_age)
    request = Request("scripted", {"id": "prop"}, options, profile="prop")
    policy = options
    with tempfile.TemporaryDirectory() as tmp:
        env = isolated_env(Path(tmp))
        cache = Cache.open(env)
        issued: set[str] = set()
        outage_until = 0.0  # "outages fail fast": the window a failed refresh opens
        for dt, fails, lifetime in steps:
            injected_clock.t += dt
            now = injected_clock.t
            entries = list(cache.root.glob("*.entry"))
            before = cache.read(entries[0].name.removesuffix(".entry")) if entries else None
            predicted = (
                None
                if before is None
                else assess(before.fetched_at, before.expires_at, now, policy).state
            )
            src.error = Unreachable("injected upstream failure") if fails else None
            src.lifetime = lifetime
            fetches_before = src.fetches
            try:
                out = resolve(request, env, cache=Cache.open(env))
            except KeybrokerError:
                event("refused: upstream failed, nothing servable")
                # failing is allowed only when the upstream failed and nothing may be served
                assert fails
                assert predicted in (None, State.MANDATORY, State.EXPIRED)
                assert before is None or not stale_ok(
                    before.fetched_at, before.expires_at, injected_clock.now(), policy
                )
                continue
            event(f"served: {out.state} (predicted {predicted})")
            # the output promise: never an expired key, and it came from the upstream
            assert out.expires_at is None or out.expires_at > now
            assert out.value in issued or src.fetches == fetches_before + 1
            issued.add(out.value)
            if out.state in ("hit", "stale"):
                assert before is not None
                assert out.value == before.value
                if out.expires_at is not None and out.state == "hit":
                    assert out.expires_at - now >= policy.need
            if predicted == State.FRESH:
                assert out.state == "hit"
                assert src.fetches == fetches_before
            elif out.state == "stale":
                # issue 14: a still-valid key is served when the refresh fails, in any window;
                # issue 20: inside an outage window it is served without asking the source
                in_window = now < outage_until <= now + 2 * OUTAGE_WINDOW
                assert fails or (in_window and src.fetches == fetches_before)
                assert predicted in (State.ADVISORY, State.MANDATORY)
                assert before is not None
                assert stale_ok(before.fetched_at, before.expires_at, now, policy)
                if not in_window:
                    outage_until = now + OUTAGE_WINDOW
            else:
                assert not fails
                assert out.state in ("miss", "refresh")
                assert src.fetches == fetches_before + 1
                outage_until = 0.0
