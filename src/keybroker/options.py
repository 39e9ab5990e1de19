"""How a request is served — freshness, storage, deadline — and how the option layers merge.

Precedence: flags > the profile's table > environment (``KEYBROKER_*``) > ``[defaults]`` >
built-in defaults; T comes from ``CLAUDE_CODE_API_KEY_HELPER_TTL_MS``. This module is on the
cache-hit path, so it uses plain classes (no dataclasses) and imports almost nothing.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing is not imported at run time: this module is on the hit path
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT_TTL = 300.0
DEFAULT_MARGIN = 60.0
DEFAULT_ADVISORY = 300.0
DEFAULT_MAX_STALE = 3600.0
DEFAULT_TIMEOUT = 20.0

OPTION_KEYS = ("max_age", "margin", "advisory", "max_stale", "storage", "repeat", "timeout")
STORAGE_CHOICES = ("disk", "none")
REPEAT_CHOICES = ("auto", "on", "off")

_ENV_OPTIONS = {
    "KEYBROKER_TIMEOUT": "timeout",
    "KEYBROKER_MARGIN": "margin",
    "KEYBROKER_ADVISORY": "advisory",
    "KEYBROKER_MAX_STALE": "max_stale",
    "KEYBROKER_REPEAT": "repeat",
}


class Options:
    """The serving options of one request (immutable by convention)."""

    __slots__ = (
        "advisory",
        "margin",
        "max_age",
        "max_stale",
        "repeat",
        "storage",
        "timeout",
        "ttl",
    )

    def __init__(
        self,
        ttl: float = DEFAULT_TTL,
        margin: float = DEFAULT_MARGIN,
        advisory: float = DEFAULT_ADVISORY,
        max_age: float | None = None,
        max_stale: float = DEFAULT_MAX_STALE,
        storage: str = "disk",
        repeat: str = "auto",
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        self.ttl = ttl
        self.margin = margin
        self.advisory = advisory
        self.max_age = max_age
        self.max_stale = max_stale
        self.storage = storage
        self.repeat = repeat
        self.timeout = timeout

    @property
    def need(self) -> float:
        """Remaining lifetime a served key must have: Claude Code's TTL plus the margin."""
        return self.ttl + self.margin

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"Options({fields})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Options):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, n) for n in self.__slots__))


def parse_option(key: str, value: Any, where: str) -> Any:
    """Validate one option value; durations become seconds. Errors name ``where`` and key."""
    from keybroker.durations import parse_duration  # noqa: PLC0415 - off the hit path
    from keybroker.errors import ConfigError  # noqa: PLC0415

    if key in ("max_age", "margin", "advisory", "max_stale", "timeout"):
        try:
            return parse_duration(value)
        except ValueError as exc:
            raise ConfigError(f"{where} key '{key}': {exc}") from None
    if key == "storage":
        if value not in STORAGE_CHOICES:
            raise ConfigError(f'{where} key \'storage\': must be "disk" or "none", got {value!r}')
        return value
    if key == "repeat":
        if value not in REPEAT_CHOICES:
            raise ConfigError(f"{where} key 'repeat': must be auto, on or off, got {value!r}")
        return value
    raise ConfigError(f"{where}: unknown option '{key}'")


def helper_ttl(env: Mapping[str, str]) -> float:
    """Claude Code's helper TTL in seconds, from CLAUDE_CODE_API_KEY_HELPER_TTL_MS."""
    raw = env.get("CLAUDE_CODE_API_KEY_HELPER_TTL_MS", "").strip()
    if not raw:
        return DEFAULT_TTL
    from keybroker.errors import UsageError  # noqa: PLC0415 - only when the variable is set

    try:
        value = float(raw) / 1000.0
    except ValueError:
        raise UsageError(
            f"CLAUDE_CODE_API_KEY_HELPER_TTL_MS={raw!r} is not a number of milliseconds"
        ) from None
    if not value > 0 or value == float("inf"):
        raise UsageError("CLAUDE_CODE_API_KEY_HELPER_TTL_MS must be a positive number")
    return value


def build_options(
    source_default_storage: str,
    profile_options: Mapping[str, Any],
    defaults: Mapping[str, Any],
    env: Mapping[str, str],
    flags: Mapping[str, Any] | None = None,
) -> Options:
    """Merge the option layers into Options."""
    merged: dict[str, Any] = {"storage": source_default_storage}
    merged.update(defaults)
    for var, key in _ENV_OPTIONS.items():
        if env.get(var):
            from keybroker.errors import ConfigError, UsageError  # noqa: PLC0415

            try:
                merged[key] = parse_option(key, env[var], f"environment variable {var}")
            except ConfigError as exc:
                raise UsageError(exc.message) from None
    merged.update(profile_options)
    if flags:
        merged.update({k: v for k, v in flags.items() if v is not None})
    return Options(
        ttl=helper_ttl(env),
        margin=float(merged.get("margin", DEFAULT_MARGIN)),
        advisory=float(merged.get("advisory", DEFAULT_ADVISORY)),
        max_age=merged.get("max_age"),
        max_stale=float(merged.get("max_stale", DEFAULT_MAX_STALE)),
        storage=str(merged["storage"]),
        repeat=str(merged.get("repeat", "auto")),
        timeout=float(merged.get("timeout", DEFAULT_TIMEOUT)),
    )
