"""``keybroker credential PROFILE``: the ``inferenceCredentialHelper`` of newer Claude Code.

Claude Code runs the helper as an absolute executable with ``inferenceCredentialHelperArgs``
(no shell) and reads its trimmed stdout: a bare token, or ``{"token": …, "headers": {…}}``.
It says why it runs in ``CLAUDE_HELPER_CONTEXT`` (``interactive``, ``mid-session-refresh``,
``background``, ``scheduled-task``, ``setup-test``) and the helper must never prompt unless
that is ``interactive``. So: the key is resolved exactly as ``keybroker get`` does; when only
a sign-in can help, an ``interactive`` run of an oidc profile runs ``keybroker login``'s flow
(then answers), and any other context exits 8 with ``run: keybroker login PROFILE``.
"""

from __future__ import annotations

import click

from keybroker.cli.errors import (
    config_option,
    debug_option,
    format_option,
    handles_errors,
    no_cache_option,
)

CONTEXT_ENV = "CLAUDE_HELPER_CONTEXT"
INTERACTIVE = "interactive"


@click.command("credential")
@click.argument("profile")
@format_option(("token", "json"), 'A bare token, or JSON {"token", "headers"}.')
@click.option(
    "--header",
    "header_specs",
    multiple=True,
    metavar="'NAME: TEMPLATE'",
    help="With --format json: a header to send, '{}' standing for the key "
    "(e.g. 'X-Api-Key: {}'); repeatable.",
)
@no_cache_option
@config_option
@debug_option
@handles_errors
def credential(
    profile: str,
    fmt: str,
    header_specs: tuple[str, ...],
    no_cache: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """Print PROFILE's key for Claude Code's inferenceCredentialHelper."""
    from keybroker.claude import render  # noqa: PLC0415
    from keybroker.cli.common import environment, resolve_profiles  # noqa: PLC0415
    from keybroker.errors import LoginRequired  # noqa: PLC0415

    headers = [render.parse_header(spec) for spec in header_specs]
    render.credential("x", fmt, headers)  # usage errors before any fetch
    env = environment(config_path)
    if headers and CONTEXT_ENV not in env:  # a person trying it: Claude Code would drop them
        from keybroker.claude.configure import HEADERS_DROPPED  # noqa: PLC0415
        from keybroker.redact import emit  # noqa: PLC0415

        emit(f"keybroker: warning: {HEADERS_DROPPED}; only the token reaches the gateway")
    try:
        _, outcomes = resolve_profiles([profile], config_path, no_cache=no_cache, debug=debug)
    except LoginRequired:
        if env.get(CONTEXT_ENV, "") != INTERACTIVE or not _signs_in(env, profile):
            raise  # never prompt: "run: keybroker login PROFILE", exit 8
        _sign_in(profile, config_path, debug)
        _, outcomes = resolve_profiles([profile], config_path, no_cache=no_cache, debug=debug)
    click.echo(render.credential(outcomes[profile].value, fmt, headers), nl=False)


def _signs_in(env: dict[str, str], profile: str) -> bool:
    """Only oidc profiles have a login flow; any other keeps its exit 8."""
    from keybroker.cli.common import open_cache, profile_request  # noqa: PLC0415

    cache, _ = open_cache(env)
    return profile_request(env, profile, cache).source == "oidc"


def _sign_in(profile: str, config_path: str | None, debug: bool) -> None:
    """``keybroker login PROFILE``'s own flow (oidc profiles; anything else is refused there)."""
    from keybroker.cli.login import sign_in  # noqa: PLC0415 - errors propagate as exit codes

    sign_in(
        profile, None, no_open=False, password_stdin=False, config_path=config_path, debug=debug
    )
