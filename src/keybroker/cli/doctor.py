"""``keybroker doctor [PROFILE]``: check everything a working apiKeyHelper depends on.

One line per check, ``✓`` or ``✗`` (``⚠`` for what works but should be fixed, ``·`` for past
events), and for each ``✗`` and ``⚠`` the fix. Checks: the config parses;
the cache directory is safe; the data key is sound; each profile's source is reachable and
authorised (the source's own ``doctor`` hook, then a real resolve through the cache); the
key outlives Claude Code's TTL + margin; Claude Code's settings in every scope and whether
they point at keybroker; and what ``/bin/sh`` finds on PATH (Claude Code runs the helper
with ``/bin/sh``, from IDEs and launchd often with a minimal PATH).

Exit status: 0 all good, 1 some ✗, 2 the config itself is broken. Nothing printed here
contains a secret: every line goes through the scrubber, and values are never formatted.
"""

from __future__ import annotations

from typing import Any

import click

from keybroker.cli.claude_options import deployment_option, managed_path_option
from keybroker.cli.errors import config_option, debug_option, handles_errors
from keybroker.diagnose import (
    check_cache_dir,
    check_claude_settings,
    check_data_key,
    check_path,
    check_profile,
    check_repeat_recovery,
)
from keybroker.sources.base import Check

OK, BAD, SKIP, WARN, PAST = "✓", "✗", "–", "⚠", "·"


def render(check: Check, colour: bool = False) -> str:
    """One line: ✓ / ✗ / – (a check that was skipped: ok, and its detail says why) / ⚠ (works,
    but act on it) / · (a past event, history not a check), the label, the detail and, for a
    ✗ or ⚠, the fix. Scrubbed; coloured only when ``colour``."""
    from keybroker.redact import scrub  # noqa: PLC0415
    from keybroker.style import paint  # noqa: PLC0415

    level = level_of(check)
    mark = {"skipped": SKIP, "ok": OK, "error": BAD, "warning": WARN, "history": PAST}[level]
    tint = {"skipped": "dim", "ok": "green", "error": "red", "warning": "yellow", "history": "dim"}[
        level
    ]
    from keybroker.redact import neutralise  # noqa: PLC0415

    # details quote servers (a Vault version, policy names) and config: escapes shown as text
    line = f"{paint(mark, tint, on=colour)} {paint(neutralise(check.label), 'bold', on=colour)}"
    if check.detail:
        line += f": {neutralise(scrub(check.detail))}"
    fix = _outside_doctor(check.fix)
    if fix and level in ("error", "warning"):
        line += f"; {paint('fix:', 'yellow', on=colour)} {neutralise(scrub(fix))}"
    return scrub(line)


def level_of(check: Check) -> str:
    """ok, error, skipped, warning (⚠: works, but act on it) or history (· a past event)."""
    mark = getattr(check, "mark", None)
    if mark == WARN:
        return "warning"
    if mark == PAST:
        return "history"
    if not check.ok:
        return "error"
    return "skipped" if check.detail.startswith("skipped") else "ok"


def _outside_doctor(fix: str) -> str:
    """A hint minus "run 'keybroker doctor …'": it makes no sense inside doctor's own output."""
    import re  # noqa: PLC0415

    pattern = r"(;\s*)?(or )?(run:? ?)?[('\"]*keybroker doctor[^;)'\"]*[)'\"]*"
    return re.sub(pattern, "", fix).strip(" ;,")


@click.command("doctor")
@click.argument("profile", required=False)
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print one JSON object (checks, effective Claude Code settings).",
)
@click.option(
    "--probe-gateway",
    metavar="URL",
    help="Send a deliberately invalid key to the gateway and check it answers 401.",
)
@deployment_option("The API --probe-gateway speaks.")
@managed_path_option("The managed-settings.json to read (default: the platform's).")
@config_option
@debug_option
@handles_errors
def doctor(
    profile: str | None,
    as_json: bool,
    probe_gateway: str | None,
    deployment: str,
    managed_path: str | None,
    config_path: str | None,
    debug: bool,
) -> None:
    """Check config, cache, each profile's source, and Claude Code's settings.

    Prints one line per check (✓ or ✗ with the fix); exits 1 if any check fails, 2 if the
    config cannot be read. Claude Code's settings are read in its own precedence (managed,
    local, project, user, then the shell), so the TTL and helper shown are the ones it uses.
    """
    import json  # noqa: PLC0415

    from keybroker import config as configmod  # noqa: PLC0415
    from keybroker.cache.store import Cache  # noqa: PLC0415
    from keybroker.claude.deployments import TTL_VAR  # noqa: PLC0415
    from keybroker.claude.precedence import DEFAULT_TTL_MS  # noqa: PLC0415
    from keybroker.cli.common import environment  # noqa: PLC0415
    from keybroker.errors import ConfigError, KeybrokerError, UsageError  # noqa: PLC0415
    from keybroker.redact import scrub  # noqa: PLC0415
    from keybroker.style import enabled  # noqa: PLC0415

    env = environment(config_path)
    failed = False
    colour = enabled(env=env) and not as_json
    shown: list[Check] = []
    claude_view: dict[str, Any] = {}

    def show(check: Check) -> None:
        nonlocal failed
        failed = failed or not check.ok
        shown.append(check)
        if not as_json:
            click.echo(render(check, colour), color=colour)

    def finish(code: int) -> None:
        if as_json:
            click.echo(
                scrub(
                    json.dumps(
                        {
                            "ok": not failed,
                            "checks": [
                                {
                                    "ok": c.ok,
                                    "level": level_of(c),
                                    "label": c.label,
                                    "detail": c.detail,
                                    "fix": c.fix,
                                }
                                for c in shown
                            ],
                            "claude": claude_view,
                        }
                    )
                )
            )  # ASCII: a control or bidi character in a name is an escape, not a command
        if code:
            raise SystemExit(code)

    try:
        config = configmod.load(env)
    except ConfigError as exc:
        show(Check(False, "config", exc.message, exc.hint or "fix the file and run again"))
        finish(2)
        return
    configured = [n for n, p in config.profiles.items() if not p.builtin]
    where = str(config.path) if config.exists else f"{config.path} (not found)"
    show(Check(True, "config", f"{where}, {len(configured)} profile(s)"))
    show(check_cache_dir(env))
    show(check_data_key(env))
    show(check_repeat_recovery(env))

    settings_checks, helpers, eff = check_claude_settings(env, config, managed_path)
    claude_view = eff.as_json()
    # the key's lifetime is judged against the TTL Claude Code will use, from any scope
    # (an unusable TTL has its own ✗ line: the profiles are judged against the default)
    profile_env = {**env, TTL_VAR: str(eff.ttl_ms if eff.ttl_ms > 0 else DEFAULT_TTL_MS)}
    try:
        cache: Cache | None = Cache.open(env)
    except KeybrokerError:
        cache = None  # already reported by the cache dir check
    if profile is not None:
        if profile not in config.profiles:
            try:
                config.profile(profile)
            except UsageError as exc:
                show(Check(False, f"profile '{profile}'", exc.message, exc.hint or ""))
        names = [profile] if profile in config.profiles else []
    else:
        names = configured
        if not names:
            show(Check(True, "profiles", "none configured yet (add [profiles.NAME] tables)"))
    for name in names:
        for check in check_profile(name, config, profile_env, cache):
            show(check)

    for check in settings_checks:
        show(check)
    for check in check_path(env, helpers):
        show(check)
    if probe_gateway:
        from keybroker.claude.probe import probe_gateway as probe  # noqa: PLC0415

        show(probe(probe_gateway, deployment))
    finish(1 if failed else 0)
