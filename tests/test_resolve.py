"""The cache use case in-process, with the real cache and an injected (frozen) clock.

Each rule of DESIGN section 4 has a test here; a scripted source stands in for upstream.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TypedDict, Unpack

import pytest
from freezegun import freeze_time
from freezegun.api import FrozenDateTimeFactory

from keybroker import events
from keybroker.cache.store import Cache
from keybroker.errors import InvalidSecret, Unreachable
from keybroker.model import Options, Request
from keybroker.resolve import resolve
from tests import scripted
from tests.conftest import KbEnv

T0 = "2026-01-01 12:00:00"


class OptionArgs(TypedDict, total=False):
    """Options' keyword arguments, so req(ttl=...) is checked like Options(ttl=...)."""

    ttl: float
    margin: float
    advisory: float
    max_age: float | None
    max_stale: float
    storage: str
    repeat: str
    timeout: float


def req(**options: Unpack[OptionArgs]) -> Request:
    return Request("scripted", {"id": "a"}, Options(**options), profile="p")


@pytest.fixture
def clock(kb_env: KbEnv, src: scripted.ScriptedSource) -> Iterator[FrozenDateTimeFactory]:
    """The clock, frozen at T0 right after the first fetch of :func:`req` (a 1-hour key)."""
    with freeze_time(T0) as frozen:
        assert isinstance(frozen, FrozenDateTimeFactory)  # not a ticking one
        resolve(req(), kb_env)
        yield frozen


def test_miss_then_hit_one_fetch(kb_env: KbEnv, src: scripted.ScriptedSource) -> None:
    with freeze_time(T0):
        first = resolve(req(), kb_env)
        second = resolve(req(), kb_env)
    assert (first.state, second.state) == ("miss", "hit")
    assert first.value == second.value == "sk-scripted-0001"
    assert src.fetches == 1


def test_served_only_while_remaining_covers_ttl_and_margin(
    kb_env: KbEnv, src: scripted.ScriptedSource, clock: FrozenDateTimeFactory
) -> None:
    # 1 h key, T = 300 s, margin 60 s: advisory window = min(300, (3600-360)/2) = 300 s
    clock.tick(3600 - 661)  # remaining 661 > 660: still fresh
    assert resolve(req(), kb_env).state == "hit"
    clock.tick(2)  # remaining 659: advisory window -> refresh
    out = resolve(req(), kb_env)
    assert out.state == "refresh"
    assert src.fetches == 2


def test_advisory_window_serves_cached_key_when_refresh_fails(
    kb_env: KbEnv, src: scripted.ScriptedSource, clock: FrozenDateTimeFactory
) -> None:
    clock.tick(3600 - 500)  # remaining 500: between T+m (360) and T+m+advisory (660)
    src.error = Unreachable("upstream down")
    out = resolve(req(), kb_env)
    assert out.state == "stale"
    assert out.value == "sk-scripted-0001"
    assert any("could not refresh" in w and "upstream down" in w for w in out.warnings)


def test_mandatory_window_refreshes_or_serves_the_still_valid_key(
    kb_env: KbEnv, src: scripted.ScriptedSource, clock: FrozenDateTimeFactory
) -> None:
    """Issue 14: in the mandatory window a failed refresh serves the cached key while it has
    not expired (with a warning and an event); only an expired key makes the call fail."""
    clock.tick(3600 - 300)  # remaining 300 < T + m = 360
    src.error = Unreachable("upstream down")
    stale = resolve(req(), kb_env)
    assert (stale.state, stale.value) == ("stale", "sk-scripted-0001")
    assert any("valid for 300s more" in w for w in stale.warnings)
    clock.tick(301)  # now expired
    with pytest.raises(Unreachable):
        resolve(req(), kb_env)
    src.error = None
    out = resolve(req(), kb_env)
    assert out.state == "refresh"
    assert out.value == "sk-scripted-0002"
    kinds = [e["kind"] for e in events.read(kb_env, "p")]
    assert kinds == ["refresh", "stale-served", "refresh-failed", "refresh"]


def test_never_serves_an_expired_key_even_when_refresh_fails(
    kb_env: KbEnv, src: scripted.ScriptedSource, clock: FrozenDateTimeFactory
) -> None:
    clock.tick(7200)
    src.error = Unreachable("upstream down")
    with pytest.raises(Unreachable):
        resolve(req(), kb_env)


def test_clock_jump_backwards_distrusts_the_entry(
    kb_env: KbEnv, src: scripted.ScriptedSource, clock: FrozenDateTimeFactory
) -> None:
    clock.move_to("2026-01-01 11:00:00")  # one hour back: the entry looks "from the future"
    src.error = Unreachable("upstream down")
    with pytest.raises(Unreachable):
        resolve(req(), kb_env)  # mandatory: it is not served on a clock we cannot trust
    src.error = None
    assert resolve(req(), kb_env).state == "refresh"


def test_clock_jump_forward_past_expiry_refetches(
    kb_env: KbEnv, src: scripted.ScriptedSource, clock: FrozenDateTimeFactory
) -> None:
    clock.move_to("2026-01-03 12:00:00")
    out = resolve(req(), kb_env)
    assert out.state == "refresh"
    assert out.value == "sk-scripted-0002"


def test_ttl_alignment_200s_key(kb_env: KbEnv, src: scripted.ScriptedSource) -> None:
    """A 200 s key is refetched under the default TTL, reused with a 60 s TTL."""
    src.lifetime = 200
    with freeze_time(T0) as clock:
        first = resolve(req(), kb_env)
        assert first.short_lived
        assert any("less than Claude Code's helper TTL" in w for w in first.warnings)
        clock.tick(5)
        assert resolve(req(), kb_env).state == "refresh"  # default T=300: refetched every call
        assert src.fetches == 2
        short = req(ttl=60.0)
        clock.tick(5)
        assert resolve(short, kb_env).state == "hit"  # T=60: 200 s ≥ 120 s, reused
        assert src.fetches == 2


def test_no_expiry_reused_for_ttl_then_max_age(kb_env: KbEnv, src: scripted.ScriptedSource) -> None:
    src.lifetime = None
    with freeze_time(T0) as clock:
        resolve(req(), kb_env)
        clock.tick(299)
        assert resolve(req(), kb_env).state == "hit"
        clock.tick(2)
        assert resolve(req(), kb_env).state == "refresh"
        assert src.fetches == 2
        long = req(max_age=3600.0)
        clock.tick(1800)
        assert resolve(long, kb_env).state == "hit"
        assert src.fetches == 2


def test_no_expiry_stale_on_error_is_bounded_by_max_stale(
    kb_env: KbEnv, src: scripted.ScriptedSource
) -> None:
    src.lifetime = None
    with freeze_time(T0) as clock:
        resolve(req(max_stale=600.0), kb_env)
        src.error = Unreachable("upstream down")
        clock.tick(400)
        assert resolve(req(max_stale=600.0), kb_env).state == "stale"
        clock.tick(600)
        with pytest.raises(Unreachable):
            resolve(req(max_stale=600.0), kb_env)


def test_revalidation_extends_entry_without_fetching(
    kb_env: KbEnv, src: scripted.ScriptedSource
) -> None:
    src.lifetime = None
    src.version_fn = lambda n: f"v{n}"
    src.revalidate_answer = True
    with freeze_time(T0) as clock:
        resolve(req(), kb_env)
        clock.tick(400)
        out = resolve(req(), kb_env)
        assert out.state == "revalidated"
        assert (src.fetches, src.revalidations) == (1, 1)
        clock.tick(100)
        assert resolve(req(), kb_env).state == "hit"  # the extension restarted the window
        src.revalidate_answer = False
        clock.tick(400)
        assert resolve(req(), kb_env).state == "refresh"
        assert src.fetches == 2


def test_invalid_value_is_not_cached(kb_env: KbEnv, src: scripted.ScriptedSource) -> None:
    src.value_fn = lambda n: "two words"
    with freeze_time(T0), pytest.raises(InvalidSecret):
        resolve(req(), kb_env)
    assert list(Cache.open(kb_env).entries()) == []


def test_storage_none_and_no_cache_bypass(kb_env: KbEnv, src: scripted.ScriptedSource) -> None:
    with freeze_time(T0):
        assert resolve(req(storage="none"), kb_env).state == "bypass"
        resolve(req(), kb_env)
        assert resolve(req(), kb_env, no_cache=True).state == "bypass"
        assert resolve(req(), kb_env).state == "hit"
    assert src.fetches == 3


def test_repeat_from_same_caller_is_a_rejection(
    kb_env: KbEnv, src: scripted.ScriptedSource
) -> None:
    # in-process there is no claude parent: repeat = "on" asks for detection explicitly
    with freeze_time(T0) as clock:
        assert resolve(req(repeat="on"), kb_env).state == "miss"
        clock.tick(0.5)
        again = resolve(req(repeat="on"), kb_env)  # within 1 s of the fetch: same key
        assert (again.state, again.value) == ("hit", "sk-scripted-0001")
        clock.tick(1.0)
        out = resolve(req(repeat="on"), kb_env)
        assert out.state == "refresh"
        assert "refused" in out.reason
        assert out.value == "sk-scripted-0002"
        clock.tick(250)  # 0.8 T has passed since it was served: a normal call
        assert resolve(req(repeat="on"), kb_env).state == "hit"
    assert src.fetches == 2


def test_refusal_refetch_of_the_same_key_backs_off(
    kb_env: KbEnv, src: scripted.ScriptedSource
) -> None:
    """Issue 14: a 401 that is not about the key (the source keeps returning the same key)
    must not refetch at every retry: 1 s, 4 s, 16 s … across processes, serving that key."""
    src.value_fn = lambda n: "sk-same-every-time"
    times = []
    with freeze_time(T0) as clock:
        resolve(req(repeat="on"), kb_env)
        for _ in range(12):  # Claude Code's retries, ~1-2 s apart, for 20 s
            clock.tick(1.7)
            out = resolve(req(repeat="on"), kb_env)
            assert out.value == "sk-same-every-time"
            times.append((round(clock.time_to_freeze.timestamp() - 1767268800.0, 1), out.state))
    # without backoff each of the 12 retries fetched; now far fewer
    assert src.fetches <= 4, (src.fetches, times)  # 0, 1.7, 3.4, 8.5 s: ×4 backoff
    assert any(state == "backoff" for _, state in times)
    kinds = [e["kind"] for e in events.read(kb_env, "p")]
    assert "backoff" in kinds
    assert "refusal" in kinds


def test_refusal_after_a_real_rotation_gets_the_new_key(
    kb_env: KbEnv, src: scripted.ScriptedSource
) -> None:
    src.value_fn = lambda n: "sk-old" if n < 3 else "sk-rotated"
    with freeze_time(T0) as clock:
        resolve(req(repeat="on"), kb_env)
        clock.tick(1.5)
        assert resolve(req(repeat="on"), kb_env).value == "sk-old"  # refetch: same key
        clock.tick(1.5)  # past the 1 s backoff: the next refusal asks again
        out = resolve(req(repeat="on"), kb_env)
    assert (out.state, out.value) == ("refresh", "sk-rotated")


def test_repeat_detection_off_without_claude_code(
    kb_env: KbEnv, src: scripted.ScriptedSource, clock: FrozenDateTimeFactory
) -> None:
    clock.tick(2)
    assert resolve(req(), kb_env).state == "hit"  # a burst from a script is not a repeat
    assert resolve(req(repeat="on"), kb_env).state == "hit"  # first call recorded
    clock.tick(2)
    assert resolve(req(repeat="on"), kb_env).state == "refresh"  # asked for explicitly
    clock.tick(2)
    kb_env["CLAUDE_CODE_ENTRYPOINT"] = "cli"
    assert resolve(req(repeat="off"), kb_env).state == "hit"  # profile turns it off


def test_repeat_fetch_failure_serves_cached_key_with_warning(
    kb_env: KbEnv, src: scripted.ScriptedSource
) -> None:
    with freeze_time(T0) as clock:
        resolve(req(repeat="on"), kb_env)
        clock.tick(2)
        src.error = Unreachable("upstream down")
        out = resolve(req(repeat="on"), kb_env)
    assert out.state == "stale"
    assert out.warnings


def test_source_returning_expired_key_is_refused(
    kb_env: KbEnv, src: scripted.ScriptedSource
) -> None:
    src.lifetime = -10
    with freeze_time(T0), pytest.raises(InvalidSecret, match="already expired"):
        resolve(req(), kb_env)
