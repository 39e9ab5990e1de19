"""What Claude Code will actually do with keybroker, given every settings scope it reads.

Claude Code merges its settings files key by key, highest scope first (managed, local,
project, user), and applies their ``env`` blocks over the shell's environment. Credential
helpers are taken from the highest scope that sets them, whole. So the TTL that matters, the
helper that runs and the variables that shadow it can each come from a different file; this
module works them out and says which file to fix.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keybroker.claude.deployments import INFERENCE_ARGS, INFERENCE_HELPER, OVERRIDING_VARS, TTL_VAR
from keybroker.claude.helpers import parse_helper
from keybroker.claude.policy import PolicySource, RegistryReader, managed_sources
from keybroker.claude.settings import (
    DROP_IN_DIR,
    PRECEDENCE,
    drop_ins,
    git_root,
    read_settings,
    settings_env,
    settings_path,
)
from keybroker.errors import KeybrokerError
from keybroker.sources.base import Check

DEFAULT_TTL_MS = 300_000
#: What Claude Code 2.1.337 does with a helper named in project settings.
HELD = (
    "Claude Code (2.1.337 and newer) holds this apiKeyHelper until the workspace is trusted "
    "(until then requests go without a key), and code reviews never run it: they take "
    "helpers only from user or managed settings"
)
#: Settings that make Claude Code require a claude.ai / Console sign-in instead of a key.
SIGN_IN_PINS = ("forceLoginMethod", "forceLoginOrgUUID")
#: Cloud switches whose key comes from the helper only when the matching SKIP is set.
CLOUD_SWITCHES = {
    "CLAUDE_CODE_USE_BEDROCK": "CLAUDE_CODE_SKIP_BEDROCK_AUTH",
    "CLAUDE_CODE_USE_VERTEX": "CLAUDE_CODE_SKIP_VERTEX_AUTH",
}


@dataclass
class Layer:
    """One settings source. A managed layer is a file, or an OS policy source (``kind``
    "plist" / "registry", whose ``path`` is the plist or the registry value's name);
    ``ignored_by`` names the managed source Claude Code takes its managed settings from
    instead (first source wins), None for the layers it uses."""

    scope: str
    path: Path
    data: dict[str, Any] | None
    error: KeybrokerError | None = None
    kind: str = "file"
    label: str = ""
    ignored_by: str | None = None

    @property
    def env(self) -> dict[str, Any]:
        return settings_env(self.data)


@dataclass
class Effective:
    """The winning value of each thing doctor cares about, and where it came from."""

    layers: list[Layer]
    managed_source: str | None = None  #: where Claude Code takes managed settings from
    ttl_ms: int = DEFAULT_TTL_MS
    ttl_source: str = "default"
    helper: str | None = None
    helper_scope: str | None = None
    helper_path: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    env_source: dict[str, str] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        return {
            "ttl_ms": self.ttl_ms,
            "ttl_source": self.ttl_source,
            "api_key_helper": self.helper,
            "api_key_helper_scope": self.helper_scope,
            "api_key_helper_file": str(self.helper_path) if self.helper_path else None,
            "managed_source": self.managed_source,
            "scopes": [
                {
                    "scope": layer.scope,
                    "path": str(layer.path),
                    "source": layer.kind,
                    "exists": layer.data is not None,
                    "ignored_by": layer.ignored_by,
                }
                for layer in self.layers
            ],
        }


def layers(
    env: Mapping[str, str],
    project_dir: str | None = None,
    managed: str | None = None,
    platform: str | None = None,
    registry: RegistryReader | None = None,
) -> list[Layer]:
    """Each source Claude Code reads, highest precedence first, with its parsed settings.

    Managed settings are several files: ``managed-settings.json`` first, then each drop-in of
    ``managed-settings.d/`` in name order merged over it, so the last drop-in is the highest
    managed layer and the base file the lowest. Above them come the OS policy sources
    (:mod:`.policy`: MDM plists, HKLM) and below them HKCU; only the first managed source that
    exists is used, the other managed layers are marked ``ignored_by`` it.
    """
    out: list[Layer] = []
    for scope in PRECEDENCE:
        path = settings_path(scope, env, project_dir, managed)
        paths = [path]
        if scope == "managed":
            paths = [*reversed(drop_ins(path.parent)), path]
        for each in paths:
            try:
                out.append(Layer(scope, each, read_settings(each)))
            except KeybrokerError as exc:
                out.append(Layer(scope, each, None, exc))
        if scope == "managed":
            files = [layer for layer in out if layer.scope == "managed"]
            out = _first_source_wins(files, managed_sources(platform, env, registry=registry))
    return out


def _first_source_wins(files: list[Layer], sources: list[PolicySource]) -> list[Layer]:
    """The managed layers in Claude Code's order, all but the winning source ``ignored_by``.

    Order: plists (per-user, device) and HKLM, then the files, then HKCU. A source that
    exists but cannot be read still counts as present (Claude Code reports it; doctor says
    ✗), so it is never silently passed over for the file below it.
    """
    policy = [Layer("managed", Path(s.where), s.data, s.error, s.kind, s.label) for s in sources]
    admin = [layer for layer, s in zip(policy, sources, strict=True) if s.admin]
    user = [layer for layer, s in zip(policy, sources, strict=True) if not s.admin]
    present = [layer for layer in files if layer.data is not None or layer.error is not None]
    if admin:
        winner, used = str(admin[0].path), [admin[0]]
    elif present:
        winner, used = str(files[-1].path), files  # the files merge as one source
    elif user:
        winner, used = str(user[0].path), [user[0]]
    else:
        return files
    ordered = [*admin, *files, *user]
    for layer in ordered:
        if all(layer is not kept for kept in used):
            layer.ignored_by = winner
    return ordered


def effective(shell: Mapping[str, str], stack: list[Layer]) -> Effective:
    """Merge like Claude Code: the first scope that sets a thing wins; the shell comes last."""
    result = Effective(stack)
    managed = [layer for layer in stack if layer.scope == "managed" and not layer.ignored_by]
    used = [layer for layer in managed if layer.data is not None or layer.error is not None]
    if used:  # the files are one source, named by managed-settings.json (the last file layer)
        files = [layer for layer in managed if layer.kind == "file"]
        result.managed_source = str((used[0] if used[0].kind != "file" else files[-1]).path)
    stack = [layer for layer in stack if not layer.ignored_by]
    for name, value in shell.items():
        result.env[name] = value
        result.env_source[name] = "shell environment"
    for layer in reversed(stack):  # lowest first, so higher scopes overwrite
        for name, value in layer.env.items():
            result.env[name] = str(value)
            result.env_source[name] = f"{layer.scope} settings ({layer.path})"
    for layer in stack:
        helper = (layer.data or {}).get("apiKeyHelper")
        if helper:
            result.helper, result.helper_scope = str(helper), layer.scope
            result.helper_path = layer.path
            break
    raw = result.env.get(TTL_VAR)
    if raw is not None:
        try:
            result.ttl_ms = int(str(raw).strip())
            result.ttl_source = result.env_source[TTL_VAR]
        except ValueError:
            result.ttl_source = f"invalid {TTL_VAR}={raw!r} in {result.env_source[TTL_VAR]}"
    return result


def lint(
    eff: Effective,
    profiles: Mapping[str, Any],
    config_path: Path,
    extra: Mapping[str, Any] | None = None,
) -> list[Check]:
    """One line per scope plus one per precedence problem (✗ with the file to fix).

    ``extra`` (the config's non-profile tables) adds the ``[mcp.servers]`` bindings.
    """
    checks: list[Check] = []
    mcp = (extra or {}).get("mcp")
    servers = mcp.get("servers") if isinstance(mcp, dict) else None
    if isinstance(servers, dict):
        from keybroker.claude.destinations import lint as lint_mcp  # noqa: PLC0415

        checks.extend(lint_mcp(servers, str(config_path)))
    checks.append(_managed_source(eff))
    for layer in eff.layers:
        checks.extend(_scope_checks(layer, eff, profiles, config_path))
    active = [layer for layer in eff.layers if not layer.ignored_by]
    checks.extend(_managed_trust(active))
    ttl_s = eff.ttl_ms / 1000
    checks.append(
        Check(
            True, "claude helper TTL", f"{TTL_VAR}={eff.ttl_ms} ({ttl_s:g} s) from {eff.ttl_source}"
        )
    )
    for name in OVERRIDING_VARS:
        if name in eff.env:
            checks.append(
                Check(
                    False,
                    "claude credentials",
                    f"{name} is set in the {eff.env_source[name]}; Claude Code sends it instead of "
                    "(or next to) the apiKeyHelper key",
                    f"remove {name} from the {eff.env_source[name].split(' (')[0]}",
                )
            )
    for layer in active:
        for pin in SIGN_IN_PINS:
            value = (layer.data or {}).get(pin)
            if value and (pin != "forceLoginMethod" or value in ("claudeai", "console")):
                checks.append(
                    Check(
                        False,
                        "claude sign-in",
                        f"{layer.path} sets {pin}={value!r}: Claude Code then requires a "
                        "claude.ai/Console sign-in, which apiKeyHelper does not satisfy",
                        f"remove {pin} from {layer.path} (or use a gateway sign-in)",
                    )
                )
    for layer in active:
        args = (layer.data or {}).get(INFERENCE_ARGS)
        if (
            (layer.data or {}).get(INFERENCE_HELPER)
            and isinstance(args, list)
            and ("--header" in [str(a) for a in args])
        ):
            checks.append(
                Check(
                    False,
                    "claude inference helper",
                    f"{layer.path}: inferenceCredentialHelperArgs ask keybroker for headers, but "
                    "Claude Code uses only the token of inferenceCredentialHelper and drops its "
                    "headers",
                    "remove --header/--format json from inferenceCredentialHelperArgs; if the "
                    "gateway needs a header, use apiKeyHelper (x-api-key and Bearer) or "
                    "ANTHROPIC_CUSTOM_HEADERS",
                )
            )
    for switch, skip in CLOUD_SWITCHES.items():
        if eff.env.get(switch) in ("1", "true") and eff.env.get(skip) not in ("1", "true"):
            checks.append(
                Check(
                    False,
                    "claude deployment",
                    f"{switch} is set (in the {eff.env_source[switch]}) without {skip}=1: Claude "
                    "Code signs requests with cloud credentials and ignores apiKeyHelper",
                    f"set {skip}=1 (keybroker claude configure --deployment ... does)",
                )
            )
    return checks


def _managed_trust(stack: list[Layer]) -> list[Check]:
    """✗ when another account could change the managed settings every user's Claude Code runs:
    a managed folder or file not root's, or group/world writable (the fix, never applied)."""
    from keybroker.claude import managed  # noqa: PLC0415
    from keybroker.errors import ConfigError  # noqa: PLC0415

    files = [
        layer.path
        for layer in stack
        if layer.scope == "managed" and layer.kind == "file" and layer.data is not None
    ]
    if not files:
        return []
    checks: list[Check] = []
    try:
        managed.check_folders(files[-1].parent, repair=False)
        managed.check_files(files)
    except ConfigError as exc:
        checks.append(Check(False, "claude managed settings", exc.message, exc.hint or ""))
    return checks


def _layer_at(eff: Effective, where: str) -> Layer:
    """The managed layer read from ``where`` (a path or registry value's name)."""
    return next(
        layer for layer in eff.layers if layer.scope == "managed" and str(layer.path) == where
    )


def _managed_source(eff: Effective) -> Check:
    """Which managed source Claude Code takes ALL its managed settings from."""
    label = "claude managed source"
    if eff.managed_source is None:
        return Check(True, label, "none (no MDM profile, policy or managed-settings.json)")
    winner = _layer_at(eff, eff.managed_source)
    if winner.kind == "file":
        what = "managed-settings.json and its managed-settings.d/ drop-ins"
    else:
        what = f"{winner.label}: Claude Code ignores every other managed source"
    return Check(True, label, f"{winner.path} ({what})")


def _ignored(layer: Layer, source: Layer) -> list[Check]:
    """A managed source Claude Code does not read because a higher one exists (first wins).

    ``source`` is the one in effect (a plist, a registry value or the files): the fix says
    how to move the helper there, to remove it, or (when ``source`` already runs keybroker)
    to remove the ignored copy.
    """
    winner = source.kind
    label = f"claude {layer.scope} settings"
    if layer.data is None and layer.error is None:
        return [Check(True, label, f"{layer.path} (none)")]
    what = "this file" if layer.kind == "file" else "this source"
    detail = (
        f"{layer.path}: Claude Code ignores {what}: it takes all managed settings from "
        f"{layer.ignored_by} (the first managed source that exists wins)"
    )
    helper = (layer.data or {}).get("apiKeyHelper")
    if layer.kind != "file" and not helper:
        return [Check(True, label, detail)]
    remove = {
        "plist": "remove the profile",
        "registry": f"delete {layer.ignored_by}",
        "file": f"remove {layer.ignored_by}",
    }[winner]
    if helper and parse_helper((source.data or {}).get("apiKeyHelper")) is not None:
        fix = f"{layer.ignored_by} already runs keybroker; remove this unused copy" + (
            " (keybroker claude unconfigure --scope managed)"
            if layer.kind == "file" and layer.path.parent.name == DROP_IN_DIR
            else ""
        )
    elif not helper or parse_helper(helper) is None:
        fix = f"move these settings into {layer.ignored_by}, or {remove}"
    elif winner == "plist":
        fix = (
            "put apiKeyHelper in the MDM profile (keybroker claude configure PROFILE --scope "
            f"managed --mobileconfig FILE makes one; upload it to your MDM), or {remove}"
        )
    else:
        fix = f"put apiKeyHelper in {layer.ignored_by} (the same settings JSON), or {remove}"
    return [Check(False, label, detail, fix)]


def _scope_checks(
    layer: Layer, eff: Effective, profiles: Mapping[str, Any], config_path: Path
) -> list[Check]:
    label = f"claude {layer.scope} settings"
    if layer.ignored_by:
        return _ignored(layer, _layer_at(eff, layer.ignored_by))
    if layer.error is not None:
        return [Check(False, label, layer.error.message, layer.error.hint or "")]
    if layer.data is None:
        return [Check(True, label, f"{layer.path} (none)")]
    helper = layer.data.get("apiKeyHelper")
    if not helper:
        return [Check(True, label, f"{layer.path} (no apiKeyHelper)")]
    shadowed = eff.helper_path != layer.path
    note = (
        f" (shadowed by {eff.helper_scope} settings {eff.helper_path})"
        if shadowed
        else " (the helper Claude Code runs)"
        if layer.scope == "managed"
        else ""
    )
    parsed = parse_helper(helper)
    if parsed is None:
        return [
            Check(True, label, f"{layer.path}: apiKeyHelper is not keybroker (left alone){note}")
        ]
    problems: list[tuple[str, str]] = []
    exe = parsed["executable"]
    if os.path.isabs(exe) and not os.access(exe, os.X_OK):
        problems.append(
            (
                f"apiKeyHelper runs {exe}, which does not exist or is not executable",
                f"run: keybroker claude configure {parsed['profile'] or 'PROFILE'} "
                f"--scope {layer.scope}",
            )
        )
    profile = parsed["profile"]
    if profile and parsed.get("config") is None and profile not in profiles:
        problems.append(
            (
                f"apiKeyHelper asks for profile '{profile}', which is not in {config_path}",
                f"add [profiles.{profile}] to the config",
            )
        )
    if layer.scope == "project" and git_root(layer.path.parent) is not None:
        problems.append(
            (
                "apiKeyHelper is defined in a shared project file (committed with "
                "the repository): it runs for everyone who trusts the repository",
                "move it to ~/.claude/settings.json (keybroker claude configure --scope user)",
            )
        )
    if layer.scope == "project" and not shadowed:
        problems.append(
            (
                HELD,
                f"keybroker claude configure {profile or 'PROFILE'} --scope "
                "user (or --scope managed for every user of this machine), then "
                "keybroker claude unconfigure --scope project",
            )
        )
    if problems:
        return [Check(False, label, f"{layer.path}: {detail}", fix) for detail, fix in problems]
    return [Check(True, label, f"{layer.path}: apiKeyHelper → keybroker profile '{profile}'{note}")]
