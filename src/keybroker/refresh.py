"""Everything after a non-hit: the refresh windows, the lock, repeats, the fetch, the fallbacks.

See :mod:`keybroker.resolve` for the rules; this module carries them out under the entry's
lock (single flight) and records what happened in the event log. It continues from the hit
decision's :class:`~keybroker.fastpath.hit.Attempt`: the entry it opened is looked at again
after the lock is taken, but decrypted again only if the file changed meanwhile, and the
caller is computed once per call.

Outages fail fast (:mod:`keybroker.cache.outage`): after a refresh found the source
unreachable, calls serve the still-valid key at once for a short window shared by every
process, and then one call at a time probes the source with a short budget.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from keybroker import clock, events
from keybroker.cache import outage, repeats
from keybroker.cache.entry import Entry, check_expiry
from keybroker.cache.freshness import Policy, State, Verdict, assess, stale_ok
from keybroker.cache.lock import EntryLock, LockTimeout
from keybroker.cache.store import Cache
from keybroker.deadline import Deadline
from keybroker.errors import InvalidSecret, KeybrokerError, Unreachable
from keybroker.fastpath.hit import Attempt
from keybroker.model import Request, Secret
from keybroker.outcome import Outcome, Timer, cached_outcome, fresh_outcome
from keybroker.redact import sensitive
from keybroker.sources.base import FetchContext, Source
from keybroker.validate import validate_key


class Refresh:
    """Everything after a non-hit: windows, the lock, repeats, the fetch, the fallbacks."""

    def __init__(
        self,
        request: Request,
        env: Mapping[str, str],
        source: Source,
        label: str,
        cache: Cache,
        attempt: Attempt,
        policy: Policy,
        deadline: Deadline,
        timer: Timer,
        ctx: FetchContext,
    ) -> None:
        self.request = request
        self.env = env
        self.source = source
        self.label = label
        self.cache = cache
        self.attempt = attempt
        self.eid = attempt.eid
        self.policy = policy
        self.deadline = deadline
        self.timer = timer
        self.ctx = ctx
        self.profile = request.profile or f"{request.source}:{label}"

    def current(self) -> Entry | None:
        """The entry as it is now (decrypted again only if its file changed)."""
        self.attempt.opened = self.cache.reopen(self.eid, self.attempt.opened)
        return self.attempt.entry

    def caller(self) -> str | None:
        return self.attempt.caller(self.request.options, self.env, str(self.cache.root))

    # --- the windows and the lock ---

    def go(self) -> Outcome:
        entry = self.attempt.entry
        if entry is not None and _valid(entry, self.policy):
            noted = outage.until(self.cache.root, self.eid)
            if noted:
                return self.during_outage(entry, noted)
        verdict = self.attempt.verdict
        if verdict is not None and verdict.state == State.ADVISORY:
            with self.cache.lock(self.eid, self.deadline, wait=False) as lock:
                if lock.held:
                    return self.locked(lock)
            entry = self.current()
            if entry is not None and _valid(entry, self.policy):
                return cached_outcome(
                    entry,
                    "hit",
                    "advisory window: another process is refreshing it; served the cached key",
                    self.request,
                    self.policy,
                    self.timer,
                )
        try:
            with self.cache.lock(self.eid, self.deadline) as lock:
                return self.locked(lock)
        except LockTimeout as exc:
            entry = self.current()
            if entry is not None and _valid(entry, self.policy):
                return self.stale(entry, exc, "the lock wait ran out")
            self.event("refresh-failed", exc.message)
            raise

    def during_outage(self, entry: Entry, noted: float) -> Outcome:
        """The source was just found unreachable and ``entry`` is still valid: serve it at once
        inside the window; past it, probe with a short budget if no other call is probing."""
        now = clock.now()
        if now < noted and noted - now <= 2 * outage.OUTAGE_WINDOW:
            return self.stale(
                entry,
                Unreachable(f"the source was unreachable; asking again in {noted - now:.0f}s"),
                "source unreachable",
            )
        with self.cache.lock(self.eid, self.deadline, wait=False) as lock:
            if lock.held:
                probe = Deadline(min(outage.PROBE_BUDGET, max(self.deadline.remaining(), 0.0)))
                self.ctx = self.ctx._replace(deadline=probe)
                try:
                    return self.locked(lock)
                finally:
                    self.ctx = self.ctx._replace(deadline=self.deadline)
        entry = self.current() or entry
        if not _valid(entry, self.policy):
            return self.go_waiting()
        return self.stale(
            entry,
            Unreachable("the source was unreachable; another call is asking it again"),
            "source unreachable",
        )

    def go_waiting(self) -> Outcome:
        """The plain single flight: wait for the lock (bounded by the deadline)."""
        try:
            with self.cache.lock(self.eid, self.deadline) as lock:
                return self.locked(lock)
        except LockTimeout as exc:
            self.event("refresh-failed", exc.message)
            raise

    def locked(self, lock: EntryLock) -> Outcome:
        timer = self.timer
        timer.timings["lock wait"] = lock.waited * 1000.0
        mark = time.perf_counter()
        entry = self.current()
        now = clock.now()
        verdict = (
            None if entry is None else assess(entry.fetched_at, entry.expires_at, now, self.policy)
        )
        timer.add("cache read", mark)
        caller = self.caller()
        seen = self.cache.read_seen(self.eid) if caller else None
        rejected = False
        if entry is not None and verdict is not None and verdict.state == State.FRESH:
            if caller is not None and seen is not None:
                kind = repeats.classify(seen, caller, now, entry.fetched_at, self.policy.ttl)
                rejected = kind == repeats.REJECTED
            if not rejected:  # a peer refreshed it while we waited, or a repeat too soon
                self.served(caller)
                return cached_outcome(
                    entry, "hit", verdict.reason, self.request, self.policy, timer
                )
        refused = ""
        if rejected and entry is not None:
            refused = self.cache.fingerprint("refused-key", entry.value)
            assert seen is not None
            if seen.backing_off(now, refused):
                self.served(caller)
                left = seen.backoff_until - now
                self.event(
                    "backoff",
                    f"asked again after a refusal; the source gave this same "
                    f"key {seen.backoff_level} time(s): serving it, next refetch in "
                    f"{left:.0f}s",
                )
                return cached_outcome(
                    entry,
                    "backoff",
                    "the key was refused, but the source keeps returning it: "
                    f"serving it; not asking the source again for {left:.0f}s",
                    self.request,
                    self.policy,
                    timer,
                )
            self.event(
                "refusal",
                "the same Claude Code helper run asked again: its key was "
                "refused (HTTP 401?); fetching anew",
            )
        elif entry is not None and verdict is not None and _revalidable(entry, verdict, now):
            outcome = self.revalidate(entry, now)
            if outcome is not None:
                self.served(caller)
                return outcome
        try:
            secret = fetch(self.source, self.request, self.ctx, timer)
        except KeybrokerError as exc:
            if entry is not None and _valid(entry, self.policy):
                if isinstance(exc, Unreachable):
                    outage.note(self.cache.root, self.eid, clock.now())
                self.served(caller)
                return self.stale(entry, exc, verdict.reason if verdict else "refresh")
            self.event("refresh-failed", exc.message)
            raise
        outage.clear(self.cache.root, self.eid)
        if rejected:
            state, reason = "refresh", "the same caller asked again: its key was refused"
        elif entry is None:
            state, reason = "miss", "no cached entry"
        else:
            assert verdict is not None
            state, reason = "refresh", verdict.reason
        outcome = fresh_outcome(
            secret, state, reason, self.request, self.label, self.eid, self.policy, timer, self.env
        )
        mark = time.perf_counter()
        self.cache.write(
            Entry(
                id=self.eid,
                value=secret.value,
                fetched_at=outcome.fetched_at,
                expires_at=secret.expires_at,
                version=secret.version,
                source=self.request.source,
                label=entry_label(self.request, self.label),
                meta=dict(secret.metadata),
            )
        )
        timer.add("cache write", mark)
        if rejected and entry is not None and secret.value == entry.value:
            wait = self.backoff(refused, outcome.fetched_at)
            self.event(
                "backoff",
                f"the refetch after a refusal returned the same key: serving "
                f"it; not asking the source again for {wait:.0f}s (a 401 that is not "
                "about the key: check the gateway)",
            )
        else:
            if rejected:
                self.new_key()
            self.event(
                "refresh",
                f"{state}: {reason}" + (f"; version {secret.version}" if secret.version else ""),
            )
        self.served(caller)
        return outcome

    # --- helpers ---

    def stale(self, entry: Entry, exc: KeybrokerError, why: str) -> Outcome:
        left = (
            ""
            if entry.expires_at is None
            else (f", valid for {entry.expires_at - clock.now():.0f}s more")
        )
        message = (
            f"could not refresh {self.request.where()} ({exc.message}); serving the "
            f"cached key{left}"
        )
        outcome = cached_outcome(
            entry, "stale", f"refresh failed ({why})", self.request, self.policy, self.timer
        )
        self.event("stale-served", message)
        return outcome._replace(warnings=(*outcome.warnings, f"warning: {message}"))

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
        return cached_outcome(
            entry,
            "revalidated",
            "the source says the cached version is still current",
            self.request,
            self.policy,
            self.timer,
        )

    def served(self, caller: str | None) -> None:
        if caller is None:
            return
        ttl = self.policy.ttl

        def change(seen: repeats.Seen) -> None:
            repeats.served(seen, caller, clock.now(), ttl)

        repeats.update(self.cache.root, self.eid, self.deadline, change)

    def backoff(self, refused: str, now: float) -> float:
        chosen: list[float] = []

        def change(seen: repeats.Seen) -> None:
            chosen.append(seen.same_key_again(now, refused))

        repeats.update(self.cache.root, self.eid, self.deadline, change)
        return chosen[0] if chosen else repeats.BACKOFF_FIRST

    def new_key(self) -> None:
        repeats.update(self.cache.root, self.eid, self.deadline, lambda seen: seen.new_key())

    def event(self, kind: str, message: str) -> None:
        events.record(self.env, kind, self.profile, message, entry=self.eid[:12])


def _valid(entry: Entry, policy: Policy) -> bool:
    """Servable as a fallback by the clock read *now* (never the one read before a fetch)."""
    return stale_ok(entry.fetched_at, entry.expires_at, clock.now(), policy)


def _revalidable(entry: Entry, verdict: Verdict, now: float) -> bool:
    return (
        entry.expires_at is None
        and entry.version is not None
        and verdict.state != State.EXPIRED
        and now >= entry.fetched_at
    )


def entry_label(request: Request, label: str) -> str:
    return f"{request.source}:{label}" if label and label != request.source else request.source


def fetch(source: Source, request: Request, ctx: FetchContext, timer: Timer) -> Secret:
    from keybroker import progress  # noqa: PLC0415 - the full path only

    what = progress.waiting_for(
        request.source, request.settings, ctx.env, source.describe(request.settings)
    )
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
