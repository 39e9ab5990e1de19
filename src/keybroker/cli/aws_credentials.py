"""``keybroker aws-credentials PROFILE``: JSON for Claude Code's ``awsCredentialExport``.

Claude Code runs the ``awsCredentialExport`` command and reads
``{"Credentials": {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}}`` from
stdout. The profile's secret holds the credentials as compact JSON: a Vault AWS secrets
engine read (``access_key``/``secret_key``/``security_token``, expiry from the lease) or any
source returning STS-style names. It is resolved and cached like any key, so N Claude Code
sessions share one set of credentials until it nears its expiry.
"""

from __future__ import annotations

import json

import click

from keybroker import output
from keybroker.cli.common import resolve_profiles
from keybroker.cli.errors import config_option, debug_option, handles_errors, no_cache_option
from keybroker.redact import sensitive


@click.command("aws-credentials")
@click.argument("profile")
@no_cache_option
@config_option
@debug_option
@handles_errors
def aws_credentials(profile: str, no_cache: bool, config_path: str | None, debug: bool) -> None:
    """Print PROFILE's AWS credentials as awsCredentialExport JSON.

    Expiration comes from the secret itself when it has one, else from the cached expiry.
    """

    _, outcomes = resolve_profiles([profile], config_path, no_cache=no_cache, debug=debug)
    outcome = outcomes[profile]
    doc, secret_parts = output.aws_credentials(
        outcome.value, outcome.expires_at, f"profile '{profile}'"
    )
    for part in secret_parts:
        sensitive(part)
    click.echo(json.dumps(doc))
