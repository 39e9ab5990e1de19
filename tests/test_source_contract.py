"""Every built-in source, and a third-party one installed through the entry point, passes the
source contract kit (keybroker.testing) that a plugin author runs too."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, ClassVar

from keybroker.testing import SourceContract
from tests.conftest import KbEnv
from tests.kb import assert_fails, assert_key, require_backend, run

CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port here: fails at once


class TestEnvSource(SourceContract):
    source_name = "env"
    module = "keybroker.sources.env"
    settings: ClassVar[dict[str, Any]] = {"var": "KB_CONTRACT_KEY"}
    failing_settings: ClassVar[dict[str, Any]] = {"var": "KB_CONTRACT_UNSET"}
    secret_env: ClassVar[dict[str, str]] = {"KB_CONTRACT_KEY": "sk-contract-env-value-123"}


class TestFileSource(SourceContract):
    source_name = "file"
    module = "keybroker.sources.file"
    settings: ClassVar[dict[str, Any]] = {"path": "/nonexistent/key.txt"}
    failing_settings: ClassVar[dict[str, Any]] = {"path": "/nonexistent/key.txt"}


class TestCommandSource(SourceContract):
    source_name = "command"
    module = "keybroker.sources.command"
    settings: ClassVar[dict[str, Any]] = {"command": ["op", "read", "op://v/i/k"],
                                          "identity_env": ["OP_SERVICE_ACCOUNT_TOKEN"]}
    failing_settings: ClassVar[dict[str, Any]] = {"command": ["/nonexistent/helper"]}
    secret_env: ClassVar[dict[str, str]] = {"OP_SERVICE_ACCOUNT_TOKEN": "ops-sentinel-9876543"}


class TestKeychainSource(SourceContract):
    source_name = "keychain"
    module = "keybroker.sources.keychain"
    settings: ClassVar[dict[str, Any]] = {"service": "contract"}


class TestDemoSource(SourceContract):
    source_name = "demo"
    module = "keybroker.sources.demo"


class TestVaultSource(SourceContract):
    source_name = "vault"
    module = "keybroker.sources.vault"
    settings: ClassVar[dict[str, Any]] = {"addr": "https://vault.example", "path": "litellm",
                                          "field": "key"}
    failing_settings: ClassVar[dict[str, Any]] = {"addr": CLOSED, "path": "x", "field": "k"}
    secret_env: ClassVar[dict[str, str]] = {"VAULT_TOKEN": "hvs.contract-sentinel-0123456789"}


class TestAwsSource(SourceContract):
    source_name = "aws"
    module = "keybroker.sources.aws"
    settings: ClassVar[dict[str, Any]] = {"secret_id": "litellm", "region": "eu-west-1"}
    failing_settings: ClassVar[dict[str, Any]] = {"secret_id": "x", "region": "eu-west-1",
                                                  "endpoint_url": CLOSED, "max_attempts": 1}
    secret_env: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "AKIACONTRACTSENTINEL",
        "AWS_SECRET_ACCESS_KEY": "contract/secret/sentinel/0123456789abcdef",
    }


class TestOidcSource(SourceContract):
    source_name = "oidc"
    module = "keybroker.sources.oidc"
    settings: ClassVar[dict[str, Any]] = {"issuer": "https://login.example", "client_id": "kb",
                                          "client_secret_env": "KB_CLIENT_SECRET"}
    failing_settings: ClassVar[dict[str, Any]] = {"issuer": CLOSED, "client_id": "kb",
                                                  "client_secret_env": "KB_CLIENT_SECRET"}
    secret_env: ClassVar[dict[str, str]] = {"KB_CLIENT_SECRET": "oidc-client-secret-sentinel-42"}


class TestThirdPartySource(SourceContract):
    """The example plugin in tests/plugin_example, installed by scripts/test (pip -e)."""

    source_name = "jsonfile"
    module = "keybroker_example_source"
    settings: ClassVar[dict[str, Any]] = {"path": "/nonexistent/keys.json", "key": "litellm"}
    failing_settings: ClassVar[dict[str, Any]] = {"path": "/nonexistent/keys.json",
                                                  "key": "litellm"}


def test_third_party_source_works_through_the_real_executable(kb_env: KbEnv) -> None:
    try:
        import keybroker_example_source  # noqa: F401, PLC0415
    except ImportError:
        require_backend("example plugin", "pip install -e tests/plugin_example (scripts/test does)")
    keys = Path(kb_env.base) / "keys.json"
    keys.write_text(json.dumps({"litellm": "sk-from-a-plugin-1"}))
    keys.chmod(0o600)
    kb_env.write_config(f'[profiles.p]\nsource = "jsonfile"\npath = "{keys}"\nkey = "litellm"\n')
    assert_key(run(["keybroker", "get", "p"], kb_env), "sk-from-a-plugin-1")
    assert_key(run(["keybroker", "get", "p"], kb_env), "sk-from-a-plugin-1")  # fast path hit
    keys.write_text(json.dumps({"other": "x"}))  # its identity (the file) changed: asked anew
    assert_fails(run(["keybroker", "get", "p"], kb_env), 5, "no key named 'litellm'")
