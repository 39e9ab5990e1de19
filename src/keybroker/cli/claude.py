"""``keybroker claude configure PROFILE``: write Claude Code's settings for a keybroker key.

Parsing and printing only; the settings model lives in :mod:`keybroker.claude`. It sets
``apiKeyHelper`` (and with ``--inference-helper`` the ``inferenceCredentialHelper`` pair), the
helper TTL and the variables of the chosen deployment, removing those of the deployment the
file was configured for before. Files are merged, not replaced; the previous version is kept
as one ``settings.json.bak`` (none inside a git repository, whose history already keeps it).
A helper keybroker did not write is never replaced without ``--force``, and never in managed
settings.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import click

from keybroker.cli.errors import config_option, debug_option, handles_errors

_SCOPE_HELP = ("user: ~/.claude/settings.json; project: .claude/settings.json (shared); "
               "local: .claude/settings.local.json; managed: the system managed-settings.json.")


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
@click.option("--scope", type=click.Choice(("user", "project", "local", "managed")),
              default="user", show_default=True, help=_SCOPE_HELP)
@click.option("--managed-path", type=click.Path(dir_okay=False),
              help="With --scope managed: the managed-settings.json to write.")
@click.option("--deployment", type=click.Choice(("anthropic", "bedrock", "vertex")),
              default="anthropic", show_default=True,
              help="Which API the proxy speaks (Claude Code's LLM-gateway guide).")
@click.option("--base-url", help="The proxy's URL for this deployment (e.g. LiteLLM's "
                                 "https://litellm:4000, …/bedrock, …/vertex_ai/v1).")
@click.option("--ttl", help="How often Claude Code re-runs the helper (default: keep the "
                            "current setting, else 5m).")
@click.option("--region", help="AWS_REGION (bedrock) or CLOUD_ML_REGION (vertex).")
@click.option("--vertex-project-id", help="ANTHROPIC_VERTEX_PROJECT_ID (vertex).")
@click.option("--model", help="ANTHROPIC_MODEL.")
@click.option("--opus-model", help="ANTHROPIC_DEFAULT_OPUS_MODEL.")
@click.option("--sonnet-model", help="ANTHROPIC_DEFAULT_SONNET_MODEL.")
@click.option("--haiku-model", help="ANTHROPIC_DEFAULT_HAIKU_MODEL.")
@click.option("--inference-helper", is_flag=True,
              help="Also set inferenceCredentialHelper (+Args) to 'keybroker credential "
                   "PROFILE' (an organization setting of newer Claude Code).")
@click.option("--proxy-auth-helper", metavar="PROFILE",
              help="Set proxyAuthHelper to 'keybroker headers PROFILE --format value' (the "
                   "Proxy-Authorization value for HTTPS_PROXY; early-access setting).")
@click.option("--mcp-server", "mcp_servers", multiple=True, metavar="NAME=PROFILE",
              help="Set headersHelper of the existing MCP server NAME (in this scope's MCP "
                   "file) to 'keybroker headers PROFILE'; repeatable.")
@click.option("--project-dir", type=click.Path(file_okay=False),
              help="Project root for --scope project/local (default: the current directory).")
@click.option("--executable", help="Command to put in apiKeyHelper instead of this keybroker "
                                   "(e.g. the helpers/keybroker-helper.sh wrapper).")
@click.option("--print", "print_only", is_flag=True,
              help="Print the settings keybroker would set; write nothing.")
@click.option("--force", is_flag=True,
              help="Replace a helper that keybroker did not write (not in managed settings).")
@config_option
@debug_option
@handles_errors
def configure(
    profile: str, scope: str, managed_path: str | None, deployment: str,
    base_url: str | None, ttl: str | None, region: str | None,
    vertex_project_id: str | None, model: str | None, opus_model: str | None,
    sonnet_model: str | None, haiku_model: str | None, inference_helper: bool,
    proxy_auth_helper: str | None, mcp_servers: tuple[str, ...], project_dir: str | None,
    executable: str | None, print_only: bool, force: bool,
    config_path: str | None, debug: bool,
) -> None:
    """Point Claude Code's apiKeyHelper at `keybroker get PROFILE` for a deployment."""
    from keybroker.claude import deployments as dep  # noqa: PLC0415
    from keybroker.claude import helpers, mcp, settings  # noqa: PLC0415
    from keybroker.cli.common import environment, load_config, open_cache  # noqa: PLC0415
    from keybroker.errors import UsageError  # noqa: PLC0415
    from keybroker.redact import emit  # noqa: PLC0415

    env = environment(config_path)
    cache, _ = open_cache(env)
    load_config(env, cache).profile(profile)  # an unknown profile fails here, not in Claude
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

    shared = print_only or scope == "project"
    absolute = helpers.keybroker_executable()
    exe = executable or (helpers.PORTABLE if shared else absolute)
    if exe == helpers.PORTABLE and not helpers.on_path():
        emit("keybroker: warning: 'keybroker' is not on this PATH; the written helper runs it "
             "by name (install it on PATH for everyone, or pass --executable)")
    config_abs = str(Path(config_path).absolute()) if config_path else None
    path = settings.settings_path(scope, env, project_dir, managed_path)
    existing = None if print_only else settings.read_settings(path)
    ttl_ms = _ttl_ms(ttl)
    if ttl_ms is None and not settings.settings_env(existing).get(dep.TTL_VAR):
        ttl_ms = dep.DEFAULT_TTL_MS
    models = {"model": model, "opus_model": opus_model, "sonnet_model": sonnet_model,
              "haiku_model": haiku_model}
    fragment: dict[str, Any] = {
        "apiKeyHelper": helpers.helper_command(exe, profile, config_abs),
        "env": dep.deployment_env(deployment, base_url=base_url, ttl_ms=ttl_ms, region=region,
                                  vertex_project=vertex_project_id, models=models),
    }
    if inference_helper:
        args = helpers.credential_args(profile, config_abs)
        helpers.check_inference_helper(absolute, args)
        fragment[dep.INFERENCE_HELPER] = absolute  # the contract: an absolute path, no shell
        fragment[dep.INFERENCE_ARGS] = args
        if scope != "managed":
            emit("keybroker: note: Claude Code reads inferenceCredentialHelper as an "
                 "organization setting (managed settings / device management)")
    if proxy_auth_helper:
        load_config(env, cache).profile(proxy_auth_helper)
        fragment[dep.PROXY_HELPER] = helpers.command_line(
            exe, "headers", proxy_auth_helper, config_abs, ("--format", "value"))
        fragment["env"][dep.PROXY_SWITCH] = "1"
    if deployment == "vertex":
        have = {**settings.settings_env(existing), **fragment["env"]}
        missing = [v for v in ("ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION") if v not in have]
        if missing:
            emit(f"keybroker: note: Claude Code on Vertex also needs {' and '.join(missing)} "
                 "(--vertex-project-id, --region)")
    mcp_commands = {name: helpers.command_line(exe, "headers", prof, config_abs)
                    for name, prof in mcp.parse_mapping(mcp_servers).items()}
    for prof in set(mcp.parse_mapping(mcp_servers).values()):
        load_config(env, cache).profile(prof)
    if print_only:
        if mcp_commands:
            fragment["mcpServers"] = {n: {"headersHelper": c} for n, c in mcp_commands.items()}
        click.echo(json.dumps(fragment, indent=2))
        return

    current = existing or {}
    for key in ("apiKeyHelper", dep.INFERENCE_HELPER, dep.PROXY_HELPER):
        value = current.get(key)
        if key not in fragment or helpers.is_ours(value) or value == fragment[key]:
            continue
        if key == dep.INFERENCE_HELPER and value == absolute:
            continue
        if scope == "managed":
            raise UsageError(f"{path} already has a {key} that keybroker did not write; "
                             "managed settings are never replaced, only merged",
                             "ask the administrator who wrote it, or edit the file by hand")
        if not force:
            raise UsageError(
                f"{path} already has a {key} that keybroker did not write; not replacing it",
                "rerun with --force to replace it (the old file is kept as a .bak backup)",
            )
    if mcp_commands:  # after every refusal above, so a refused run changes nothing
        _write_mcp(scope, env, project_dir, mcp_commands)
    merged, removed = dep.merge(current, fragment, deployment, path)
    if existing is not None and merged == existing:
        emit(f"keybroker: {path} is already configured for profile '{profile}'")
        return
    saved, note = None, ""
    if existing is not None:
        real = Path(os.path.realpath(path))
        repo = settings.git_root(real.parent) if scope in ("project", "local") else None
        if repo is None:
            saved = settings.backup(real)
            note = f"; backup: {saved}"
        else:
            note = f"; no backup (the git repository {repo} keeps its history)"
        mode = real.stat().st_mode & 0o777
    else:
        mode = settings.FILE_MODES[scope]
    settings.write_settings(path, merged, mode, settings.DIR_MODES[scope])
    emit(f"keybroker: wrote apiKeyHelper ({deployment}, profile '{profile}') to {path}{note}")
    if removed:
        emit(f"keybroker: removed settings of the previous deployment: {', '.join(removed)}")
    overriding = [v for v in dep.OVERRIDING_VARS if v in merged["env"]]
    if overriding:
        emit(f"keybroker: warning: {path} also sets {', '.join(overriding)} in env, which "
             "Claude Code uses instead of apiKeyHelper; remove it")


def _write_mcp(scope: str, env: Any, project_dir: str | None, commands: dict[str, str]) -> None:
    """Set headersHelper on existing MCP servers, with the same one-backup rule."""
    from keybroker.claude import mcp, settings  # noqa: PLC0415
    from keybroker.redact import emit  # noqa: PLC0415

    path, keys = mcp.mcp_location(scope, env, project_dir)
    data = settings.read_settings(path) or {}
    merged = mcp.set_headers_helpers(data, keys, commands, path)
    if merged == data:
        return
    real = Path(os.path.realpath(path))
    repo = settings.git_root(real.parent) if scope == "project" else None
    if real.exists() and repo is None:
        settings.backup(real)
    mode = real.stat().st_mode & 0o777 if real.exists() else settings.FILE_MODES[scope]
    settings.write_settings(path, merged, mode, settings.DIR_MODES[scope])
    emit(f"keybroker: set headersHelper of MCP server(s) {', '.join(sorted(commands))} in {path}")
