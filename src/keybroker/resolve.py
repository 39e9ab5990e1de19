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

Every command that fetches comes through here, so the call's one deadline is enforced here
for all of them (:class:`keybroker.deadline.enforced`): a server that drips its answer a byte
at a time cannot hold ``headers``, ``ci export`` or ``exec`` past ``KEYBROKER_TIMEOUT``, and
the entry's lock is released on the way out.

After a miss of the fast path, :func:`resolve` continues from its
:class:`~keybroker.fastpath.main.Probe`: when the probe named the same request (digest,
identity inputs and options), its entry id and hit decision are taken as they are.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

from keybroker.cache.digest import request_digest
from keybroker.cache.store import Cache, CacheAux
from keybroker.deadline import enforced, for_call
from keybroker.errors import KeybrokerError, UsageError
from keybroker.fastpath import hit
from keybroker.fastpath.main import Probe
from keybroker.model import Deadline, Request
from keybroker.outcome import Outcome, Timer, cached_outcome, fresh_outcome
from keybroker.refresh import Refresh, fetch
from keybroker.sources.base import FetchContext, Source, get_source, identity_places


def entry_name(
    cache: Cache, source_name: str, settings: Mapping[str, Any], env: Mapping[str, str]
) -> str:
    """The cache entry a request names for the caller whose environment is ``env``."""
    source = get_source(source_name)
    canonical = source.canonical(settings, env)
    return cache.entry_id(source_name, canonical, identity_places(source, settings, env), env)


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
    probe: Probe | None = None,
) -> Outcome:
    """Return the key for ``request``, from the cache when the rules allow, else the source.

    The whole call is bounded by ``deadline`` (default: the call's, from ``KEYBROKER_TIMEOUT``)
    — except an ``interactive`` call, where a person's sign-in may happen inside the fetch and
    waits for the person (:mod:`keybroker.cli.login` gives the read after it a fresh budget).
    """
    deadline = deadline or for_call(request.options.timeout)
    if interactive:
        return _resolve(request, env, no_cache, debug, interactive, cache, deadline, probe)
    with enforced(deadline):
        return _resolve(request, env, no_cache, debug, interactive, cache, deadline, probe)


def _resolve(
    request: Request,
    env: Mapping[str, str],
    no_cache: bool,
    debug: bool,
    interactive: bool,
    cache: Cache | None,
    deadline: Deadline,
    probe: Probe | None,
) -> Outcome:
    timer = Timer()
    mark = time.perf_counter()
    source = get_source(request.source)
    check_required(source, request)
    canonical = source.canonical(request.settings, env)
    label = source.describe(request.settings)
    policy = request.options
    mark = timer.add("source setup", mark)

    storage = "none" if no_cache else request.options.storage
    if storage == "none":
        aux = (
            _aux(env, source.name, cache)
            if request.options.storage == "disk" or cache is not None
            else None
        )
        ctx = FetchContext(deadline, env, aux, debug, interactive, no_cache=no_cache)
        secret = fetch(source, request, ctx, timer)
        reason = "--no-cache" if no_cache else 'storage = "none"'
        return fresh_outcome(secret, "bypass", reason, request, label, None, policy, timer, env)

    cache = cache or Cache.open(env)
    inputs = identity_places(source, request.settings, env)
    attempt = _continued(probe, cache, request, canonical, inputs)
    if attempt is None:
        eid = cache.entry_id(request.source, canonical, inputs, env)
        mark = timer.add("cache open", mark)
        attempt = hit.serve(str(cache.root), cache.key(), eid, request.options, env, deadline)
        timer.add("cache read", mark)
        entry = attempt.entry
        if attempt.value is not None and entry is not None:
            # the hit decision already opened the entry: no second read and decryption
            reason = attempt.verdict.reason if attempt.verdict else "fresh"
            return cached_outcome(entry, "hit", reason, request, policy, timer)
    run = Refresh(
        request,
        env,
        source,
        label,
        cache,
        attempt,
        policy,
        deadline,
        timer,
        FetchContext(deadline, env, CacheAux(cache, source.name), debug, interactive),
    )
    outcome = run.go()
    return outcome._replace(warnings=(*cache.warnings, *outcome.warnings), timings=timer.total())


def _continued(
    probe: Probe | None,
    cache: Cache,
    request: Request,
    canonical: Mapping[str, Any],
    inputs: list[tuple[str, str]],
) -> hit.Attempt | None:
    """The fast path's hit decision for this very request, when it made one and did not serve.

    It is the same request when the probe's index variant has this request's digest and
    identity inputs, and the options it decided with are this request's: then its entry id
    (named from the caller's credentials as they were read then) and what it opened stand.
    """
    if (
        probe is None
        or probe.attempt is None
        or probe.variant is None
        or (probe.cache_dir != str(cache.root) or probe.key is not cache.key())
    ):
        return None
    attempt = probe.attempt
    if attempt.value is not None:  # it expired between the decision and the print: decide anew
        return None
    same = (
        probe.variant.digest == request_digest(request.source, canonical)
        and probe.variant.inputs == [list(item) for item in inputs]
        and probe.options == request.options
    )
    return attempt if same else None


def _aux(env: Mapping[str, str], source: str, cache: Cache | None) -> CacheAux | None:
    """Side storage for --no-cache calls too: a person's login is not the key being bypassed
    (sources skip cached *machine* logins themselves when ``ctx.no_cache`` is set)."""
    try:
        return CacheAux(cache or Cache.open(env), source)
    except KeybrokerError:
        return None
