"""Where the vault source's credentials come from: a token, an AppRole's ids, a JWT (a file,
a variable, or GitHub Actions' ID-token service), a Kubernetes service-account token.

Each value read is registered as sensitive; errors name the setting and the variable or
file, never the value.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from keybroker.errors import AccessDenied, Unreachable, UsageError
from keybroker.sources.base import FetchContext
from keybroker.sources.vault.client import STEP_TIMEOUT
from keybroker.sources.vault.spec import Spec


def _from_env(ctx: FetchContext, spec: Spec, setting: str, name: str) -> str:
    value = ctx.env.get(name, "").strip()
    if not value:
        raise UsageError(
            f"{spec.label}: {setting} names ${name}, which is not set or empty",
            _missing_variable_hint(ctx.env, setting, name),
        )
    ctx.sensitive(value)
    return value


def _missing_variable_hint(env: Mapping[str, str], setting: str, name: str) -> str:
    """How to provide ``name``: in a GitLab job a JWT comes from an ``id_tokens:`` block
    (GitLab mints it per job), not from a stored variable; elsewhere, export it."""
    if setting == "jwt_env" and env.get("GITLAB_CI") == "true":
        return (
            f"add to the job in .gitlab-ci.yml:  id_tokens: {{ {name}: {{ aud: "
            "<the audience the Vault role is bound to> } }"
        )
    return f"export {name} (in CI: add it as a masked secret variable)"


def _from_file(ctx: FetchContext, spec: Spec, setting: str, name: str) -> str:
    path = Path(os.path.expanduser(name))
    try:
        value = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise UsageError(f"{spec.label}: {setting} {path} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or type(exc).__name__
        raise UsageError(f"{spec.label}: cannot read {setting} {path} ({reason})") from None
    if not value:
        raise UsageError(f"{spec.label}: {setting} {path} is empty")
    ctx.sensitive(value)
    return value


def _one_of(
    ctx: FetchContext,
    spec: Spec,
    settings: Mapping[str, Any],
    literal: str | None,
    env_key: str,
    file_key: str,
) -> str | None:
    """A credential from the literal setting, its ``*_env`` variable or its ``*_file``."""
    if literal and settings.get(literal):
        value = str(settings[literal]).strip()
        ctx.sensitive(value)
        return value
    if settings.get(env_key):
        return _from_env(ctx, spec, env_key, str(settings[env_key]))
    if settings.get(file_key):
        return _from_file(ctx, spec, file_key, str(settings[file_key]))
    return None


def find_token(spec: Spec, settings: Mapping[str, Any], ctx: FetchContext) -> tuple[str, str]:
    """(token, where it came from) for ``token`` auth; ("", …) means none: Agent/Proxy mode."""
    if settings.get("token_env"):
        name = str(settings["token_env"])
        return _from_env(ctx, spec, "token_env", name), f"${name}"
    for name in ("VAULT_TOKEN", "BAO_TOKEN"):
        value = ctx.env.get(name, "").strip()
        if value:
            ctx.sensitive(value)
            return value, f"${name}"
    home = ctx.env.get("HOME") or os.path.expanduser("~")
    path = Path(home) / ".vault-token"
    try:
        value = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        value = ""
    if value:
        ctx.sensitive(value)
        return value, "~/.vault-token"
    return "", "no token (Vault Agent/Proxy mode)"


def github_id_token(spec: Spec, settings: Mapping[str, Any], ctx: FetchContext) -> str | None:
    """A GitHub Actions OIDC ID token, when the job has ``permissions: id-token: write``."""
    url = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "").strip()
    bearer = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "").strip()
    if not url or not bearer:
        return None
    import requests  # noqa: PLC0415

    ctx.sensitive(bearer)
    params = {}
    if settings.get("jwt_audience"):
        params["audience"] = str(settings["jwt_audience"])
    from keybroker.sources.httpsession import session  # noqa: PLC0415

    try:
        # the bearer goes to GitHub's own origin only; its answer is bounded
        response = session(ctx.timeout, f"{spec.label}: GitHub Actions ID token").get(
            url,
            params=params,
            headers={"Authorization": f"bearer {bearer}", "Accept": "application/json"},
            timeout=ctx.timeout(STEP_TIMEOUT),
        )
    except requests.exceptions.RequestException:
        raise Unreachable(
            f"{spec.label}: could not get the GitHub Actions ID token "
            "(ACTIONS_ID_TOKEN_REQUEST_URL unreachable)",
        ) from None
    if response.status_code in (401, 403):
        raise AccessDenied(
            f"{spec.label}: GitHub Actions refused to issue an ID token "
            f"(HTTP {response.status_code})",
            "give the job 'permissions: id-token: write'",
        )
    try:
        response.raise_for_status()
        value = str(response.json()["value"]).strip()
    except (requests.exceptions.HTTPError, ValueError, KeyError, TypeError):
        raise Unreachable(
            f"{spec.label}: the GitHub Actions ID token request failed "
            f"(HTTP {response.status_code})",
        ) from None
    ctx.sensitive(value)
    return value


def _no_jwt(spec: Spec) -> UsageError:
    return UsageError(
        f"{spec.label}: JWT login needs a token",
        "set jwt_env or jwt_file (GitLab: an id_tokens variable), or run in GitHub "
        "Actions with 'permissions: id-token: write'",
    )


# --- logins and the login-token cache ---
