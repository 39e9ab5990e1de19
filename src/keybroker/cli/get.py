"""``keybroker get PROFILE``: click's view of the helper, for --help and odd command lines.

The same code as the fast path (:mod:`keybroker.cli.fastget`) does the work.
"""

from __future__ import annotations

import click

from keybroker.cli.errors import config_option, debug_option


@click.command("get")
@click.argument("profile")
@click.option("--no-cache", is_flag=True, help="Bypass the shared cache for this call.")
@click.option("--max-age", help="Reuse a key without known expiry this long (90s, 5m, 1h).")
@click.option("--reject-repeats", is_flag=True,
              help="Treat a quick second call from the same caller as a refused key.")
@config_option
@debug_option
def get(
    profile: str, no_cache: bool, max_age: str | None, reject_repeats: bool,
    config_path: str | None, debug: bool,
) -> None:
    """Print PROFILE's key and a newline on stdout (the apiKeyHelper command).

    Nothing else is printed on stdout; failures go to stderr with a documented exit code.
    """
    from keybroker.cli.fastget import run_get  # noqa: PLC0415

    raise SystemExit(run_get({
        "profile": profile, "no_cache": no_cache, "max_age": max_age,
        "reject_repeats": reject_repeats, "config": config_path, "debug": debug,
    }))
