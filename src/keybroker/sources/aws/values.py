"""``aws`` source: the value out of a GetSecretValue answer (string, JSON field, binary)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from keybroker.errors import (
    InvalidSecret,
    SecretNotFound,
)
from keybroker.sources.answers import loads
from keybroker.sources.aws.target import EXPIRES_FIELD, WHOLE_DOCUMENT, Target
from keybroker.sources.base import FetchContext
from keybroker.sources.values import field_names, parse_time, register_leaves

# --- reading the value ---


def _parse_json_object(text: str) -> dict[str, Any] | None:
    if not text.lstrip().startswith("{"):
        return None
    try:
        doc = loads(text, "the secret's JSON")  # exit 6 when absurdly nested
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


def extract(
    response: Mapping[str, Any], target: Target, where: str, ctx: FetchContext
) -> tuple[str, float | None]:
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
                f"{where}: {resource} is a JSON object, not a key; fields: {field_names(doc)}",
                f"set field (--field) to the one that holds the key, or field = "
                f'"{WHOLE_DOCUMENT}" for the whole object as compact JSON',
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
            f"{where}: field '{target.field}' is not in {resource}; fields: {field_names(doc)}",
            "fix field (--field)",
        )
    value = doc[target.field]
    if not isinstance(value, str):
        raise InvalidSecret(
            f"{where}: field '{target.field}' of {resource} is a {_json_kind(value)}, not a string",
            "store the key as a JSON string",
        )
    expires = doc.get(EXPIRES_FIELD)
    expires_at = (
        None if expires is None or target.field == EXPIRES_FIELD else parse_expiry(expires, where)
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


def iso(moment: object) -> str:
    if isinstance(moment, datetime):
        return _aware(moment).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(moment)


def timestamp(moment: object) -> float | None:
    return _aware(moment).timestamp() if isinstance(moment, datetime) else None
