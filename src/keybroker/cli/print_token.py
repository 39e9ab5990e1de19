"""``keybroker print-token PROFILE``: what a person runs to see what the helper would do.

It resolves exactly like ``keybroker get`` (same cache, same rules) and reports where the key
came from, whether the cache answered and why, expiry against Claude Code's TTL + margin,
and the time each step took. The key is redacted unless ``--reveal``.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from keybroker import clock, events
from keybroker.cli.common import environment, open_cache, profile_request
from keybroker.cli.errors import config_option, debug_option, handles_errors, no_cache_option
from keybroker.config import load
from keybroker.config.index import status
from keybroker.durations import format_duration
from keybroker.events import render
from keybroker.redact import emit, mask, neutralise
from keybroker.resolve import resolve
from keybroker.style import enabled, paint

JSON_VERSION = 1


def _iso(ts: float | None) -> str | None:
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def report_dict(profile: str, outcome: Any, reveal: bool) -> dict[str, Any]:
    """The versioned JSON document (also the source of the human view)."""
    now = clock.now()
    policy = outcome.policy
    remaining = None if outcome.expires_at is None else outcome.expires_at - now
    covers = None if remaining is None else remaining >= policy.need
    return {
        "version": JSON_VERSION,
        "profile": profile,
        "source": outcome.source,
        "location": outcome.label,
        "cache": {"state": outcome.state, "reason": outcome.reason, "entry": outcome.entry_id},
        "fetched_at": _iso(outcome.fetched_at),
        "expires_at": _iso(outcome.expires_at),
        "remaining_seconds": None if remaining is None else round(remaining, 3),
        "ttl_seconds": policy.ttl,
        "margin_seconds": policy.margin,
        "covers_ttl_and_margin": covers,
        "short_lived": outcome.short_lived,
        "key_version": outcome.version,
        "key": outcome.value if reveal else mask(outcome.value),
        "key_redacted": not reveal,
        "key_length": len(outcome.value),
        "timings_ms": {k: round(v, 2) for k, v in outcome.timings.items()},
        "warnings": list(outcome.warnings),
    }


def render_human(doc: dict[str, Any], colour: bool = False) -> str:

    now = clock.now()
    rows: list[tuple[str, str]] = [
        ("profile", doc["profile"]),
        ("source", f"{doc['source']} ({doc['location']})"),
        ("cache", f"{doc['cache']['state']}: {doc['cache']['reason']}"),
    ]
    fetched = datetime.fromisoformat(doc["fetched_at"].replace("Z", "+00:00")).timestamp()
    rows.append(("fetched at", f"{doc['fetched_at']} ({format_duration(now - fetched)} ago)"))
    if doc["expires_at"] is None:
        rows.append(("expires at", "unknown (reused for TTL or max_age)"))
    else:
        left = format_duration(doc["remaining_seconds"])
        rows.append(("expires at", f"{doc['expires_at']} (in {left})"))
    need = doc["ttl_seconds"] + doc["margin_seconds"]
    ttl_text = (
        f"TTL {format_duration(doc['ttl_seconds'])} + "
        f"margin {format_duration(doc['margin_seconds'])}"
    )
    if doc["covers_ttl_and_margin"] is None:
        rows.append(("covers TTL", f"unknown: no expiry known ({ttl_text})"))
    elif doc["covers_ttl_and_margin"]:
        left = format_duration(doc["remaining_seconds"])
        rows.append(("covers TTL", f"yes: {left} ≥ {ttl_text}"))
    else:
        no = paint("NO", "red", "bold", on=colour)
        rows.append(
            (
                "covers TTL",
                f"{no}: {format_duration(doc['remaining_seconds'])} < "
                f"{ttl_text} = {format_duration(need)}",
            )
        )
    if doc["key_version"] is not None:
        rows.append(("version", str(doc["key_version"])))
    suffix = "" if not doc["key_redacted"] else f"  (redacted, {doc['key_length']} chars; --reveal)"
    rows.append(("key", doc["key"] + suffix))
    timings = " · ".join(
        f"{name} {ms:.1f} ms" for name, ms in doc["timings_ms"].items() if name != "total"
    )
    rows.append(("timings", f"{timings} · total {doc['timings_ms'].get('total', 0):.1f} ms"))
    fast = doc.get("fast_path")
    if fast is not None:
        rows.append(
            (
                "fast path",
                "ready: a hit is answered without config or source"
                if not fast
                else f"not used: {fast}",
            )
        )
    for event in doc.get("events", []):
        rows.append(("event", render(event)))
    width = max(len(k) for k, _ in rows)
    # values quote servers (a version id) and config: control characters shown as escapes
    return "\n".join(
        f"{paint(k.ljust(width), 'bold', 'cyan', on=colour)}  {neutralise(v, limit=None)}"
        for k, v in rows
    )


@click.command("print-token")
@click.argument("profile")
@click.option("--reveal", is_flag=True, help="Show the key itself (default: redacted).")
@click.option("--json", "as_json", is_flag=True, help="Versioned JSON instead of text.")
@no_cache_option
@config_option
@debug_option
@handles_errors
def print_token(
    profile: str,
    reveal: bool,
    as_json: bool,
    no_cache: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """Explain how PROFILE's key is obtained: source, cache state, expiry, timings."""

    env = environment(config_path)
    cache, _ = open_cache(env)
    request = profile_request(env, profile, cache)
    outcome = resolve(request, env, no_cache=no_cache, debug=debug, cache=cache)
    for warning in outcome.warnings:
        emit(f"keybroker: {warning}")
    doc = report_dict(profile, outcome, reveal)
    doc["fast_path"] = (
        status(load(env), env, str(cache.root), profile)
        if cache is not None
        else "the cache directory cannot be used"
    )
    doc["events"] = events.recent(env, profile, 5)
    if as_json:
        click.echo(json.dumps(doc, indent=2))
    else:
        colour = enabled(env=env)
        click.echo(render_human(doc, colour), color=colour)
