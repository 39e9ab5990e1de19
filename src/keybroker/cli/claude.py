"""``keybroker claude configure PROFILE``: write Claude Code's settings for a keybroker key.

It sets ``apiKeyHelper`` to the absolute path of the keybroker executable (quoted for
``/bin/sh``, which is what Claude Code runs it with), the helper TTL, and for the chosen
deployment of Claude Code's proxy guide the variables that send requests through the proxy:

- anthropic: ``ANTHROPIC_BASE_URL``
- bedrock:   ``ANTHROPIC_BEDROCK_BASE_URL``, ``CLAUDE_CODE_USE_BEDROCK=1``,
  ``CLAUDE_CODE_SKIP_BEDROCK_AUTH=1``
- vertex:    ``ANTHROPIC_VERTEX_BASE_URL``, ``CLAUDE_CODE_USE_VERTEX=1``,
  ``CLAUDE_CODE_SKIP_VERTEX_AUTH=1``

Settings files are merged, not replaced: every other key is kept, the file is replaced
atomically, and the previous version is kept as ``settings.json.bak`` (``.bak.1`` … when
older backups exist). An ``apiKeyHelper`` that keybroker did not write is never replaced
without ``--force``: it is somebody's working set-up.
"""

from __future__ import annotations

import copy
import json
import os
import shlex
import shutil
import sys
import sysconfig
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from keybroker.cli.errors import config_option, debug_option, handles_errors

SCOPES = ("user", "project", "local")
TTL_VAR = "CLAUDE_CODE_API_KEY_HELPER_TTL_MS"
#: Executable names whose ``NAME get PROFILE`` commands keybroker wrote (or would write).
HELPER_NAMES = ("keybroker", "keybroker.exe", "keybroker-helper.sh", "keybroker-helper")
#: Variables that make Claude Code ignore apiKeyHelper (they take precedence over it).
OVERRIDING_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN")

DEPLOYMENTS: dict[str, dict[str, Any]] = {
    "anthropic": {"base": "ANTHROPIC_BASE_URL", "switches": {}},
    "bedrock": {
        "base": "ANTHROPIC_BEDROCK_BASE_URL",
        "switches": {"CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1"},
        "region": "AWS_REGION",
    },
    "vertex": {
        "base": "ANTHROPIC_VERTEX_BASE_URL",
        "switches": {"CLAUDE_CODE_USE_VERTEX": "1", "CLAUDE_CODE_SKIP_VERTEX_AUTH": "1"},
        "region": "CLOUD_ML_REGION",
    },
}

MODEL_OPTIONS = {
    "model": "ANTHROPIC_MODEL",
    "opus_model": "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "sonnet_model": "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "haiku_model": "ANTHROPIC_DEFAULT_HAIKU_MODEL",
}


def settings_path(scope: str, env: Mapping[str, str], project_dir: str | None = None) -> Path:
    """user: ``$CLAUDE_CONFIG_DIR`` or ``~/.claude``; project/local: ``<dir>/.claude``."""
    if scope == "user":
        base = env.get("CLAUDE_CONFIG_DIR")
        root = Path(base).expanduser() if base else Path(env.get("HOME") or Path.home()) / ".claude"
        return root / "settings.json"
    project = Path(project_dir or os.getcwd()).absolute()
    name = "settings.json" if scope == "project" else "settings.local.json"
    return project / ".claude" / name


def keybroker_executable() -> str:
    """The real console script (not a pyenv shim, which costs ~30 ms per run), absolute."""
    name = "keybroker.exe" if sys.platform == "win32" else "keybroker"
    beside = Path(sysconfig.get_path("scripts")) / name
    if beside.is_file() and os.access(beside, os.X_OK):
        return str(beside)
    found = shutil.which("keybroker")
    if found:
        return os.path.abspath(found)
    argv0 = Path(sys.argv[0])
    if argv0.name == name and argv0.is_file():
        return str(argv0.absolute())
    from keybroker.errors import UsageError  # noqa: PLC0415

    raise UsageError("cannot find the keybroker executable", "pass --executable PATH")


def helper_command(executable: str, profile: str, config: str | None = None) -> str:
    """The apiKeyHelper string: every word quoted for /bin/sh."""
    words = [executable, "get", profile]
    if config:
        words += ["--config", config]
    return " ".join(shlex.quote(w) for w in words)


def parse_helper(command: Any) -> dict[str, Any] | None:
    """If ``command`` is a ``keybroker get PROFILE`` helper, its parts; else None."""
    if not isinstance(command, str):
        return None
    try:
        words = shlex.split(command)
    except ValueError:
        return None
    if len(words) < 3 or words[1] != "get" or os.path.basename(words[0]) not in HELPER_NAMES:
        return None
    profile = next((w for w in words[2:] if not w.startswith("-")), None)
    config = None
    if "--config" in words[:-1]:
        config = words[words.index("--config") + 1]
    return {"executable": words[0], "profile": profile, "config": config}


def read_settings(path: Path) -> tuple[dict[str, Any] | None, str | None]:
    """(settings, raw text); (None, None) when the file does not exist. Exit 2 if invalid."""
    from keybroker.errors import ConfigError  # noqa: PLC0415

    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None, None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not text.strip():
        return {}, text
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(
            f"{path} is not valid JSON (line {getattr(exc, 'lineno', '?')}); not touching it",
            "fix or move the file, then run this again",
        ) from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level; not touching it")
    return data, text


def build_fragment(
    profile: str,
    deployment: str,
    executable: str,
    *,
    base_url: str | None,
    ttl_ms: str | None,
    region: str | None,
    vertex_project: str | None,
    models: Mapping[str, str | None],
    config: str | None,
) -> dict[str, Any]:
    """The settings keybroker owns: apiKeyHelper and the env variables of the deployment."""
    spec = DEPLOYMENTS[deployment]
    env: dict[str, str] = {}
    if ttl_ms is not None:
        env[TTL_VAR] = ttl_ms
    if base_url:
        env[spec["base"]] = base_url
    env.update(spec["switches"])
    if region:
        env[spec.get("region", "AWS_REGION")] = region
    if vertex_project:
        env["ANTHROPIC_VERTEX_PROJECT_ID"] = vertex_project
    for option, var in MODEL_OPTIONS.items():
        if models.get(option):
            env[var] = str(models[option])
    return {"apiKeyHelper": helper_command(executable, profile, config), "env": env}


def conflicting_vars(deployment: str) -> list[str]:
    """Variables of the other deployments: left in place they would route requests wrongly."""
    names: list[str] = []
    for other, spec in DEPLOYMENTS.items():
        if other != deployment:
            names.append(spec["base"])
            names.extend(spec["switches"])
    return names


def merge(existing: Mapping[str, Any], fragment: Mapping[str, Any], deployment: str,
          where: Path) -> tuple[dict[str, Any], list[str]]:
    """``existing`` with keybroker's keys set; returns it and the variables removed."""
    from keybroker.errors import ConfigError  # noqa: PLC0415

    merged = copy.deepcopy(dict(existing))
    env = merged.get("env", {})
    if not isinstance(env, dict):
        raise ConfigError(f"{where}: 'env' must be a JSON object; not touching it")
    removed = [name for name in conflicting_vars(deployment) if name in env]
    for name in removed:
        del env[name]
    env.update(fragment["env"])
    merged["apiKeyHelper"] = fragment["apiKeyHelper"]
    merged["env"] = env
    return merged, removed


def backup(path: Path) -> Path:
    """Copy ``path`` to ``path.bak`` (or ``.bak.N``), never overwriting an earlier backup."""
    data = path.read_bytes()
    mode = path.stat().st_mode & 0o777
    for n in range(1000):
        candidate = path.with_name(path.name + (".bak" if n == 0 else f".bak.{n}"))
        try:
            fd = os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
        except FileExistsError:
            continue
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        return candidate
    from keybroker.errors import UsageError  # noqa: PLC0415

    raise UsageError(f"too many backups of {path}; remove old {path.name}.bak.* files")


def write_settings(path: Path, data: Mapping[str, Any], mode: int) -> None:
    """Replace ``path`` atomically (through a symlink to its target, so dotfiles stay linked)."""
    from keybroker.cache.files import atomic_write  # noqa: PLC0415

    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    target.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    atomic_write(target, text.encode("utf-8"))
    os.chmod(target, mode)


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
@click.option("--scope", type=click.Choice(SCOPES), default="user", show_default=True,
              help="user: ~/.claude/settings.json; project: .claude/settings.json; "
                   "local: .claude/settings.local.json.")
@click.option("--deployment", type=click.Choice(tuple(DEPLOYMENTS)), default="anthropic",
              show_default=True, help="Which API the proxy speaks (Claude Code's proxy guide).")
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
@click.option("--project-dir", type=click.Path(file_okay=False),
              help="Project root for --scope project/local (default: the current directory).")
@click.option("--executable", help="Command to put in apiKeyHelper instead of this keybroker "
                                   "(e.g. the helpers/keybroker-helper.sh wrapper).")
@click.option("--print", "print_only", is_flag=True,
              help="Print the settings keybroker would set; write nothing.")
@click.option("--force", is_flag=True,
              help="Replace an apiKeyHelper that keybroker did not write.")
@config_option
@debug_option
@handles_errors
def configure(
    profile: str, scope: str, deployment: str, base_url: str | None, ttl: str | None,
    region: str | None, vertex_project_id: str | None, model: str | None,
    opus_model: str | None, sonnet_model: str | None, haiku_model: str | None,
    project_dir: str | None, executable: str | None, print_only: bool, force: bool,
    config_path: str | None, debug: bool,
) -> None:
    """Point Claude Code's apiKeyHelper at `keybroker get PROFILE` for a deployment."""
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
    exe = executable or keybroker_executable()
    config_abs = str(Path(config_path).absolute()) if config_path else None
    models = {"model": model, "opus_model": opus_model, "sonnet_model": sonnet_model,
              "haiku_model": haiku_model}
    path = settings_path(scope, env, project_dir)
    existing, _ = (None, None) if print_only else read_settings(path)
    ttl_ms = _ttl_ms(ttl)
    current_env = (existing or {}).get("env")
    if ttl_ms is None and not (isinstance(current_env, dict) and current_env.get(TTL_VAR)):
        ttl_ms = "300000"
    fragment = build_fragment(
        profile, deployment, exe, base_url=base_url, ttl_ms=ttl_ms, region=region,
        vertex_project=vertex_project_id, models=models, config=config_abs,
    )
    if deployment == "vertex":
        have = {**(current_env if isinstance(current_env, dict) else {}), **fragment["env"]}
        missing = [v for v in ("ANTHROPIC_VERTEX_PROJECT_ID", "CLOUD_ML_REGION") if v not in have]
        if missing:
            emit(f"keybroker: note: Claude Code on Vertex also needs {' and '.join(missing)} "
                 "(--vertex-project-id, --region)")
    if print_only:
        click.echo(json.dumps(fragment, indent=2))
        return

    settings = existing or {}
    current = settings.get("apiKeyHelper")
    foreign = current and parse_helper(current) is None and current != fragment["apiKeyHelper"]
    if foreign and not force:
        raise UsageError(
            f"{path} already has an apiKeyHelper that keybroker did not write; "
            "not replacing it",
            "rerun with --force to replace it (the old file is kept as a .bak backup)",
        )
    merged, removed = merge(settings, fragment, deployment, path)
    if existing is not None and merged == existing:
        emit(f"keybroker: {path} is already configured for profile '{profile}'")
        return
    saved = None
    if existing is not None:
        saved = backup(Path(os.path.realpath(path)))
        mode = saved.stat().st_mode & 0o777
    else:
        mode = 0o644 if scope == "project" else 0o600
    write_settings(path, merged, mode)
    emit(f"keybroker: wrote apiKeyHelper ({deployment}, profile '{profile}') to {path}"
         + (f"; backup: {saved}" if saved else ""))
    if removed:
        emit(f"keybroker: removed settings of another deployment: {', '.join(removed)}")
    overriding = [v for v in OVERRIDING_VARS if v in merged["env"]]
    if overriding:
        emit(f"keybroker: warning: {path} also sets {', '.join(overriding)} in env, which "
             "Claude Code uses instead of apiKeyHelper; remove it")
