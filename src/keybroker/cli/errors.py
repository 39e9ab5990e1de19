"""The decorator that gives click commands the output contract's exit codes."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import click

from keybroker.cli.runner import debug_enabled, report

F = TypeVar("F", bound=Callable[..., Any])


def handles_errors(func: F) -> F:
    """Map KeybrokerError (and anything unexpected) to one stderr line and its exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except (click.exceptions.Exit, click.ClickException, click.Abort, SystemExit):
            raise
        except BaseException as exc:
            debug = debug_enabled(bool(kwargs.get("debug")))
            raise SystemExit(report(exc, debug)) from None

    return wrapper  # type: ignore[return-value]


def debug_option(func: F) -> F:
    return click.option("--debug", is_flag=True, help="Show tracebacks (secrets scrubbed).")(func)


def config_option(func: F) -> F:
    return click.option(
        "--config", "config_path", type=click.Path(dir_okay=False),
        help="Config file (default: KEYBROKER_CONFIG or the user config).",
    )(func)
