"""``vault``: a key from HashiCorp Vault or OpenBao (KV v1/v2, or any read path) via hvac.

This module is imported on the cache-hit path (to compute the entry's hash with
:meth:`VaultSource.canonical`), so it uses only the standard library; hvac, requests and the
login logic (:mod:`keybroker.sources.vault.auth`, :mod:`keybroker.sources.vault.client`) load
inside ``fetch`` and ``doctor``.

What it reads:
- ``engine = "kv"`` (default): KV v2 (``mount``/data/``path``, optionally a pinned
  ``secret_version``; the KV version number becomes the entry's version) or KV v1.
- ``engine = "read"``: any other read path (a dynamic engine such as ``aws/creds/ROLE``); the
  lease duration gives the expiry.
With ``field`` the value is that field; without it, the secret's only field (a secret with
several fields is refused with their names, exit 6); ``field = "*"`` gives the whole data object
as compact JSON (what ``keybroker aws-credentials`` reads). An ``expires_at`` field in the
secret (epoch seconds or RFC 3339) also gives an expiry; otherwise the cache reuses the key for
the helper TTL or the profile's ``max_age``.

Messages are built from names (address, path, field names), plus the server's own error text
when it explains the failure (printable, short, scrubbed); every token and value obtained is
registered for scrubbing.

People log in with ``keybroker login PROFILE`` (``auth_method`` oidc, userpass or ldap); the
helpers only use that cached login and exit 8 without one.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from keybroker.errors import KeybrokerError
from keybroker.model import Request, Secret
from keybroker.sources.base import BaseSource, Check, FetchContext, Setting
from keybroker.sources.values import field_names, register_leaves
from keybroker.sources.vault.spec import (
    AUTH_METHODS,
    DEFAULT_EXPIRES_FIELD,
    DEFAULT_MOUNT,
    DEFAULT_OIDC_REDIRECT,
    ENGINES,
    HUMAN_METHODS,
    K8S_SA_JWT_PATH,
    WHOLE_DOCUMENT,
    Read,
    Spec,
    _clean,
    _expand,
    _home_path,
    _key_fields,
    _sources,
    build_spec,
    env_first,
    expiry,
    select_value,
)

__all__ = ["HUMAN_METHODS", "SOURCE", "Read", "Spec", "VaultSource", "build_spec", "env_first"]


class VaultSource(BaseSource):
    name = "vault"
    default_storage = "disk"
    settings = (
        Setting("addr", help="server URL (default: VAULT_ADDR)"),
        Setting(
            "namespace", help="Vault Enterprise / OpenBao namespace (default: VAULT_NAMESPACE)"
        ),
        Setting(
            "engine",
            help="kv (default) or read: any other read path (dynamic engines)",
            choices=ENGINES,
        ),
        Setting("mount", help=f"KV mount (default '{DEFAULT_MOUNT}'); with engine read, a prefix"),
        Setting(
            "path",
            help="secret path inside the mount (engine read: the whole API path)",
            required=True,
        ),
        Setting(
            "field",
            help="field to print (default: the secret's only field; "
            f"'{WHOLE_DOCUMENT}': the whole data object as JSON)",
        ),
        Setting("kv_version", kind="int", help="KV engine version: 1 or 2 (default 2)"),
        Setting("secret_version", kind="int", help="pin a KV v2 version number"),
        Setting(
            "auth_method",
            help="token (default), approle, jwt, kubernetes; for people "
            "(keybroker login): oidc, userpass, ldap",
            choices=AUTH_METHODS,
        ),
        Setting("auth_mount", help="where the auth method is mounted (default: its name)"),
        Setting("role", help="role for jwt/kubernetes/oidc login (a label for approle)"),
        Setting("username", help="userpass/ldap user (the password is asked by keybroker login)"),
        Setting(
            "redirect_uri",
            help="oidc: loopback URL the browser returns to (default "
            f"{DEFAULT_OIDC_REDIRECT}); must be in the role's allowed_redirect_uris",
            identity=False,
        ),
        Setting("role_id", help="AppRole role_id"),
        Setting(
            "token_env",
            help="variable holding the token (default VAULT_TOKEN, then ~/.vault-token)",
            identity=False,
        ),
        Setting("role_id_env", help="variable holding the AppRole role_id", identity=False),
        Setting("role_id_file", help="file holding the AppRole role_id", identity=False),
        Setting("secret_id_env", help="variable holding the AppRole secret_id", identity=False),
        Setting("secret_id_file", help="file holding the AppRole secret_id", identity=False),
        Setting("jwt_env", help="variable holding the JWT / CI ID token", identity=False),
        Setting("jwt_file", help="file holding the JWT / CI ID token", identity=False),
        Setting(
            "jwt_audience", help="audience to ask GitHub Actions for its ID token", identity=False
        ),
        Setting(
            "kubernetes_token_file",
            help="service-account token (default: the in-pod path)",
            identity=False,
        ),
        Setting("ca_cert", help="CA bundle for TLS (default: VAULT_CACERT)", identity=False),
        Setting("tls_verify", kind="bool", help="verify TLS (default true)", identity=False),
        Setting(
            "expires_field",
            help=f"field holding the key's expiry (default '{DEFAULT_EXPIRES_FIELD}')",
            identity=False,
        ),
    )

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        ident = build_spec(settings, env, None, tls=False).identity()
        if settings.get("role_id"):
            # The role_id is an identity but must not sit in clear anywhere: only its hash.
            import hashlib  # noqa: PLC0415

            ident["role_id_sha256"] = hashlib.sha256(str(settings["role_id"]).encode()).hexdigest()
        return ident

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """What this read's credentials are made of: ("env", VAR), ("file", PATH), ("literal", …).

        Pure (no network, no hvac, no file read): the cache keys an entry by a fingerprint of
        these, so a caller whose credentials differ never gets another caller's key. A person's
        login (oidc/userpass/ldap) is identified by method, mount and user or role.
        """
        method = settings.get("auth_method") or "token"
        mount = _clean(settings.get("auth_mount")) or str(method)
        if method == "token":
            if settings.get("token_env"):
                return [("env", str(settings["token_env"]))]
            used = next((n for n in ("VAULT_TOKEN", "BAO_TOKEN") if env.get(n, "").strip()), None)
            if used:
                return [("env", used)]
            return [("file", _home_path(env, ".vault-token"))]
        if method == "approle":
            items: list[tuple[str, str]] = []
            if settings.get("role_id"):
                items.append(("literal", f"role_id:{settings['role_id']}"))
            items += _sources(settings, env, "role_id_env", "role_id_file")
            return items + _sources(settings, env, "secret_id_env", "secret_id_file")
        if method == "jwt":
            return _sources(settings, env, "jwt_env", "jwt_file") or [
                ("env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
                ("env", "ACTIONS_ID_TOKEN_REQUEST_URL"),
            ]
        if method == "kubernetes":
            token_file = str(settings.get("kubernetes_token_file") or K8S_SA_JWT_PATH)
            return [("file", _expand(env, token_file))]
        who = str(settings.get("username") or settings.get("role") or "")
        return [("literal", f"{method}:{mount}:{who}")]

    def describe(self, settings: Mapping[str, Any]) -> str:
        mount = _clean(settings.get("mount"))
        path = _clean(settings.get("path")) or "?"
        if settings.get("engine") == "read":
            base = f"{mount}/{path}" if mount else path
        else:
            base = f"{mount or DEFAULT_MOUNT}/{path}"
            if settings.get("secret_version") is not None:
                base += f"@{settings['secret_version']}"
        field = settings.get("field")
        return base + (f"#{field}" if field else "")

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        from keybroker.sources.vault.auth import Session  # noqa: PLC0415 - loads hvac

        spec = build_spec(request.settings, ctx.env, request.profile)
        session = Session(spec, request.settings, ctx)
        read = session.read()
        register_leaves(read.data)
        value = select_value(spec, read)
        ctx.sensitive(value)
        metadata: dict[str, Any] = {"path": spec.api_path, "auth": spec.auth_method}
        if spec.engine == "read":
            metadata["lease_duration"] = read.lease_duration
        return Secret(
            value,
            expires_at=expiry(spec, read),
            version=read.version,
            source=self.name,
            metadata=metadata,
        )

    def doctor(self, request: Request, ctx: FetchContext) -> list[Check]:
        try:
            spec = build_spec(request.settings, ctx.env, request.profile)
            from keybroker.sources.vault.auth import Session  # noqa: PLC0415 - loads hvac
            from keybroker.sources.vault.doctor import checks  # noqa: PLC0415
        except KeybrokerError as exc:
            return [Check(False, "vault settings", exc.message, exc.hint or "")]
        return checks(Session(spec, request.settings, ctx), self._read_check)

    @staticmethod
    def _read_check(spec: Spec, read: Read) -> Check:
        """The doctor's last line: the read worked; the field is there (names only)."""
        what = [f"version {read.version}"] if read.version else []
        if spec.engine == "read" and read.lease_duration:
            what.append(f"lease {read.lease_duration}s")
        if spec.field == WHOLE_DOCUMENT:
            what.append(f"whole document; fields: {field_names(read.data)}")
        elif spec.field:
            if spec.field not in read.data:
                present = field_names(read.data)
                return Check(
                    False,
                    "read",
                    f"{spec.api_path}: allowed, but field '{spec.field}' is "
                    f"missing (fields present: {present})",
                    "set field to one of those",
                )
            what.append(f"field '{spec.field}' present")
        else:
            names = _key_fields(spec, read)
            if len(names) != 1:
                return Check(
                    False,
                    "read",
                    f"{spec.api_path}: allowed, but no field is set and the "
                    f"secret has {'several fields' if names else 'no fields'}: "
                    f"{field_names(read.data)}",
                    f'set field to the one that holds the key, or field = "{WHOLE_DOCUMENT}"',
                )
            what.append(f"its only field '{names[0]}'")
        return Check(True, "read", f"{spec.api_path}: allowed ({'; '.join(what)})")


SOURCE = VaultSource()
