"""``keybroker get PROFILE``: click's view of the helper, for --help and odd command lines.

The same code as the fast path (:mod:`keybroker.cli.fastget`) does the work.
"""

from __future__ import annotations

from typing import Any

import click

from keybroker.cli.errors import helper_options
from keybroker.flags import GET


@click.command("get")
@click.argument("profile")
@helper_options(GET)
def get(profile: str, **flags: Any) -> None:
    """Print PROFILE's key and a newline on stdout (the apiKeyHelper command).

    Nothing else is printed on stdout; failures go to stderr with a documented exit code.
    """
    from keybroker.cli.fastget import run_get  # noqa: PLC0415

    raise SystemExit(run_get({"profile": profile, **flags}))
