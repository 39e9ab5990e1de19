"""``aws``: a key from AWS Secrets Manager (``GetSecretValue``), rotation-aware.

The cache-hit path imports this module to hash the request, so botocore (~100 ms to import,
~200 ms more to build a client) is imported only inside :meth:`AwsSource.fetch`,
:meth:`AwsSource.revalidate` and :meth:`AwsSource.doctor`; ``canonical`` works from the
settings and the environment alone.

Rotation: every fetch keeps the VersionId with the cache entry. When the entry's reuse window
ends, resolve asks :meth:`AwsSource.revalidate`, which spends one ``DescribeSecret`` (no secret
material crosses the wire) to learn whether the requested stage still points at that version;
if it does the entry is extended without fetching the value again.

Time: botocore's own retries are off. ``client.call`` retries transient failures itself, a
few times, with a short backoff and never past the call's deadline, and the client's connect
and read timeouts are capped by the time left, so an unreachable endpoint ends in exit 3 in time.

The source is split by job: ``target`` (settings → Target, no botocore), ``client``
(clients, retries, error mapping), ``values`` (the value out of an answer), ``doctor``, and
this module (the Source: fetch, revalidate, assumed roles).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from keybroker import clock
from keybroker.errors import (
    InvalidSecret,
    KeybrokerError,
    UsageError,
)
from keybroker.model import Request, Secret
from keybroker.sources.aws.client import (
    Clients,
    call,
    clients_for,
    make_client,
    translate,
)
from keybroker.sources.aws.target import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_MAX_ATTEMPTS,
    DEFAULT_READ_TIMEOUT,
    DEFAULT_SESSION_NAME,
    OUTPUTS,
    ROLE_MIN_LEFT,
    Target,
)
from keybroker.sources.aws.values import extract, iso, parse_expiry, timestamp
from keybroker.sources.base import AuxEntry, BaseSource, Check, FetchContext, Setting

__all__ = ["SOURCE", "AwsSource", "Target", "parse_expiry"]

#: Environment variables through which botocore's chain takes credentials.
AWS_IDENTITY_ENV = (
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_SECURITY_TOKEN",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)

# --- the source ---


class AwsSource(BaseSource):
    name = "aws"
    default_storage = "disk"
    settings = (
        Setting("secret_id", help="secret name or ARN"),
        Setting(
            "field",
            help="JSON key that holds the key, when the secret is a JSON object "
            '("*": the whole object as compact JSON)',
        ),
        Setting(
            "version_stage", help="staging label: AWSCURRENT (default), AWSPREVIOUS, AWSPENDING, …"
        ),
        Setting("version_id", help="pin one version by its VersionId"),
        Setting(
            "region",
            help="AWS region (default: from the ARN, AWS_REGION, "
            "AWS_DEFAULT_REGION, the AWS profile)",
        ),
        Setting("aws_profile", help="named profile of ~/.aws/config (default: AWS_PROFILE)"),
        Setting("role_arn", help="IAM role to assume before reading (sts:AssumeRole)"),
        Setting("external_id", identity=False, help="ExternalId for the role's trust policy"),
        Setting(
            "role_session_name",
            identity=False,
            help=f"RoleSessionName (default '{DEFAULT_SESSION_NAME}')",
        ),
        Setting(
            "role_duration",
            kind="duration",
            identity=False,
            help="lifetime of the assumed role's credentials (default: the role's, 1h)",
        ),
        Setting(
            "endpoint_url",
            help="Secrets Manager API endpoint (VPC or FIPS endpoint, "
            "LocalStack); default AWS_ENDPOINT_URL_SECRETS_MANAGER, "
            "AWS_ENDPOINT_URL",
        ),
        Setting(
            "connect_timeout",
            kind="duration",
            identity=False,
            help=f"per-attempt connect timeout (default {DEFAULT_CONNECT_TIMEOUT:g}s)",
        ),
        Setting(
            "read_timeout",
            kind="duration",
            identity=False,
            help=f"per-attempt read timeout (default {DEFAULT_READ_TIMEOUT:g}s)",
        ),
        Setting(
            "max_attempts",
            kind="int",
            identity=False,
            help=f"attempts for throttling and network errors (default "
            f"{DEFAULT_MAX_ATTEMPTS}), within KEYBROKER_TIMEOUT",
        ),
        Setting(
            "output",
            choices=OUTPUTS,
            help="secret (default) or credentials: print the assumed role's temporary "
            "credentials as JSON (for awsCredentialExport)",
        ),
    )

    # --- identity ---

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        target = Target.of(settings, env)
        items: dict[str, Any] = {
            "secret_id": target.secret_id or None,
            "field": target.field,
            "version_stage": target.version_stage,
            "version_id": target.version_id,
            "region": target.region,
            "endpoint_url": target.endpoint_url,
            "aws_profile": target.aws_profile,
            "role_arn": target.role_arn,
        }
        if target.output != "secret":
            items = {
                "output": target.output,
                "role_arn": target.role_arn,
                "region": target.region,
                "aws_profile": target.aws_profile,
                "external_id": target.external_id,
            }
        return {k: v for k, v in items.items() if v is not None}

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]]:
        """Everything botocore's credential chain could present (keys, profile files, web
        identity and container tokens); an instance role is the machine's, the same for all."""
        inputs = [("env", name) for name in AWS_IDENTITY_ENV]
        config = env.get("AWS_CONFIG_FILE") or "~/.aws/config"
        shared = env.get("AWS_SHARED_CREDENTIALS_FILE") or "~/.aws/credentials"
        inputs += [("file", config), ("file", shared)]
        for var in ("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"):
            if env.get(var):
                inputs.append(("file", env[var]))
        return inputs

    def describe(self, settings: Mapping[str, Any]) -> str:
        target = Target.of(settings, {})
        if target.output == "credentials":
            return f"credentials of {target.role_arn}"
        return target.label()

    def _target(self, request: Request, ctx: FetchContext) -> Target:
        target = Target.of(request.settings, ctx.env)
        if target.output == "credentials":
            if not target.role_arn:
                raise UsageError(
                    f'{request.where()}: output = "credentials" needs role_arn',
                    "set role_arn (--role-arn) to the role whose credentials to print",
                )
        elif not target.secret_id:
            raise UsageError(
                f"{request.where()}: missing setting 'secret_id' for source 'aws'",
                "set secret_id in the profile or pass --secret-id",
            )
        return target

    # --- fetching ---

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        target = self._target(request, ctx)
        where = request.where()
        clients = clients_for(target, ctx)
        credentials = self._role_credentials(clients, where, ctx)
        if target.output == "credentials":
            assert credentials is not None
            return self._credentials_secret(credentials)
        params: dict[str, Any] = {"SecretId": target.secret_id}
        if target.version_id:
            params["VersionId"] = target.version_id
        if target.version_stage:
            params["VersionStage"] = target.version_stage
        response = self._secrets_manager(
            clients, where, credentials, ctx, "get_secret_value", params
        )
        value, expires_at = extract(response, target, where, ctx)
        metadata: dict[str, Any] = {
            "arn": response.get("ARN"),
            "stages": list(response.get("VersionStages") or []),
        }
        return Secret(
            value,
            expires_at=expires_at,
            version=response.get("VersionId"),
            source=self.name,
            metadata=metadata,
        )

    def revalidate(self, request: Request, version: str | None, ctx: FetchContext) -> bool | None:
        """One DescribeSecret: does the requested stage still point at ``version``?"""
        target = self._target(request, ctx)
        if version is None or target.output != "secret":
            return None
        where = request.where()
        clients = clients_for(target, ctx)
        credentials = self._role_credentials(clients, where, ctx)
        response = self._secrets_manager(
            clients, where, credentials, ctx, "describe_secret", {"SecretId": target.secret_id}
        )
        if response.get("DeletedDate") is not None:
            return False
        stages: Mapping[str, list[str]] = response.get("VersionIdsToStages") or {}
        if target.version_id:
            # a VersionId's value never changes; it only goes away once it has no stage
            return True if version == target.version_id and version in stages else None
        return target.version_stage in stages.get(version, [])

    def _secrets_manager(
        self,
        clients: Clients,
        where: str,
        credentials: Mapping[str, str] | None,
        ctx: FetchContext,
        operation: str,
        params: Mapping[str, Any],
    ) -> dict[str, Any]:
        """One Secrets Manager call about the target's secret (fetch, revalidate, doctor).

        A failure names the IAM action the call needs: ``get_secret_value`` is
        ``secretsmanager:GetSecretValue``.
        """
        target = clients.target
        client = make_client(clients, "secretsmanager", where, credentials)
        endpoint = str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "AWS")
        action = "secretsmanager:" + operation.title().replace("_", "")

        def describe(exc: BaseException, attempts: int) -> KeybrokerError:
            return translate(
                exc,
                where=where,
                action=action,
                resource=f"secret '{target.secret_id}'",
                endpoint=endpoint,
                attempts=attempts,
                target=target,
            )

        return call(client, operation, params, ctx, clients, describe)

    # --- roles ---

    def _role_key(self, target: Target, ctx: FetchContext) -> str:
        """Assumed-role credentials are named by the role *and* the credentials that assumed
        it: another caller's keys must not reuse them."""
        from keybroker.cache.ids import material  # noqa: PLC0415

        text = json.dumps(
            [
                target.role_arn,
                target.aws_profile,
                target.region,
                target.external_id,
                target.role_session_name,
                target.role_duration,
            ]
        )
        base = material(self.identity_inputs({}, ctx.env), ctx.env)
        who = hashlib.sha256(base).hexdigest()
        return "role-" + ctx.fingerprint(text, who)[:32]

    def _role_credentials(
        self, clients: Clients, where: str, ctx: FetchContext
    ) -> dict[str, str] | None:
        """STS AssumeRole credentials for ``role_arn`` (None without a role).

        They are kept in the encrypted side store until ROLE_MIN_LEFT before they expire, so
        a refresh of the key costs one call, not two. ``output = "credentials"`` always asks
        STS anew: the caller wants a full lifetime.
        """
        target = clients.target
        if not target.role_arn:
            return None
        name = self._role_key(target, ctx)
        if ctx.aux is not None and target.output == "secret" and not ctx.no_cache:
            cached = ctx.aux.get(name)
            if (
                cached is not None
                and cached.expires_at is not None
                and (cached.expires_at - clock.now() > ROLE_MIN_LEFT)
            ):
                try:
                    stored = json.loads(cached.value)
                    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
                        ctx.sensitive(stored[key])
                    return {k: str(v) for k, v in stored.items()}
                except (ValueError, KeyError, TypeError):
                    ctx.aux.delete(name)
        sts = make_client(clients, "sts", where)
        params: dict[str, Any] = {
            "RoleArn": target.role_arn,
            "RoleSessionName": target.role_session_name,
        }
        if target.external_id:
            params["ExternalId"] = target.external_id
        if target.role_duration:
            params["DurationSeconds"] = int(target.role_duration)
        endpoint = str(getattr(sts.meta, "endpoint_url", "") or "AWS STS")

        def describe(exc: BaseException, attempts: int) -> KeybrokerError:
            return translate(
                exc,
                where=where,
                action="sts:AssumeRole",
                resource=f"role {target.role_arn}",
                endpoint=endpoint,
                attempts=attempts,
                target=target,
            )

        response = call(sts, "assume_role", params, ctx, clients, describe)
        raw = response["Credentials"]
        credentials = {
            "AccessKeyId": str(raw["AccessKeyId"]),
            "SecretAccessKey": str(raw["SecretAccessKey"]),
            "SessionToken": str(raw["SessionToken"]),
            "Expiration": iso(raw.get("Expiration")),
        }
        for key in ("SecretAccessKey", "SessionToken"):
            ctx.sensitive(credentials[key])
        expires_at = timestamp(raw.get("Expiration"))
        if ctx.aux is not None and expires_at is not None:
            ctx.aux.put(name, AuxEntry(json.dumps(credentials), expires_at=expires_at))
        return credentials

    def _credentials_secret(self, credentials: Mapping[str, str]) -> Secret:
        """The awsCredentialExport shape, compact so it is one printable token."""
        document = {
            "AccessKeyId": credentials["AccessKeyId"],
            "SecretAccessKey": credentials["SecretAccessKey"],
            "SessionToken": credentials["SessionToken"],
            "Expiration": credentials["Expiration"],
        }
        value = json.dumps(document, separators=(",", ":"))
        FetchContext.sensitive(value)
        expires_at = None
        try:
            expires_at = parse_expiry(credentials["Expiration"], "aws")
        except InvalidSecret:
            expires_at = None
        return Secret(
            value,
            expires_at=expires_at,
            version=None,
            source=self.name,
            metadata={"access_key_id": credentials["AccessKeyId"]},
        )

    # --- doctor ---

    def doctor(self, request: Request, ctx: FetchContext) -> list[Check]:
        """Credentials (STS caller identity), region, the role, DescribeSecret permission."""
        from keybroker.sources.aws.doctor import checks  # noqa: PLC0415

        return checks(self, request, ctx)


SOURCE = AwsSource()
