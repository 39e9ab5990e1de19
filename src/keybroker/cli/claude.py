"""``keybroker claude configure PROFILE`` and ``unconfigure``: Claude Code's settings.

Parsing and printing only; what to write where, what to refuse and how to undo it live in
:mod:`keybroker.claude.configure` (settings model: :mod:`keybroker.claude`). ``configure`` sets
``apiKeyHelper`` (and with ``--inference-helper`` the ``inferenceCredentialHelper`` pair), the
helper TTL and the variables of the chosen deployment; ``--scope managed`` writes keybroker's
own drop-in ``managed-settings.d/keybroker.json`` (or, with ``--mobileconfig``, a macOS
device-management profile); ``unconfigure`` restores each file as it was.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import click

from keybroker.cli.claude_options import (
    SCOPES,
    deployment_option,
    drop_in_option,
    managed_path_option,
    project_dir_option,
)
from keybroker.cli.errors import config_option, debug_option, handles_errors

_SCOPE_HELP = (
    "user: ~/.claude/settings.json; project: .claude/settings.json (shared; held "
    "until the workspace is trusted); local: .claude/settings.local.json; managed: "
    "keybroker's own drop-in in the system managed-settings.d/."
)


def _ttl_ms(ttl: str | None) -> str | None:
    if ttl is None:
        return None
    from keybroker.durations import parse_duration  # noqa: PLC0415
    from keybroker.errors import UsageError  # noqa: PLC0415

    try:
        seconds = parse_duration(ttl)
    except ValueError as exc:
        raise UsageError(f"--ttl: {exc}") from None
    if seconds <= 0:
        raise UsageError("--ttl must be more than 0")
    return str(int(seconds * 1000))


@click.group("claude")
def claude() -> None:
    """Wire keybroker into Claude Code's settings."""


@claude.command("configure")
@click.argument("profile")
@click.option("--scope", type=SCOPES, default="user", show_default=True, help=_SCOPE_HELP)
@managed_path_option(
    "With --scope managed: the managed-settings.json whose folder gets the "
    "drop-in managed-settings.d/NAME.json (the file itself is never edited)."
)
@drop_in_option(
    "With --scope managed: the drop-in's name (managed-settings.d/NAME.json; "
    "Claude Code merges drop-ins in name order, the last one wins)."
)
@click.option(
    "--mobileconfig",
    metavar="FILE",
    help="With --scope managed: write the settings as a macOS device-management "
    "profile (.mobileconfig) to FILE ('-': stdout) instead of this machine.",
)
@click.option(
    "--identifier",
    default="com.example.keybroker.claudecode",
    show_default=True,
    help="With --mobileconfig: the profile's PayloadIdentifier (reverse DNS).",
)
@click.option("--organization", help="With --mobileconfig: PayloadOrganization.")
@deployment_option("Which API the proxy speaks (Claude Code's LLM-gateway guide).")
@click.option(
    "--base-url",
    help="The proxy's URL for this deployment (e.g. LiteLLM's "
    "https://litellm:4000, …/bedrock, …/vertex_ai/v1).",
)
@click.option(
    "--ttl",
    help="How often Claude Code re-runs the helper (default: keep the current setting, else 5m).",
)
@click.option("--region", help="AWS_REGION (bedrock) or CLOUD_ML_REGION (vertex).")
@click.option("--vertex-project-id", help="ANTHROPIC_VERTEX_PROJECT_ID (vertex).")
@click.option("--model", help="ANTHROPIC_MODEL.")
@click.option("--opus-model", help="ANTHROPIC_DEFAULT_OPUS_MODEL.")
@click.option("--sonnet-model", help="ANTHROPIC_DEFAULT_SONNET_MODEL.")
@click.option("--haiku-model", help="ANTHROPIC_DEFAULT_HAIKU_MODEL.")
@click.option(
    "--inference-helper",
    is_flag=True,
    help="Also set inferenceCredentialHelper (+Args) to 'keybroker credential "
    "PROFILE' (an organization setting of newer Claude Code).",
)
@click.option(
    "--proxy-auth-helper",
    metavar="PROFILE",
    help="Set proxyAuthHelper to 'keybroker headers PROFILE --format value' (the "
    "Proxy-Authorization value for HTTPS_PROXY; early-access setting).",
)
@click.option(
    "--mcp-server",
    "mcp_servers",
    multiple=True,
    metavar="NAME=PROFILE",
    help="Set headersHelper of the existing MCP server NAME (in this scope's MCP "
    "file) to 'keybroker headers PROFILE'; repeatable.",
)
@project_dir_option
@click.option(
    "--executable",
    help="Command to put in apiKeyHelper instead of this keybroker "
    "(e.g. the helpers/keybroker-helper.sh wrapper).",
)
@click.option(
    "--print",
    "print_only",
    is_flag=True,
    help="Print the settings keybroker would set; write nothing.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace a helper that keybroker did not write (not in managed settings).",
)
@config_option
@debug_option
@handles_errors
def configure(
    profile: str,
    scope: str,
    managed_path: str | None,
    drop_in: str,
    mobileconfig: str | None,
    identifier: str,
    organization: str | None,
    deployment: str,
    base_url: str | None,
    ttl: str | None,
    region: str | None,
    vertex_project_id: str | None,
    model: str | None,
    opus_model: str | None,
    sonnet_model: str | None,
    haiku_model: str | None,
    inference_helper: bool,
    proxy_auth_helper: str | None,
    mcp_servers: tuple[str, ...],
    project_dir: str | None,
    executable: str | None,
    print_only: bool,
    force: bool,
    config_path: str | None,
    debug: bool,
) -> None:
    """Point Claude Code's apiKeyHelper at `keybroker get PROFILE` for a deployment."""
    from keybroker.claude import configure as configure_mod  # noqa: PLC0415
    from keybroker.claude import mcp, settings  # noqa: PLC0415
    from keybroker.cli.common import environment, load_config, open_cache  # noqa: PLC0415
    from keybroker.errors import UsageError  # noqa: PLC0415
    from keybroker.redact import emit  # noqa: PLC0415

    env = environment(config_path)
    config = load_config(env, open_cache(env)[0])
    config.profile(profile)  # an unknown profile fails here, not in Claude Code
    if base_url is not None and not base_url.startswith(("https://", "http://")):
        raise UsageError(f"--base-url must be an http(s) URL, got {base_url!r}")
    if deployment != "anthropic" and not base_url:
        raise UsageError(
            f"--deployment {deployment} needs --base-url (the proxy's {deployment} endpoint)",
            "e.g. --base-url https://litellm.example.com/"
            + ("bedrock" if deployment == "bedrock" else "vertex_ai/v1"),
        )
    if managed_path and scope != "managed":
        raise UsageError("--managed-path goes with --scope managed")
    drop_in = settings.check_drop_in(drop_in)

    if mobileconfig and scope != "managed":
        raise UsageError("--mobileconfig goes with --scope managed (it carries managed settings)")
    mapping = mcp.parse_mapping(mcp_servers)
    for prof in {*mapping.values(), *([proxy_auth_helper] if proxy_auth_helper else [])}:
        config.profile(prof)
    wanted = configure_mod.Wanted(
        profile=profile,
        scope=scope,
        deployment=deployment,
        base_url=base_url,
        ttl_ms=_ttl_ms(ttl),
        region=region,
        vertex_project_id=vertex_project_id,
        models={
            "model": model,
            "opus_model": opus_model,
            "sonnet_model": sonnet_model,
            "haiku_model": haiku_model,
        },
        inference_helper=inference_helper,
        proxy_auth_helper=proxy_auth_helper,
        mcp=mapping,
        executable=executable,
        config=str(Path(config_path).absolute()) if config_path else None,
        shared=print_only or scope == "project",
        fleet=bool(mobileconfig),
        project_dir=project_dir,
        managed_path=managed_path,
        drop_in=drop_in,
        force=force,
    )
    request = configure_mod.plan(env, wanted, emit, read=not (print_only or mobileconfig))
    fragment, mcp_commands = request.fragment, request.mcp_commands
    if mobileconfig:
        from keybroker.claude import mdm  # noqa: PLC0415

        if mcp_commands:
            raise UsageError("--mcp-server does not go into a device-management profile")
        data = mdm.profile(fragment, identifier, organization)
        if mobileconfig == "-":
            click.echo(data.decode(), nl=False)
        else:
            from keybroker.cache.files import atomic_write  # noqa: PLC0415

            atomic_write(mobileconfig, data)
            os.chmod(mobileconfig, 0o644)
            emit(
                f"keybroker: wrote the device-management profile {mobileconfig} (preference "
                f"domain {mdm.DOMAIN}); upload it to your MDM (docs/claude-code.md)"
            )
        return
    if print_only:
        if mcp_commands:
            fragment["mcpServers"] = {n: {"headersHelper": c} for n, c in mcp_commands.items()}
        click.echo(json.dumps(fragment, indent=2))
        return
    configure_mod.write(env, request, emit)


@claude.command("unconfigure")
@click.option(
    "--scope",
    "scopes",
    multiple=True,
    type=SCOPES,
    help="Only this scope (repeatable; default: every scope keybroker wrote).",
)
@managed_path_option("With --scope managed: the managed-settings.json beside the drop-in folder.")
@drop_in_option("The managed drop-in's name (managed-settings.d/NAME.json).")
@project_dir_option
@config_option
@debug_option
@handles_errors
def unconfigure(
    scopes: tuple[str, ...],
    managed_path: str | None,
    drop_in: str,
    project_dir: str | None,
    config_path: str | None,
    debug: bool,
) -> None:
    """Remove what `claude configure` wrote and restore what was there before.

    Every helper setting and variable keybroker set, in each scope (and the MCP files it
    changed), is put back as it was, a helper replaced with --force included; a file keybroker
    created is removed. A value changed by hand since is left alone and named.
    """
    from keybroker.claude import configure as configure_mod  # noqa: PLC0415
    from keybroker.claude import mcp, record, settings  # noqa: PLC0415
    from keybroker.cli.common import environment  # noqa: PLC0415
    from keybroker.redact import emit  # noqa: PLC0415

    env = environment(config_path)
    chosen = scopes or settings.SCOPES
    done = False
    for scope in chosen:
        tgt = settings.target(
            scope, env, project_dir, managed_path, settings.check_drop_in(drop_in)
        )
        done = configure_mod.undo(env, tgt, emit) or done
        if scope == "managed":
            continue
        path, _ = mcp.mcp_location(scope, env, project_dir)
        mcp_tgt = configure_mod.mcp_target(scope, path)
        if record.Records(env).load(path) is not None:
            done = configure_mod.undo(env, mcp_tgt, emit) or done
    if not done:
        emit(
            "keybroker: nothing to undo: keybroker has no record of configuring "
            + ("that scope" if scopes else "any scope")
            + " here"
        )
