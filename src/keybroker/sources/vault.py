"""``vault``: a key from HashiCorp Vault or OpenBao (KV v1/v2, or any read path) via hvac.

This module is imported on the cache-hit path (to compute the entry's hash with
:meth:`VaultSource.canonical`), so it uses only the standard library; hvac, requests and the
login logic (:mod:`keybroker.sources.vault_auth`, :mod:`keybroker.sources.vault_client`) load
inside ``fetch`` and ``doctor``.

What it reads:
- ``engine = "kv"`` (default): KV v2 (``mount``/data/``path``, optionally a pinned
  ``secret_version``; the KV version number becomes the entry's version) or KV v1.
- ``engine = "read"``: any other read path (a dynamic engine such as ``aws/creds/ROLE``); the
  lease duration gives the expiry.
With ``field`` the value is that field; without it, the whole data object as compact JSON (what
``keybroker aws-credentials`` reads). An ``expires_at`` field in the secret (epoch seconds or
RFC 3339) also gives an expiry; otherwise the cache reuses the key for the helper TTL or the
profile's ``max_age``.

Messages are built from names (address, path, field names) only, never from the server's
response text, and every token and value obtained is registered for scrubbing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from keybroker import clock
from keybroker.errors import InvalidSecret, KeybrokerError, SecretNotFound, UsageError
from keybroker.model import Request, Secret
from keybroker.record import record
from keybroker.sources.base import BaseSource, Check, FetchContext, Setting
from keybroker.sources.values import field_names, parse_time, register_leaves

DEFAULT_MOUNT = "secret"
DEFAULT_KV_VERSION = 2
DEFAULT_EXPIRES_FIELD = "expires_at"
AUTH_METHODS = ("token", "approle", "jwt", "kubernetes")
ENGINES = ("kv", "read")


def env_first(env: Mapping[str, str], *names: str) -> str | None:
    """The first non-empty variable of ``names`` (VAULT_* first, then OpenBao's BAO_*)."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


@record(frozen=True)
class Spec:
    """A vault request with defaults filled in and env fallbacks resolved (validated)."""

    addr: str
    namespace: str | None
    engine: str
    mount: str
    path: str
    field: str | None
    kv_version: int
    secret_version: int | None
    expires_field: str
    auth_method: str
    auth_mount: str
    role: str | None
    verify: bool | str
    label: str  # message prefix: "profile 'x': vault" or "vault"
    profile: str | None

    @property
    def api_path(self) -> str:
        """The path the read goes to (what a policy must allow), without the /v1/ prefix."""
        if self.engine == "read":
            return self.path
        if self.kv_version == 2:
            return f"{self.mount}/data/{self.path}"
        return f"{self.mount}/{self.path}"

    def location(self) -> str:
        """``secret/litellm#key`` (``@3`` when pinned): how logs and cache list name it."""
        base = self.path if self.engine == "read" else f"{self.mount}/{self.path}"
        if self.secret_version is not None:
            base += f"@{self.secret_version}"
        return base + (f"#{self.field}" if self.field else "")

    def doctor_hint(self) -> str:
        return f"run 'keybroker doctor {self.profile}'" if self.profile else ""

    def identity(self) -> dict[str, Any]:
        """What changes the answer: the cache entry's key (standalone == profile)."""
        ident: dict[str, Any] = {
            "addr": self.addr,
            "engine": self.engine,
            "path": self.path,
            "auth_method": self.auth_method,
        }
        if self.namespace:
            ident["namespace"] = self.namespace
        if self.engine == "kv":
            ident["mount"] = self.mount
            ident["kv_version"] = self.kv_version
            if self.secret_version is not None:
                ident["secret_version"] = self.secret_version
        if self.field:
            ident["field"] = self.field
        if self.auth_method != "token":
            ident["auth_mount"] = self.auth_mount
            if self.role:
                ident["role"] = self.role
        return ident


def _clean(value: Any) -> str | None:
    if value is None:
        return None
    text = str(value).strip().strip("/")
    return text or None


def build_spec(
    settings: Mapping[str, Any], env: Mapping[str, str], profile: str | None, tls: bool = True
) -> Spec:
    """Validate settings (exit 2 naming the key) and resolve VAULT_*/BAO_* fallbacks.

    ``tls=False`` (for ``canonical``) skips the TLS variables: the hit path's index records
    every variable canonical() reads, and those do not change the answer.
    """
    label = f"profile '{profile}': vault" if profile else "vault"
    addr = settings.get("addr") or env_first(env, "VAULT_ADDR", "BAO_ADDR")
    if not addr:
        raise UsageError(
            f"{label}: no server address",
            "set addr in the profile, pass --addr, or export VAULT_ADDR",
        )
    addr = str(addr).strip().rstrip("/")
    if not addr.startswith(("http://", "https://")) or len(addr) <= len("https://"):
        raise UsageError(
            f"{label}: addr {addr!r} is not an http(s) URL", "e.g. https://vault.example.com:8200"
        )
    engine = settings.get("engine") or "kv"
    if engine not in ENGINES:
        raise UsageError(f"{label}: engine {engine!r} is not one of {', '.join(ENGINES)}")
    path = _clean(settings.get("path"))
    if not path:
        raise UsageError(f"{label}: missing setting 'path'", "set path in the profile or --path")
    mount = _clean(settings.get("mount"))
    kv_version = settings.get("kv_version", DEFAULT_KV_VERSION)
    if kv_version is None:
        kv_version = DEFAULT_KV_VERSION
    if kv_version not in (1, 2):
        raise UsageError(f"{label}: kv_version must be 1 or 2, got {kv_version!r}")
    secret_version = settings.get("secret_version")
    if secret_version is not None and (
        not isinstance(secret_version, int) or isinstance(secret_version, bool)
        or secret_version < 1
    ):
        raise UsageError(f"{label}: secret_version must be a positive integer")
    if engine == "read":
        if secret_version is not None or settings.get("kv_version") is not None:
            raise UsageError(
                f"{label}: kv_version and secret_version apply to engine \"kv\" only",
                "remove them, or set engine = \"kv\"",
            )
        if mount:
            path = f"{mount}/{path}"
        mount = ""
    else:
        mount = mount or DEFAULT_MOUNT
        if secret_version is not None and kv_version != 2:
            raise UsageError(f"{label}: secret_version needs a KV v2 mount (kv_version = 2)")
    method = settings.get("auth_method") or "token"
    if method not in AUTH_METHODS:
        raise UsageError(
            f"{label}: auth_method {method!r} is not one of {', '.join(AUTH_METHODS)}"
        )
    auth_mount = _clean(settings.get("auth_mount")) or method
    role = settings.get("role") or None
    if method == "kubernetes" and not role:
        raise UsageError(f"{label}: auth_method \"kubernetes\" needs a role", "set role or --role")
    namespace = _clean(settings.get("namespace")) or _clean(
        env_first(env, "VAULT_NAMESPACE", "BAO_NAMESPACE")
    )
    verify = _verify(settings, env) if tls else True
    return Spec(
        addr=addr,
        namespace=namespace,
        engine=engine,
        mount=mount,
        path=path,
        field=settings.get("field") or None,
        kv_version=int(kv_version),
        secret_version=secret_version,
        expires_field=settings.get("expires_field") or DEFAULT_EXPIRES_FIELD,
        auth_method=method,
        auth_mount=auth_mount,
        role=role,
        verify=verify,
        label=label,
        profile=profile,
    )


def _verify(settings: Mapping[str, Any], env: Mapping[str, str]) -> bool | str:
    """requests' ``verify``: False, a CA bundle path, or True (VAULT_SKIP_VERIFY/CACERT)."""
    tls_verify = settings.get("tls_verify")
    if tls_verify is None:
        tls_verify = env_first(env, "VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY") in (
            None, "0", "false", "False",
        )
    if not tls_verify:
        return False
    ca_cert = settings.get("ca_cert") or env_first(
        env, "VAULT_CACERT", "BAO_CACERT", "VAULT_CAPATH", "BAO_CAPATH"
    )
    if ca_cert:
        import os  # noqa: PLC0415

        return os.path.expanduser(str(ca_cert))
    return True


@record
class Read:
    """What one read returned: the secret's data and what the server said about it."""

    data: dict[str, Any]
    version: str | None = None
    lease_duration: int = 0


def select_value(spec: Spec, read: Read) -> str:
    """The field's value, or the whole data object as compact JSON when no field is set."""
    if not spec.field:
        return json.dumps(read.data, sort_keys=True, separators=(",", ":"))
    if spec.field not in read.data:
        present = field_names(read.data)
        raise SecretNotFound(
            f"{spec.label}: field '{spec.field}' not found in {spec.api_path}",
            f"fields present: {present}",
        )
    value = read.data[spec.field]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidSecret(
        f"{spec.label}: field '{spec.field}' of {spec.api_path} is "
        f"{'empty' if value is None else 'a ' + type(value).__name__}, not a string",
        "point field at a string value",
    )


def expiry(spec: Spec, read: Read) -> float | None:
    """The earliest of the lease (read engine) and the secret's own expires_at field."""
    candidates: list[float] = []
    if spec.engine == "read" and read.lease_duration > 0:
        candidates.append(clock.now() + read.lease_duration)
    if spec.expires_field in read.data:
        when = parse_time(read.data[spec.expires_field])
        if when is None:
            raise InvalidSecret(
                f"{spec.label}: field '{spec.expires_field}' of {spec.api_path} is not a time",
                "use epoch seconds or RFC 3339 (2030-01-31T12:00:00Z)",
            )
        candidates.append(when)
    return min(candidates) if candidates else None


class VaultSource(BaseSource):
    name = "vault"
    default_storage = "disk"
    settings = (
        Setting("addr", help="server URL (default: VAULT_ADDR)"),
        Setting("namespace", help="Vault Enterprise / OpenBao namespace "
                "(default: VAULT_NAMESPACE)"),
        Setting("engine", help="kv (default) or read: any other read path (dynamic engines)",
                choices=ENGINES),
        Setting("mount", help=f"KV mount (default '{DEFAULT_MOUNT}'); with engine read, a prefix"),
        Setting("path", help="secret path inside the mount (engine read: the whole API path)",
                required=True),
        Setting("field", help="field to print (default: the whole data object as JSON)"),
        Setting("kv_version", kind="int", help="KV engine version: 1 or 2 (default 2)"),
        Setting("secret_version", kind="int", help="pin a KV v2 version number"),
        Setting("auth_method", help="token (default), approle, jwt or kubernetes",
                choices=AUTH_METHODS),
        Setting("auth_mount", help="where the auth method is mounted (default: its name)"),
        Setting("role", help="role for jwt/kubernetes login (a label for approle)"),
        Setting("role_id", help="AppRole role_id"),
        Setting("token_env", help="variable holding the token (default VAULT_TOKEN, "
                "then ~/.vault-token)", identity=False),
        Setting("role_id_env", help="variable holding the AppRole role_id", identity=False),
        Setting("role_id_file", help="file holding the AppRole role_id", identity=False),
        Setting("secret_id_env", help="variable holding the AppRole secret_id", identity=False),
        Setting("secret_id_file", help="file holding the AppRole secret_id", identity=False),
        Setting("jwt_env", help="variable holding the JWT / CI ID token", identity=False),
        Setting("jwt_file", help="file holding the JWT / CI ID token", identity=False),
        Setting("jwt_audience", help="audience to ask GitHub Actions for its ID token",
                identity=False),
        Setting("kubernetes_token_file", help="service-account token (default: the in-pod path)",
                identity=False),
        Setting("ca_cert", help="CA bundle for TLS (default: VAULT_CACERT)", identity=False),
        Setting("tls_verify", kind="bool", help="verify TLS (default true)", identity=False),
        Setting("expires_field", help=f"field holding the key's expiry (default "
                f"'{DEFAULT_EXPIRES_FIELD}')", identity=False),
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
        """What the read's token is made of, per auth method (every candidate place)."""
        method = settings.get("auth_method") or "token"
        inputs: list[tuple[str, str]] = []

        def where(env_key: str, file_key: str) -> None:
            if settings.get(env_key):
                inputs.append(("env", str(settings[env_key])))
            if settings.get(file_key):
                inputs.append(("file", str(settings[file_key])))

        if method == "token":
            if settings.get("token_env"):
                inputs.append(("env", str(settings["token_env"])))
            inputs += [("env", "VAULT_TOKEN"), ("env", "BAO_TOKEN"), ("file", "~/.vault-token")]
        elif method == "approle":
            if settings.get("role_id"):
                inputs.append(("literal", "role_id:" + str(settings["role_id"])))
            where("role_id_env", "role_id_file")
            where("secret_id_env", "secret_id_file")
        elif method == "jwt":
            where("jwt_env", "jwt_file")
            if not settings.get("jwt_env") and not settings.get("jwt_file"):
                inputs += [("env", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"),
                           ("env", "ACTIONS_ID_TOKEN_REQUEST_URL")]
        elif method == "kubernetes":
            inputs.append(("file", str(settings.get("kubernetes_token_file")
                                       or "/var/run/secrets/kubernetes.io/serviceaccount/token")))
        else:  # a person's own login, kept by keybroker login
            inputs.append(("literal", f"{method}:{settings.get('auth_mount') or method}:"
                                      f"{settings.get('username') or settings.get('role') or ''}"))
        return inputs

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
        from keybroker.sources.vault_auth import Session  # noqa: PLC0415 - loads hvac

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
            from keybroker.sources.vault_auth import Session  # noqa: PLC0415 - loads hvac
        except KeybrokerError as exc:
            return [Check(False, "vault settings", exc.message, exc.hint or "")]
        return Session(spec, request.settings, ctx).doctor(self._read_check)

    @staticmethod
    def _read_check(spec: Spec, read: Read) -> Check:
        """The doctor's last line: the read worked; the field is there (names only)."""
        what = [f"version {read.version}"] if read.version else []
        if spec.engine == "read" and read.lease_duration:
            what.append(f"lease {read.lease_duration}s")
        if spec.field:
            if spec.field not in read.data:
                present = field_names(read.data)
                return Check(
                    False, "read", f"{spec.api_path}: allowed, but field '{spec.field}' is "
                    f"missing (fields present: {present})", "set field to one of those",
                )
            what.append(f"field '{spec.field}' present")
        else:
            what.append(f"fields: {field_names(read.data)}")
        return Check(True, "read", f"{spec.api_path}: allowed ({'; '.join(what)})")


SOURCE = VaultSource()
