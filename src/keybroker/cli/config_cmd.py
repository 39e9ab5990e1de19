"""``keybroker config show [--json]``: the effective configuration, and where each part came from.

A fleet has two layers (the administrator's system config under the user's); this shows what
a helper will actually use — every profile and default with the file it came from, built-in
profiles marked. Config never holds secrets (it names where they live), so everything is shown.
"""

from __future__ import annotations

import json
from typing import Any

import click

from keybroker import config as configmod
from keybroker.cli.common import environment
from keybroker.cli.errors import config_option, debug_option, handles_errors
from keybroker.redact import neutralise


def effective(config: Any) -> dict[str, Any]:
    """The merged config as a JSON-able document with origins."""
    return {
        "version": 1,
        "files": {
            "user": {"path": str(config.path), "exists": config.exists},
            "system": None if config.system_path is None else str(config.system_path),
        },
        "defaults": {
            key: {"value": value, "from": config.origins.get(f"defaults.{key}", "")}
            for key, value in sorted(config.defaults.items())
        },
        "source_defaults": {
            source: {
                key: {"value": value, "from": config.origins.get(f"defaults.{source}.{key}", "")}
                for key, value in sorted(settings.items())
            }
            for source, settings in sorted(config.source_defaults.items())
        },
        "profiles": {
            name: {
                "source": p.source,
                "settings": p.settings,
                "options": p.options,
                "description": p.description,
                "from": p.origin,
            }
            for name, p in sorted(config.profiles.items())
        },
    }


@click.group("config")
def config() -> None:
    """Inspect the configuration (system layer and user layer merged)."""


@config.command("show")
@click.option("--json", "as_json", is_flag=True, help="A versioned JSON document.")
@config_option
@debug_option
@handles_errors
def show(as_json: bool, config_path: str | None, debug: bool) -> None:
    """Print the effective config with the file each profile and default came from."""

    env = environment(config_path)
    doc = effective(configmod.load(env))
    if as_json:
        click.echo(json.dumps(doc, indent=2, default=str))
        return
    files = doc["files"]
    click.echo(
        neutralise(
            f"user config:   {files['user']['path']}"
            + ("" if files["user"]["exists"] else " (not found)")
        )
    )
    click.echo(neutralise(f"system config: {files['system'] or '(none)'}"))
    for key, item in doc["defaults"].items():
        click.echo(neutralise(f"[defaults] {key} = {item['value']!r}    # {item['from']}"))
    for source, settings in doc["source_defaults"].items():
        for key, item in settings.items():
            click.echo(
                neutralise(f"[defaults.{source}] {key} = {item['value']!r}    # {item['from']}")
            )
    for name, profile in doc["profiles"].items():
        click.echo(
            neutralise(f"[profiles.{name}] source = {profile['source']!r}    # {profile['from']}")
        )
        for key, value in {**profile["settings"], **profile["options"]}.items():
            click.echo(neutralise(f"    {key} = {value!r}"))
