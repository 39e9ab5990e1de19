"""``keybroker doctor`` for aws profiles: credentials, region, the role, DescribeSecret."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from keybroker.errors import KeybrokerError, SecretNotFound, Unreachable
from keybroker.model import Request
from keybroker.sources.aws.client import call, clients_for, load_botocore, make_client, translate
from keybroker.sources.base import Check, FetchContext

if TYPE_CHECKING:
    from keybroker.sources.aws import AwsSource


def checks(source: AwsSource, request: Request, ctx: FetchContext) -> list[Check]:
    """Credentials (STS caller identity), region, the role, DescribeSecret permission."""
    checks: list[Check] = []
    try:
        target = source._target(request, ctx)
        botocore = load_botocore()
    except KeybrokerError as exc:
        return [Check(False, "aws settings", exc.message, exc.hint or "")]
    where = request.where()
    try:
        clients = clients_for(target, ctx)
        region = target.region or clients.session.get_config_variable("region")
    except KeybrokerError as exc:
        return [Check(False, "AWS profile", exc.message, exc.hint or "")]
    except botocore.exceptions.BotoCoreError as exc:
        return [
            Check(
                False,
                "AWS configuration",
                type(exc).__name__,
                "check ~/.aws/config and AWS_* variables",
            )
        ]
    checks.append(
        Check(
            bool(region),
            "AWS region",
            str(region or "not set"),
            "" if region else "set region in the profile, pass --region, or export AWS_REGION",
        )
    )
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
        sts = make_client(clients, "sts", where)
        endpoint = str(getattr(sts.meta, "endpoint_url", "") or "AWS STS")
        found = call(
            sts,
            "get_caller_identity",
            {},
            ctx,
            clients,
            lambda exc, n: translate(
                exc,
                where=where,
                action="sts:GetCallerIdentity",
                resource="the caller",
                endpoint=endpoint,
                attempts=n,
                target=target,
            ),
        )
        creds = clients.session.get_credentials()
        method = getattr(creds, "method", None) or "unknown"
        return f"{found.get('Arn')} (credentials from {method})"

    identity_label = "AWS credentials (sts:GetCallerIdentity)"
    unreachable_sts: Unreachable | None = None

    def identity_or_unreachable() -> str:
        nonlocal unreachable_sts
        try:
            return identity()
        except Unreachable as exc:
            # A VPC-endpoint network often reaches Secrets Manager (endpoint_url) but
            # not STS: the check is then decided by DescribeSecret below.
            if target.role_arn or not target.endpoint_url:
                raise
            unreachable_sts = exc
            return ""

    if not attempt(identity_label, identity_or_unreachable):
        return checks
    if unreachable_sts is not None:
        checks.pop()  # replaced once DescribeSecret has answered
    credentials: dict[str, str] | None = None

    def assume() -> str:
        nonlocal credentials
        credentials = source._role_credentials(clients, where, ctx)
        assert credentials is not None
        return f"assumed {target.role_arn} until {credentials['Expiration']}"

    if target.role_arn and not attempt("sts:AssumeRole", assume):
        return checks
    if target.output == "credentials":
        return checks

    def describe() -> str:
        found = source._secrets_manager(
            clients, where, credentials, ctx, "describe_secret", {"SecretId": target.secret_id}
        )
        stages: Mapping[str, list[str]] = found.get("VersionIdsToStages") or {}
        if found.get("DeletedDate") is not None:
            raise SecretNotFound(
                f"secret '{target.secret_id}' is marked for deletion",
                "restore it with: aws secretsmanager restore-secret",
            )
        if target.version_id:
            if target.version_id not in stages:
                raise SecretNotFound(
                    f"version {target.version_id} has no staging label (deprecated or gone)",
                    "pin a current version_id or use version_stage",
                )
            return f"{found.get('Name')}: version {target.version_id} present"
        holder = [v for v, labels in stages.items() if target.version_stage in labels]
        if not holder:
            raise SecretNotFound(
                f"no version of '{target.secret_id}' has stage {target.version_stage}",
                "use AWSCURRENT or a stage the secret has",
            )
        return f"{found.get('Name')}: {target.version_stage} is version {holder[0]}"

    described = attempt("secretsmanager:DescribeSecret", describe)
    if unreachable_sts is not None:
        detail = unreachable_sts.message.removeprefix(f"{where}: ")
        if described:
            checks.insert(
                -1,
                Check(
                    True,
                    identity_label,
                    (
                        f"skipped: STS is not reachable from here ({detail}); not needed, "
                        f"Secrets Manager accepts these credentials at {target.endpoint_url}"
                    ),
                ),
            )
        else:
            checks.insert(-1, Check(False, identity_label, detail, unreachable_sts.hint or ""))
    return checks
