"""The use case every helper runs: lock → read → fresh? → fetch → write → return.

The common case, a fresh entry, is answered without taking the lock (entries are replaced
atomically). Everything else happens under the entry's lock and re-reads the entry first,
so N processes that miss at once make one upstream fetch (single flight).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from keybroker import clock
from keybroker.cache import repeats
from keybroker.cache.freshness import Policy, State, Verdict, assess
from keybroker.cache.store import Cache, CacheAux, Entry, entry_id
from keybroker.errors import InvalidSecret, KeybrokerError, UsageError
from keybroker.model import Deadline, Request, Secret
from keybroker.options import repeat_mode
from keybroker.record import field, record
from keybroker.redact import sensitive
from keybroker.sources.base import FetchContext, Source, get_source
from keybroker.validate import validate_key


@record
class Outcome:
    """What resolve did, for the helper (value) and for print-token (everything else)."""

    value: str = field(repr=False)
    state: str  # hit | miss | refresh | stale | bypass | revalidated
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


class _Timer:
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


def check_required(source: Source, request: Request) -> None:
    for setting in source.settings:
        if setting.required and request.settings.get(setting.name) is None:
            raise UsageError(
                f"{request.where()}: missing setting '{setting.name}' for source '{source.name}'",
                f"set {setting.name} in the profile or pass {setting.cli_flag}",
            )


def resolve(
    request: Request,
    env: Mapping[str, str],
    *,
    no_cache: bool = False,
    debug: bool = False,
    interactive: bool = False,
    cache: Cache | None = None,
) -> Outcome:
    """Return the key for ``request``, from the cache when the rules allow, else the source."""
    timer = _Timer()
    mark = time.perf_counter()
    source = get_source(request.source)
    check_required(source, request)
    canonical = source.canonical(request.settings, env)
    label = source.describe(request.settings)
    policy = Policy.of(request.options)
    deadline = Deadline(request.options.timeout)
    mark = timer.add("source setup", mark)

    storage = "none" if no_cache else request.options.storage
    if storage == "none":
        ctx = FetchContext(deadline, env, None, debug, interactive)
        if request.options.storage == "disk" or cache is not None:
            ctx.aux = _aux(env, source.name, cache)
        secret = _fetch(source, request, ctx, timer)
        reason = "--no-cache" if no_cache else "storage = \"none\""
        return _fresh_outcome(secret, "bypass", reason, request, label, None, policy, timer)

    cache = cache or Cache.open(env)
    eid = entry_id(request.source, canonical)
    repeating = repeat_mode(request.options, env)
    mark = timer.add("cache open", mark)
    entry = cache.read(eid)
    now = clock.now()
    mark = timer.add("cache read", mark)
    if entry is not None and not repeating:
        first = assess(entry.fetched_at, entry.expires_at, now, policy)
        if first.state == State.FRESH:
            return _cached_outcome(entry, "hit", first.reason, request, policy, timer, cache)

    ctx = FetchContext(deadline, env, CacheAux(cache, source.name), debug, interactive)
    with cache.lock(eid, deadline) as lock:
        timer.timings["lock wait"] = lock.waited * 1000.0
        mark = time.perf_counter()
        entry = cache.read(eid)
        now = clock.now()
        verdict: Verdict | None = None
        if entry is not None:
            verdict = assess(entry.fetched_at, entry.expires_at, now, policy)
        mark = timer.add("cache read", mark)

        caller = seen = None
        rejected = False
        if repeating:
            from keybroker.cache.caller import caller_id  # noqa: PLC0415

            caller, seen = caller_id(), cache.read_seen(eid)
            if entry is not None and verdict is not None and verdict.state == State.FRESH:
                kind = repeats.classify(seen, caller, now, entry.fetched_at, policy.ttl)
                rejected = kind == repeats.REJECTED
                if kind == repeats.TOO_SOON:
                    verdict = Verdict(
                        State.FRESH, "asked again within 1s of a fetch: served the same key"
                    )

        outcome: Outcome | None = None
        if entry is not None and verdict is not None:
            if verdict.state == State.FRESH and not rejected:
                outcome = _cached_outcome(
                    entry, "hit", verdict.reason, request, policy, timer, cache
                )
            elif not rejected and entry.expires_at is None and entry.version is not None and (
                verdict.state != State.EXPIRED and now >= entry.fetched_at
            ):
                outcome = _revalidate(source, request, ctx, entry, cache, policy, timer, now)
        if outcome is None:
            try:
                secret = _fetch(source, request, ctx, timer)
            except KeybrokerError as exc:
                if (
                    entry is not None
                    and verdict is not None
                    and (verdict.state == State.ADVISORY or rejected)
                ):
                    stale = _cached_outcome(
                        entry, "stale", f"refresh failed ({verdict.reason})", request, policy,
                        timer, cache,
                    )
                    left = "" if entry.expires_at is None else (
                        f", valid for {entry.expires_at - now:.0f}s more"
                    )
                    stale.warnings.append(
                        f"warning: could not refresh {request.where()} ({exc.message}); "
                        f"serving the cached key{left}"
                    )
                    outcome = stale
                else:
                    raise
            else:
                if rejected:
                    state, reason = "refresh", "the same caller asked again: its key was refused"
                elif entry is None:
                    state, reason = "miss", "no cached entry"
                else:
                    assert verdict is not None
                    state, reason = "refresh", verdict.reason
                outcome = _fresh_outcome(secret, state, reason, request, label, eid, policy, timer)
                mark = time.perf_counter()
                cache.write(
                    Entry(
                        id=eid,
                        value=secret.value,
                        fetched_at=outcome.fetched_at,
                        expires_at=secret.expires_at,
                        version=secret.version,
                        source=request.source,
                        label=_entry_label(request, label),
                        meta=dict(secret.metadata),
                    )
                )
                timer.add("cache write", mark)
        if repeating and caller is not None and seen is not None:
            cache.write_seen(eid, repeats.served(seen, caller, clock.now(), policy.ttl))
    outcome.warnings[:0] = cache.warnings
    outcome.timings = timer.total()
    return outcome


def _entry_label(request: Request, label: str) -> str:
    return f"{request.source}:{label}" if label and label != request.source else request.source


def _aux(env: Mapping[str, str], source: str, cache: Cache | None) -> CacheAux | None:
    """Side storage for --no-cache calls too (a login token is not the key being bypassed)."""
    try:
        return CacheAux(cache or Cache.open(env), source)
    except KeybrokerError:
        return None


def _fetch(source: Source, request: Request, ctx: FetchContext, timer: _Timer) -> Secret:
    mark = time.perf_counter()
    try:
        secret = source.fetch(request, ctx)
    finally:
        timer.add("fetch", mark)
    sensitive(secret.value)
    validate_key(secret.value, f"{request.where()} ({source.name})")
    if secret.expires_at is not None and secret.expires_at <= clock.now():
        raise InvalidSecret(
            f"{request.where()}: the source returned a key that has already expired",
            "check the system clock and the source's key lifetime",
        )
    return secret


def _revalidate(
    source: Source,
    request: Request,
    ctx: FetchContext,
    entry: Entry,
    cache: Cache,
    policy: Policy,
    timer: _Timer,
    now: float,
) -> Outcome | None:
    """Ask the source whether the cached version is still current; if so, extend the entry."""
    mark = time.perf_counter()
    try:
        same = source.revalidate(request, entry.version, ctx)
    except KeybrokerError:
        same = None
    timer.add("revalidate", mark)
    if not same:
        return None
    entry.fetched_at = now
    cache.write(entry)
    return _cached_outcome(
        entry, "revalidated", "the source says the cached version is still current",
        request, policy, timer, cache,
    )


def _cached_outcome(
    entry: Entry,
    state: str,
    reason: str,
    request: Request,
    policy: Policy,
    timer: _Timer,
    cache: Cache,
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


def _fresh_outcome(
    secret: Secret,
    state: str,
    reason: str,
    request: Request,
    label: str,
    eid: str | None,
    policy: Policy,
    timer: _Timer,
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
        outcome.warnings.append(
            f"warning: {request.where()}: the key expires in {secret.expires_at - now:.0f}s, "
            f"less than Claude Code's helper TTL + margin ({policy.need:g}s); Claude Code may "
            "use it after it expires. Lengthen the key's lifetime or lower "
            "CLAUDE_CODE_API_KEY_HELPER_TTL_MS"
        )
    outcome.timings = timer.total()
    return outcome
