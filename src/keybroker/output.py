"""The text formats keybroker hands secrets over in (DESIGN section 6: ``output.py``).

Each function is pure: it turns ``(NAME, value)`` pairs into the exact text a consumer parses
(a shell ``eval``, a dotenv reader, GitHub's ``$GITHUB_ENV`` file, a JSON reader, Claude Code's
``headersHelper`` and ``awsCredentialExport``). Writing the text somewhere, and deciding what
may go to stdout, is the commands' job. Values reaching here already passed ``validate_key``
(one token of printable ASCII), but quoting is still done properly rather than relying on it.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from keybroker.errors import InvalidSecret, SecretNotFound, UsageError
from keybroker.redact import derived_forms

#: Portable environment variable names (POSIX shells, dotenv, GitHub, GitLab).
VAR_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
#: HTTP header field names and auth schemes are RFC 9110 tokens.
HTTP_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+\Z")

FORMATS = ("github", "gitlab", "shell", "dotenv", "json")

Pairs = Sequence[tuple[str, str]]


def check_var_name(name: str) -> str:
    """Refuse a name a shell or CI system would mangle (it would also allow injection)."""
    if not VAR_NAME.match(name):
        raise UsageError(
            f"invalid variable name {name!r}",
            "use letters, digits and underscores, not starting with a digit",
        )
    return name


# --- shell, dotenv, json ---


def shell_quote(value: str) -> str:
    """Single-quote ``value`` for POSIX sh: inside '…' nothing is special except ' itself."""
    return "'" + value.replace("'", "'\"'\"'") + "'"


def shell(pairs: Pairs) -> str:
    """``export NAME='value'`` lines, safe for ``eval "$(…)"`` in sh, dash, bash and zsh."""
    return "".join(f"export {check_var_name(n)}={shell_quote(v)}\n" for n, v in pairs)


def _check_line(name: str, value: str) -> None:
    check_var_name(name)
    if "\n" in value or "\r" in value:  # pragma: no cover - validate_key forbids it
        raise InvalidSecret(f"the value of {name} contains a line break")


def dotenv_quote(value: str) -> str:
    """``value`` as python-dotenv reads it back unchanged, interpolation on (its default).

    Single quotes, in which python-dotenv decodes only ``\\`` and ``\'``. It then expands
    ``${NAME}`` and ``${NAME:-default}`` even there, and has no escape for ``$``; but a
    variable with an empty name (which no environment or dotenv file can define) falls back
    to its default, so each ``${`` is written ``${:-$}{``, which reads back as ``${``.
    """
    escaped = value.replace("\\", "\\\\").replace("'", "\\'").replace("${", "${:-$}{")
    return f"'{escaped}'"


def dotenv(pairs: Pairs) -> str:
    """``NAME='value'`` lines in python-dotenv's syntax (see :func:`dotenv_quote`)."""
    for name, value in pairs:
        _check_line(name, value)
    return "".join(f"{n}={dotenv_quote(v)}\n" for n, v in pairs)


def plain_env(pairs: Pairs) -> str:
    """``NAME=value`` lines, unquoted: GitLab's dotenv reports (and ``docker --env-file``).

    GitLab's reader keeps quotes as part of the value and expands nothing, and keys have no
    whitespace or newlines (validate_key), so the plain form is the faithful one there.
    """
    for name, value in pairs:
        _check_line(name, value)
    return "".join(f"{n}={v}\n" for n, v in pairs)


def json_object(pairs: Pairs) -> str:
    """``{"NAME": "value"}`` and a newline."""
    return json.dumps({check_var_name(n): v for n, v in pairs}) + "\n"


# --- GitHub Actions ---


def github_escape_data(text: str) -> str:
    """Escape workflow-command data as @actions/core does, so the runner reads back ``text``."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def github_mask_lines(values: Iterable[str]) -> str:
    """``::add-mask::`` for every line of every value and of each form derived from it."""
    lines: list[str] = []
    for value in values:
        for form in derived_forms(value):
            for line in form.splitlines() or [form]:
                if line.strip() and line not in lines:
                    lines.append(line)
    return "".join(f"::add-mask::{github_escape_data(line)}\n" for line in lines)


def github_env_block(name: str, value: str, delimiter: str | None = None) -> str:
    """One ``$GITHUB_ENV`` entry in the heredoc form with a random delimiter.

    The random delimiter is what stops a value from ending the block early and injecting
    other variables (the reason GitHub deprecated ``NAME=value`` for untrusted values).
    """
    check_var_name(name)
    delimiter = delimiter or f"ghadelimiter_{secrets.token_hex(16)}"
    if delimiter in name or delimiter in value:  # pragma: no cover - 128 random bits
        raise UsageError("could not choose a safe $GITHUB_ENV delimiter; try again")
    return f"{name}<<{delimiter}\n{value}\n{delimiter}\n"


# --- headersHelper ---


#: Headers whose value defaults to ``Bearer <key>``; any other header gets the bare key.
AUTH_HEADERS = ("authorization", "proxy-authorization")


def header_value(value: str, scheme: str | None, header: str = "Authorization") -> str:
    """One header's value: ``<scheme> <value>``, or ``value`` alone for an empty scheme.

    ``scheme`` None means the default: ``Bearer`` for Authorization-type headers, the raw
    value for any other header (such as ``X-Api-Key``). The one place that default lives
    (``headers --format value``, ``--proxy-authorization-command``, the JSON below).
    """
    chosen = scheme
    if chosen is None:
        chosen = "Bearer" if header.lower() in AUTH_HEADERS else ""
    if chosen and not HTTP_TOKEN.match(chosen):
        raise UsageError(f"invalid auth scheme {chosen!r}")
    return f"{chosen} {value}" if chosen else value


def headers(names: Sequence[str], value: str, scheme: str | None) -> str:
    """A JSON object of HTTP headers, as Claude Code's ``headersHelper`` hooks expect.

    Each value as :func:`header_value` makes it for its header.
    """
    out: dict[str, str] = {}
    for name in names:
        if not HTTP_TOKEN.match(name):
            raise UsageError(f"invalid header name {name!r}")
        out[name] = header_value(value, scheme, name)
    return json.dumps(out) + "\n"


# --- awsCredentialExport ---

_AWS_NAMES: dict[str, tuple[str, ...]] = {
    "AccessKeyId": ("AccessKeyId", "access_key", "aws_access_key_id", "accessKeyId"),
    "SecretAccessKey": (
        "SecretAccessKey",
        "secret_key",
        "aws_secret_access_key",
        "secretAccessKey",
    ),
    "SessionToken": (
        "SessionToken",
        "security_token",
        "session_token",
        "aws_session_token",
        "sessionToken",
    ),
    "Expiration": ("Expiration", "expiration", "expires_at"),
}


def iso8601(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _pick(data: Mapping[str, Any], field: str) -> Any:
    for name in _AWS_NAMES[field]:
        if data.get(name) not in (None, ""):
            return data[name]
    return None


def aws_credentials(
    value: str, expires_at: float | None, where: str
) -> tuple[dict[str, Any], list[str]]:
    """Parse a profile's value into ``{"Credentials": {…}}``; also return the secret parts.

    Accepts STS/``credential_process`` names (``AccessKeyId`` …) and Vault AWS-engine names
    (``access_key``/``secret_key``/``security_token``), at the top level or under
    ``Credentials``/``data``. Errors name fields, never values.
    """
    try:
        data = json.loads(value)
    except ValueError:
        raise InvalidSecret(
            f"{where}: the secret is not JSON, so it cannot hold AWS credentials",
            "point the profile at a secret with AccessKeyId/SecretAccessKey "
            "(or Vault's access_key/secret_key)",
        ) from None
    if isinstance(data, dict):
        for wrapper in ("Credentials", "credentials", "data"):
            inner = data.get(wrapper)
            if isinstance(inner, dict) and _pick(inner, "AccessKeyId") is not None:
                data = inner
                break
    if not isinstance(data, dict):
        raise InvalidSecret(f"{where}: the secret is JSON but not an object")
    creds: dict[str, Any] = {}
    for field in ("AccessKeyId", "SecretAccessKey"):
        found = _pick(data, field)
        if not isinstance(found, str):
            names = " or ".join(_AWS_NAMES[field][:2])
            raise SecretNotFound(f"{where}: the secret has no {names} field")
        creds[field] = found
    token = _pick(data, "SessionToken")
    if isinstance(token, str):
        creds["SessionToken"] = token
    expiration = _pick(data, "Expiration")
    if isinstance(expiration, int | float) and not isinstance(expiration, bool):
        creds["Expiration"] = iso8601(float(expiration))
    elif isinstance(expiration, str):
        creds["Expiration"] = expiration
    elif expires_at is not None:
        creds["Expiration"] = iso8601(expires_at)
    secret_parts = [creds["SecretAccessKey"]] + ([token] if isinstance(token, str) else [])
    return {"Credentials": creds}, secret_parts
