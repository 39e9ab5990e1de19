"""The click options that the commands about Claude Code's settings share.

``claude configure`` and ``claude unconfigure`` name the same scopes, managed drop-in and
project folder; ``doctor`` reads the same managed settings and probes the same deployments.
One declaration each keeps their spelling, types and defaults from drifting apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from keybroker.claude.deployments import DEPLOYMENTS
from keybroker.claude.settings import SCOPES as SETTINGS_SCOPES

F = TypeVar("F", bound=Callable[..., Any])

#: Where ``claude configure`` writes and ``unconfigure`` undoes.
SCOPES = click.Choice(SETTINGS_SCOPES)

#: ``--project-dir``: where project and local scope are.
project_dir_option = click.option(
    "--project-dir",
    type=click.Path(file_okay=False),
    help="Project root for --scope project/local (default: the current directory).",
)


def managed_path_option(help_text: str) -> Callable[[F], F]:
    """``--managed-path``: the managed-settings.json (its folder holds the drop-ins)."""
    return click.option("--managed-path", type=click.Path(dir_okay=False), help=help_text)


def drop_in_option(help_text: str) -> Callable[[F], F]:
    """``--drop-in NAME``: keybroker's managed drop-in, ``managed-settings.d/NAME.json``."""
    return click.option(
        "--drop-in", default="keybroker", show_default=True, metavar="NAME", help=help_text
    )


def deployment_option(help_text: str) -> Callable[[F], F]:
    """``--deployment``: the API the gateway speaks (keybroker.claude.deployments)."""
    return click.option(
        "--deployment",
        type=click.Choice(tuple(DEPLOYMENTS)),
        default="anthropic",
        show_default=True,
        help=help_text,
    )
