"""The settings of each deployment in Claude Code's LLM-gateway guide, and switching between them.

keybroker owns the variables below: when ``configure`` switches a settings file from one
deployment to another it removes every variable of the others (base URLs, switches, regions,
the Vertex project), so nothing routes requests the old way.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from keybroker.errors import ConfigError

TTL_VAR = "CLAUDE_CODE_API_KEY_HELPER_TTL_MS"
DEFAULT_TTL_MS = "300000"


@dataclass(frozen=True)
class Deployment:
    base: str
    switches: Mapping[str, str] = field(default_factory=dict)
    region: str | None = None
    extra: tuple[str, ...] = ()

    def owned(self) -> tuple[str, ...]:
        """Every variable this deployment's settings may contain."""
        return (self.base, *self.switches, *((self.region,) if self.region else ()), *self.extra)


DEPLOYMENTS: dict[str, Deployment] = {
    "anthropic": Deployment("ANTHROPIC_BASE_URL"),
    "bedrock": Deployment(
        "ANTHROPIC_BEDROCK_BASE_URL",
        {"CLAUDE_CODE_USE_BEDROCK": "1", "CLAUDE_CODE_SKIP_BEDROCK_AUTH": "1"},
        "AWS_REGION",
    ),
    "vertex": Deployment(
        "ANTHROPIC_VERTEX_BASE_URL",
        {"CLAUDE_CODE_USE_VERTEX": "1", "CLAUDE_CODE_SKIP_VERTEX_AUTH": "1"},
        "CLOUD_ML_REGION",
        ("ANTHROPIC_VERTEX_PROJECT_ID",),
    ),
}

MODEL_VARS = {
    "model": "ANTHROPIC_MODEL",
    "opus_model": "ANTHROPIC_DEFAULT_OPUS_MODEL",
    "sonnet_model": "ANTHROPIC_DEFAULT_SONNET_MODEL",
    "haiku_model": "ANTHROPIC_DEFAULT_HAIKU_MODEL",
}
#: Variables that make Claude Code send another credential than the helper's.
OVERRIDING_VARS = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "CLAUDE_CODE_OAUTH_TOKEN",
    "CLAUDE_CODE_API_KEY_FILE_DESCRIPTOR",
)
#: proxyAuthHelper: "Shell command that outputs a Proxy-Authorization header value" (early
#: access in 2.1.197 and 2.1.332; used only with CLAUDE_CODE_ENABLE_PROXY_AUTH_HELPER set).
PROXY_HELPER = "proxyAuthHelper"
PROXY_SWITCH = "CLAUDE_CODE_ENABLE_PROXY_AUTH_HELPER"
INFERENCE_HELPER = "inferenceCredentialHelper"
INFERENCE_ARGS = "inferenceCredentialHelperArgs"


def deployment_env(
    deployment: str,
    *,
    base_url: str | None,
    ttl_ms: str | None,
    region: str | None,
    vertex_project: str | None,
    models: Mapping[str, str | None],
) -> dict[str, str]:
    """The ``env`` entries keybroker sets for ``deployment``."""
    spec = DEPLOYMENTS[deployment]
    env: dict[str, str] = {}
    if ttl_ms is not None:
        env[TTL_VAR] = ttl_ms
    if base_url:
        env[spec.base] = base_url
    env.update(spec.switches)
    if region:
        env[spec.region or "AWS_REGION"] = region
    if vertex_project:
        env["ANTHROPIC_VERTEX_PROJECT_ID"] = vertex_project
    for option, var in MODEL_VARS.items():
        if models.get(option):
            env[var] = str(models[option])
    return env


def stale_vars(deployment: str, env: Mapping[str, Any]) -> list[str]:
    """Variables of the other deployments present in ``env`` (to remove when switching).

    A region or project variable counts only when its deployment's base URL or switch is
    there too: an ``AWS_REGION`` set for other reasons is not keybroker's to remove.
    """
    mine = set(DEPLOYMENTS[deployment].owned())
    names: list[str] = []
    for other, spec in DEPLOYMENTS.items():
        if other == deployment or not ({spec.base, *spec.switches} & set(env)):
            continue
        names.extend(n for n in spec.owned() if n in env and n not in mine and n not in names)
    return names


def merge(
    existing: Mapping[str, Any], fragment: Mapping[str, Any], deployment: str, where: Path
) -> tuple[dict[str, Any], list[str]]:
    """``existing`` with keybroker's keys set; returns it and the variables removed."""
    merged = copy.deepcopy(dict(existing))
    env = merged.get("env", {})
    if not isinstance(env, dict):
        raise ConfigError(f"{where}: 'env' must be a JSON object; not touching it")
    removed = stale_vars(deployment, env)
    for name in removed:
        del env[name]
    env.update(fragment.get("env", {}))
    for key, value in fragment.items():
        if key != "env":
            merged[key] = value
    merged["env"] = env
    return merged, removed
