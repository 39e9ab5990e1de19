"""The values passed around on a miss never show a secret in their ``repr``.

A traceback under ``--debug``, a debugger or a careless log line prints ``repr``; the key, a
login token or a token in the environment must not be in it (the encoded forms neither).
"""

from __future__ import annotations

import pytest

from keybroker.deadline import Deadline
from keybroker.model import AuxEntry, Request, Secret
from keybroker.options import Options
from keybroker.outcome import Outcome
from keybroker.redact import derived_forms
from keybroker.sources.base import FetchContext
from keybroker.sources.vault.auth import Login

KEY = "sk-repr-0123456789abcdefghij"


def forms(secret: str) -> list[str]:
    """The secret as printed, escaped or encoded (redact's list), in hex, and without its
    ``sk-`` prefix."""
    return [*derived_forms(secret), secret.encode().hex(), secret[4:]]


@pytest.mark.parametrize(
    "value",
    [
        Secret(KEY, expires_at=1.0, version="3", source="vault"),
        AuxEntry(KEY, 2.0, {"ttl": 60}),
        Login(KEY, "jwt login", cached=True),
        Outcome(
            KEY,
            "miss",
            "fresh",
            "vault",
            "secret/x#key",
            0.0,
            None,
            None,
            "e1",
            Options(),
        ),
        FetchContext(Deadline(5.0), {"VAULT_TOKEN": KEY, "CI_JOB_JWT": KEY}),
    ],
    ids=lambda v: type(v).__name__,
)
def test_repr_shows_the_shape_and_never_the_secret(value: object) -> None:
    text = repr(value)
    assert text.startswith(type(value).__name__ + "(")
    for form in forms(KEY):
        assert form not in text
    assert "=" in text  # the fields that are not secret are still there to debug with


def test_values_without_secrets_keep_a_full_repr() -> None:
    request = Request("vault", {"path": "x"}, profile="p")
    assert repr(request).startswith("Request(source='vault', settings={'path': 'x'}")
