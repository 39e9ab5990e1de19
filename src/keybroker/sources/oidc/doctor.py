"""``keybroker doctor`` for oidc profiles: issuer, discovery, JWKS, grant, credentials, login.

Each check says what is wrong and what to do; none prints a secret. The JWKS is fetched
and cached next to the discovery document so a person can see that the keys the gateway
will verify against are published.
"""

from __future__ import annotations

import json
from typing import Any

from keybroker import clock
from keybroker.errors import KeybrokerError
from keybroker.model import Request
from keybroker.sources.base import AuxEntry, Check, FetchContext

JWKS_TTL = 3600.0


def checks(request: Request, ctx: FetchContext) -> list[Check]:
    from keybroker.sources.oidc.auth import client_secret, method_for  # noqa: PLC0415
    from keybroker.sources.oidc.grants import (  # noqa: PLC0415
        DEFAULT_GRANT,
        EXCHANGE_GRANT,
        LOGIN_GRANTS,
        login_hint,
        provider,
        refresh_store,
    )
    from keybroker.sources.oidc.http import discover  # noqa: PLC0415

    settings = request.settings
    out: list[Check] = []
    try:
        issuer, http = provider(settings)
        doc = discover(issuer, ctx, http, refresh=True)
    except KeybrokerError as exc:
        return [Check(False, "oidc discovery", exc.message, exc.hint or "")]
    out.append(Check(True, "oidc discovery", f"{issuer} (token endpoint {doc['token_endpoint']})"))
    out.append(jwks_check(doc, issuer, ctx, http))

    grant = settings.get("grant") or DEFAULT_GRANT
    wire = {
        "token_exchange": EXCHANGE_GRANT,
        "device_code": "urn:ietf:params:oauth:grant-type:device_code",
    }.get(grant, grant)
    supported = doc.get("grant_types_supported")
    if isinstance(supported, list) and wire not in supported:
        out.append(
            Check(
                False,
                "oidc grant",
                f"{issuer} does not list {wire}",
                "choose a grant the provider supports",
            )
        )
    else:
        out.append(Check(True, "oidc grant", grant))

    method = method_for(settings)
    if method in ("client_secret_basic", "client_secret_post"):
        try:
            client_secret(settings, ctx, request.where())
            out.append(Check(True, "oidc client secret", f"present ({method})"))
        except KeybrokerError as exc:
            out.append(Check(False, "oidc client secret", exc.message, exc.hint or ""))
    elif method == "private_key_jwt":
        key = settings.get("private_key_file")
        out.append(Check(True, "oidc client auth", f"private_key_jwt ({key})"))

    if grant in LOGIN_GRANTS:
        try:
            stored = refresh_store(request, ctx).load()
        except KeybrokerError as exc:
            out.append(Check(False, "oidc login", exc.message, exc.hint or ""))
        else:
            if stored or (
                settings.get("refresh_token_env")
                and ctx.env.get(str(settings["refresh_token_env"]))
            ):
                out.append(Check(True, "oidc login", "a refresh token is stored"))
            else:
                out.append(Check(False, "oidc login", "not logged in", login_hint(request)))
    return out


def jwks_check(doc: dict[str, Any], issuer: str, ctx: FetchContext, http: Any) -> Check:
    from keybroker.sources.oidc.http import get_json  # noqa: PLC0415

    url = doc.get("jwks_uri")
    if not isinstance(url, str):
        return Check(
            False,
            "oidc jwks",
            f"{issuer} publishes no jwks_uri",
            "gateways cannot verify its tokens without published keys",
        )
    try:
        keys = get_json(url, ctx, http, "oidc: jwks")
    except KeybrokerError as exc:
        return Check(False, "oidc jwks", exc.message, exc.hint or "")
    count = len(keys.get("keys", [])) if isinstance(keys, dict) else 0
    if ctx.aux is not None and count:
        ctx.aux.put(f"jwks:{issuer}", AuxEntry(json.dumps(keys), clock.now() + JWKS_TTL))
    if not count:
        return Check(False, "oidc jwks", f"{url} lists no keys")
    return Check(True, "oidc jwks", f"{count} signing key(s) at {url}")
