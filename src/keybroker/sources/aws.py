"""``aws``: a key from AWS Secrets Manager (``GetSecretValue``), rotation-aware.

The cache-hit path imports this module to hash the request, so botocore (~100 ms to import,
~200 ms more to build a client) is imported only inside :meth:`AwsSource.fetch`,
:meth:`AwsSource.revalidate` and :meth:`AwsSource.doctor`; ``canonical`` works from the
settings and the environment alone.

Rotation: every fetch keeps the VersionId with the cache entry. When the entry's reuse window
ends, resolve asks :meth:`AwsSource.revalidate`, which spends one ``DescribeSecret`` (no secret
material crosses the wire) to learn whether the requested stage still points at that version;
if it does the entry is extended without fetching the value again.

Time: botocore's own retries are off. :func:`_call` retries transient failures itself, a few
times, with a short backoff and never past the call's deadline, and the client's connect and
read timeouts are capped by the time left, so an unreachable endpoint ends in exit 3 in time.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from keybroker import clock
from keybroker.errors import (
    AccessDenied,
    InvalidSecret,
    KeybrokerError,
    SecretNotFound,
    SourceUnavailable,
    Unreachable,
    UsageError,
)
from keybroker.model import Request, Secret
from keybroker.record import record
from keybroker.sources.base import AuxEntry, BaseSource, Check, FetchContext, Setting
from keybroker.sources.values import field_names, parse_time, register_leaves

DEFAULT_STAGE = "AWSCURRENT"
DEFAULT_SESSION_NAME = "keybroker"
DEFAULT_CONNECT_TIMEOUT = 3.0
DEFAULT_READ_TIMEOUT = 5.0
DEFAULT_MAX_ATTEMPTS = 3
#: Backoff before retry n is about BACKOFF_BASE * 2**(n-1) seconds (jittered), at most BACKOFF_CAP.
BACKOFF_BASE = 0.2
BACKOFF_CAP = 2.0
#: Assumed-role credentials are reused from the encrypted side store while they have this left.
ROLE_MIN_LEFT = 300.0
#: The JSON key that, next to ``field``, says when the key expires (epoch seconds or ISO 8601).
EXPIRES_FIELD = "expires_at"
#: ``field = "*"``: the whole JSON object, re-serialised compactly (e.g. AWS credentials for
#: ``keybroker aws-credentials``), instead of one of its fields.
WHOLE_DOCUMENT = "*"
#: How many field names an error lists (names only, never values).
OUTPUTS = ("secret", "credentials")

_THROTTLING = frozenset({
    "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottledException",
    "TooManyRequestsException", "RequestLimitExceeded", "RequestThrottled", "SlowDown",
    "BandwidthLimitExceeded", "PriorRequestNotComplete",
})
_TRANSIENT = frozenset({
    "InternalServiceError", "InternalServiceErrorException", "InternalFailure", "InternalError",
    "ServiceUnavailable", "ServiceUnavailableException", "RequestTimeout",
    "RequestTimeoutException",
})
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_REJECTED = frozenset({
    "InvalidClientTokenId", "UnrecognizedClientException", "InvalidSignatureException",
    "SignatureDoesNotMatch", "IncompleteSignature", "MissingAuthenticationToken",
    "InvalidAccessKeyId", "AuthFailure",
})
_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


def _arn_region(secret_id: str) -> str | None:
    """The region inside a Secrets Manager ARN (``arn:aws:secretsmanager:REGION:…``)."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[3]:
        return parts[3]
    return None


@record(frozen=True)
class Target:
    """A request's settings with defaults filled in and environment fallbacks resolved.

    ``region``, ``endpoint_url`` and ``aws_profile`` follow the AWS SDK's own precedence
    (setting, then ``AWS_REGION``/``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_SECRETS_MANAGER``/
    ``AWS_ENDPOINT_URL``, ``AWS_PROFILE``), so the cache key names what botocore will use.
    """

    secret_id: str
    field: str | None
    version_stage: str | None
    version_id: str | None
    region: str | None
    endpoint_url: str | None
    aws_profile: str | None
    role_arn: str | None
    output: str
    external_id: str | None = None
    role_session_name: str = DEFAULT_SESSION_NAME
    role_duration: float | None = None
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    read_timeout: float = DEFAULT_READ_TIMEOUT
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    #: whether the profile came from a setting (botocore then skips env credentials)
    explicit_profile: bool = False

    @classmethod
    def of(cls, settings: Mapping[str, Any], env: Mapping[str, str]) -> Target:
        secret_id = str(settings.get("secret_id") or "")
        version_id = settings.get("version_id") or None
        stage = settings.get("version_stage") or (None if version_id else DEFAULT_STAGE)
        region = (
            settings.get("region")
            or _arn_region(secret_id)
            or env.get("AWS_REGION")
            or env.get("AWS_DEFAULT_REGION")
            or None
        )
        endpoint = settings.get("endpoint_url") or None
        if endpoint is None and not _env_flag(env, "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS"):
            endpoint = (
                env.get("AWS_ENDPOINT_URL_SECRETS_MANAGER") or env.get("AWS_ENDPOINT_URL") or None
            )
        profile = (
            settings.get("aws_profile") or env.get("AWS_PROFILE")
            or env.get("AWS_DEFAULT_PROFILE") or None
        )
        attempts = settings.get("max_attempts")
        return cls(
            secret_id=secret_id,
            field=settings.get("field") or None,
            version_stage=stage,
            version_id=version_id,
            region=region,
            endpoint_url=endpoint,
            aws_profile=profile,
            role_arn=settings.get("role_arn") or None,
            output=str(settings.get("output") or "secret"),
            external_id=settings.get("external_id") or None,
            role_session_name=settings.get("role_session_name") or DEFAULT_SESSION_NAME,
            role_duration=settings.get("role_duration"),
            connect_timeout=float(settings.get("connect_timeout") or DEFAULT_CONNECT_TIMEOUT),
            read_timeout=float(settings.get("read_timeout") or DEFAULT_READ_TIMEOUT),
            max_attempts=max(1, int(attempts)) if attempts is not None else DEFAULT_MAX_ATTEMPTS,
            explicit_profile=bool(settings.get("aws_profile")),
        )

    def label(self) -> str:
        """``name#field@STAGE``: what print-token and cache list show (no secret in it)."""
        text = self.secret_id
        if self.field:
            text += f"#{self.field}"
        if self.version_id:
            text += f"@{self.version_id}"
        elif self.version_stage and self.version_stage != DEFAULT_STAGE:
            text += f"@{self.version_stage}"
        return text

    def where_region(self) -> str:
        return self.region or "the default region"


# --- botocore, loaded only when a network call is needed ---


def _botocore() -> Any:
    """Import botocore (boto3's core) or say what to install (exit 2)."""
    try:
        import botocore.config  # noqa: PLC0415
        import botocore.exceptions  # noqa: PLC0415
        import botocore.session  # noqa: PLC0415
    except ImportError:
        raise SourceUnavailable(
            "the aws source needs boto3",
            "install it: pip install 'keybroker[aws]'",
        ) from None
    return botocore


@record
class _Clients:
    """The botocore session and client config of one call, shared by its clients."""

    session: Any
    config: Any
    target: Target
    #: the longest a single attempt may take (connect or read), for the retry decision
    attempt_bound: float


def _clients(target: Target, ctx: FetchContext) -> _Clients:
    botocore = _botocore()
    left = ctx.timeout()
    connect = max(0.1, min(target.connect_timeout, left))
    read = max(0.1, min(target.read_timeout, left))
    config = botocore.config.Config(
        connect_timeout=connect,
        read_timeout=read,
        # keybroker retries itself (see _call) so that no retry runs past the deadline
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    try:
        session = botocore.session.Session(
            profile=target.aws_profile if target.explicit_profile else None
        )
    except botocore.exceptions.ProfileNotFound:
        raise _profile_not_found(target) from None
    return _Clients(session, config, target, max(connect, read))


def _profile_not_found(target: Target) -> UsageError:
    return UsageError(
        f"aws: AWS profile '{target.aws_profile}' is not in ~/.aws/config or ~/.aws/credentials",
        "fix aws_profile / AWS_PROFILE, or run: aws configure list-profiles",
    )


def _client(
    clients: _Clients, service: str, where: str, credentials: Mapping[str, str] | None = None
) -> Any:
    botocore = _botocore()
    target = clients.target
    kwargs: dict[str, Any] = {"region_name": target.region, "config": clients.config}
    if service == "secretsmanager" and target.endpoint_url:
        kwargs["endpoint_url"] = target.endpoint_url
    if credentials is not None:
        kwargs.update(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"],
        )
    try:
        return clients.session.create_client(service, **kwargs)
    except botocore.exceptions.NoRegionError:
        raise UsageError(
            f"{where}: no AWS region is set",
            "set region in the profile, pass --region, or export AWS_REGION",
        ) from None
    except botocore.exceptions.ProfileNotFound:
        raise _profile_not_found(target) from None
    except (botocore.exceptions.InvalidRegionError, ValueError) as exc:
        raise UsageError(f"{where}: invalid AWS client setting ({type(exc).__name__})",
                         "check region and endpoint_url") from None


def _call(
    client: Any,
    operation: str,
    params: Mapping[str, Any],
    ctx: FetchContext,
    clients: _Clients,
    describe_error: Callable[[BaseException, int], KeybrokerError],
) -> dict[str, Any]:
    """One API call with a few retries for transient failures, all within the deadline."""
    attempt = 0
    while True:
        attempt += 1
        ctx.timeout()  # raises DeadlineExceeded (exit 3) once the budget is spent
        try:
            result: dict[str, Any] = getattr(client, operation)(**params)
            return result
        except KeybrokerError:
            raise
        except Exception as exc:
            error = describe_error(exc, attempt)
            if attempt >= clients.target.max_attempts or not _retryable(exc):
                raise error from None
            delay = min(BACKOFF_CAP, BACKOFF_BASE * 2 ** (attempt - 1))
            delay *= random.uniform(0.5, 1.0)  # noqa: S311 - jitter, not crypto
            if ctx.deadline.remaining() - delay < clients.attempt_bound:
                raise error from None
            time.sleep(delay)


def _error_code(exc: BaseException) -> tuple[str, int]:
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return "", 0
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def _retryable(exc: BaseException) -> bool:
    botocore = _botocore()
    errors = botocore.exceptions
    if isinstance(exc, errors.ClientError):
        code, status = _error_code(exc)
        return code in _THROTTLING or code in _TRANSIENT or status >= 500 or status == 429
    return isinstance(exc, errors.ConnectionError | errors.HTTPClientError)


def translate(
    exc: BaseException,
    *,
    where: str,
    action: str,
    resource: str,
    endpoint: str,
    attempts: int = 1,
    target: Target | None = None,
) -> KeybrokerError:
    """Map a botocore failure to a keybroker error with the right exit code.

    ``action`` is the IAM action (``secretsmanager:GetSecretValue``), ``resource`` what it was
    about (``secret 'litellm'``). Messages use the AWS error *code* only: AWS messages are
    free text, and the code is what a person searches for.
    """
    botocore = _botocore()
    errors = botocore.exceptions
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    region = target.where_region() if target else "the configured region"
    if isinstance(exc, errors.ClientError):
        code, status = _error_code(exc)
        if code == "DecryptionFailure":
            return AccessDenied(
                f"{where}: Secrets Manager could not decrypt {resource} with its KMS key "
                "(DecryptionFailure)",
                "allow kms:Decrypt on the secret's KMS key for this identity (key policy or "
                "IAM), and check the key is enabled",
            )
        if code == "ResourceNotFoundException":
            pinned = ""
            if target and target.version_id:
                pinned = f" (version {target.version_id})"
            elif target and target.version_stage and target.version_stage != DEFAULT_STAGE:
                pinned = f" (no version has stage {target.version_stage})"
            return SecretNotFound(
                f"{where}: {resource} not found in {region}{pinned}",
                "check secret_id and region; list secrets with: aws secretsmanager list-secrets",
            )
        if code in _EXPIRED:
            return AccessDenied(
                f"{where}: the AWS credentials have expired ({code}) calling {action}",
                "refresh them (aws sso login, or renew the session credentials) and retry",
            )
        if code in _REJECTED:
            return AccessDenied(
                f"{where}: AWS rejected the credentials ({code}) calling {action}",
                "check the access key / session token, or the profile, in use; "
                "run: aws sts get-caller-identity",
            )
        if code in _DENIED or status == 403:
            hint = f"grant {action} on {resource} to this identity (IAM policy)"
            if action == "sts:AssumeRole":
                hint = "check the role's trust policy (and external_id) allows this identity"
            return AccessDenied(f"{where}: access denied: {action} on {resource} ({code})", hint)
        if code == "InvalidRequestException":
            return SecretNotFound(
                f"{where}: Secrets Manager refused {action} on {resource} ({code})",
                "is the secret marked for deletion? restore it with: "
                "aws secretsmanager restore-secret",
            )
        if code in _THROTTLING or status == 429:
            return Unreachable(
                f"{where}: AWS throttled {action} ({code}){tries}",
                "retry later; many callers at once? keep the shared cache enabled",
            )
        if status >= 500 or code in _TRANSIENT:
            return Unreachable(
                f"{where}: AWS failed {action} with HTTP {status} ({code}){tries}",
                "a Secrets Manager or endpoint problem; retry later",
            )
        if code in ("InvalidParameterException", "ValidationException"):
            return UsageError(
                f"{where}: AWS rejected the request for {resource} ({code})",
                "check secret_id, version_stage and version_id",
            )
        return Unreachable(f"{where}: AWS refused {action} on {resource} ({code or status})")
    if isinstance(exc, errors.ReadTimeoutError):
        return Unreachable(
            f"{where}: no answer from {endpoint}{tries}",
            "check the network, region and endpoint_url / AWS_ENDPOINT_URL; "
            "raise read_timeout or KEYBROKER_TIMEOUT if it is just slow",
        )
    if isinstance(exc, errors.ConnectionError | errors.HTTPClientError):
        return Unreachable(
            f"{where}: cannot reach {endpoint} ({type(exc).__name__}){tries}",
            "check the network, region and endpoint_url / AWS_ENDPOINT_URL",
        )
    if isinstance(exc, errors.NoCredentialsError):
        return AccessDenied(
            f"{where}: no AWS credentials found (environment, shared files, SSO, "
            "container or instance role)",
            "configure credentials (aws configure, aws sso login) or set aws_profile",
        )
    if isinstance(exc, errors.SSOError | errors.TokenRetrievalError):
        return AccessDenied(
            f"{where}: the AWS SSO session has expired or is missing ({type(exc).__name__})",
            "run: aws sso login" + (f" --profile {target.aws_profile}"
                                    if target and target.aws_profile else ""),
        )
    if isinstance(exc, errors.CredentialRetrievalError):
        return AccessDenied(
            f"{where}: could not obtain AWS credentials ({type(exc).__name__})",
            "check the credential_process / SSO / role settings of the AWS profile",
        )
    if isinstance(exc, errors.ProfileNotFound) and target is not None:
        return _profile_not_found(target)
    if isinstance(exc, errors.NoRegionError):
        return UsageError(
            f"{where}: no AWS region is set",
            "set region in the profile, pass --region, or export AWS_REGION",
        )
    if isinstance(exc, errors.PartialCredentialsError | errors.InvalidConfigError):
        return UsageError(f"{where}: the AWS configuration is incomplete ({type(exc).__name__})",
                          "check ~/.aws/config, ~/.aws/credentials and AWS_* variables")
    if isinstance(exc, errors.ParamValidationError):
        return UsageError(f"{where}: invalid request for {resource} ({type(exc).__name__})",
                          "check secret_id, version_stage and version_id")
    if isinstance(exc, errors.BotoCoreError):
        return Unreachable(f"{where}: AWS SDK error calling {action} ({type(exc).__name__})")
    return Unreachable(f"{where}: unexpected error calling {action} ({type(exc).__name__})")


# --- reading the value ---


def _parse_json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        doc = json.loads(text)
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def parse_expiry(raw: Any, where: str) -> float:
    """``expires_at`` as epoch seconds (a number) or an ISO 8601 time (``…Z`` or offset)."""
    when = parse_time(raw)
    if when is None:
        raise InvalidSecret(
            f"{where}: the secret's '{EXPIRES_FIELD}' is not a time",
            "write epoch seconds or an ISO 8601 time such as 2026-01-31T12:00:00Z",
        )
    return when


def extract(response: Mapping[str, Any], target: Target, where: str,
            ctx: FetchContext) -> tuple[str, float | None]:
    """The key and its expiry from a GetSecretValue answer (``SecretString``/``SecretBinary``)."""
    resource = f"secret '{target.secret_id}'"
    if response.get("SecretString") is not None:
        text = str(response["SecretString"])
        ctx.sensitive(text)
    elif response.get("SecretBinary") is not None:
        raw = bytes(response["SecretBinary"])
        try:
            text = raw.decode("ascii")
        except UnicodeDecodeError:
            ctx.sensitive(raw.decode("latin-1"))
            raise InvalidSecret(
                f"{where}: {resource} holds binary data (SecretBinary) that is not a text key",
                "store the key as SecretString (aws secretsmanager put-secret-value "
                "--secret-string …)",
            ) from None
        ctx.sensitive(text)
        text = text.rstrip("\r\n")  # a key stored from a file usually ends in a newline
        ctx.sensitive(text)
    else:
        raise SecretNotFound(f"{where}: {resource} has no SecretString or SecretBinary")

    doc = _parse_json_object(text)
    if doc is not None:
        register_leaves(doc)
    if target.field is None:
        if doc is not None:
            raise InvalidSecret(
                f"{where}: {resource} is a JSON object, not a key; "
                f"fields: {field_names(doc)}",
                f"set field (--field) to the one that holds the key, or field = "
                f"\"{WHOLE_DOCUMENT}\" for the whole object as compact JSON",
            )
        return text, None
    if doc is not None and target.field == WHOLE_DOCUMENT:
        compact = json.dumps(doc, separators=(",", ":"))
        ctx.sensitive(compact)
        raw_expiry = doc.get(EXPIRES_FIELD)
        return compact, None if raw_expiry is None else parse_expiry(raw_expiry, where)
    if doc is None:
        raise InvalidSecret(
            f"{where}: {resource} is not a JSON object, so field '{target.field}' cannot be read",
            "drop field to use the whole value, or store a JSON object",
        )
    if target.field not in doc:
        raise SecretNotFound(
            f"{where}: field '{target.field}' is not in {resource}; "
            f"fields: {field_names(doc)}",
            "fix field (--field)",
        )
    value = doc[target.field]
    if not isinstance(value, str):
        raise InvalidSecret(
            f"{where}: field '{target.field}' of {resource} is a {_json_kind(value)}, "
            "not a string",
            "store the key as a JSON string",
        )
    expires = doc.get(EXPIRES_FIELD)
    expires_at = None if expires is None or target.field == EXPIRES_FIELD else parse_expiry(
        expires, where
    )
    return value, expires_at


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, list):
        return "list"
    return "object"


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _iso(moment: object) -> str:
    if isinstance(moment, datetime):
        return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(moment)


def _timestamp(moment: object) -> float | None:
    return _aware(moment).timestamp() if isinstance(moment, datetime) else None


# --- the source ---


class AwsSource(BaseSource):
    name = "aws"
    default_storage = "disk"
    settings = (
        Setting("secret_id", help="secret name or ARN"),
        Setting("field", help="JSON key that holds the key, when the secret is a JSON object "
                               "(\"*\": the whole object as compact JSON)"),
        Setting("version_stage",
                help="staging label: AWSCURRENT (default), AWSPREVIOUS, AWSPENDING, …"),
        Setting("version_id", help="pin one version by its VersionId"),
        Setting("region", help="AWS region (default: from the ARN, AWS_REGION, "
                               "AWS_DEFAULT_REGION, the AWS profile)"),
        Setting("aws_profile", help="named profile of ~/.aws/config (default: AWS_PROFILE)"),
        Setting("role_arn", help="IAM role to assume before reading (sts:AssumeRole)"),
        Setting("external_id", identity=False, help="ExternalId for the role's trust policy"),
        Setting("role_session_name", identity=False,
                help=f"RoleSessionName (default '{DEFAULT_SESSION_NAME}')"),
        Setting("role_duration", kind="duration", identity=False,
                help="lifetime of the assumed role's credentials (default: the role's, 1h)"),
        Setting("endpoint_url", help="Secrets Manager API endpoint (VPC or FIPS endpoint, "
                                     "LocalStack); default AWS_ENDPOINT_URL_SECRETS_MANAGER, "
                                     "AWS_ENDPOINT_URL"),
        Setting("connect_timeout", kind="duration", identity=False,
                help=f"per-attempt connect timeout (default {DEFAULT_CONNECT_TIMEOUT:g}s)"),
        Setting("read_timeout", kind="duration", identity=False,
                help=f"per-attempt read timeout (default {DEFAULT_READ_TIMEOUT:g}s)"),
        Setting("max_attempts", kind="int", identity=False,
                help=f"attempts for throttling and network errors (default "
                     f"{DEFAULT_MAX_ATTEMPTS}), within KEYBROKER_TIMEOUT"),
        Setting("output", choices=OUTPUTS,
                help="secret (default) or credentials: print the assumed role's temporary "
                     "credentials as JSON (for awsCredentialExport)"),
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
            items = {"output": target.output, "role_arn": target.role_arn,
                     "region": target.region, "aws_profile": target.aws_profile,
                     "external_id": target.external_id}
        return {k: v for k, v in items.items() if v is not None}

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
                    f"{request.where()}: output = \"credentials\" needs role_arn",
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
        clients = _clients(target, ctx)
        credentials = self._role_credentials(clients, where, ctx)
        if target.output == "credentials":
            assert credentials is not None
            return self._credentials_secret(credentials)
        client = _client(clients, "secretsmanager", where, credentials)
        params: dict[str, Any] = {"SecretId": target.secret_id}
        if target.version_id:
            params["VersionId"] = target.version_id
        if target.version_stage:
            params["VersionStage"] = target.version_stage
        response = _call(
            client, "get_secret_value", params, ctx, clients,
            self._describer(where, "secretsmanager:GetSecretValue", target, client),
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

    def revalidate(
        self, request: Request, version: str | None, ctx: FetchContext
    ) -> bool | None:
        """One DescribeSecret: does the requested stage still point at ``version``?"""
        target = self._target(request, ctx)
        if version is None or target.output != "secret":
            return None
        where = request.where()
        clients = _clients(target, ctx)
        credentials = self._role_credentials(clients, where, ctx)
        client = _client(clients, "secretsmanager", where, credentials)
        response = _call(
            client, "describe_secret", {"SecretId": target.secret_id}, ctx, clients,
            self._describer(where, "secretsmanager:DescribeSecret", target, client),
        )
        if response.get("DeletedDate") is not None:
            return False
        stages: Mapping[str, list[str]] = response.get("VersionIdsToStages") or {}
        if target.version_id:
            # a VersionId's value never changes; it only goes away once it has no stage
            return True if version == target.version_id and version in stages else None
        return target.version_stage in stages.get(version, [])

    def _describer(
        self, where: str, action: str, target: Target, client: Any
    ) -> Callable[[BaseException, int], KeybrokerError]:
        endpoint = str(getattr(getattr(client, "meta", None), "endpoint_url", "") or "AWS")

        def describe(exc: BaseException, attempts: int) -> KeybrokerError:
            return translate(
                exc, where=where, action=action, resource=f"secret '{target.secret_id}'",
                endpoint=endpoint, attempts=attempts, target=target,
            )

        return describe

    # --- roles ---

    def _role_key(self, target: Target) -> str:
        text = json.dumps([target.role_arn, target.aws_profile, target.region,
                           target.external_id, target.role_session_name, target.role_duration])
        return "role-" + hashlib.sha256(text.encode()).hexdigest()[:32]

    def _role_credentials(
        self, clients: _Clients, where: str, ctx: FetchContext
    ) -> dict[str, str] | None:
        """STS AssumeRole credentials for ``role_arn`` (None without a role).

        They are kept in the encrypted side store until ROLE_MIN_LEFT before they expire, so
        a refresh of the key costs one call, not two. ``output = "credentials"`` always asks
        STS anew: the caller wants a full lifetime.
        """
        target = clients.target
        if not target.role_arn:
            return None
        name = self._role_key(target)
        if ctx.aux is not None and target.output == "secret":
            cached = ctx.aux.get(name)
            if cached is not None and cached.expires_at is not None and (
                cached.expires_at - clock.now() > ROLE_MIN_LEFT
            ):
                try:
                    stored = json.loads(cached.value)
                    for key in ("AccessKeyId", "SecretAccessKey", "SessionToken"):
                        ctx.sensitive(stored[key])
                    return {k: str(v) for k, v in stored.items()}
                except (ValueError, KeyError, TypeError):
                    ctx.aux.delete(name)
        sts = _client(clients, "sts", where)
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
            return translate(exc, where=where, action="sts:AssumeRole",
                             resource=f"role {target.role_arn}", endpoint=endpoint,
                             attempts=attempts, target=target)

        response = _call(sts, "assume_role", params, ctx, clients, describe)
        raw = response["Credentials"]
        credentials = {
            "AccessKeyId": str(raw["AccessKeyId"]),
            "SecretAccessKey": str(raw["SecretAccessKey"]),
            "SessionToken": str(raw["SessionToken"]),
            "Expiration": _iso(raw.get("Expiration")),
        }
        for key in ("SecretAccessKey", "SessionToken"):
            ctx.sensitive(credentials[key])
        expires_at = _timestamp(raw.get("Expiration"))
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
        return Secret(value, expires_at=expires_at, version=None, source=self.name,
                      metadata={"access_key_id": credentials["AccessKeyId"]})

    # --- doctor ---

    def doctor(self, request: Request, ctx: FetchContext) -> list[Check]:
        """Credentials (STS caller identity), region, the role, DescribeSecret permission."""
        checks: list[Check] = []
        try:
            target = self._target(request, ctx)
            botocore = _botocore()
        except KeybrokerError as exc:
            return [Check(False, "aws settings", exc.message, exc.hint or "")]
        where = request.where()
        try:
            clients = _clients(target, ctx)
            region = target.region or clients.session.get_config_variable("region")
        except KeybrokerError as exc:
            return [Check(False, "AWS profile", exc.message, exc.hint or "")]
        except botocore.exceptions.BotoCoreError as exc:
            return [Check(False, "AWS configuration", type(exc).__name__,
                          "check ~/.aws/config and AWS_* variables")]
        checks.append(Check(
            bool(region), "AWS region", str(region or "not set"),
            "" if region else "set region in the profile, pass --region, or export AWS_REGION",
        ))
        if target.endpoint_url:
            checks.append(Check(True, "Secrets Manager endpoint", target.endpoint_url))
        if not region:
            return checks

        def attempt(label: str, step: Callable[[], str]) -> bool:
            try:
                checks.append(Check(True, label, step()))
                return True
            except KeybrokerError as exc:
                # doctor names the profile on each line already
                detail = exc.message.removeprefix(f"{where}: ")
                checks.append(Check(False, label, detail, exc.hint or ""))
                return False
            except Exception as exc:  # doctor reports, it never crashes
                checks.append(Check(False, label, f"unexpected {type(exc).__name__}"))
                return False

        def identity() -> str:
            sts = _client(clients, "sts", where)
            endpoint = str(getattr(sts.meta, "endpoint_url", "") or "AWS STS")
            found = _call(sts, "get_caller_identity", {}, ctx, clients,
                          lambda exc, n: translate(exc, where=where,
                                                   action="sts:GetCallerIdentity",
                                                   resource="the caller", endpoint=endpoint,
                                                   attempts=n, target=target))
            creds = clients.session.get_credentials()
            method = getattr(creds, "method", None) or "unknown"
            return f"{found.get('Arn')} (credentials from {method})"

        if not attempt("AWS credentials (sts:GetCallerIdentity)", identity):
            return checks
        credentials: dict[str, str] | None = None

        def assume() -> str:
            nonlocal credentials
            credentials = self._role_credentials(clients, where, ctx)
            assert credentials is not None
            return f"assumed {target.role_arn} until {credentials['Expiration']}"

        if target.role_arn and not attempt("sts:AssumeRole", assume):
            return checks
        if target.output == "credentials":
            return checks

        def describe() -> str:
            client = _client(clients, "secretsmanager", where, credentials)
            found = _call(client, "describe_secret", {"SecretId": target.secret_id}, ctx,
                          clients, self._describer(where, "secretsmanager:DescribeSecret",
                                                   target, client))
            stages: Mapping[str, list[str]] = found.get("VersionIdsToStages") or {}
            if found.get("DeletedDate") is not None:
                raise SecretNotFound(f"secret '{target.secret_id}' is marked for deletion",
                                     "restore it with: aws secretsmanager restore-secret")
            if target.version_id:
                if target.version_id not in stages:
                    raise SecretNotFound(
                        f"version {target.version_id} has no staging label (deprecated or "
                        "gone)", "pin a current version_id or use version_stage")
                return f"{found.get('Name')}: version {target.version_id} present"
            holder = [v for v, labels in stages.items() if target.version_stage in labels]
            if not holder:
                raise SecretNotFound(
                    f"no version of '{target.secret_id}' has stage {target.version_stage}",
                    "use AWSCURRENT or a stage the secret has")
            return f"{found.get('Name')}: {target.version_stage} is version {holder[0]}"

        attempt("secretsmanager:DescribeSecret", describe)
        return checks


SOURCE = AwsSource()
