"""The use case every helper runs: hit? → lock → read → fresh? → fetch → write → return.

First the same hit decision the fast path makes (:func:`keybroker.fastpath.hit.serve`): a fresh
entry for this caller's credentials is served without any lock. Otherwise, as botocore does
with its refresh windows:

- **advisory window** (the key is still good for a while): take the entry's lock *without
  waiting*; if another process is already refreshing, serve the cached key at once; if the
  refresh fails, serve the cached key with a warning;
- **mandatory window, expired, missing, refused**: wait for the lock (bounded by the call's
  one deadline), re-read the entry (a peer may just have refreshed it: single flight), fetch.

Whenever a refresh fails or the lock wait runs out, a cached key that has not expired — by the
clock read at that moment, not the one read before the fetch — is served with a warning and an
event (:mod:`keybroker.events`): an outage of the key source must not stop a Claude Code session
while its key is still valid. An expired key is never served.

Under Claude Code, a second call from the same helper run soon after being served means its
key was refused (:mod:`keybroker.cache.repeats`): the entry is refetched, and when the source
answers with the very same key the entry backs off instead of asking again at every retry.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from keybroker import clock, events
from keybroker.cache import repeats
from keybroker.cache.entry import check_expiry
from keybroker.cache.freshness import Policy, State, Verdict, assess, stale_ok
from keybroker.cache.lock import EntryLock, LockTimeout
from keybroker.cache.store import Cache, CacheAux, Entry
from keybroker.config.index import identity_inputs
from keybroker.deadline import for_call
from keybroker.errors import InvalidSecret, KeybrokerError, UsageError
from keybroker.fastpath import hit
from keybroker.model import Deadline, Request, Secret
from keybroker.redact import sensitive
from keybroker.sources.base import FetchContext, Source, get_source
from keybroker.validate import validate_key


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


def entry_name(cache: Cache, source_name: str, settings: Mapping[str, Any],
               env: Mapping[str, str]) -> str:
    """The cache entry a request names for the caller whose environment is ``env``."""
    source = get_source(source_name)
    canonical = source.canonical(settings, env)
    return cache.entry_id(source_name, canonical, identity_inputs(source, settings, env), env)


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
    deadline: Deadline | None = None,
) -> Outcome:
    """Return the key for ``request``, from the cache when the rules allow, else the source."""
    timer = _Timer()
    mark = time.perf_counter()
    source = get_source(request.source)
    check_required(source, request)
    canonical = source.canonical(request.settings, env)
    label = source.describe(request.settings)
    policy = request.options
    deadline = deadline or for_call(request.options.timeout)
    mark = timer.add("source setup", mark)

    storage = "none" if no_cache else request.options.storage
    if storage == "none":
        ctx = FetchContext(deadline, env, None, debug, interactive, no_cache=no_cache)
        if request.options.storage == "disk" or cache is not None:
            ctx.aux = _aux(env, source.name, cache)
        secret = _fetch(source, request, ctx, timer)
        reason = "--no-cache" if no_cache else "storage = \"none\""
        return _fresh_outcome(secret, "bypass", reason, request, label, None, policy, timer, env)

    cache = cache or Cache.open(env)
    inputs = identity_inputs(source, request.settings, env)
    eid = cache.entry_id(request.source, canonical, inputs, env)
    mark = timer.add("cache open", mark)
    attempt = hit.serve(str(cache.root), cache.key(), eid, request.options, env, deadline)
    timer.add("cache read", mark)
    if attempt.value is not None:
        entry = cache.read(eid)
        if entry is not None and entry.value == attempt.value:
            reason = attempt.verdict.reason if attempt.verdict else "fresh"
            return _cached_outcome(entry, "hit", reason, request, policy, timer)
    run = _Refresh(request, env, source, label, cache, eid, policy, deadline, timer,
                   FetchContext(deadline, env, CacheAux(cache, source.name), debug, interactive))
    outcome = run.go(attempt.verdict)
    outcome.warnings[:0] = cache.warnings
    outcome.timings = timer.total()
    return outcome


class _Refresh:
    """Everything after a non-hit: windows, the lock, repeats, the fetch, the fallbacks."""

    def __init__(self, request: Request, env: Mapping[str, str], source: Source, label: str,
                 cache: Cache, eid: str, policy: Policy, deadline: Deadline, timer: _Timer,
                 ctx: FetchContext) -> None:
        self.request = request
        self.env = env
        self.source = source
        self.label = label
        self.cache = cache
        self.eid = eid
        self.policy = policy
        self.deadline = deadline
        self.timer = timer
        self.ctx = ctx
        self.profile = request.profile or f"{request.source}:{label}"

    # --- the windows and the lock ---

    def go(self, verdict: Verdict | None) -> Outcome:
        if verdict is not None and verdict.state == State.ADVISORY:
            with self.cache.lock(self.eid, self.deadline, wait=False) as lock:
                if lock.held:
                    return self.locked(lock)
            entry = self.cache.read(self.eid)
            if entry is not None and _valid(entry, self.policy):
                return _cached_outcome(
                    entry, "hit", "advisory window: another process is refreshing it; "
                    "served the cached key", self.request, self.policy, self.timer)
        try:
            with self.cache.lock(self.eid, self.deadline) as lock:
                return self.locked(lock)
        except LockTimeout as exc:
            entry = self.cache.read(self.eid)
            if entry is not None and _valid(entry, self.policy):
                return self.stale(entry, exc, "the lock wait ran out")
            self.event("refresh-failed", exc.message)
            raise

    def locked(self, lock: EntryLock) -> Outcome:
        timer = self.timer
        timer.timings["lock wait"] = lock.waited * 1000.0
        mark = time.perf_counter()
        entry = self.cache.read(self.eid)
        now = clock.now()
        verdict = None if entry is None else assess(entry.fetched_at, entry.expires_at, now,
                                                    self.policy)
        timer.add("cache read", mark)
        caller = None
        if hit.repeating(self.request.options, self.env):
            from keybroker.cache.caller import caller_id  # noqa: PLC0415

            caller = caller_id(self.env, strict=self.request.options.repeat != "on")
        seen = self.cache.read_seen(self.eid) if caller else None
        rejected = False
        if entry is not None and verdict is not None and verdict.state == State.FRESH:
            if caller is not None and seen is not None:
                kind = repeats.classify(seen, caller, now, entry.fetched_at, self.policy.ttl)
                rejected = kind == repeats.REJECTED
            if not rejected:  # a peer refreshed it while we waited, or a repeat too soon
                self.served(caller)
                return _cached_outcome(entry, "hit", verdict.reason, self.request, self.policy,
                                       timer)
        refused = ""
        if rejected and entry is not None:
            refused = self.cache.fingerprint("refused-key", entry.value)
            assert seen is not None
            if seen.backing_off(now, refused):
                self.served(caller)
                left = seen.backoff_until - now
                self.event("backoff", f"asked again after a refusal; the source gave this same "
                           f"key {seen.backoff_level} time(s): serving it, next refetch in "
                           f"{left:.0f}s")
                return _cached_outcome(
                    entry, "backoff", "the key was refused, but the source keeps returning it: "
                    f"serving it; not asking the source again for {left:.0f}s", self.request,
                    self.policy, timer)
            self.event("refusal", "the same Claude Code helper run asked again: its key was "
                       "refused (HTTP 401?); fetching anew")
        elif entry is not None and verdict is not None and _revalidable(entry, verdict, now):
            outcome = self.revalidate(entry, now)
            if outcome is not None:
                self.served(caller)
                return outcome
        try:
            secret = _fetch(self.source, self.request, self.ctx, timer)
        except KeybrokerError as exc:
            if entry is not None and _valid(entry, self.policy):
                self.served(caller)
                return self.stale(entry, exc, verdict.reason if verdict else "refresh")
            self.event("refresh-failed", exc.message)
            raise
        if rejected:
            state, reason = "refresh", "the same caller asked again: its key was refused"
        elif entry is None:
            state, reason = "miss", "no cached entry"
        else:
            assert verdict is not None
            state, reason = "refresh", verdict.reason
        outcome = _fresh_outcome(secret, state, reason, self.request, self.label, self.eid,
                                 self.policy, timer, self.env)
        mark = time.perf_counter()
        self.cache.write(Entry(
            id=self.eid, value=secret.value, fetched_at=outcome.fetched_at,
            expires_at=secret.expires_at, version=secret.version, source=self.request.source,
            label=_entry_label(self.request, self.label), meta=dict(secret.metadata),
        ))
        timer.add("cache write", mark)
        if rejected and entry is not None and secret.value == entry.value:
            wait = self.backoff(refused, outcome.fetched_at)
            self.event("backoff", f"the refetch after a refusal returned the same key: serving "
                       f"it; not asking the source again for {wait:.0f}s (a 401 that is not "
                       "about the key: check the gateway)")
        else:
            if rejected:
                self.new_key()
            self.event("refresh", f"{state}: {reason}" + (
                f"; version {secret.version}" if secret.version else ""))
        self.served(caller)
        return outcome

    # --- helpers ---

    def stale(self, entry: Entry, exc: KeybrokerError, why: str) -> Outcome:
        left = "" if entry.expires_at is None else (
            f", valid for {entry.expires_at - clock.now():.0f}s more")
        message = (f"could not refresh {self.request.where()} ({exc.message}); serving the "
                   f"cached key{left}")
        outcome = _cached_outcome(entry, "stale", f"refresh failed ({why})", self.request,
                                  self.policy, self.timer)
        outcome.warnings.append(f"warning: {message}")
        self.event("stale-served", message)
        return outcome

    def revalidate(self, entry: Entry, now: float) -> Outcome | None:
        """Ask the source whether the cached version is still current; if so, extend it."""
        mark = time.perf_counter()
        try:
            same = self.source.revalidate(self.request, entry.version, self.ctx)
        except KeybrokerError:
            same = None
        self.timer.add("revalidate", mark)
        if not same:
            return None
        entry.fetched_at = now
        self.cache.write(entry)
        return _cached_outcome(
            entry, "revalidated", "the source says the cached version is still current",
            self.request, self.policy, self.timer)

    def served(self, caller: str | None) -> None:
        if caller is None:
            return
        ttl = self.policy.ttl

        def change(seen: repeats.Seen) -> None:
            repeats.served(seen, caller, clock.now(), ttl)

        hit.update_seen(str(self.cache.root), self.eid, self.deadline, change)

    def backoff(self, refused: str, now: float) -> float:
        chosen: list[float] = []

        def change(seen: repeats.Seen) -> None:
            chosen.append(seen.same_key_again(now, refused))

        hit.update_seen(str(self.cache.root), self.eid, self.deadline, change)
        return chosen[0] if chosen else repeats.BACKOFF_FIRST

    def new_key(self) -> None:
        hit.update_seen(str(self.cache.root), self.eid, self.deadline,
                        lambda seen: seen.new_key())

    def event(self, kind: str, message: str) -> None:
        events.record(self.env, kind, self.profile, message, entry=self.eid[:12])


def _valid(entry: Entry, policy: Policy) -> bool:
    """Servable as a fallback by the clock read *now* (never the one read before a fetch)."""
    return stale_ok(entry.fetched_at, entry.expires_at, clock.now(), policy)


def _revalidable(entry: Entry, verdict: Verdict, now: float) -> bool:
    return (entry.expires_at is None and entry.version is not None
            and verdict.state != State.EXPIRED and now >= entry.fetched_at)


def _entry_label(request: Request, label: str) -> str:
    return f"{request.source}:{label}" if label and label != request.source else request.source


def _aux(env: Mapping[str, str], source: str, cache: Cache | None) -> CacheAux | None:
    """Side storage for --no-cache calls too: a person's login is not the key being bypassed
    (sources skip cached *machine* logins themselves when ``ctx.no_cache`` is set)."""
    try:
        return CacheAux(cache or Cache.open(env), source)
    except KeybrokerError:
        return None


def _fetch(source: Source, request: Request, ctx: FetchContext, timer: _Timer) -> Secret:
    from keybroker import progress  # noqa: PLC0415 - the full path only

    what = progress.waiting_for(request.source, request.settings, ctx.env,
                                source.describe(request.settings))
    mark = time.perf_counter()
    try:
        with progress.status(what, ctx.env):
            secret = source.fetch(request, ctx)
    finally:
        timer.add("fetch", mark)
    sensitive(secret.value)
    validate_key(secret.value, f"{request.where()} ({source.name})")
    now = clock.now()
    try:
        check_expiry(secret.expires_at, now)
    except ValueError as exc:
        raise InvalidSecret(
            f"{request.where()}: the source gave the key an unusable expiry ({exc})",
            "check the source's expiry field / expires_in",
        ) from None
    if secret.expires_at is not None and secret.expires_at <= now:
        raise InvalidSecret(
            f"{request.where()}: the source returned a key that has already expired",
            "check the system clock and the source's key lifetime",
        )
    return secret


def _cached_outcome(
    entry: Entry,
    state: str,
    reason: str,
    request: Request,
    policy: Policy,
    timer: _Timer,
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
