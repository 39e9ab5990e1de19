"""OIDC grants: the provider, token requests and their errors, stored logins and refresh.

Shared by the source (:mod:`keybroker.sources.oidc`), the interactive flows (:mod:`.flows`) and
``doctor`` (:mod:`.doctor`); cheap to import (HTTP, client authentication and token handling
load inside the functions), so the source module can import it at the top without a cycle."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keybroker.model import Request
from keybroker.sources.base import FetchContext

if TYPE_CHECKING:
    from keybroker.sources.oidc.http import Http, TokenError

GRANTS = (
    "client_credentials",
    "refresh_token",
    "token_exchange",
    "device_code",
    "authorization_code",
)
#: Grants whose tokens come from a person's login, refreshed silently by helpers.
LOGIN_GRANTS = ("refresh_token", "device_code", "authorization_code")
DEFAULT_GRANT = "client_credentials"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
DEFAULT_REDIRECT = "http://127.0.0.1:0/callback"


def normal_scope(scope: Any) -> str:
    """Scopes as one space-separated string, whitespace normalised (order kept)."""
    return " ".join(str(scope or "").split())


def target_params(settings: Mapping[str, Any]) -> dict[str, str]:
    """scope, audience and resource, when set."""
    data: dict[str, str] = {}
    scope = normal_scope(settings.get("scope"))
    if scope:
        data["scope"] = scope
    for key in ("audience", "resource"):
        if settings.get(key):
            data[key] = str(settings[key])
    return data


def provider(settings: Mapping[str, Any]) -> tuple[str, Http]:
    """The checked issuer and how to reach it."""
    from keybroker.sources.oidc.http import DEFAULT_STEP_TIMEOUT, Http, check_issuer  # noqa: PLC0415

    issuer = check_issuer(str(settings["issuer"]))
    timeout = settings.get("http_timeout")
    http = Http(
        ca_bundle=str(settings["ca_bundle"]) if settings.get("ca_bundle") else None,
        step_timeout=float(timeout) if timeout else DEFAULT_STEP_TIMEOUT,
    )
    return issuer, http


def token_request(
    request: Request,
    ctx: FetchContext,
    data: Mapping[str, str],
    on_invalid_grant: Any = None,
    raw_errors: bool = False,
) -> dict[str, Any]:
    """POST ``data`` plus client authentication to the token endpoint; errors mapped.

    ``on_invalid_grant`` turns an ``invalid_grant`` into the caller's own error (a refresh
    token that no longer works means "log in again", not "access denied"); ``raw_errors``
    leaves every refusal as a TokenError (the device flow polls through several).
    """
    from keybroker.sources.oidc.auth import client_auth  # noqa: PLC0415
    from keybroker.sources.oidc.http import (  # noqa: PLC0415
        TokenError,
        discover,
        endpoint,
        post_form,
    )
    from keybroker.sources.oidc.tokens import register_tokens  # noqa: PLC0415

    settings = request.settings
    where = request.where()
    issuer, http = provider(settings)
    doc = discover(issuer, ctx, http)
    url = endpoint(doc, "token_endpoint", issuer, "the token endpoint")
    auth = client_auth(settings, url, ctx, where)
    try:
        body = post_form(
            url, {**data, **auth.data}, ctx, http, f"{where}: token request", auth.headers
        )
    except TokenError as exc:
        if raw_errors:
            raise
        if exc.error == "invalid_grant" and on_invalid_grant is not None:
            raise on_invalid_grant(exc) from None
        raise map_token_error(exc, request, data.get("grant_type", "")) from None
    register_tokens(body, ctx)
    return body


def map_token_error(exc: TokenError, request: Request, grant_type: str) -> Exception:
    """RFC 6749 5.2 error codes → exit codes, with what to check."""
    from keybroker.errors import AccessDenied, UsageError  # noqa: PLC0415
    from keybroker.sources.oidc.auth import as_denied, denied_hint  # noqa: PLC0415

    where = request.where()
    detail = f" ({exc.description})" if exc.description else ""
    settings = request.settings
    if exc.error in ("invalid_client", "unauthorized_client"):
        return as_denied(exc.error, exc.description, where, denied_hint(settings))
    if exc.error == "invalid_grant":
        if grant_type == EXCHANGE_GRANT:
            return AccessDenied(
                f"{where}: the provider rejected the subject token: invalid_grant{detail}",
                "check the provider's trust policy for this CI job (issuer, audience, subject) "
                "and subject_audience",
            )
        return AccessDenied(
            f"{where}: the provider refused the grant: invalid_grant{detail}",
            "check the client's grants and credentials at the provider",
        )
    if exc.error in ("invalid_scope", "invalid_target"):
        return AccessDenied(
            f"{where}: the provider refused the request: {exc.error}{detail}",
            "check scope, audience and resource against what the client may request",
        )
    if exc.error == "unsupported_grant_type":
        return UsageError(
            f"{where}: the provider does not support this grant for the client{detail}",
            "check the grant setting and the client's allowed grant types",
        )
    if exc.error == "invalid_request":
        return UsageError(
            f"{where}: the provider says the request is invalid{detail}",
            "check the profile's oidc settings",
        )
    return AccessDenied(f"{where}: the provider refused the request: {exc.error}{detail}")


def login_hint(request: Request) -> str:
    return f"run: keybroker login {request.profile or 'PROFILE'}"


def refresh_store(request: Request, ctx: FetchContext) -> Any:
    """The stored login of this profile (issuer + client + scope)."""
    from keybroker.sources.oidc.tokens import RefreshStore, login_key  # noqa: PLC0415

    settings = request.settings
    issuer = str(settings["issuer"]).rstrip("/")
    key = login_key(issuer, str(settings["client_id"]), normal_scope(settings.get("scope")))
    kind = str(settings.get("refresh_token_store") or "cache")
    return RefreshStore(kind, key, ctx, request.where())


def refresh(request: Request, ctx: FetchContext) -> dict[str, Any]:
    """Use the stored refresh token; store the rotated one before the access token is used.

    Runs under the login's lock, so concurrent helpers never present the same rotated token
    twice (providers treat that as token theft and revoke the whole login). A refused
    refresh token is deleted and the caller is told to log in again (exit 8).
    """
    from keybroker.errors import LoginRequired  # noqa: PLC0415

    settings = request.settings
    where = request.where()
    store = refresh_store(request, ctx)
    with store.locked():
        token = store.load()
        seeded = False
        if token is None and settings.get("refresh_token_env"):
            token = ctx.env.get(str(settings["refresh_token_env"])) or None
            ctx.sensitive(token)
            seeded = token is not None
        if token is None:
            issuer = str(settings["issuer"]).rstrip("/")
            raise LoginRequired(
                f"{where}: not logged in to {issuer} (client {settings['client_id']})",
                login_hint(request),
            )

        def relogin(exc: TokenError) -> LoginRequired:
            store.delete()
            detail = f": {exc.description}" if exc.description else ""
            what = (
                "the refresh token in " + str(settings["refresh_token_env"])
                if seeded
                else ("the stored login")
            )
            return LoginRequired(
                f"{where}: the provider no longer accepts {what} (invalid_grant{detail}); "
                "it expired, was revoked, or a rotated refresh token was reused",
                login_hint(request),
            )

        data = {"grant_type": "refresh_token", "refresh_token": token}
        if settings.get("resource"):
            data["resource"] = str(settings["resource"])
        body = token_request(request, ctx, data, on_invalid_grant=relogin)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and (rotated != token or seeded):
            store.save(rotated, body.get("refresh_expires_in"))
    return body
