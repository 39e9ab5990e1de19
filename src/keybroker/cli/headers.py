"""``keybroker headers PROFILE``: a JSON object of HTTP headers for Claude Code's hooks.

Claude Code runs ``otelHeadersHelper`` (telemetry exporter headers) and an MCP server's
``headersHelper`` and reads a JSON object of header → value from stdout. The key is resolved
exactly as ``keybroker get`` resolves it. For MCP, Claude Code sets
``CLAUDE_CODE_MCP_SERVER_NAME``; a ``[mcp.servers]`` table in the config can then pick the
profile (and header/scheme) per server, so one helper command serves every server::

    [mcp.servers]
    github = { profile = "github-token", url = "https://api.githubcopilot.com/mcp/" }
    internal = { profile = "litellm", header = "X-Api-Key", url = "https://mcp.corp/" }

Claude Code also says where the headers go (``CLAUDE_CODE_MCP_SERVER_URL``): a key goes only
to the URL its entry names (:mod:`keybroker.claude.destinations`).

``--format value`` prints one header's value instead (``Bearer <key>`` by default), which is
what ``claude self-hosted-runner --proxy-authorization-command`` reads: "the command's stdout
is the full header value", run afresh for each new connection to the proxy.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import click

from keybroker.cli.errors import (
    config_option,
    debug_option,
    format_option,
    handles_errors,
    no_cache_option,
)

SERVER_ENV = "CLAUDE_CODE_MCP_SERVER_NAME"  # also keybroker.claude.destinations.SERVER_ENV


def mcp_servers(extra: Mapping[str, Any], where: str) -> dict[str, Any]:
    """The ``[mcp.servers]`` table ({} when the config has no ``[mcp]``)."""
    from keybroker.errors import ConfigError  # noqa: PLC0415

    mcp = extra.get("mcp")
    if mcp is None:
        return {}
    servers = mcp.get("servers") if isinstance(mcp, dict) else None
    if not isinstance(servers, dict):
        raise ConfigError(f"{where}: [mcp] must contain a [mcp.servers] table")
    return servers


@click.command("headers")
@click.argument("profile", required=False)
@click.option(
    "--header",
    "header_names",
    multiple=True,
    metavar="NAME",
    help="Header to set (default Authorization); repeatable.",
)
@click.option(
    "--scheme",
    default=None,
    help="Prefix of the value (default: Bearer for Authorization, none for other "
    "headers; '' for none).",
)
@format_option(
    ("json", "value"),
    "json: the headers object; value: one header's value on one line "
    "(for --proxy-authorization-command).",
)
@click.option(
    "--url",
    "urls",
    multiple=True,
    metavar="URL",
    help="Answer only when Claude Code says the key goes to URL (the MCP server's "
    "or the proxy's); repeatable.",
)
@no_cache_option
@config_option
@debug_option
@handles_errors
def headers(
    profile: str | None,
    header_names: tuple[str, ...],
    scheme: str | None,
    fmt: str,
    urls: tuple[str, ...],
    no_cache: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """Print {"Authorization": "Bearer <key>"} for otelHeadersHelper / MCP headersHelper.

    Under an MCP server (CLAUDE_CODE_MCP_SERVER_NAME set), a [mcp.servers] entry for that
    server in the config chooses the profile; PROFILE is the fallback. The key goes only to the
    URL the entry names (CLAUDE_CODE_MCP_SERVER_URL): another URL exits 4, an entry without
    url exits 2 saying what to add (docs/claude-code.md).
    """
    from keybroker import output  # noqa: PLC0415
    from keybroker.claude import destinations  # noqa: PLC0415
    from keybroker.cli.common import (  # noqa: PLC0415
        environment,
        load_config,
        open_cache,
        resolve_profiles,
    )
    from keybroker.errors import UsageError  # noqa: PLC0415

    env = environment(config_path)
    server = env.get(SERVER_ENV, "")
    choice: dict[str, Any] | None = None
    servers: dict[str, Any] = {}
    where = ""
    if server:
        cache, _ = open_cache(env)
        config = load_config(env, cache)
        where = str(config.path)
        servers = mcp_servers(config.extra, where)
        choice = destinations.entry(servers, server, where)
    if choice is not None:
        profile = choice["profile"]
        if not header_names and choice.get("header"):
            header_names = (choice["header"],)
        if scheme is None and "scheme" in choice:
            scheme = choice["scheme"]
    if not profile:
        hint = (
            f"add '{server} = \"PROFILE\"' to the [mcp.servers] table of the config"
            if server
            else "give a PROFILE"
        )
        raise UsageError(
            "no profile: "
            + (
                f"MCP server '{server}' has no [mcp.servers] entry"
                if server
                else "PROFILE is required"
            ),
            hint,
        )
    if server:
        destinations.check_mcp(
            server, env.get(destinations.SERVER_URL_ENV, ""), choice, servers, profile, where
        )
    destinations.check_flag(urls, env, profile)
    if fmt == "value" and len(header_names) > 1:
        raise UsageError("--format value prints one header's value; give at most one --header")
    _, outcomes = resolve_profiles([profile], config_path, no_cache=no_cache, debug=debug)
    value = outcomes[profile].value
    if fmt == "value":
        click.echo(
            output.header_value(value, scheme, header_names[0] if header_names else "Authorization")
        )
        return
    text = output.headers(header_names or ("Authorization",), value, scheme)
    click.echo(text, nl=False)
