"""``keybroker completion bash|zsh|fish``: the shell completion script, and profile names.

The script is click's own: the shell runs ``keybroker`` with ``_KEYBROKER_COMPLETE`` set and
the words typed so far, and click answers with the candidates. Profile names come from the
config file (one TOML parse, no cache, no source), so completing them stays quick; a config
that does not parse completes nothing rather than printing an error into the prompt.
"""

from __future__ import annotations

import os
from typing import Any

import click
from click.shell_completion import CompletionItem, get_completion_class

from keybroker import config as configmod

SHELLS = ("bash", "zsh", "fish")
COMPLETE_VAR = "_KEYBROKER_COMPLETE"


def profile_names(config_path: str | None = None) -> list[str]:
    """Every profile name in the config (built-in ones included); [] if it cannot be read."""

    env = dict(os.environ)
    if config_path:
        env["KEYBROKER_CONFIG"] = config_path
    try:
        return sorted(configmod.load(env).profiles)
    except Exception:  # a broken config must not break the user's prompt
        return []


def complete_profile(
    ctx: click.Context, param: click.Parameter, incomplete: str
) -> list[CompletionItem]:
    """The ``shell_complete`` of PROFILE arguments: configured names starting as typed."""
    config_path = None
    node: click.Context | None = ctx
    while node is not None and config_path is None:  # --config given earlier on the line
        config_path = next(
            (
                node.params.get(p.name)
                for p in node.command.params
                if "--config" in p.opts and p.name
            ),
            None,
        )
        node = node.parent
    # a name with control characters (a quoted TOML key) would reach the terminal raw
    return [
        CompletionItem(name)
        for name in profile_names(config_path)
        if name.startswith(incomplete) and name.isprintable()
    ]


def attach_profile_completion(command: click.Command) -> None:
    """Complete every PROFILE argument of ``command`` (and its subcommands) from the config."""
    for param in command.params:
        if isinstance(param, click.Argument) and param.name == "profile":
            param._custom_shell_complete = complete_profile  # click's hook for a custom completer
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            attach_profile_completion(sub)


@click.command("completion")
@click.argument("shell", type=click.Choice(SHELLS))
def completion(shell: str) -> None:
    """Print the completion script for SHELL (bash, zsh or fish).

    \b
    Install it once:
      bash: keybroker completion bash > ~/.local/share/bash-completion/completions/keybroker
      zsh:  keybroker completion zsh > ~/.zfunc/_keybroker   (fpath+=~/.zfunc before compinit)
      fish: keybroker completion fish > ~/.config/fish/completions/keybroker.fish
    or load it in the current shell: eval "$(keybroker completion bash)" (zsh alike),
    keybroker completion fish | source.
    """

    root: Any = click.get_current_context().find_root().command
    cls = get_completion_class(shell)
    assert cls is not None  # SHELLS are click's built-in shells
    click.echo(cls(root, {}, "keybroker", COMPLETE_VAR).source(), nl=False)
