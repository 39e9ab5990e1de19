"""``aws`` source: its settings, resolved into a Target (no botocore: on the hit path)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

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


def _env_flag(env: Mapping[str, str], name: str) -> bool:
    return env.get(name, "").strip().lower() in ("1", "true", "yes")


def _arn_region(secret_id: str) -> str | None:
    """The region inside a Secrets Manager ARN (``arn:aws:secretsmanager:REGION:…``)."""
    parts = secret_id.split(":")
    if len(parts) >= 7 and parts[0] == "arn" and parts[2] == "secretsmanager" and parts[3]:
        return parts[3]
    return None


@dataclass(frozen=True)
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
            settings.get("aws_profile")
            or env.get("AWS_PROFILE")
            or env.get("AWS_DEFAULT_PROFILE")
            or None
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
