"""Exceptions that carry the exit code of the output contract (DESIGN section 2).

Every failure a user can meet is one of these, so the CLI can print one clear line and exit
with a documented code instead of a traceback. Messages are written for stderr: they must
never contain a secret, a token or a value read from a source. Build them from names
(profile, path, field, variable) only.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_UNREACHABLE = 3
EXIT_DENIED = 4
EXIT_NOT_FOUND = 5
EXIT_INVALID = 6
EXIT_CACHE = 7
EXIT_LOGIN = 8


class KeybrokerError(Exception):
    """Base error: a message for stderr, an optional hint saying what to do, an exit code."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def render(self) -> str:
        """The stderr line(s): ``keybroker: <message>`` and, when known, what to do next."""
        text = f"keybroker: {self.message}"
        if self.hint:
            text += f"; {self.hint}"
        return text


class UsageError(KeybrokerError):
    """Bad flags, bad config, unknown profile (exit 2)."""

    exit_code = EXIT_USAGE


class ConfigError(UsageError):
    """A config file problem; the message names the file, table and key."""


class SourceUnavailable(UsageError):
    """The source's optional dependency or implementation is not installed (exit 2)."""


class Unreachable(KeybrokerError):
    """Network failure, timeout, 5xx, sealed server, command timed out (exit 3)."""

    exit_code = EXIT_UNREACHABLE


class DeadlineExceeded(Unreachable):
    """The whole call ran out of its KEYBROKER_TIMEOUT budget (exit 3)."""


class AccessDenied(KeybrokerError):
    """Authentication or authorisation refused (exit 4)."""

    exit_code = EXIT_DENIED


class SecretNotFound(KeybrokerError):
    """The secret, version or field does not exist (exit 5)."""

    exit_code = EXIT_NOT_FOUND


class InvalidSecret(KeybrokerError):
    """The value exists but cannot be printed as a key (exit 6)."""

    exit_code = EXIT_INVALID


class CacheError(KeybrokerError):
    """The cache cannot be used safely and that blocks the call (exit 7)."""

    exit_code = EXIT_CACHE


class LoginRequired(KeybrokerError):
    """Only an interactive login can help; helpers never prompt (exit 8)."""

    exit_code = EXIT_LOGIN
