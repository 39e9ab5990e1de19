"""Optional packages (the ``vault``/``aws``/``keychain``/``oidc`` extras), imported on demand.

A missing optional package is the user's to fix with one command, so it is a usage error
(exit 2) whose hint is that exact command for the way keybroker was installed: a uv tool,
pipx, a virtualenv, or plain pip. Every source and command imports its optional SDK through
:func:`require`, so the message is the same everywhere.
"""

from __future__ import annotations

import importlib
import sys
from types import ModuleType

from keybroker.errors import SourceUnavailable

#: extra → (the package it installs, the module whose presence says it is installed)
EXTRAS: dict[str, tuple[str, str]] = {
    "vault": ("hvac", "hvac"),
    "aws": ("boto3", "botocore"),
    "keychain": ("keyring", "keyring"),
    "oidc": ("requests", "requests"),
}


def require(module: str, extra: str, feature: str) -> ModuleType:
    """Import ``module`` (e.g. ``"botocore.session"``) or raise exit 2 naming the command.

    ``feature`` says who needs it, e.g. ``"the aws source"``. Any ImportError counts: a
    package whose own dependency is missing is just as unusable, and the same command fixes it.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package, provides = EXTRAS.get(extra, (extra, extra))
        missing = getattr(exc, "name", None) or module
        known = missing.partition(".")[0] in (package, provides)
        detail = "" if known else f" ({missing} is missing)"
        raise SourceUnavailable(
            f"{feature} needs {package}, which is not installed{detail}",
            f"install it: {install_command(extra)}",
        ) from None


def install_command(extra: str) -> str:
    """The command that adds ``extra`` to this installation of keybroker."""
    prefix = sys.prefix.replace("\\", "/")
    if "/uv/tools/" in prefix:
        # a uv tool's requirements are replaced, not added to: keep the extras it already has
        return f"uv tool install '{_spec(_installed_extras() | {extra})}'"
    if "/pipx/venvs/" in prefix:
        return f"pipx inject keybroker {EXTRAS.get(extra, (extra, extra))[0]}"
    spec = _spec({extra})
    if sys.prefix != sys.base_prefix:  # a virtualenv: name its interpreter, not a PATH pip
        if _has_module("pip"):
            return f"{sys.executable} -m pip install '{spec}'"
        return f"uv pip install --python {sys.executable} '{spec}'"
    return f"pip install '{spec}' (or for a uv tool: uv tool install '{spec}')"


def _spec(extras: set[str]) -> str:
    return f"keybroker[{','.join(sorted(extras))}]"


def _installed_extras() -> set[str]:
    return {name for name, (_, module) in EXTRAS.items() if _has_module(module)}


def _has_module(name: str) -> bool:
    """Whether ``name`` can be imported, without importing it."""
    import importlib.util  # noqa: PLC0415

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False
