"""Logging in to Vault/OpenBao for the vault source, and the login-token cache.

Imported only when a fetch or doctor needs the server (it loads hvac and requests; the client
and its error mapping are in :mod:`keybroker.sources.vault.client`).

- Tokens: ``token`` auth reads ``token_env``, ``VAULT_TOKEN``/``BAO_TOKEN`` or
  ``~/.vault-token``; with none, requests go out without a token, which is how a Vault Agent or
  Proxy listener with ``use_auto_auth_token`` is used. AppRole, JWT and Kubernetes logins
  are cached encrypted in the cache's side store (with their TTL), keyed by address, namespace,
  auth mount, role and a keyed fingerprint of the credential presented (role_id + secret_id,
  the JWT or the GitHub ID-token request, the service-account token): a caller whose own
  credential Vault would refuse never reuses another caller's login. A renewable token near the
  end of its TTL is renewed instead of re-created. A cached token the server refuses is dropped
  and replaced by one fresh login.
- People (oidc, userpass, ldap) sign in with ``keybroker login`` (:meth:`Session.sign_in`);
  their login is cached the same way, keyed by method, mount and user, and the helpers only
  use it: without one they exit 8 naming the command.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from keybroker import clock
from keybroker.errors import (
    AccessDenied,
    KeybrokerError,
    LoginRequired,
    SecretNotFound,
    Unreachable,
    UsageError,
)
from keybroker.redact import masked_repr
from keybroker.sources.base import AuxEntry, FetchContext
from keybroker.sources.vault.client import STEP_TIMEOUT, make_client, translate
from keybroker.sources.vault.credentials import (
    _from_file,
    _no_jwt,
    _one_of,
    find_token,
    github_id_token,
)
from keybroker.sources.vault.spec import K8S_SA_JWT_PATH, Read, Spec, path_fix


def vault_shaped(exc: Exception) -> bool:
    """Whether a failed read's answer looks like Vault's: an HTTP error with its JSON error
    shape (``{"errors": [...]}``), or a failure that is not an answer at all (a timeout)."""
    import hvac.exceptions as hx  # noqa: PLC0415

    if isinstance(exc, hx.InvalidPath | hx.InvalidRequest):
        answer = getattr(exc, "json", None)
        return isinstance(answer, dict) and "errors" in answer
    # a 200 that hvac could not parse as JSON comes back as an object without .get
    return not isinstance(exc, AttributeError | ValueError | TypeError)


#: A cached login token with less than this left is not used: it must outlive the read.
MIN_TOKEN_LEFT = 30.0
#: A renewable cached token is renewed once less than this fraction of its TTL is left.
RENEW_FRACTION = 0.5


class Login(NamedTuple):
    """The token requests use now, and where it came from (for messages and doctor)."""

    token: str
    origin: str
    cached: bool = False

    def __repr__(self) -> str:
        return masked_repr(self, "token")


class Session:
    """One fetch's conversation with the server: authenticate, read, map errors."""

    def __init__(self, spec: Spec, settings: Mapping[str, Any], ctx: FetchContext) -> None:
        self.spec = spec
        self.settings = settings
        self.ctx = ctx
        self.client = make_client(spec, ctx)
        self.login: Login | None = None
        self._aux_cached: str | None = None

    # -- names and hints --

    def _aux_name(self) -> str:
        """The login token's side-store name: address, namespace, auth mount, role, identity.

        The identity is a keyed fingerprint of the credential this call would log in with, so
        another CI job (another JWT, secret_id or service account) never reuses this login:
        it must log in itself, and Vault decides. A person's login is theirs by method, mount
        and user. The name is shown by 'cache list': it holds no credential in clear.
        """
        if self._aux_cached is None:
            spec = self.spec
            who = spec.username or spec.role or ""
            parts = [spec.auth_method, spec.auth_mount, spec.addr, spec.namespace or ""]
            fp = self.ctx.fingerprint(*parts, *self._identity())
            self._aux_cached = (
                f"token {spec.auth_method}:{spec.auth_mount}/{who} "
                f"{spec.addr} ns={spec.namespace or '-'} id={fp[:16]}"
            )
        return self._aux_cached

    def _identity(self) -> list[str]:
        """The credential a login would present (read, not sent): what a cached login is for."""
        spec, settings, ctx = self.spec, self.settings, self.ctx
        if spec.auth_method == "approle":
            role_id = _one_of(ctx, spec, settings, "role_id", "role_id_env", "role_id_file")
            secret_id = _one_of(ctx, spec, settings, None, "secret_id_env", "secret_id_file")
            return ["approle", role_id or "", secret_id or ""]
        if spec.auth_method == "jwt":
            jwt = _one_of(ctx, spec, settings, None, "jwt_env", "jwt_file")
            if jwt:
                return ["jwt", jwt]
            url = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_URL", "").strip()
            bearer = ctx.env.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN", "").strip()
            if url and bearer:
                ctx.sensitive(bearer)
                return ["github", url, bearer, str(settings.get("jwt_audience") or "")]
            raise _no_jwt(spec)
        if spec.auth_method == "kubernetes":
            token_file = str(settings.get("kubernetes_token_file") or K8S_SA_JWT_PATH)
            return ["kubernetes", _from_file(ctx, spec, "kubernetes_token_file", token_file)]
        return ["person", spec.username or spec.role or ""]

    def _denied_hint(self) -> str:
        spec = self.spec
        fix = path_fix(spec)
        if fix:
            return fix
        origin = self.login.origin if self.login else spec.auth_method
        hint = (
            f"the token ({origin}) may be expired, or its policies may not allow "
            f"'read' on {spec.api_path}"
        )
        extra = spec.doctor_hint()
        return f"{hint}; {extra}" if extra else hint

    # -- authentication --

    def authenticate(self, fresh: bool = False) -> Login:
        """Set the client's token: configured, cached login, renewed, or a new login."""
        spec = self.spec
        if spec.auth_method == "token":
            token, origin = find_token(spec, self.settings, self.ctx)
            login = Login(token, origin)
        elif spec.human:
            cached = None if fresh else self._cached_login()
            if cached is None:
                who = f" as '{spec.username}'" if spec.username else ""
                raise LoginRequired(
                    f"{spec.label}: no {spec.auth_method} login{who} to {spec.addr} is cached "
                    "(or it expired); helpers never prompt",
                    spec.login_hint(),
                )
            login = cached
        else:
            # --no-cache: a fresh login too (resolve marks the context; a person's login is
            # the exception above: only 'keybroker login' can make a new one)
            fresh = fresh or bool(getattr(self.ctx, "no_cache", False))
            login = (None if fresh else self._cached_login()) or self._new_login()
        self.client.token = login.token
        self.client.adapter.token = login.token
        self.login = login
        return login

    def _cached_login(self) -> Login | None:
        aux = self.ctx.aux
        if aux is None:
            return None
        name = self._aux_name()
        entry = aux.get(name)
        if entry is None:
            return None
        self.ctx.sensitive(entry.value)
        now = clock.now()
        left = None if entry.expires_at is None else entry.expires_at - now
        if left is not None and left < MIN_TOKEN_LEFT:
            aux.delete(name)
            return None
        origin = f"cached {self.spec.auth_method} login"
        ttl = float(entry.metadata.get("ttl") or 0)
        if left is not None and entry.metadata.get("renewable") and left < RENEW_FRACTION * ttl:
            renewed = self._renew(entry)
            if renewed is None:
                aux.delete(name)
                return None
            aux.put(name, renewed)
            origin = f"renewed {self.spec.auth_method} login"
        return Login(entry.value, origin, cached=True)

    def _renew(self, entry: AuxEntry) -> AuxEntry | None:
        """Renew the cached token (same token, new TTL); None if the server will not."""
        self.client.token = entry.value
        self.client.adapter.token = entry.value
        try:
            response = self.client.auth.token.renew_self()
            auth = response["auth"]
            ttl = int(auth.get("lease_duration") or 0)
        except Exception as exc:
            error = translate(exc, self.spec, self.ctx, doing="renewing the login token")
            if isinstance(error, Unreachable):
                raise error from None
            return None
        if ttl < MIN_TOKEN_LEFT:
            return None  # at its max TTL: a new login gives a longer-lived token
        metadata = dict(entry.metadata)
        metadata["renewals"] = int(metadata.get("renewals") or 0) + 1
        return AuxEntry(entry.value, clock.now() + ttl, metadata)

    def _credentials(self) -> tuple[str, Callable[[], Any]]:
        """What the login step does for this auth method (reading its credentials first)."""
        spec, settings, ctx, auth = self.spec, self.settings, self.ctx, self.client.auth
        mount = spec.auth_mount
        if spec.auth_method == "approle":
            role_id = _one_of(ctx, spec, settings, "role_id", "role_id_env", "role_id_file")
            if not role_id:
                raise UsageError(
                    f"{spec.label}: AppRole login needs a role_id",
                    "set role_id, role_id_env or role_id_file",
                )
            secret_id = _one_of(ctx, spec, settings, None, "secret_id_env", "secret_id_file")
            return f"auth/{mount}/login", lambda: auth.approle.login(
                role_id, secret_id=secret_id, use_token=False, mount_point=mount
            )
        if spec.auth_method == "jwt":
            jwt = _one_of(ctx, spec, settings, None, "jwt_env", "jwt_file") or github_id_token(
                spec, settings, ctx
            )
            if not jwt:
                raise _no_jwt(spec)
            return f"auth/{mount}/login", lambda: auth.jwt.jwt_login(
                spec.role, jwt, use_token=False, path=mount
            )
        token_file = str(settings.get("kubernetes_token_file") or K8S_SA_JWT_PATH)
        jwt = _from_file(ctx, spec, "kubernetes_token_file", token_file)
        return f"auth/{mount}/login", lambda: auth.kubernetes.login(
            spec.role, jwt, use_token=False, mount_point=mount
        )

    def _new_login(self) -> Login:
        path, call = self._credentials()
        return self.complete_login(path, call)

    def complete_login(self, path: str, call: Callable[[], Any]) -> Login:
        """Run the login ``call`` (at ``path``), cache its token encrypted, and use it."""
        spec = self.spec
        role = f" as role '{spec.role}'" if spec.role else ""
        if spec.username:
            role = f" as '{spec.username}'"
        doing = f"logging in with {spec.auth_method}{role} at {path}"
        hint = f"check the credentials and that the {spec.auth_method} role exists at {path}"
        if spec.username:
            hint = f"check the username and password, and that {spec.username} may log in there"
        elif spec.auth_method == "oidc":
            hint = (
                "sign in as a user the role's bound claims allow, or ask the Vault admin "
                "to check the role's bound claims and audiences"
            )
        try:
            response = call()
            auth = response["auth"]
            token = str(auth["client_token"])
            ttl = int(auth.get("lease_duration") or 0)
            renewable = bool(auth.get("renewable"))
        except Exception as exc:
            raise translate(
                exc,
                spec,
                self.ctx,
                doing=doing,
                login=True,
                denied_hint=hint,
                missing=UsageError(
                    f"{spec.label}: no {spec.auth_method} auth method at {path}",
                    "set auth_mount to where it is enabled",
                ),
            ) from None
        self.ctx.sensitive(token)
        if spec.human and 0 < ttl < MIN_TOKEN_LEFT:
            # The helpers only use a cached login with MIN_TOKEN_LEFT to spare: this one
            # would be dropped at once, and every 'keybroker get' would ask for a login.
            raise UsageError(
                f"{spec.label}: signed in, but Vault gave the login token a TTL of {ttl}s, "
                f"too short to cache (keybroker needs more than {MIN_TOKEN_LEFT:.0f}s)",
                "ask the Vault admin to raise token_ttl (e.g. to 1h) of "
                + (f"role '{spec.role}'" if spec.role else f"user '{spec.username}'")
                + f" at auth/{spec.auth_mount}",
            )
        if self.ctx.aux is not None:
            self.ctx.aux.put(
                self._aux_name(),
                AuxEntry(
                    token,
                    clock.now() + ttl if ttl > 0 else None,
                    {"ttl": ttl, "renewable": renewable, "method": spec.auth_method},
                ),
            )
        login = Login(token, f"{spec.auth_method} login")
        self.client.token = token
        self.client.adapter.token = token
        self.login = login
        return login

    def forget_login(self) -> None:
        if self.ctx.aux is not None and self.spec.auth_method != "token":
            self.ctx.aux.delete(self._aux_name())

    # -- reading --

    def check_is_vault(self) -> None:
        """Exit 2 when ``addr`` is not a Vault/OpenBao server: its ``sys/health`` (open to
        anyone, answered by every Vault node, Agent and Proxy) gives no Vault JSON."""
        spec = self.spec
        url = f"{spec.addr}/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200"
        try:
            response = self.client.session.get(
                url, timeout=self.ctx.timeout(STEP_TIMEOUT), verify=spec.verify
            )
        except KeybrokerError:
            raise
        except Exception:  # the probe itself failed: the read's own error stands
            return
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and "initialized" in body:
            return
        raise UsageError(
            f"{spec.label}: {spec.addr} is not a Vault server ({spec.addr}/v1/sys/health "
            f"answered HTTP {response.status_code} without Vault's health JSON)",
            "point addr (or VAULT_ADDR) at the Vault/OpenBao server, e.g. "
            "https://vault.example.com:8200 (no path after the port)",
        )

    def _missing(self, answer: Any = None) -> SecretNotFound:
        """Exit 5 for the read path, with the likeliest fix (``answer``: the 404's JSON)."""
        spec = self.spec
        warnings = ""
        errors = ""
        if isinstance(answer, dict):
            warnings = " ".join(str(w) for w in answer.get("warnings") or []).lower()
            errors = " ".join(str(e) for e in answer.get("errors") or []).lower()
        if "no handler for route" in errors:
            # Vault's answer for a path under no mount (with a token allowed to ask)
            top = spec.api_path.split("/", 1)[0]
            return SecretNotFound(
                f"{spec.label}: there is no secrets engine mounted at '{top}/' on {spec.addr}",
                "set mount to where the KV engine is mounted (vault secrets list), or "
                f"enable one: vault secrets enable -path={top} kv-v2",
            )
        version = f" (version {spec.secret_version})" if spec.secret_version else ""
        if spec.engine == "kv" and spec.kv_version == 1 and "versioned" in warnings:
            hint = f"'{spec.mount}' is a KV v2 mount: set kv_version = 2"
        elif path_fix(spec):
            hint = str(path_fix(spec))
        elif spec.secret_version:
            hint = f"version {spec.secret_version} does not exist or was deleted or destroyed"
        elif spec.engine == "kv" and spec.kv_version == 2:
            hint = "check mount and path; for a KV v1 mount set kv_version = 1"
        else:
            hint = "check mount and path"
        return SecretNotFound(
            f"{spec.label}: no secret at {spec.api_path}{version} on {spec.addr}", hint
        )

    def _read_once(self) -> Read:
        spec, client = self.spec, self.client
        if spec.engine == "kv" and spec.kv_version == 2:
            response = client.secrets.kv.v2.read_secret_version(
                path=spec.path,
                version=spec.secret_version,
                mount_point=spec.mount,
                raise_on_deleted_version=True,
            )
            body = response.get("data") or {}
            data = body.get("data")
            meta = body.get("metadata") or {}
            if not isinstance(data, dict):
                raise self._missing()
            version = meta.get("version")
            return Read(data, None if version is None else str(version))
        if spec.engine == "kv":
            response = client.secrets.kv.v1.read_secret(path=spec.path, mount_point=spec.mount)
        else:
            response = client.adapter.get(f"/v1/{spec.path}")
        data = response.get("data") if isinstance(response, dict) else None
        if not isinstance(data, dict):
            raise self._missing(response)
        return Read(data, None, int(response.get("lease_duration") or 0))

    def _run_read(self) -> Read:
        try:
            return self._read_once()
        except Exception as exc:
            answer = getattr(exc, "json", None)
            if not vault_shaped(exc):
                self.check_is_vault()  # a web page or another API: say so, not "no secret"
            error = translate(
                exc,
                self.spec,
                self.ctx,
                doing=f"reading {self.spec.api_path}",
                denied_hint=self._denied_hint(),
                missing=self._missing(answer),
            )
        if isinstance(error, AccessDenied) and self.login is not None and self.login.token:
            error = self._no_usable_mount() or error
        if isinstance(error, AccessDenied) and self.login is not None and not self.login.token:
            raise LoginRequired(
                f"{self.spec.label}: no Vault token (token_env, VAULT_TOKEN, ~/.vault-token) "
                f"and {self.spec.addr} refused to read {self.spec.api_path} without one",
                "run 'vault login' (or 'bao login'), export VAULT_TOKEN, or set auth_method",
            )
        raise error

    def _no_usable_mount(self) -> AccessDenied | None:
        """A refusal explained by the mount: Vault's UI preflight (``sys/internal/ui/mounts``,
        open to every token) refuses with "preflight capability check" when no mount at that
        path is one the token may use (it does not exist, or nothing under it is allowed);
        None when the mount is there (the policy on the path is the problem) or it cannot
        tell."""
        spec = self.spec
        if path_fix(spec):
            return None
        try:
            self.client.adapter.get(f"/v1/sys/internal/ui/mounts/{spec.api_path}")
        except Exception as exc:
            errors = " ".join(str(e) for e in getattr(exc, "errors", None) or []).lower()
            if "preflight capability check" not in errors:
                return None
            top = spec.api_path.split("/", 1)[0]
            return AccessDenied(
                f"{spec.label}: permission denied reading {spec.api_path}: {spec.addr} has no "
                f"mount '{top}/' this token may use (it does not exist, or the token's "
                "policies allow nothing under it)",
                "check mount (vault secrets list shows the mounts) and the token's policies",
            )
        return None

    def read(self) -> Read:
        """Authenticate and read; a cached login the server no longer accepts is replaced.

        A refusal with a cached token is either a policy (keep the token: logging in again
        would not help, and may spend a single-use secret_id) or a revoked/expired token
        (log in once more). ``lookup-self`` tells them apart.
        """
        login = self.login or self.authenticate()
        try:
            return self._run_read()
        except AccessDenied:
            if not login.cached or self.token_alive():
                raise
        self.forget_login()
        self.authenticate(fresh=True)
        return self._run_read()

    def token_alive(self) -> bool:
        """Whether the server still accepts the current token (False if it cannot tell)."""
        try:
            self.client.auth.token.lookup_self()
        except Exception as exc:
            error = translate(exc, self.spec, self.ctx, doing="looking up the token")
            if isinstance(error, Unreachable):
                raise error from None
            return False
        return True
