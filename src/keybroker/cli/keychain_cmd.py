"""``keybroker keychain set|delete SERVICE [USERNAME]``: manage keys in the OS keychain.

The value is never taken from argv (it would show in ``ps`` and shell history): it is read
without echo from a terminal, or from stdin when piped. Setting or deleting a key removes
the matching cache entry, so the next ``get`` sees the change at once.
"""

from __future__ import annotations

import os
import sys

import click

from keybroker.cache.store import Cache
from keybroker.cli.errors import debug_option, handles_errors
from keybroker.errors import KeybrokerError, UsageError
from keybroker.redact import sensitive
from keybroker.resolve import entry_name
from keybroker.sources.keychain import DEFAULT_USERNAME, backend, load_keyring, translate
from keybroker.validate import validate_key


def _invalidate(service: str, username: str) -> None:

    try:
        store = Cache.open(os.environ)
        settings = {"service": service, "username": username}
        store.remove(entry_name(store, "keychain", settings, os.environ))
    except KeybrokerError:
        return


def _read_value() -> str:

    if sys.stdin is None:
        raise UsageError("no value: stdin is closed", "pipe the value in or run in a terminal")
    if sys.stdin.isatty():
        import getpass  # noqa: PLC0415

        value = getpass.getpass("Value (not echoed): ")
    else:
        value = sys.stdin.read()
        if value.endswith("\n"):
            value = value[:-1]
        if value.endswith("\r"):
            value = value[:-1]
    return value


@click.group("keychain")
def keychain() -> None:
    """Store or delete a key in the OS keychain (value read from stdin, never argv)."""


@keychain.command("set")
@click.argument("service")
@click.argument("username", required=False, default=DEFAULT_USERNAME)
@click.argument("extra", nargs=-1, metavar="")
@debug_option
@handles_errors
def set_(service: str, username: str, extra: tuple[str, ...], debug: bool) -> None:
    """Store a key for SERVICE [USERNAME]: typed without echo, or piped on stdin."""

    if extra:
        for item in extra:
            sensitive(item)  # it may well be the key: never echo it
        raise UsageError(
            "keybroker keychain set takes no value on the command line "
            "(it would show in ps and shell history)",
            "pipe it on stdin or type it at the prompt",
        )
    value = _read_value()
    sensitive(value)
    validate_key(value, f"keychain value for {service}/{username}")
    keyring = load_keyring()
    active = backend(keyring)
    try:
        active.set_password(service, username, value)
    except Exception as exc:
        raise translate(exc, f"keychain {service}/{username}") from None
    _invalidate(service, username)
    click.echo(f"keybroker: stored the key for {service}/{username} in the keychain", err=True)


@keychain.command("delete")
@click.argument("service")
@click.argument("username", required=False, default=DEFAULT_USERNAME)
@debug_option
@handles_errors
def delete(service: str, username: str, debug: bool) -> None:
    """Delete the key for SERVICE [USERNAME] from the keychain (and the cache)."""

    keyring = load_keyring()
    active = backend(keyring)
    try:
        active.delete_password(service, username)
    except Exception as exc:
        raise translate(exc, f"keychain {service}/{username}") from None
    finally:
        _invalidate(service, username)
    click.echo(f"keybroker: deleted {service}/{username} from the keychain", err=True)
