"""``keybroker cache list|clear``: see and empty the shared cache, never showing a value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from keybroker import clock
from keybroker.cli.errors import config_option, debug_option, handles_errors
from keybroker.durations import format_duration


def _profile_ids(env: dict[str, str], cache: Any) -> dict[str, list[str]]:
    """entry id → names of the configured profiles that use it."""
    from keybroker.cli.common import load_config  # noqa: PLC0415
    from keybroker.resolve import entry_name  # noqa: PLC0415

    config = load_config(env, cache)
    ids: dict[str, list[str]] = {}
    for name, profile in config.profiles.items():
        try:
            eid = entry_name(cache, profile.source, profile.settings, env)
        except Exception:  # noqa: S112 - a broken profile must not hide the others
            continue
        ids.setdefault(eid, []).append(name)
    return ids


def _when(ts: float | None, now: float, future: bool) -> str:
    if ts is None:
        return "-"
    delta = ts - now if future else now - ts
    text = format_duration(abs(delta))
    if future:
        return f"in {text}" if delta >= 0 else f"{text} ago (expired)"
    return f"{text} ago"


@click.group("cache")
def cache() -> None:
    """List or clear the shared encrypted cache (values are never shown)."""


@cache.command("list")
@click.option("--json", "as_json", is_flag=True, help="JSON instead of a table.")
@config_option
@debug_option
@handles_errors
def list_(as_json: bool, config_path: str | None, debug: bool) -> None:
    """List cached entries: profiles, source, fetched and expiry times."""
    from keybroker.cache.store import Cache  # noqa: PLC0415
    from keybroker.cli.common import environment  # noqa: PLC0415

    env = environment(config_path)
    store = Cache.open(env)
    owners = _profile_ids(env, store)
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for info in store.entries():
        rows.append({
            "entry": info.id,
            "profiles": owners.get(info.id, []),
            "kind": "login" if info.id.startswith("aux-") else "key",
            "source": info.source,
            "label": info.label,
            "version": info.version,
            "fetched_at": info.fetched_at,
            "expires_at": info.expires_at,
        })
    if as_json:
        for row in rows:
            for key in ("fetched_at", "expires_at"):
                if row[key] is not None:
                    row[key] = datetime.fromtimestamp(row[key], UTC).isoformat(timespec="seconds")
        click.echo(json.dumps({"version": 1, "cache_dir": str(store.root), "entries": rows},
                              indent=2))
        return
    click.echo(f"cache: {store.root}")
    if not rows:
        click.echo("(empty)")
        return
    for row in rows:
        who = ",".join(row["profiles"]) or ("(login token)" if row["kind"] == "login" else "-")
        click.echo(
            f"{row['entry'][:12]}  {who:<16} {row['label']:<40} "
            f"fetched {_when(row['fetched_at'], now, False):<12} "
            f"expires {_when(row['expires_at'], now, True)}"
        )


@cache.command("clear")
@click.argument("profile", required=False)
@config_option
@debug_option
@handles_errors
def clear(profile: str | None, config_path: str | None, debug: bool) -> None:
    """Remove PROFILE's cached key, or every entry (and login tokens) without PROFILE."""
    from keybroker.cache.store import Cache  # noqa: PLC0415
    from keybroker.cli.common import environment, load_config  # noqa: PLC0415
    from keybroker.resolve import entry_name  # noqa: PLC0415

    env = environment(config_path)
    store = Cache.open(env)
    if profile is None:
        count = store.clear_all()
        click.echo(f"keybroker: removed {count} cache entr{'y' if count == 1 else 'ies'}", err=True)
        return
    config = load_config(env, store)
    prof = config.profile(profile)
    eid = entry_name(store, prof.source, prof.settings, env)
    existed = store.path(eid).exists()
    store.remove(eid)
    click.echo(
        f"keybroker: {'removed' if existed else 'no'} cached key for profile '{profile}'", err=True
    )
