"""Subject tokens for RFC 8693 token exchange: the CI job's own OIDC identity.

- ``github``: GitHub Actions mints an ID token on request (``permissions: id-token: write``
  gives the job ``ACTIONS_ID_TOKEN_REQUEST_URL`` and ``ACTIONS_ID_TOKEN_REQUEST_TOKEN``); the
  audience is chosen by the caller.
- ``gitlab``: GitLab CI puts ID tokens declared under ``id_tokens:`` in variables; by
  convention named ``*_ID_TOKEN``. ``subject_token_env`` picks one; without it, the only such
  variable is used.
- ``env`` / ``file``: any other platform (a Kubernetes projected service-account token, a
  token another step wrote).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

from keybroker.errors import LoginRequired, SecretNotFound, UsageError
from keybroker.sources.base import FetchContext
from keybroker.sources.oidc.auth import read_file, registered
from keybroker.sources.oidc.http import Http, get_json

TOKEN_TYPES = {
    "jwt": "urn:ietf:params:oauth:token-type:jwt",
    "id_token": "urn:ietf:params:oauth:token-type:id_token",
    "access_token": "urn:ietf:params:oauth:token-type:access_token",
}
DEFAULT_TYPE = TOKEN_TYPES["jwt"]


def token_type(value: Any) -> str:
    """A short name (jwt, id_token, access_token) or a full URN."""
    if not value:
        return DEFAULT_TYPE
    return TOKEN_TYPES.get(str(value), str(value))


def subject_token(
    settings: Mapping[str, Any], issuer: str, ctx: FetchContext, http: Http, where: str
) -> str:
    kind = str(settings.get("subject_token") or "")
    if kind == "github":
        value = _github(settings, issuer, ctx, http, where)
    elif kind == "gitlab":
        value = _gitlab(settings, ctx, where)
    elif kind == "env":
        var = settings.get("subject_token_env")
        if not var:
            raise UsageError(f'{where}: subject_token = "env" needs subject_token_env')
        value = _from_env(str(var), ctx, where)
    elif kind == "file":
        value = _from_file(settings, where)
    else:
        raise UsageError(
            f"{where}: grant token_exchange needs subject_token",
            'set subject_token = "github", "gitlab", "env" or "file"',
        )
    return registered(value, ctx, SecretNotFound(f"{where}: the subject token ({kind}) is empty"))


def _github(
    settings: Mapping[str, Any], issuer: str, ctx: FetchContext, http: Http, where: str
) -> str:
    url = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_URL")
    bearer = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
    if not url or not bearer:
        raise LoginRequired(
            f"{where}: no GitHub Actions ID token available "
            "(ACTIONS_ID_TOKEN_REQUEST_URL/_TOKEN are not set)",
            "give the job 'permissions: id-token: write', or use another subject_token",
        )
    ctx.sensitive(bearer)
    audience = str(settings.get("subject_audience") or issuer)
    sep = "&" if "?" in url else "?"
    body = get_json(
        f"{url}{sep}audience={quote(audience, safe='')}",
        ctx,
        http,
        f"{where}: GitHub Actions ID token request",
        headers={"Authorization": f"Bearer {bearer}"},
    )
    value = body.get("value") if isinstance(body, dict) else None
    if not isinstance(value, str):
        raise SecretNotFound(f"{where}: the GitHub Actions ID token response has no value")
    ctx.sensitive(value)
    return value


def _gitlab(settings: Mapping[str, Any], ctx: FetchContext, where: str) -> str:
    var = settings.get("subject_token_env")
    if var:
        return _from_env(str(var), ctx, where)
    names = sorted(k for k in ctx.env if k.endswith("_ID_TOKEN") and ctx.env[k])
    if len(names) == 1:
        return _from_env(names[0], ctx, where)
    if not names:
        raise SecretNotFound(
            f"{where}: no GitLab ID token variable (*_ID_TOKEN) is set",
            "declare one under id_tokens: in .gitlab-ci.yml (aud: the issuer), "
            "or set subject_token_env",
        )
    raise UsageError(
        f"{where}: several *_ID_TOKEN variables are set ({', '.join(names)})",
        "set subject_token_env to the one to exchange",
    )


def _from_env(var: str, ctx: FetchContext, where: str) -> str:
    value = ctx.env.get(var)
    if not value:
        raise SecretNotFound(f"{where}: the subject token variable {var} is not set")
    return value


def _from_file(settings: Mapping[str, Any], where: str) -> str:
    path_setting = settings.get("subject_token_file")
    if not path_setting:
        raise UsageError(f'{where}: subject_token = "file" needs subject_token_file')
    return read_file(Path(os.path.expanduser(str(path_setting))), where, "subject token file")
