"""Where Claude Code keeps MCP server definitions, and setting their ``headersHelper``.

MCP servers are not in settings.json: user-scope servers live in ``~/.claude.json``
(``$CLAUDE_CONFIG_DIR/.claude.json`` when set) under ``mcpServers``, local-scope ones in the
same file under ``projects[<project dir>].mcpServers``, project-scope ones in the project's
``.mcp.json``. keybroker only sets ``headersHelper`` on servers that already exist there
(``claude mcp add`` creates them); it never invents a server or a URL.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keybroker.errors import ConfigError, UsageError


def mcp_location(
    scope: str, env: Mapping[str, str], project_dir: str | None = None
) -> tuple[Path, list[str]]:
    """The file holding ``scope``'s MCP servers and the key path to its ``mcpServers``."""
    project = str(Path(project_dir or os.getcwd()).absolute())
    if scope == "project":
        return Path(project) / ".mcp.json", ["mcpServers"]
    if scope not in ("user", "local"):
        raise UsageError(
            f"--mcp-server is not supported with --scope {scope}",
            "use --scope user, local or project",
        )
    base = env.get("CLAUDE_CONFIG_DIR")
    path = (
        Path(base).expanduser() / ".claude.json"
        if base
        else Path(env.get("HOME") or Path.home()) / ".claude.json"
    )
    return path, (["mcpServers"] if scope == "user" else ["projects", project, "mcpServers"])


def parse_mapping(specs: tuple[str, ...]) -> dict[str, str]:
    """``NAME=PROFILE`` pairs → {name: profile}."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, profile = spec.partition("=")
        if not sep or not name.strip() or not profile.strip():
            raise UsageError(f"--mcp-server {spec!r}: expected NAME=PROFILE")
        out[name.strip()] = profile.strip()
    return out


def set_headers_helpers(
    data: Mapping[str, Any], keys: list[str], commands: Mapping[str, str], where: Path
) -> dict[str, Any]:
    """A copy of ``data`` with ``headersHelper`` set on each named server (which must exist)."""
    merged = copy.deepcopy(dict(data))
    servers: Any = merged
    for key in keys:
        servers = servers.get(key) if isinstance(servers, dict) else None
    if not isinstance(servers, dict):
        servers = {}
    missing = [name for name in commands if not isinstance(servers.get(name), dict)]
    if missing:
        raise UsageError(
            f"{where} defines no MCP server named {', '.join(repr(m) for m in missing)}",
            "add it first (claude mcp add --transport http NAME URL), then run this again",
        )
    for name, command in commands.items():
        server = servers[name]
        if server.get("type") not in (None, "http", "sse"):
            raise ConfigError(
                f"{where}: MCP server '{name}' is a {server.get('type')} server; "
                "headersHelper applies to http and sse servers only"
            )
        server["headersHelper"] = command
    return merged
