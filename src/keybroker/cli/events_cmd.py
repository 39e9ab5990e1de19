"""``keybroker events [PROFILE]``: what keybroker did that a person should know about.

Claude Code discards a successful helper's stderr, so warnings (a stale key served during an
outage, a refused key, a backoff, a key that lives less than the helper TTL) are also kept in
the event log (:mod:`keybroker.events`); this lists them, newest last.
"""

from __future__ import annotations

import json

import click

from keybroker import events
from keybroker.cli.common import environment
from keybroker.cli.errors import config_option, debug_option, handles_errors
from keybroker.redact import neutralise


@click.command("events")
@click.argument("profile", required=False)
@click.option(
    "-n",
    "--limit",
    type=click.IntRange(min=1),
    default=50,
    show_default=True,
    help="Show at most this many (the newest).",
)
@click.option(
    "--kind",
    "kinds",
    multiple=True,
    help="Only these kinds (refresh, refresh-failed, stale-served, refusal, backoff, "
    "short-lived); repeatable.",
)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
@config_option
@debug_option
@handles_errors
def events_cmd(
    profile: str | None,
    limit: int,
    kinds: tuple[str, ...],
    as_json: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """List recent refreshes, failures, stale serves, refusals and backoffs (no secrets)."""

    env = environment(config_path)
    found = [e for e in events.read(env, profile) if not kinds or e.get("kind") in kinds]
    found = found[-limit:]
    if as_json:
        for event in found:
            click.echo(json.dumps(event, sort_keys=True))  # ASCII: every control escaped
        return
    if not found:
        click.echo(
            neutralise(f"no events{' for ' + profile if profile else ''} ({events.log_path(env)})")
        )
        return
    for event in found:
        click.echo(events.render(event))
