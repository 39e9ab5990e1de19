"""``aws`` source: botocore clients, bounded retries, and AWS errors mapped to exit codes.

botocore (~100 ms to import, ~200 ms more to build a client) is imported only here, only when
a network call is needed. Its own retries are off: :func:`call` retries transient failures a
few times with a short backoff, never past the call's deadline.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from keybroker.errors import (
    AccessDenied,
    KeybrokerError,
    SecretNotFound,
    Unreachable,
    UsageError,
)
from keybroker.sources.aws.target import (
    BACKOFF_BASE,
    BACKOFF_CAP,
    DEFAULT_STAGE,
    Target,
)
from keybroker.sources.base import FetchContext

_THROTTLING = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "RequestLimitExceeded",
        "RequestThrottled",
        "SlowDown",
        "BandwidthLimitExceeded",
        "PriorRequestNotComplete",
    }
)
_TRANSIENT = frozenset(
    {
        "InternalServiceError",
        "InternalServiceErrorException",
        "InternalFailure",
        "InternalError",
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
_EXPIRED = frozenset({"ExpiredToken", "ExpiredTokenException", "RequestExpired"})
_REJECTED = frozenset(
    {
        "InvalidClientTokenId",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "MissingAuthenticationToken",
        "InvalidAccessKeyId",
        "AuthFailure",
    }
)
_DENIED = frozenset({"AccessDeniedException", "AccessDenied", "UnauthorizedOperation"})


# --- botocore, loaded only when a network call is needed ---


def load_botocore() -> Any:
    """Import botocore (boto3's core) or say which command installs it (exit 2)."""
    from keybroker.extras import require  # noqa: PLC0415

    for module in ("botocore.config", "botocore.exceptions", "botocore.session"):
        require(module, "aws", "the aws source")
    return require("botocore", "aws", "the aws source")


@dataclass
class Clients:
    """The botocore session and client config of one call, shared by its clients."""

    session: Any
    config: Any
    target: Target
    #: the longest a single attempt may take (connect or read), for the retry decision
    attempt_bound: float


#: Credentials botocore may take from the environment: secrets, whether or not they are used.
_ENV_SECRETS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN")


def clients_for(target: Target, ctx: FetchContext) -> Clients:
    botocore = load_botocore()
    for name in _ENV_SECRETS:  # an AWS error (or a traceback) could echo them
        ctx.sensitive(ctx.env.get(name))
    left = ctx.timeout()
    connect = max(0.1, min(target.connect_timeout, left))
    read = max(0.1, min(target.read_timeout, left))
    config = botocore.config.Config(
        connect_timeout=connect,
        read_timeout=read,
        # keybroker retries itself (see call) so that no retry runs past the deadline
        retries={"total_max_attempts": 1, "mode": "standard"},
    )
    try:
        session = botocore.session.Session(
            profile=target.aws_profile if target.explicit_profile else None
        )
    except botocore.exceptions.ProfileNotFound:
        raise _profile_not_found(target) from None
    return Clients(session, config, target, max(connect, read))


def _profile_not_found(target: Target) -> UsageError:
    return UsageError(
        f"aws: AWS profile '{target.aws_profile}' is not in ~/.aws/config or ~/.aws/credentials",
        "fix aws_profile / AWS_PROFILE, or run: aws configure list-profiles",
    )


def make_client(
    clients: Clients, service: str, where: str, credentials: Mapping[str, str] | None = None
) -> Any:
    botocore = load_botocore()
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
        client = clients.session.create_client(service, **kwargs)
    except (botocore.exceptions.InvalidRegionError, ValueError) as exc:
        raise UsageError(
            f"{where}: invalid AWS client setting ({type(exc).__name__})",
            "check region and endpoint_url",
        ) from None
    except botocore.exceptions.BotoCoreError as exc:  # no region, no such profile …
        error = setup_error(exc, where, target)
        if error is None:
            raise
        raise error from None
    _bound_answers(client, f"{where}: {service} at {target.endpoint_url or 'AWS'}")
    return client


def _bound_answers(client: Any, what: str) -> None:
    """Read every answer of ``client`` bounded in size and JSON depth (exit 6 otherwise).

    botocore reads a whole body into memory and parses it itself (a 100 MB answer from a
    hostile ``endpoint_url`` took 345 MB; JSON nested 100000 deep raised RecursionError). Its
    HTTP session leaves a body unread when the request is marked ``stream_output``, so it is
    marked, and the body is read here, in chunks, stopping at the bound
    (:mod:`keybroker.sources.answers`); botocore then parses what was read. Without that
    session (a botocore that changed it) nothing is wrapped.
    """
    from keybroker.sources import answers  # noqa: PLC0415

    http = getattr(getattr(client, "_endpoint", None), "http_session", None)
    send = getattr(http, "send", None)
    if http is None or send is None:  # pragma: no cover - botocore internals moved
        return

    def bounded_send(request: Any) -> Any:
        streaming = request.stream_output
        request.stream_output = True  # botocore then leaves the body unread
        try:
            response = send(request)
        finally:
            request.stream_output = streaming
        if streaming:  # pragma: no cover - no streaming operation is used
            return response
        raw = response.raw
        try:
            body = answers.read_capped(
                raw.stream(answers.CHUNK), what, declared=response.headers.get("content-length")
            )
        except BaseException:
            raw.close()  # not read to its end: the connection is dropped, not reused
            raise
        if answers.looks_like_json(body):
            answers.check_depth(body, what)
        response._content = body  # what AWSResponse.content would have read (unbounded)
        return response

    http.send = bounded_send


def call(
    client: Any,
    operation: str,
    params: Mapping[str, Any],
    ctx: FetchContext,
    clients: Clients,
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


#: Every code :func:`translate` treats specially; any other is the server's free text.
_KNOWN = (
    _THROTTLING
    | _TRANSIENT
    | _EXPIRED
    | _REJECTED
    | _DENIED
    | {
        "DecryptionFailure",
        "ResourceNotFoundException",
        "InvalidRequestException",
        "InvalidParameterException",
        "ValidationException",
    }
)
_MAX_CODE = 64


def shown_code(code: str) -> str:
    """An AWS error code fit to quote: a known code as is; any other scrubbed and shortened.

    The code comes from the endpoint (``endpoint_url`` may be anything), so an unknown one is
    treated like any quoted server text (see :func:`keybroker.redact.scrub_quoted`).
    """
    if code in _KNOWN:
        return code
    from keybroker.redact import scrub_quoted  # noqa: PLC0415

    cleaned = scrub_quoted(code)
    return cleaned if len(cleaned) <= _MAX_CODE else cleaned[: _MAX_CODE - 1] + "…"


def _retryable(exc: BaseException) -> bool:
    botocore = load_botocore()
    errors = botocore.exceptions
    if isinstance(exc, errors.ClientError):
        code, status = _error_code(exc)
        return code in _THROTTLING or code in _TRANSIENT or status >= 500 or status == 429
    return isinstance(exc, errors.ConnectionError | errors.HTTPClientError)


def setup_error(exc: BaseException, where: str, target: Target | None) -> KeybrokerError | None:
    """What botocore not finding credentials, a profile or a region means (exit 4 or 2), or
    None for any other failure. Building a client raises these as well as a call does: both
    say it the same way."""
    errors = load_botocore().exceptions
    if isinstance(exc, errors.NoCredentialsError):
        return AccessDenied(
            f"{where}: no AWS credentials found (environment, shared files, SSO, "
            "container or instance role)",
            "configure credentials (aws configure, aws sso login) or set aws_profile",
        )
    if isinstance(exc, errors.SSOError | errors.TokenRetrievalError):
        return AccessDenied(
            f"{where}: the AWS SSO session has expired or is missing ({type(exc).__name__})",
            "run: aws sso login"
            + (f" --profile {target.aws_profile}" if target and target.aws_profile else ""),
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
        return UsageError(
            f"{where}: the AWS configuration is incomplete ({type(exc).__name__})",
            "check ~/.aws/config, ~/.aws/credentials and AWS_* variables",
        )
    return None


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
    botocore = load_botocore()
    errors = botocore.exceptions
    tries = f" after {attempts} attempts" if attempts > 1 else ""
    region = target.where_region() if target else "the configured region"
    if isinstance(exc, errors.ClientError):
        code, status = _error_code(exc)
        code = shown_code(code)
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
    setup = setup_error(exc, where, target)
    if setup is not None:
        return setup
    if isinstance(exc, errors.ParamValidationError):
        return UsageError(
            f"{where}: invalid request for {resource} ({type(exc).__name__})",
            "check secret_id, version_stage and version_id",
        )
    if isinstance(exc, errors.BotoCoreError):
        return Unreachable(f"{where}: AWS SDK error calling {action} ({type(exc).__name__})")
    return Unreachable(f"{where}: unexpected error calling {action} ({type(exc).__name__})")
