"""``oidc``: access tokens (or ID tokens) from an OpenID Connect provider, as the proxy key.

Gateways such as LiteLLM, Kong or a company proxy validate these JWTs. Grants:

- ``client_credentials``: a service's own identity (client secret from env/file/keychain, or
  ``private_key_jwt`` with a key file);
- ``token_exchange`` (RFC 8693): a CI job's ID token (GitHub Actions, GitLab, a file)
  exchanged for an access token;
- ``device_code`` / ``authorization_code``: people. They sign in once with
  ``keybroker login PROFILE``; helpers then refresh silently with the stored refresh token
  and never prompt: without a usable login they exit 8 with ``run: keybroker login PROFILE``;
- ``refresh_token``: refresh a login obtained elsewhere (seeded from ``refresh_token_env``)
  or by ``keybroker login``.

This module imports nothing heavy: the cache-hit path imports it to compute the entry hash.
HTTP, client authentication, token handling and the interactive flows live in ``oidc_*``
modules loaded only when a fetch happens.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, Check, FetchContext, Setting

if TYPE_CHECKING:
    from keybroker.sources.oidc_http import Http, TokenError

GRANTS = ("client_credentials", "refresh_token", "token_exchange", "device_code",
          "authorization_code")
#: Grants whose tokens come from a person's login, refreshed silently by helpers.
LOGIN_GRANTS = ("refresh_token", "device_code", "authorization_code")
DEFAULT_GRANT = "client_credentials"
EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
DEFAULT_REDIRECT = "http://127.0.0.1:0/callback"


class OidcSource(BaseSource):
    name = "oidc"
    default_storage = "disk"
    settings = (
        Setting("issuer", required=True,
                help="the provider's issuer URL (before /.well-known/openid-configuration)"),
        Setting("client_id", required=True, help="the OAuth client id"),
        Setting("grant", choices=GRANTS, help=f"how to get tokens (default {DEFAULT_GRANT})"),
        Setting("scope", help="space-separated scopes (e.g. 'openid offline_access api')"),
        Setting("audience", help="audience parameter (Auth0, Okta custom servers, exchange)"),
        Setting("resource", help="RFC 8707 resource indicator (the gateway's URL)"),
        Setting("token", choices=("access_token", "id_token"),
                help="which token to print (default access_token)"),
        Setting("client_auth", identity=False,
                choices=("client_secret_basic", "client_secret_post", "private_key_jwt", "none"),
                help="client authentication (default: from what is configured)"),
        Setting("client_secret_env", identity=False,
                help="environment variable holding the client secret"),
        Setting("client_secret_file", identity=False, help="file holding the client secret"),
        Setting("client_secret_keychain", identity=False,
                help="keychain SERVICE[/USERNAME] holding the client secret"),
        Setting("private_key_file", identity=False,
                help="PEM key for private_key_jwt client authentication"),
        Setting("private_key_id", identity=False, help="kid of that key, if the provider needs it"),
        Setting("subject_token", choices=("github", "gitlab", "env", "file"),
                help="token_exchange: where the CI ID token comes from"),
        Setting("subject_token_env", identity=False,
                help="token_exchange: variable with the subject token (GitLab: FOO_ID_TOKEN)"),
        Setting("subject_token_file", identity=False,
                help="token_exchange: file with the subject token"),
        Setting("subject_audience",
                help="token_exchange: audience of the GitHub ID token (default: the issuer)"),
        Setting("subject_token_type",
                help="token_exchange: jwt (default), id_token, access_token or a URN"),
        Setting("requested_token_type", help="token_exchange: requested_token_type URN"),
        Setting("refresh_token_store", identity=False, choices=("cache", "keychain"),
                help="where a login's refresh token is kept (default: encrypted cache)"),
        Setting("refresh_token_env", identity=False,
                help="grant refresh_token: variable with an initial refresh token"),
        Setting("login", identity=False, choices=("device", "browser"),
                help="keybroker login's default flow"),
        Setting("redirect_uri", identity=False,
                help=f"browser login: loopback redirect (default {DEFAULT_REDIRECT})"),
        Setting("ca_bundle", identity=False, help="CA bundle for a provider with a private CA"),
        Setting("http_timeout", kind="duration", identity=False,
                help="timeout of each HTTP request (default 10s)"),
    )

    # --- identity ---

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        issuer = str(settings.get("issuer") or "").rstrip("/")
        grant = settings.get("grant") or DEFAULT_GRANT
        out: dict[str, Any] = {
            "issuer": issuer,
            "client_id": settings.get("client_id"),
            "grant": grant,
            "scope": normal_scope(settings.get("scope")),
            "audience": settings.get("audience") or None,
            "resource": settings.get("resource") or None,
            "token": settings.get("token") or "access_token",
        }
        if grant == "token_exchange":
            from keybroker.sources.oidc_subject import token_type  # noqa: PLC0415 - tiny

            out["subject_token"] = settings.get("subject_token")
            out["subject_audience"] = settings.get("subject_audience") or issuer
            out["subject_token_type"] = token_type(settings.get("subject_token_type"))
            out["requested_token_type"] = settings.get("requested_token_type") or None
        return out

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """The client's credentials and, for token exchange, the CI job's own identity."""
        inputs: list[tuple[str, str]] = []
        if settings.get("client_secret_env"):
            inputs.append(("env", str(settings["client_secret_env"])))
        if settings.get("client_secret_file"):
            inputs.append(("file", str(settings["client_secret_file"])))
        if settings.get("client_secret_keychain"):
            # the user's own keychain: whoever can read it can present the secret
            inputs.append(("literal", "keychain:" + str(settings["client_secret_keychain"])))
        if settings.get("private_key_file"):
            inputs.append(("file", str(settings["private_key_file"])))
        grant = settings.get("grant") or DEFAULT_GRANT
        if grant == "token_exchange":
            kind = settings.get("subject_token")
            if kind == "github":
                inputs += [("env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
                           ("env", "ACTIONS_ID_TOKEN_REQUEST_URL")]
            elif settings.get("subject_token_env"):
                inputs.append(("env", str(settings["subject_token_env"])))
            elif kind == "gitlab":
                inputs.append(("env-suffix", "_ID_TOKEN"))
            if kind == "file" and settings.get("subject_token_file"):
                inputs.append(("file", str(settings["subject_token_file"])))
        if grant in LOGIN_GRANTS and settings.get("refresh_token_env"):
            inputs.append(("env", str(settings["refresh_token_env"])))
        return inputs

    def describe(self, settings: Mapping[str, Any]) -> str:
        grant = settings.get("grant") or DEFAULT_GRANT
        issuer = str(settings.get("issuer") or "").rstrip("/")
        return f"{issuer} {settings.get('client_id')} ({grant})"

    # --- fetching ---

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        from keybroker import clock  # noqa: PLC0415
        from keybroker.sources.oidc_tokens import to_secret  # noqa: PLC0415

        settings = request.settings
        grant = settings.get("grant") or DEFAULT_GRANT
        received_at = clock.now()
        if grant == "client_credentials":
            body = self._client_credentials(request, ctx)
        elif grant == "token_exchange":
            body = self._token_exchange(request, ctx)
        else:
            body = refresh(request, ctx)
        which = str(settings.get("token") or "access_token")
        return to_secret(body, which, grant, request.where(), received_at)

    def _client_credentials(self, request: Request, ctx: FetchContext) -> dict[str, Any]:
        data = {"grant_type": "client_credentials", **target_params(request.settings)}
        return token_request(request, ctx, data)

    def _token_exchange(self, request: Request, ctx: FetchContext) -> dict[str, Any]:
        from keybroker.sources.oidc_subject import subject_token, token_type  # noqa: PLC0415

        settings = request.settings
        issuer, http = provider(settings)
        subject = subject_token(settings, issuer, ctx, http, request.where())
        data = {
            "grant_type": EXCHANGE_GRANT,
            "subject_token": subject,
            "subject_token_type": token_type(settings.get("subject_token_type")),
            **target_params(settings),
        }
        if settings.get("requested_token_type"):
            data["requested_token_type"] = str(settings["requested_token_type"])
        return token_request(request, ctx, data)

    # --- diagnosis ---

    def doctor(self, request: Request, ctx: FetchContext) -> list[Check]:
        from keybroker.sources.oidc_doctor import checks  # noqa: PLC0415

        return checks(request, ctx)


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
    from keybroker.sources.oidc_http import DEFAULT_STEP_TIMEOUT, Http, check_issuer  # noqa: PLC0415

    issuer = check_issuer(str(settings["issuer"]))
    timeout = settings.get("http_timeout")
    http = Http(
        ca_bundle=str(settings["ca_bundle"]) if settings.get("ca_bundle") else None,
        step_timeout=float(timeout) if timeout else DEFAULT_STEP_TIMEOUT,
    )
    return issuer, http


def token_request(
    request: Request, ctx: FetchContext, data: Mapping[str, str],
    on_invalid_grant: Any = None,
    raw_errors: bool = False,
) -> dict[str, Any]:
    """POST ``data`` plus client authentication to the token endpoint; errors mapped.

    ``on_invalid_grant`` turns an ``invalid_grant`` into the caller's own error (a refresh
    token that no longer works means "log in again", not "access denied"); ``raw_errors``
    leaves every refusal as a TokenError (the device flow polls through several).
    """
    from keybroker.sources.oidc_auth import client_auth  # noqa: PLC0415
    from keybroker.sources.oidc_http import (  # noqa: PLC0415
        TokenError,
        discover,
        endpoint,
        post_form,
    )
    from keybroker.sources.oidc_tokens import register_tokens  # noqa: PLC0415

    settings = request.settings
    where = request.where()
    issuer, http = provider(settings)
    doc = discover(issuer, ctx, http)
    url = endpoint(doc, "token_endpoint", issuer, "the token endpoint")
    auth = client_auth(settings, url, ctx, where)
    try:
        body = post_form(url, {**data, **auth.data}, ctx, http, f"{where}: token request",
                         auth.headers)
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
    from keybroker.sources.oidc_auth import as_denied, denied_hint  # noqa: PLC0415

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
        return AccessDenied(f"{where}: the provider refused the grant: invalid_grant{detail}",
                            "check the client's grants and credentials at the provider")
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
        return UsageError(f"{where}: the provider says the request is invalid{detail}",
                          "check the profile's oidc settings")
    return AccessDenied(f"{where}: the provider refused the request: {exc.error}{detail}")


def login_hint(request: Request) -> str:
    return f"run: keybroker login {request.profile or 'PROFILE'}"


def refresh_store(request: Request, ctx: FetchContext) -> Any:
    """The stored login of this profile (issuer + client + scope)."""
    from keybroker.sources.oidc_tokens import RefreshStore, login_key  # noqa: PLC0415

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
            what = "the refresh token in " + str(settings["refresh_token_env"]) if seeded else (
                "the stored login"
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


SOURCE = OidcSource()
