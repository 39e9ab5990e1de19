"""The vault source's settings resolved into a :class:`Spec`, and reading values out of an
answer: pure functions of settings and environment (no hvac, no network), shared by the source
(:mod:`keybroker.sources.vault`), its session (:mod:`.auth`), client and login modules."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from keybroker import clock
from keybroker.errors import InvalidSecret, SecretNotFound, UsageError
from keybroker.sources.values import field_names, parse_time

DEFAULT_MOUNT = "secret"
DEFAULT_KV_VERSION = 2
DEFAULT_EXPIRES_FIELD = "expires_at"
#: Methods where a person signs in (``keybroker login``); helpers never prompt for them.
HUMAN_METHODS = ("oidc", "userpass", "ldap")
AUTH_METHODS = ("token", "approle", "jwt", "kubernetes", *HUMAN_METHODS)
PASSWORD_METHODS = ("userpass", "ldap")
#: ``field = "*"``: the whole data object as compact JSON (like the aws source).
WHOLE_DOCUMENT = "*"
#: Where the browser comes back to for Vault's OIDC method (the vault CLI's default).
DEFAULT_OIDC_REDIRECT = "http://localhost:8250/oidc/callback"
ENGINES = ("kv", "read")
K8S_SA_JWT_PATH = "/var/run/secrets/kubernetes.io/serviceaccount/token"


def env_first(env: Mapping[str, str], *names: str) -> str | None:
    """The first non-empty variable of ``names`` (VAULT_* first, then OpenBao's BAO_*)."""
    for name in names:
        value = env.get(name, "").strip()
        if value:
            return value
    return None


class Spec(NamedTuple):
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
    username: str | None
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
            if self.username:
                ident["username"] = self.username
        return ident

    @property
    def human(self) -> bool:
        """A person's login (``keybroker login``), never performed by a helper."""
        return self.auth_method in HUMAN_METHODS

    def login_hint(self) -> str:
        """What to run when a person's login is needed."""
        if self.profile:
            return f"run: keybroker login {self.profile}"
        return (
            f'add a profile with auth_method = "{self.auth_method}" and run: '
            "keybroker login PROFILE"
        )


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
    if addr.lower().endswith("/v1"):
        # keybroker (like the vault CLI) adds /v1/ itself: every read would go to /v1/v1/…
        raise UsageError(
            f"{label}: addr {addr!r} ends in /v1; the API prefix is added by keybroker",
            f"set addr (or VAULT_ADDR) to {addr[:-3]!r}",
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
        not isinstance(secret_version, int)
        or isinstance(secret_version, bool)
        or secret_version < 1
    ):
        raise UsageError(f"{label}: secret_version must be a positive integer")
    if engine == "read":
        if secret_version is not None or settings.get("kv_version") is not None:
            raise UsageError(
                f'{label}: kv_version and secret_version apply to engine "kv" only',
                'remove them, or set engine = "kv"',
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
        raise UsageError(f"{label}: auth_method {method!r} is not one of {', '.join(AUTH_METHODS)}")
    auth_mount = _clean(settings.get("auth_mount")) or method
    role = settings.get("role") or None
    if method == "kubernetes" and not role:
        raise UsageError(f'{label}: auth_method "kubernetes" needs a role', "set role or --role")
    # userpass/LDAP: a shared (system) profile fits each person: the login name by default
    username = str(settings.get("username") or "").strip() or (
        _login_name() if method in PASSWORD_METHODS else None
    )
    if method in PASSWORD_METHODS and not username:
        raise UsageError(
            f'{label}: auth_method "{method}" needs a username (the login name is unknown)',
            "set username in the profile (the password is asked by 'keybroker login')",
        )
    namespace = _clean(settings.get("namespace")) or _clean(
        env_first(env, "VAULT_NAMESPACE", "BAO_NAMESPACE")
    )
    verify = _verify(settings, env, label) if tls else True
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
        username=username if method in PASSWORD_METHODS else None,
        verify=verify,
        label=label,
        profile=profile,
    )


#: Go's ``strconv.ParseBool``: the only spellings Vault's client accepts for VAULT_SKIP_VERIFY.
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def skip_verify(env: Mapping[str, str], label: str) -> bool:
    """``VAULT_SKIP_VERIFY`` (then ``BAO_SKIP_VERIFY``) read exactly as Vault's client reads it.

    Vault's api/client.go ignores an empty value and parses any other with Go's
    ``strconv.ParseBool``, failing with "could not parse VAULT_SKIP_VERIFY" otherwise. Reading
    ``FALSE`` or ``no`` as "skip" sent the token to any certificate; reading an unknown value
    as either would guess about trust, so it is a config error (exit 2) naming the variable.
    """
    for name in ("VAULT_SKIP_VERIFY", "BAO_SKIP_VERIFY"):
        value = env.get(name, "")
        if value == "":
            continue
        if value in GO_TRUE:
            return True
        if value in GO_FALSE:
            return False
        shown = value if value.isprintable() and len(value) <= 20 else "…"
        raise UsageError(
            f"{label}: {name}={shown!r} is not a boolean",
            f"set {name} to true or false (as Vault reads it: 1, t, true, 0, f, false), "
            "or unset it",
        )
    return False


def _verify(settings: Mapping[str, Any], env: Mapping[str, str], label: str) -> bool | str:
    """requests' ``verify``: False, a CA bundle path, or True (VAULT_SKIP_VERIFY/CACERT)."""
    tls_verify = settings.get("tls_verify")
    if tls_verify is None:
        tls_verify = not skip_verify(env, label)
    if not tls_verify:
        return False
    ca_cert = settings.get("ca_cert") or env_first(
        env, "VAULT_CACERT", "BAO_CACERT", "VAULT_CAPATH", "BAO_CAPATH"
    )
    if ca_cert:
        import os  # noqa: PLC0415

        return os.path.expanduser(str(ca_cert))
    return True


def _expand(env: Mapping[str, str], path: str) -> str:
    """``~/x`` with the caller's HOME (as the fetch reads it), without touching the disk."""
    if path == "~" or path.startswith("~/"):
        import os  # noqa: PLC0415

        home = env.get("HOME") or os.path.expanduser("~")
        return home + path[1:]
    return path


def _home_path(env: Mapping[str, str], name: str) -> str:
    return _expand(env, f"~/{name}")


def _sources(
    settings: Mapping[str, Any], env: Mapping[str, str], env_key: str, file_key: str
) -> list[tuple[str, str]]:
    """("env", VAR) or ("file", PATH) for a credential read from ``*_env`` / ``*_file``."""
    if settings.get(env_key):
        return [("env", str(settings[env_key]))]
    if settings.get(file_key):
        return [("file", _expand(env, str(settings[file_key])))]
    return []


class Read(NamedTuple):
    """What one read returned: the secret's data and what the server said about it."""

    data: dict[str, Any]
    version: str | None = None
    lease_duration: int = 0


def path_fix(spec: Spec) -> str | None:
    """``path = "litellm/claude"`` when ``path`` was written with the mount in it.

    A path copied from a policy or the API (``secret/data/litellm/claude``,
    ``secret/metadata/…``) or from the UI (``secret/litellm/claude``) is relative to the mount
    in keybroker, as in ``vault kv get -mount=secret litellm/claude``.
    """
    if spec.engine != "kv" or not spec.path.startswith(spec.mount + "/"):
        return None
    rest = spec.path[len(spec.mount) + 1 :]
    if spec.kv_version == 2:
        for api in ("data/", "metadata/"):
            if rest.startswith(api) and len(rest) > len(api):
                rest = rest[len(api) :]
                break
    return f"path is relative to the mount '{spec.mount}': try path = \"{rest}\""


def _key_fields(spec: Spec, read: Read) -> list[str]:
    """The fields that may hold the key: all but the expiry field (unless it is the only one)."""
    names = [str(k) for k in read.data if k != spec.expires_field]
    return names or [str(k) for k in read.data]


def _only_field(spec: Spec, read: Read) -> str:
    """The one field a secret without ``field`` may have (besides its expires_at)."""
    names = _key_fields(spec, read)
    if len(names) == 1:
        return str(names[0])
    if not names:
        raise SecretNotFound(
            f"{spec.label}: the secret at {spec.api_path} has no fields",
            "write the key into it, e.g. vault kv put … key=…",
        )
    raise InvalidSecret(
        f"{spec.label}: the secret at {spec.api_path} has several fields: {field_names(read.data)}",
        f'set field (--field) to the one that holds the key, or field = "{WHOLE_DOCUMENT}" '
        "for the whole object as compact JSON",
    )


def select_value(spec: Spec, read: Read) -> str:
    """The field's value: ``field``, else the secret's only field; ``*``: the whole document."""
    if spec.field == WHOLE_DOCUMENT:
        return json.dumps(read.data, sort_keys=True, separators=(",", ":"))
    name = spec.field or _only_field(spec, read)
    if name not in read.data:
        present = field_names(read.data)
        raise SecretNotFound(
            f"{spec.label}: field '{name}' not found in {spec.api_path}",
            f"fields present: {present}",
        )
    value = read.data[name]
    if isinstance(value, str):
        return value
    if isinstance(value, int | float) and not isinstance(value, bool):
        return str(value)
    raise InvalidSecret(
        f"{spec.label}: field '{name}' of {spec.api_path} is "
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


def _login_name() -> str | None:
    """The login name (``getpass.getuser``: LOGNAME, USER, … then the password database)."""
    import getpass  # noqa: PLC0415

    try:
        return getpass.getuser().strip() or None
    except (OSError, KeyError, ImportError):
        return None
