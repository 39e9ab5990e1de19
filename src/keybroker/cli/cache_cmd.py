"""``keybroker cache list|clear``: see and empty the shared cache, never showing a value."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import click

from keybroker import clock
from keybroker.cache.store import Cache
from keybroker.cli.common import environment, load_config
from keybroker.cli.errors import config_option, debug_option, handles_errors
from keybroker.durations import format_duration
from keybroker.errors import KeybrokerError, UsageError
from keybroker.redact import neutralise
from keybroker.resolve import entry_name


def _profile_ids(env: dict[str, str], cache: Any) -> dict[str, list[str]]:
    """entry id → names of the configured profiles that use it."""

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


#: what a side-store entry holds, from the first word of its name (``aux:SOURCE:NAME``)
AUX_KINDS: tuple[tuple[str, str], ...] = (
    ("token ", "login token"),  # vault: "token approle:approle/… https://vault ns=-"
    ("refresh:", "refresh token"),  # oidc
    ("role-", "role credentials"),  # aws AssumeRole
    ("discovery:", "discovery"),  # oidc discovery document (public)
    ("jwks:", "jwks"),  # oidc signing keys (public)
)
#: plural forms for the "removed …" line
PLURALS = {
    "key": "keys",
    "login token": "login tokens",
    "refresh token": "refresh tokens",
    "role credentials": "role credentials",
    "discovery": "discovery documents",
    "jwks": "JWKS documents",
    "login": "other logins",
}


def kind_of(eid: str, label: str) -> str:
    """key, or which kind of login a side-store entry is (``login`` when not recognised)."""
    if not eid.startswith("aux-"):
        return "key"
    _, _, name = label.partition(":")
    _, _, name = name.partition(":")
    for prefix, kind in AUX_KINDS:
        if name.startswith(prefix):
            return kind
    return "login"


def _kinds(store: Any) -> dict[str, str]:
    """entry id → kind, for the summary of ``clear``; ids alone when headers cannot be read."""

    try:
        return {info.id: kind_of(info.id, info.label) for info in store.entries()}
    except (KeybrokerError, OSError):
        return {p.name[: -len(".entry")]: kind_of(p.name, "") for p in store.root.glob("*.entry")}


def summary(removed: dict[str, int], kept: int, what: str) -> str:
    if removed:
        parts = [f"{n} {PLURALS[k] if n != 1 else k}" for k, n in sorted(removed.items())]
        text = f"keybroker: removed {', '.join(parts)}"
    else:
        text = f"keybroker: no {what} to remove"
    if kept:
        text += (
            f"; kept {kept} login{'s' if kept != 1 else ''} (run 'keybroker cache clear "
            "--logins' to remove them, or --all for everything)"
        )
    return text


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

    env = environment(config_path)
    store = Cache.open(env)
    owners = _profile_ids(env, store)
    now = clock.now()
    rows: list[dict[str, Any]] = []
    for info in store.entries():
        rows.append(
            {
                "entry": info.id,
                "profiles": owners.get(info.id, []),
                "kind": kind_of(info.id, info.label).replace(" ", "-"),
                "source": info.source,
                "label": info.label,
                "version": info.version,
                "fetched_at": info.fetched_at,
                "expires_at": info.expires_at,
            }
        )
    if as_json:
        for row in rows:
            for key in ("fetched_at", "expires_at"):
                if row[key] is not None:
                    row[key] = datetime.fromtimestamp(row[key], UTC).isoformat(timespec="seconds")
        click.echo(
            json.dumps({"version": 1, "cache_dir": str(store.root), "entries": rows}, indent=2)
        )
        return
    click.echo(neutralise(f"cache: {store.root}"))
    if not rows:
        click.echo("(empty)")
        return
    for row in rows:
        kind = row["kind"].replace("-", " ")
        who = ",".join(row["profiles"]) or ("-" if kind == "key" else f"({kind})")
        # profile names are quoted TOML keys and labels quote settings: escapes shown as text
        click.echo(
            neutralise(
                f"{row['entry'][:12]}  {who:<16} {row['label']:<40} "
                f"fetched {_when(row['fetched_at'], now, False):<12} "
                f"expires {_when(row['expires_at'], now, True)}"
            )
        )


@cache.command("clear")
@click.argument("profile", required=False)
@click.option(
    "--logins",
    is_flag=True,
    help="Remove only logins (login and refresh tokens, role credentials, discovery).",
)
@click.option("--all", "all_", is_flag=True, help="Remove everything: keys and logins.")
@config_option
@debug_option
@handles_errors
def clear(
    profile: str | None, logins: bool, all_: bool, config_path: str | None, debug: bool
) -> None:
    """Remove PROFILE's cached key, or every cached key without PROFILE.

    Logins (Vault login tokens, OIDC refresh tokens, assumed-role credentials, discovery
    documents) stay unless --logins (logins only) or --all (everything): without them the
    next helper call may need an interactive 'keybroker login' (exit 8).
    """

    if logins and all_:
        raise UsageError(
            "--logins and --all cannot be used together", "--all already removes the logins"
        )
    if profile is not None and (logins or all_):
        raise UsageError(
            f"--{'logins' if logins else 'all'} clears the whole cache; "
            f"leave out the profile '{profile}'",
            f"or run: keybroker cache clear {profile}",
        )
    env = environment(config_path)
    store = Cache.open(env)
    if profile is None:
        before = _kinds(store)
        if logins:
            store.clear_logins()
        else:
            store.clear_all(keep_logins=not all_)
        removed: dict[str, int] = {}
        kept = 0
        for eid, kind in before.items():
            if store.path(eid).exists():
                kept += kind != "key"
            else:
                removed[kind] = removed.get(kind, 0) + 1
        what = "logins" if logins else "cache entries"
        click.echo(summary(removed, 0 if (logins or all_) else kept, what), err=True)
        return
    config = load_config(env, store)
    prof = config.profile(profile)
    eid = entry_name(store, prof.source, prof.settings, env)
    existed = store.path(eid).exists()
    store.remove(eid)
    click.echo(
        neutralise(
            f"keybroker: {'removed' if existed else 'no'} cached key for profile '{profile}'"
        ),
        err=True,
    )
