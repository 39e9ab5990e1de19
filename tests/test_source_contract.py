"""Every built-in source, and a third-party one installed through the entry point, passes the
source contract kit (keybroker.testing) that a plugin author runs too; the kit itself fails a
source that breaks a rule or a test class that leaves a piece out."""

from __future__ import annotations

import json
import os
import re
import secrets
import sys
import tempfile
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar
from unittest.mock import patch

import pytest
from mypy_boto3_secretsmanager import SecretsManagerClient

from keybroker.errors import SecretNotFound, UsageError
from keybroker.model import Request, Secret
from keybroker.sources import base
from keybroker.sources.api import BaseSource, FetchContext, NoIdentity, Setting, Source
from keybroker.testing import SourceContract, Working
from tests.conftest import KbEnv
from tests.fixtures.moto_server import REGION, aws_env
from tests.fixtures.oidc_provider import OidcProvider
from tests.fixtures.openbao import OpenBao
from tests.kb import assert_fails, assert_key, require_backend, run

CLOSED = "http://127.0.0.1:9"  # nothing listens on the discard port here: fails at once


def new_key() -> str:
    return "sk-contract-" + secrets.token_urlsafe(18)


class _Backend:
    """Starts a test's backend only when its successful fetch runs: the other checks are pure
    and must not wait for (or be skipped with) a server."""

    @pytest.fixture(autouse=True)
    def _fixtures(self, request: pytest.FixtureRequest) -> None:
        self.fixtures = request

    def fixture(self, name: str) -> Any:
        return self.fixtures.getfixturevalue(name)


class TestEnvSource(SourceContract):
    source_name = "env"
    module = "keybroker.sources.env"
    settings: ClassVar[dict[str, Any]] = {"var": "KB_CONTRACT_KEY"}
    failing_settings: ClassVar[dict[str, Any]] = {"var": "KB_CONTRACT_UNSET"}
    secret_env: ClassVar[dict[str, str]] = {"KB_CONTRACT_KEY": "sk-contract-env-value-123"}

    def working(self) -> Working:
        return Working(
            {"var": "KB_CONTRACT_OK"}, {"KB_CONTRACT_OK": "sk-env-ok-1\n"}, "sk-env-ok-1"
        )


class TestFileSource(SourceContract):
    source_name = "file"
    module = "keybroker.sources.file"
    settings: ClassVar[dict[str, Any]] = {"path": "/nonexistent/key.txt"}
    failing_settings: ClassVar[dict[str, Any]] = dict(settings)  # the file does not exist

    @pytest.fixture(autouse=True)
    def _key_file(self, tmp_path: Path) -> None:
        self.key_file = tmp_path / "key.txt"
        self.key_file.write_text("sk-file-ok-1\n")

    def working(self) -> Working:
        return Working({"path": str(self.key_file)}, {}, "sk-file-ok-1")


class TestCommandSource(SourceContract):
    source_name = "command"
    module = "keybroker.sources.command"
    settings: ClassVar[dict[str, Any]] = {
        "command": ["op", "read", "op://v/i/k"],
        "identity_env": ["OP_SERVICE_ACCOUNT_TOKEN"],
    }
    failing_settings: ClassVar[dict[str, Any]] = {"command": ["/nonexistent/helper"]}
    secret_env: ClassVar[dict[str, str]] = {"OP_SERVICE_ACCOUNT_TOKEN": "ops-sentinel-9876543"}

    def working(self) -> Working:
        return Working(
            {"command": ["printf", "sk-command-ok-1\\n"]},
            {"PATH": "/usr/bin:/bin"},
            "sk-command-ok-1",
        )


class TestKeychainSource(_Backend, SourceContract):
    source_name = "keychain"
    module = "keybroker.sources.keychain"
    settings: ClassVar[dict[str, Any]] = {"service": "contract"}
    failing_settings: ClassVar[dict[str, Any]] = {"service": "kb-contract-absent"}

    def test_failing_fetch_maps_to_an_exit_code_and_leaks_nothing(self) -> None:
        with patch.dict(os.environ, self.fixture("secret_service")):  # reach the test's service
            super().test_failing_fetch_maps_to_an_exit_code_and_leaks_nothing()

    def working(self) -> Working:
        env: KbEnv = self.fixture("keychain_env")
        service = f"kb-contract-{uuid.uuid4().hex[:8]}"
        stored = run(
            ["keybroker", "keychain", "set", service, "me"], env, stdin=b"sk-keychain-ok-1\n"
        )
        assert stored.code == 0, stored.err
        return Working({"service": service, "username": "me"}, env, "sk-keychain-ok-1")


class TestDemoSource(SourceContract):
    source_name = "demo"
    module = "keybroker.sources.demo"

    never_fails = "it mints a fake key locally, with nothing to reach or read"

    def working(self) -> Working:
        return Working({})


class TestVaultSource(_Backend, SourceContract):
    source_name = "vault"
    module = "keybroker.sources.vault"
    settings: ClassVar[dict[str, Any]] = {
        "addr": "https://vault.example",
        "path": "litellm",
        "field": "key",
    }
    failing_settings: ClassVar[dict[str, Any]] = {"addr": CLOSED, "path": "x", "field": "k"}
    secret_env: ClassVar[dict[str, str]] = {"VAULT_TOKEN": "hvs.contract-sentinel-0123456789"}
    identity_values: ClassVar[dict[str, Any]] = {"kv_version": 1, "auth_method": "approle"}
    identity_exempt: ClassVar[dict[str, str]] = dict.fromkeys(
        ("auth_mount", "role", "username"),
        "only a login method uses it; these settings present a token",
    )

    def working(self) -> Working:
        server: OpenBao = self.fixture("openbao")
        path, key = f"contract-{uuid.uuid4().hex[:8]}", new_key()
        server.kv_put(path, {"key": key})
        return Working(
            {"addr": server.addr, "path": path, "field": "key"},
            {"VAULT_TOKEN": server.root_token},
            key,
        )


class TestAwsSource(_Backend, SourceContract):
    source_name = "aws"
    module = "keybroker.sources.aws"
    settings: ClassVar[dict[str, Any]] = {"secret_id": "litellm", "region": "eu-west-1"}
    failing_settings: ClassVar[dict[str, Any]] = dict(
        settings, secret_id="x", endpoint_url=CLOSED, max_attempts=1
    )
    secret_env: ClassVar[dict[str, str]] = {
        "AWS_ACCESS_KEY_ID": "AKIACONTRACTSENTINEL",
        "AWS_SECRET_ACCESS_KEY": "contract/secret/sentinel/0123456789abcdef",
    }

    def working(self) -> Working:
        endpoint: str = self.fixture("moto_endpoint")
        client: SecretsManagerClient = self.fixture("secretsmanager")
        name, key = f"contract-{uuid.uuid4().hex[:8]}", new_key()
        client.create_secret(Name=name, SecretString=key)
        return Working(
            {"secret_id": name, "region": REGION, "endpoint_url": endpoint}, aws_env(endpoint), key
        )


class TestOidcSource(_Backend, SourceContract):
    source_name = "oidc"
    module = "keybroker.sources.oidc"
    settings: ClassVar[dict[str, Any]] = {
        "issuer": "https://login.example",
        "client_id": "kb",
        "client_secret_env": "KB_CLIENT_SECRET",
    }
    failing_settings: ClassVar[dict[str, Any]] = dict(settings, issuer=CLOSED)
    secret_env: ClassVar[dict[str, str]] = {"KB_CLIENT_SECRET": "oidc-client-secret-sentinel-42"}
    identity_exempt: ClassVar[dict[str, str]] = dict.fromkeys(
        ("subject_token", "subject_audience", "subject_token_type", "requested_token_type"),
        "only a token_exchange grant sends it; these settings use client_credentials",
    )

    def working(self) -> Working:
        provider: OidcProvider = self.fixture("oidc_provider")
        return Working(
            {
                "issuer": provider.issuer,
                "client_id": "cc-client",
                "client_secret_env": "GW_CLIENT_SECRET",
                "scope": "api:read",
                "resource": provider.resource,
            },
            {"GW_CLIENT_SECRET": provider.cc_secret},
        )


class TestThirdPartySource(SourceContract):
    """The example plugin in tests/plugin_example, installed by scripts/test (pip -e)."""

    source_name = "jsonfile"
    module = "keybroker_example_source"
    settings: ClassVar[dict[str, Any]] = {"path": "/nonexistent/keys.json", "key": "litellm"}
    failing_settings: ClassVar[dict[str, Any]] = dict(settings)  # the file does not exist

    @pytest.fixture(autouse=True)
    def _keys(self, tmp_path: Path) -> None:
        self.keys = tmp_path / "keys.json"
        self.keys.write_text(json.dumps({"litellm": "sk-from-a-plugin-2"}))

    def working(self) -> Working:
        return Working({"path": str(self.keys), "key": "litellm"}, {}, "sk-from-a-plugin-2")


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


# --- the contract refuses a source that forgets identity_inputs ---


class _Forgetful(BaseSource):
    """A plugin written against the old contract: it authenticates callers by a token in the
    environment but never says so."""

    name = "forgetful"
    settings = (Setting("item", help="which key", required=True),)

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        token = ctx.env.get("FORGETFUL_TOKEN")
        if not token:
            raise SecretNotFound("no token")
        return Secret("sk-for-" + token, source=self.name)


def test_a_source_without_identity_inputs_is_refused_by_name() -> None:
    with pytest.raises(UsageError) as info:
        base.register(_Forgetful())
    assert "missing: identity_inputs" in info.value.message
    base.unregister("forgetful")


FORGETFUL_PLUGIN = """
from keybroker.sources.api import BaseSource, Secret, SecretNotFound, Setting


class Forgetful(BaseSource):
    name = "forgetful"
    default_storage = "disk"
    settings = (Setting("item", help="which key", required=True),)

    def fetch(self, request, ctx):
        token = ctx.env.get("FORGETFUL_TOKEN")
        if not token:
            raise SecretNotFound("no token")
        return Secret("sk-for-" + token, source=self.name)


SOURCE = Forgetful()
"""


def test_an_installed_plugin_without_identity_inputs_is_refused_not_shared(
    kb_env: KbEnv, tmp_path: Path
) -> None:
    """Before, keybroker treated the missing method as "no identity": bob, calling after alice
    with his own token, was served alice's cached key."""
    plugins = tmp_path / "plugins"
    info = plugins / "forgetful_plugin-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: forgetful-plugin\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(
        "[keybroker.sources]\nforgetful = forgetful_plugin:SOURCE\n"
    )
    (plugins / "forgetful_plugin.py").write_text(FORGETFUL_PLUGIN)
    kb_env["PYTHONPATH"] = str(plugins)
    kb_env.write_config('[profiles.p]\nsource = "forgetful"\nitem = "x"\n')
    for caller in ("alice", "bob"):
        result = run(["keybroker", "get", "p"], dict(kb_env, FORGETFUL_TOKEN=caller))
        assert_fails(
            result,
            2,
            "source 'forgetful' does not implement the keybroker Source "
            "interface (missing: identity_inputs)",
        )


def test_a_source_that_binds_no_identity_says_why() -> None:
    from keybroker.sources.keychain import SOURCE  # noqa: PLC0415

    answer = SOURCE.identity_inputs({"service": "s"}, {})
    assert isinstance(answer, NoIdentity)
    assert "keychain" in answer.reason


# --- the kit fails (never passes) a source or a test class that breaks the contract ---


class _Leaky(BaseSource):
    """Binds no credential although it reads one, and leaves an identity setting out of its
    canonical form: two callers, or two fields, would share one entry."""

    name = "leaky"
    settings = (Setting("path", help="where"), Setting("field", help="which field"))

    def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
        return {"path": settings.get("path")}

    def identity_inputs(
        self, settings: Mapping[str, Any], env: Mapping[str, str]
    ) -> list[tuple[str, str]] | NoIdentity:
        return NoIdentity("")

    def fetch(self, request: Request, ctx: FetchContext) -> Secret:
        return Secret(ctx.env.get("LEAKY_TOKEN", "") + "-key", source=self.name)


class _KitOnLeaky(SourceContract):
    def make_source(self) -> Source:
        return _Leaky()

    settings: ClassVar[dict[str, Any]] = {"path": "p", "field": "f"}
    secret_env: ClassVar[dict[str, str]] = {"LEAKY_TOKEN": "leaky-token-sentinel"}


@pytest.mark.parametrize(
    "check",
    [
        "test_each_identity_setting_changes_the_entry_name",
        "test_each_credential_changes_the_entry_name",
        "test_identity_is_named_or_explicitly_none",
        "test_failing_fetch_maps_to_an_exit_code_and_leaks_nothing",  # failing_settings missing
        "test_successful_fetch_returns_a_valid_key",  # working() missing
    ],
)
def test_the_kit_fails_a_broken_source_or_a_missing_piece(check: str) -> None:
    kit = _KitOnLeaky()
    with pytest.raises((AssertionError, pytest.fail.Exception)):
        getattr(kit, check)()


def test_the_kit_takes_a_factory_and_runs_on_an_unregistered_source() -> None:
    class Fine(_Leaky):
        name = "fine"

        def canonical(self, settings: Mapping[str, Any], env: Mapping[str, str]) -> dict[str, Any]:
            return {"path": settings.get("path"), "field": settings.get("field")}

        def identity_inputs(
            self, settings: Mapping[str, Any], env: Mapping[str, str]
        ) -> list[tuple[str, str]]:
            return [("env", "LEAKY_TOKEN")]

    class Kit(_KitOnLeaky):
        def make_source(self) -> Source:
            return Fine()

        def working(self) -> Working:
            return Working({"path": "p"}, {"LEAKY_TOKEN": "t"}, "t-key")

    kit = Kit()
    for check in (
        "test_implements_the_source_protocol",
        "test_each_identity_setting_changes_the_entry_name",
        "test_each_credential_changes_the_entry_name",
        "test_identity_is_named_or_explicitly_none",
        "test_successful_fetch_returns_a_valid_key",
    ):
        getattr(kit, check)()
    with pytest.raises(UsageError):
        base.get_source("fine")  # the factory's source was never registered: no name needed


# --- the smallest source of docs/sources/writing-a-source.md, run through the kit as written ---

DOC = Path(__file__).resolve().parent.parent / "docs" / "sources" / "writing-a-source.md"


def doc_block(first_line: str) -> str:
    """The ```python block of the doc that starts with ``first_line`` (a file name comment)."""
    blocks = re.findall(r"^```python\n(.*?)^```", DOC.read_text(), re.M | re.S)
    found = [b for b in blocks if b.startswith(first_line + "\n")]
    assert len(found) == 1, f"the doc has {len(found)} blocks starting {first_line!r}"
    return str(found[0])


def _doc_example() -> dict[str, Any]:
    """Write the doc's source module where a subprocess can import it too, and run the doc's
    test module: its ``TestJsonFile`` becomes a test class of this module."""
    root = Path(tempfile.mkdtemp(prefix="kb-doc-example-"))
    package = root / "keybroker_jsonfile"
    package.mkdir()
    (package / "__init__.py").write_text(doc_block("# keybroker_jsonfile/__init__.py"))
    sys.path.insert(0, str(root))
    namespace: dict[str, Any] = {"__name__": __name__}
    exec(compile(doc_block("# test_jsonfile.py"), str(DOC), "exec"), namespace)
    return namespace


TestDocExample = _doc_example()["TestJsonFile"]
TestDocExample.__qualname__ = TestDocExample.__name__ = "TestDocExample"
