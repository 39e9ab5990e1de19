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


def helper_option(name: str, dest: str | None = None) -> Callable[[F], F]:
    """click's option for flag ``name`` of :mod:`keybroker.flags` (the one declaration)."""
    from keybroker import flags  # noqa: PLC0415

    item = flags.flag(name)
    decls = (item.name, dest or item.dest)
    if item.kind == flags.SWITCH:
        return click.option(*decls, is_flag=True, help=item.help)
    kind = click.Path(dir_okay=False) if item.kind == flags.FILE else None
    return click.option(*decls, type=kind, help=item.help)


def helper_options(helper: str) -> Callable[[F], F]:
    """Every flag of ``helper`` (``flags.GET``), in the table's order, as click options."""
    from keybroker import flags  # noqa: PLC0415

    def apply(func: F) -> F:
        for item in reversed(flags.of(helper)):
            func = helper_option(item.name)(func)
        return func

    return apply


def format_option(choices: tuple[str, ...], help: str) -> Callable[[F], F]:
    """``--format``, one of ``choices`` (the first is the default), into ``fmt``: the commands
    whose output comes in several forms take it with the same spelling and behaviour."""
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(choices),
        default=choices[0],
        show_default=True,
        help=help,
    )


def debug_option(func: F) -> F:
    return helper_option("--debug")(func)


def config_option(func: F) -> F:
    return helper_option("--config", "config_path")(func)


def no_cache_option(func: F) -> F:
    return helper_option("--no-cache")(func)
