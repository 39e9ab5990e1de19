"""The policy of ``keybroker claude configure`` and ``unconfigure``: what to write where, what
to refuse, what to say, and how to put everything back.

- **user / local / project**: merge keybroker's keys into the settings file (a foreign helper is
  replaced only with ``force``); project and local files are written confined to the project
  (:mod:`.files`), and project scope says at write time that Claude Code 2.1.337 holds a helper
  named in project settings until the workspace is trusted and that code reviews take helpers
  only from user or admin settings.
- **managed**: keybroker writes its OWN drop-in ``managed-settings.d/<name>.json``, never
  ``managed-settings.json`` or another drop-in; folders open to others are repaired (root's) or
  refused, other managed files open to others are refused, and the helper executable must be
  one every user can run and only root can change (:mod:`.managed`).
- every write is recorded (:mod:`.record`) so ``unconfigure`` restores exactly what was there.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keybroker.claude import deployments as dep
from keybroker.claude import files, helpers, managed, policy, record, settings
from keybroker.errors import ConfigError, UsageError

Say = Callable[[str], None]

PROJECT_NOTE = (
    "keybroker: note: Claude Code (2.1.337 and newer) holds a helper named in project settings "
    "until this workspace is trusted, and code reviews take helpers only from user or managed "
    "settings; for a helper that always runs use --scope user (yours) or --scope managed "
    "(every user of this machine)"
)
HEADERS_DROPPED = (
    "Claude Code uses only the token of inferenceCredentialHelper and ignores its headers "
    '("the helper\'s headers are not used")'
)


@dataclass
class Request:
    """What the person asked ``configure`` to set (the fragment) and where."""

    scope: str
    profile: str
    fragment: dict[str, Any]
    deployment: str
    force: bool = False
    absolute: str = ""
    mcp_commands: dict[str, str] = field(default_factory=dict)
    project_dir: str | None = None
    managed_path: str | None = None
    drop_in: str = settings.DROP_IN


@dataclass
class Wanted:
    """The ``configure`` options, as parsed by the command."""

    profile: str
    scope: str
    deployment: str = "anthropic"
    base_url: str | None = None
    ttl_ms: str | None = None
    region: str | None = None
    vertex_project_id: str | None = None
    models: dict[str, str | None] = field(default_factory=dict)
    inference_helper: bool = False
    proxy_auth_helper: str | None = None
    mcp: dict[str, str] = field(default_factory=dict)
    executable: str | None = None
    config: str | None = None
    shared: bool = False  #: a file others use (project scope, --print): a bare `keybroker`
    fleet: bool = False  #: a device-management profile: a path on the fleet's machines
    project_dir: str | None = None
    managed_path: str | None = None
    drop_in: str = settings.DROP_IN
    force: bool = False


def executables(wanted: Wanted, say: Say) -> tuple[str, str]:
    """(the command written in shell helpers, the absolute keybroker of this machine)."""
    absolute = helpers.keybroker_executable()
    if wanted.fleet:
        exe = wanted.executable or helpers.FLEET_EXECUTABLE  # on the fleet's Macs, not here
    else:
        exe = wanted.executable or (helpers.PORTABLE if wanted.shared else absolute)
    if exe == helpers.PORTABLE and not helpers.on_path():
        say(
            "keybroker: warning: 'keybroker' is not on this PATH; the written helper runs it "
            "by name (install it on PATH for everyone, or pass --executable)"
        )
    return exe, absolute


def plan(env: Mapping[str, str], wanted: Wanted, say: Say, read: bool = True) -> Request:
    """What ``configure`` will set: the settings fragment and the MCP helper lines."""
    exe, absolute = executables(wanted, say)
    tgt = settings.target(
        wanted.scope, env, wanted.project_dir, wanted.managed_path, wanted.drop_in
    )
    existing = tgt.read() if read else None
    ttl_ms = wanted.ttl_ms
    if ttl_ms is None and not settings.settings_env(existing).get(dep.TTL_VAR):
        ttl_ms = dep.DEFAULT_TTL_MS
    fragment: dict[str, Any] = {
        "apiKeyHelper": helpers.helper_command(exe, wanted.profile, wanted.config),
        "env": dep.deployment_env(
            wanted.deployment,
            base_url=wanted.base_url,
            ttl_ms=ttl_ms,
            region=wanted.region,
            vertex_project=wanted.vertex_project_id,
            models=wanted.models,
        ),
    }
    if wanted.inference_helper:
        explicit = os.path.isabs(exe) and (wanted.executable or wanted.fleet)
        inference_exe = exe if explicit else absolute
        args = helpers.credential_args(wanted.profile, wanted.config)
        helpers.check_inference_helper(inference_exe, args)
        fragment[dep.INFERENCE_HELPER] = inference_exe  # an absolute path, no shell
        fragment[dep.INFERENCE_ARGS] = args
        if wanted.scope != "managed":
            say(
                "keybroker: note: Claude Code reads inferenceCredentialHelper as an "
                "organization setting (managed settings / device management)"
            )
    if wanted.proxy_auth_helper:
        fragment[dep.PROXY_HELPER] = helpers.command_line(
            exe, "headers", wanted.proxy_auth_helper, wanted.config, ("--format", "value")
        )
        fragment["env"][dep.PROXY_SWITCH] = "1"
    if wanted.deployment == "vertex":
        have = {**settings.settings_env(existing), **fragment["env"]}
        missing = [v for v in ("ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION") if v not in have]
        if missing:
            say(
                f"keybroker: note: Claude Code on Vertex also needs {' and '.join(missing)} "
                "(--vertex-project-id, --region)"
            )
    mcp_commands = {
        name: helpers.command_line(exe, "headers", prof, wanted.config)
        for name, prof in wanted.mcp.items()
    }
    return Request(
        scope=wanted.scope,
        profile=wanted.profile,
        fragment=fragment,
        deployment=wanted.deployment,
        force=wanted.force,
        absolute=absolute,
        mcp_commands=mcp_commands,
        project_dir=wanted.project_dir,
        managed_path=wanted.managed_path,
        drop_in=wanted.drop_in,
    )


def inference_headers(args: Any) -> bool:
    """Whether ``inferenceCredentialHelperArgs`` ask ``keybroker credential`` for headers."""
    return isinstance(args, list) and "--header" in [str(a) for a in args]


def check_helpers(current: Mapping[str, Any], req: Request, where: Path) -> None:
    """Refuse to replace a helper keybroker did not write (always refused in managed scope)."""
    for key in ("apiKeyHelper", dep.INFERENCE_HELPER, dep.PROXY_HELPER):
        value = current.get(key)
        if key not in req.fragment or helpers.is_ours(value) or value == req.fragment[key]:
            continue
        if key == dep.INFERENCE_HELPER and value == req.absolute:
            continue
        if req.scope == "managed":
            raise UsageError(
                f"{where} already has a {key} that keybroker did not write; "
                "managed settings are never replaced, only merged",
                "ask the administrator who wrote it, or edit the file by hand",
            )
        if not req.force:
            raise UsageError(
                f"{where} already has a {key} that keybroker did not write; not replacing it",
                "rerun with --force to replace it (keybroker claude unconfigure puts it back)",
            )


def managed_checks(env: Mapping[str, str], req: Request, say: Say) -> None:
    """Everything that must hold before keybroker writes managed settings (see :mod:`.managed`)."""
    directory = settings.managed_dir(env, req.managed_path)
    for note in managed.check_folders(directory, repair=True):
        say(f"keybroker: {note}")
    mine = directory / settings.DROP_IN_DIR / f"{req.drop_in}.json"
    others = [
        directory / "managed-settings.json",
        *(p for p in settings.drop_ins(directory) if p != mine),
    ]
    managed.check_files(others)
    for key in ("apiKeyHelper", dep.PROXY_HELPER):
        if key in req.fragment:
            managed.check_executable(str(req.fragment[key]))
    if dep.INFERENCE_HELPER in req.fragment:
        managed.check_executable(str(req.fragment[dep.INFERENCE_HELPER]))
    shadowing = [s for s in policy.managed_sources(env=env) if s.admin]
    fix = (
        "put apiKeyHelper in the profile (keybroker claude configure PROFILE --scope managed "
        "--mobileconfig FILE) or remove the profile"
    )
    if shadowing:  # first source wins: Claude Code never reads the drop-in written below
        say(
            f"keybroker: warning: {shadowing[0].where} exists ({shadowing[0].label}): Claude "
            f"Code takes all managed settings from it and ignores {mine}; {fix}"
        )
    elif accounts := [u for u in policy.per_user_profiles(env=env) if u != policy.username()]:
        # root's own profile says nothing about the other accounts'
        more = f" and {len(accounts) - 5} more" if len(accounts) > 5 else ""
        shown = ", ".join(accounts[:5]) + more
        say(
            f"keybroker: warning: per-user managed preferences (MDM profiles) exist for {shown}: "
            f"their Claude Code takes all managed settings from those and ignores {mine}; {fix}"
        )
    # the helper a later drop-in sets wins over ours: say so now rather than in doctor
    later = [p for p in settings.drop_ins(directory) if p.name > mine.name]
    for path in later:
        try:
            data = settings.read_settings(path) or {}
        except ConfigError:
            continue
        if data.get("apiKeyHelper"):
            say(
                f"keybroker: warning: {path} also sets apiKeyHelper and is read after "
                f"{mine.name}, so Claude Code runs its helper, not keybroker's"
            )


def write(env: Mapping[str, str], req: Request, say: Say) -> None:
    """Merge the request into its scope's file, record the change, and say what happened."""
    tgt = settings.target(req.scope, env, req.project_dir, req.managed_path, req.drop_in)
    if req.scope == "managed":
        managed_checks(env, req, say)
    raw = tgt.read_bytes()
    existing = tgt.read() if raw is not None else None
    current = existing or {}
    check_helpers(current, req, tgt.path)
    if dep.INFERENCE_HELPER in req.fragment and (
        inference_headers(req.fragment.get(dep.INFERENCE_ARGS))
        or inference_headers(current.get(dep.INFERENCE_ARGS))
    ):
        say(
            f"keybroker: warning: {HEADERS_DROPPED}: the --header arguments in {tgt.path} "
            "never reached the gateway and are replaced by a bare token; if the gateway needs "
            "a header, use apiKeyHelper (x-api-key and Bearer) or ANTHROPIC_CUSTOM_HEADERS"
        )
    if req.mcp_commands:  # after every refusal above, so a refused run changes nothing
        write_mcp(env, req, say)
    merged, removed = dep.merge(current, req.fragment, req.deployment, tgt.path)
    if existing is not None and merged == existing:
        say(f"keybroker: {tgt.path} is already configured for profile '{req.profile}'")
        return
    note = ""
    if existing is not None and req.scope != "managed":
        repo = settings.git_root(tgt.path.parent) if req.scope in ("project", "local") else None
        if repo is None:
            note = f"; backup: {tgt.backup()}"
        else:
            note = f"; no backup (the git repository {repo} keeps its history)"
    mode = tgt.mode() or settings.FILE_MODES[req.scope]
    if req.scope == "managed":
        mode = 0o644  # every user's Claude Code reads it; nobody else writes it
    remember(env, tgt, raw, current, merged)
    tgt.write(files.dumps(merged), mode, settings.DIR_MODES[req.scope])
    say(
        f"keybroker: wrote apiKeyHelper ({req.deployment}, profile '{req.profile}') to "
        f"{tgt.path}{note}"
    )
    if removed:
        say(f"keybroker: removed settings of the previous deployment: {', '.join(removed)}")
    overriding = [v for v in dep.OVERRIDING_VARS if v in merged["env"]]
    if overriding:
        say(
            f"keybroker: warning: {tgt.path} also sets {', '.join(overriding)} in env, which "
            "Claude Code uses instead of apiKeyHelper; remove it"
        )
    if req.scope == "project":
        say(PROJECT_NOTE)


def remember(
    env: Mapping[str, str],
    tgt: settings.Target,
    raw: bytes | None,
    before: Mapping[str, Any],
    after: Mapping[str, Any],
) -> None:
    """Add this write's changes to the file's record (created on its first configure)."""
    records = record.Records(env)
    rec = records.load(tgt.path) or record.Record(str(tgt.path), raw is not None, raw)
    rec.add(before, after)
    records.save(rec)


def write_mcp(env: Mapping[str, str], req: Request, say: Say) -> None:
    """Set headersHelper on existing MCP servers, with the same backup and record rules."""
    from keybroker.claude import mcp  # noqa: PLC0415

    path, keys = mcp.mcp_location(req.scope, env, req.project_dir)
    tgt = mcp_target(req.scope, path)
    raw = tgt.read_bytes()
    data = tgt.read() if raw is not None else {}
    data = data or {}
    commands = {
        name: command + bound_to(data, keys, name) for name, command in req.mcp_commands.items()
    }
    merged = mcp.set_headers_helpers(data, keys, commands, path)
    if merged == data:
        return
    repo = settings.git_root(path.parent) if req.scope == "project" else None
    if raw is not None and repo is None:
        tgt.backup()
    mode = tgt.mode() or settings.FILE_MODES[req.scope]
    remember(env, tgt, raw, data, merged)
    tgt.write(files.dumps(merged), mode, settings.DIR_MODES[req.scope])
    say(
        f"keybroker: set headersHelper of MCP server(s) {', '.join(sorted(req.mcp_commands))} "
        f"in {path}"
    )


def mcp_target(scope: str, path: Path) -> settings.Target:
    """A project's ``.mcp.json`` (confined, 1 MiB) or ``~/.claude.json`` (the user's, which
    Claude Code fills with its own state: read up to 64 MiB)."""
    if scope == "project":
        return settings.Target(scope, path, path.parent, (path.name,))
    return settings.Target(scope, path, limit=64 << 20)


def bound_to(data: Mapping[str, Any], keys: list[str], name: str) -> str:
    """`` --url URL`` binding a headersHelper to the server's URL (see :mod:`.destinations`)."""
    import shlex  # noqa: PLC0415

    servers: Any = data
    for key in keys:
        servers = servers.get(key) if isinstance(servers, dict) else None
    server = servers.get(name) if isinstance(servers, dict) else None
    url = server.get("url") if isinstance(server, dict) else None
    return f" --url {shlex.quote(url)}" if isinstance(url, str) and url else ""


def undo(env: Mapping[str, str], tgt: settings.Target, say: Say) -> bool:
    """Put ``tgt`` back as it was before keybroker first configured it; False if no record."""
    records = record.Records(env)
    rec = records.load(tgt.path)
    if rec is None:
        if tgt.scope == "managed" and tgt.read_bytes() is not None:
            tgt.remove()  # keybroker's own drop-in: nobody else writes it
            say(f"keybroker: removed {tgt.path}")
            return True
        return False
    raw = tgt.read_bytes()
    current = (tgt.read() if raw is not None else None) or {}
    restored, kept = record.restore(current, rec)
    original = files.parse_object(tgt.path, rec.original) if rec.original is not None else None
    if not rec.existed and not restored:
        if raw is not None:
            tgt.remove()
        if tgt.root is not None and tgt.scope in ("project", "local") and len(tgt.relative) > 1:
            files.remove_empty_dir(tgt.root, tgt.relative[0])  # a .claude left empty
        say(f"keybroker: removed {tgt.path} (keybroker created it)")
    elif original is not None and restored == original and rec.original is not None:
        tgt.write(
            rec.original,
            tgt.mode() or settings.FILE_MODES[tgt.scope],
            settings.DIR_MODES[tgt.scope],
        )
        say(f"keybroker: restored {tgt.path} as it was before keybroker configured it")
    elif restored != current:
        tgt.write(
            files.dumps(restored),
            tgt.mode() or settings.FILE_MODES[tgt.scope],
            settings.DIR_MODES[tgt.scope],
        )
        say(f"keybroker: removed keybroker's settings from {tgt.path}")
    if kept:
        say(
            f"keybroker: left {', '.join(kept)} in {tgt.path} alone: changed since keybroker "
            "wrote it"
        )
    records.drop(tgt.path)
    return True
