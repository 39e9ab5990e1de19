"""The click group. Subcommands live one per module and are imported only when invoked."""

from __future__ import annotations

import importlib
from typing import Any

import click

from keybroker import __version__

#: command name → "module:attribute"; a command's module loads only when it runs.
COMMANDS: dict[str, str] = {
    "get": "keybroker.cli.get:get",
    "print-token": "keybroker.cli.print_token:print_token",
    "cache": "keybroker.cli.cache_cmd:cache",
    "keychain": "keybroker.cli.keychain_cmd:keychain",
    "login": "keybroker.cli.login:login",
    "doctor": "keybroker.cli.doctor:doctor",
    "ci": "keybroker.cli.ci:ci",
    "exec": "keybroker.cli.exec_cmd:exec_",
    "claude": "keybroker.cli.claude:claude",
    "headers": "keybroker.cli.headers:headers",
    "aws-credentials": "keybroker.cli.aws_credentials:aws_credentials",
    "events": "keybroker.cli.events_cmd:events_cmd",
    "config": "keybroker.cli.config_cmd:config",
    "completion": "keybroker.cli.completion:completion",
    "credential": "keybroker.cli.credential:credential",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, _, attr = target.partition(":")
        command: Any = getattr(importlib.import_module(module_name), attr)
        if ctx.resilient_parsing:  # shell completion: PROFILE arguments from the config
            from keybroker.cli.completion import attach_profile_completion  # noqa: PLC0415

            attach_profile_completion(command)
        return command  # type: ignore[no-any-return]

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        """click's, plus "did you mean" for a mistyped command (exit 2, a usage error)."""
        name = click.utils.make_str(args[0])
        if name not in COMMANDS and not name.startswith("-") and not ctx.resilient_parsing:
            import difflib  # noqa: PLC0415

            close = difflib.get_close_matches(name, COMMANDS, n=2)
            if close:
                ctx.fail(
                    f"No such command '{name}'. Did you mean {' or '.join(repr(c) for c in close)}?"
                )
        return super().resolve_command(ctx, args)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="keybroker", message="%(prog)s %(version)s")
def cli() -> None:
    """keybroker: short-lived keys for Claude Code's apiKeyHelper, people and CI.

    \b
    Quick start:
      keybroker get demo            print the built-in demo key (what apiKeyHelper runs)
      keybroker print-token demo    where it came from, cache state, expiry (redacted)
      keybroker doctor              check config, cache and sources
    """
