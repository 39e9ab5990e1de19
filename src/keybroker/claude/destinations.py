"""Keys bound to where they go, when Claude Code tells the helper the destination.

Claude Code (2.1.332, 2.1.337) runs an MCP server's ``headersHelper`` with
``CLAUDE_CODE_MCP_SERVER_NAME`` and ``CLAUDE_CODE_MCP_SERVER_URL``, and ``proxyAuthHelper``
with ``CLAUDE_CODE_PROXY_URL`` / ``CLAUDE_CODE_PROXY_HOST``. A server *name* is chosen by
whoever wrote the MCP config, a cloned repository's ``.mcp.json`` included, so a name alone
must not pick a key: the ``[mcp.servers]`` entry names the URL the key is for, and a request
for another URL is refused.

The rules (docs/claude-code.md, "Keys bound to their destination"):

- ``name = { profile = "p", url = "https://…" }``: served only when Claude Code reports that
  URL (compared after normalising scheme, host, default port and a trailing slash), else exit 4.
- ``name = { profile = "p", any_url = true }``: any URL (the old behaviour, chosen on purpose).
- ``name = "p"`` (the old string form) or an entry without ``url``/``any_url``: served when
  Claude Code reports no URL (older versions), refused with exit 2 and the line to add when it
  does. This breaks a name-only mapping under a current Claude Code on purpose: that mapping is
  exactly what a repository's same-named server exploited.
- a profile named by any ``url`` entry is bound to those URLs for every MCP request, even one
  whose server is unmapped or that names the profile on the command line.
- ``headers --url URL`` (repeatable) binds a helper line the same way, for MCP servers and for
  ``proxyAuthHelper`` (``CLAUDE_CODE_PROXY_URL``).

``inferenceCredentialHelper`` is told no destination (only ``CLAUDE_HELPER_CONTEXT``), so
``credential`` cannot bind; its key goes wherever Claude Code's own base URL points.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from keybroker.errors import AccessDenied, ConfigError

SERVER_ENV = "CLAUDE_CODE_MCP_SERVER_NAME"
SERVER_URL_ENV = "CLAUDE_CODE_MCP_SERVER_URL"
PROXY_URL_ENV = "CLAUDE_CODE_PROXY_URL"
_DEFAULT_PORTS = {"http": 80, "https": 443}


def normalise(url: str) -> str:
    """A URL in one spelling: lower-case scheme and host, no default port, no trailing ``/``."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS.get(scheme)) else f"{host}:{port}"
    path = parts.path.rstrip("/")
    return f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


def same(a: str, b: str) -> bool:
    return normalise(a) == normalise(b)


def entry(servers: Mapping[str, Any], server: str, where: str) -> dict[str, Any] | None:
    """The ``[mcp.servers]`` entry for ``server`` as a dict, or None; exit 2 if malformed."""
    raw = servers.get(server)
    if raw is None:
        return None
    if isinstance(raw, str):
        return {"profile": raw}
    if isinstance(raw, dict) and isinstance(raw.get("profile"), str):
        known = {"profile", "header", "scheme", "url", "any_url"}
        unknown = set(raw) - known
        if unknown:
            raise ConfigError(
                f"{where}: [mcp.servers] {server}: unknown key '{sorted(unknown)[0]}'",
                "known keys: " + ", ".join(sorted(known)),
            )
        for key in ("header", "scheme", "url"):
            if key in raw and not isinstance(raw[key], str):
                raise ConfigError(f"{where}: [mcp.servers] {server}: '{key}' must be a string")
        if "any_url" in raw and not isinstance(raw["any_url"], bool):
            raise ConfigError(f"{where}: [mcp.servers] {server}: 'any_url' must be true or false")
        if "url" in raw and not raw["url"].startswith(("https://", "http://")):
            raise ConfigError(f"{where}: [mcp.servers] {server}: 'url' must be an http(s) URL")
        if raw.get("url") and raw.get("any_url"):
            raise ConfigError(f"{where}: [mcp.servers] {server}: give 'url' or 'any_url', not both")
        return dict(raw)
    raise ConfigError(
        f"{where}: [mcp.servers] {server}: expected a profile name or "
        '{ profile = "…", url = "https://…", header = "…", scheme = "…" }'
    )


def bound_urls(servers: Mapping[str, Any], profile: str) -> list[str]:
    """Every URL a ``[mcp.servers]`` entry binds ``profile`` to."""
    out: list[str] = []
    for raw in servers.values():
        if (
            isinstance(raw, dict)
            and raw.get("profile") == profile
            and isinstance(raw.get("url"), str)
        ):
            out.append(raw["url"])
    return out


def check_mcp(
    server: str,
    url: str,
    choice: Mapping[str, Any] | None,
    servers: Mapping[str, Any],
    profile: str,
    where: str,
) -> None:
    """Refuse to hand ``profile``'s key to MCP server ``server`` at ``url`` unless bound."""
    if not url:
        return  # an older Claude Code says no URL: nothing to bind against
    if choice is not None:
        if choice.get("url"):
            if not same(choice["url"], url):
                raise AccessDenied(
                    f"MCP server '{server}' is at {url}, but [mcp.servers] {server} in {where} "
                    f"is for {choice['url']}; not sending the '{profile}' key there (a "
                    "repository's .mcp.json can reuse a server name)",
                    "if that URL is really yours, set url to it in [mcp.servers]",
                )
            return
        if not choice.get("any_url"):
            raise ConfigError(
                f"[mcp.servers] {server} in {where} names no url, and keybroker sends a key "
                f"only to the URL a mapping names (Claude Code asks for {url})",
                f'write: {server} = {{ profile = "{choice["profile"]}", url = "{url}" }} '
                "(or any_url = true to send it anywhere, as before)",
            )
    bound = bound_urls(servers, profile)
    if bound and not any(same(b, url) for b in bound):
        raise AccessDenied(
            f"MCP server '{server}' is at {url}, but the '{profile}' key is bound to "
            f"{', '.join(bound)} by [mcp.servers] in {where}; not sending it there",
        )


def lint(servers: Mapping[str, Any], where: str) -> list[Any]:
    """doctor's lines for ``[mcp.servers]``: an entry naming no URL is refused by every Claude
    Code that reports one (2.1.332+), so say it now, with the line to write."""
    from keybroker.sources.base import Check  # noqa: PLC0415

    checks: list[Any] = []
    for name in sorted(servers):
        try:
            choice = entry(servers, name, where)
        except ConfigError as exc:
            checks.append(Check(False, "mcp servers", exc.message, exc.hint or ""))
            continue
        if choice is None or choice.get("url") or choice.get("any_url"):
            continue
        checks.append(
            Check(
                False,
                "mcp servers",
                f"[mcp.servers] {name} in {where} names no url: Claude Code (2.1.332+) tells the "
                "helper the server's URL, and keybroker sends a key only to the URL a mapping "
                "names",
                f'write {name} = {{ profile = "{choice["profile"]}", url = "https://…" }} '
                "(or any_url = true)",
            )
        )
    bound = sum(1 for raw in servers.values() if isinstance(raw, dict) and raw.get("url"))
    if bound and not checks:
        checks.append(Check(True, "mcp servers", f"{bound} server(s) bound to their URL"))
    return checks


def check_flag(urls: tuple[str, ...], env: Mapping[str, str], profile: str) -> None:
    """``headers --url``: the destination Claude Code reports must be one of ``urls``."""
    if not urls:
        return
    told = env.get(SERVER_URL_ENV) or env.get(PROXY_URL_ENV) or ""
    if not told:
        raise AccessDenied(
            f"headers --url binds the '{profile}' key to {', '.join(urls)}, but no destination "
            f"was given ({SERVER_URL_ENV} / {PROXY_URL_ENV} unset); not sending it",
            "run it as Claude Code's headersHelper or proxyAuthHelper",
        )
    if not any(same(u, told) for u in urls):
        raise AccessDenied(
            f"the '{profile}' key is bound to {', '.join(urls)} (--url), not {told}; not sending it"
        )
