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
from typing import Any

from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, Check, FetchContext, Setting
from keybroker.sources.oidc.grants import (
    DEFAULT_GRANT,
    DEFAULT_REDIRECT,
    EXCHANGE_GRANT,
    GRANTS,
    LOGIN_GRANTS,
    normal_scope,
    provider,
    refresh,
    target_params,
    token_request,
)

__all__ = ["DEFAULT_GRANT", "GRANTS", "LOGIN_GRANTS", "SOURCE", "OidcSource"]


class OidcSource(BaseSource):
    name = "oidc"
    default_storage = "disk"
    settings = (
        Setting(
            "issuer",
            required=True,
            help="the provider's issuer URL (before /.well-known/openid-configuration)",
        ),
        Setting("client_id", required=True, help="the OAuth client id"),
        Setting("grant", choices=GRANTS, help=f"how to get tokens (default {DEFAULT_GRANT})"),
        Setting("scope", help="space-separated scopes (e.g. 'openid offline_access api')"),
        Setting("audience", help="audience parameter (Auth0, Okta custom servers, exchange)"),
        Setting("resource", help="RFC 8707 resource indicator (the gateway's URL)"),
        Setting(
            "token",
            choices=("access_token", "id_token"),
            help="which token to print (default access_token)",
        ),
        Setting(
            "client_auth",
            identity=False,
            choices=("client_secret_basic", "client_secret_post", "private_key_jwt", "none"),
            help="client authentication (default: from what is configured)",
        ),
        Setting(
            "client_secret_env",
            identity=False,
            help="environment variable holding the client secret",
        ),
        Setting("client_secret_file", identity=False, help="file holding the client secret"),
        Setting(
            "client_secret_keychain",
            identity=False,
            help="keychain SERVICE[/USERNAME] holding the client secret",
        ),
        Setting(
            "private_key_file",
            identity=False,
            help="PEM key for private_key_jwt client authentication",
        ),
        Setting("private_key_id", identity=False, help="kid of that key, if the provider needs it"),
        Setting(
            "subject_token",
            choices=("github", "gitlab", "env", "file"),
            help="token_exchange: where the CI ID token comes from",
        ),
        Setting(
            "subject_token_env",
            identity=False,
            help="token_exchange: variable with the subject token (GitLab: FOO_ID_TOKEN)",
        ),
        Setting(
            "subject_token_file", identity=False, help="token_exchange: file with the subject token"
        ),
        Setting(
            "subject_audience",
            help="token_exchange: audience of the GitHub ID token (default: the issuer)",
        ),
        Setting(
            "subject_token_type",
            help="token_exchange: jwt (default), id_token, access_token or a URN",
        ),
        Setting("requested_token_type", help="token_exchange: requested_token_type URN"),
        Setting(
            "refresh_token_store",
            identity=False,
            choices=("cache", "keychain"),
            help="where a login's refresh token is kept (default: encrypted cache)",
        ),
        Setting(
            "refresh_token_env",
            identity=False,
            help="grant refresh_token: variable with an initial refresh token",
        ),
        Setting(
            "login",
            identity=False,
            choices=("device", "browser"),
            help="keybroker login's default flow",
        ),
        Setting(
            "redirect_uri",
            identity=False,
            help=f"browser login: loopback redirect (default {DEFAULT_REDIRECT})",
        ),
        Setting("ca_bundle", identity=False, help="CA bundle for a provider with a private CA"),
        Setting(
            "http_timeout",
            kind="duration",
            identity=False,
            help="timeout of each HTTP request (default 10s)",
        ),
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
            from keybroker.sources.oidc.subject import token_type  # noqa: PLC0415 - tiny

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
                inputs += [
                    ("env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
                    ("env", "ACTIONS_ID_TOKEN_REQUEST_URL"),
                ]
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
        from keybroker.sources.oidc.tokens import to_secret  # noqa: PLC0415

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
        from keybroker.sources.oidc.subject import subject_token, token_type  # noqa: PLC0415

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
        from keybroker.sources.oidc.doctor import checks  # noqa: PLC0415

        return checks(request, ctx)


SOURCE = OidcSource()
