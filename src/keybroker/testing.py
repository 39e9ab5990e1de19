"""The source contract as tests: every built-in source passes them, and so can yours.

Like keyring's backend test kit, subclass :class:`SourceContract` in a pytest module, name the
class ``Test…`` and fill in the class attributes; pytest then runs the contract against your
source::

    from keybroker.testing import SourceContract

    class TestMySource(SourceContract):
        source_name = "mysource"                     # the entry-point name
        module = "keybroker_mysource"                # the module the entry point loads
        settings = {"url": "https://keys.example"}   # a valid profile
        failing_settings = {"url": "http://127.0.0.1:9"}  # fails fast, no real network
        secret_env = {"MYSOURCE_TOKEN": "tok-sentinel-1234567890"}  # credentials it may read

What it checks (docs/sources/writing-a-source.md explains each rule):

- the object implements :class:`keybroker.sources.api.Source`, with typed settings;
- the module imports cheaply: no SDK (boto3, hvac, keyring, requests …) at import time,
  because the full path imports it on every cache miss and ``doctor`` imports them all;
- ``canonical()``, ``identity_inputs()`` and ``describe()`` are pure: same answer twice, no
  network, the environment read by key only (the index records those reads: iterating the
  environment would make the fast path never hit);
- ``identity_inputs()`` names places (env/file/literal), never secret values;
- a failing fetch raises a :class:`keybroker.errors.KeybrokerError` whose exit code is in the
  output contract's table, and no exception or message carries a credential.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from keybroker.cache.ids import KINDS
from keybroker.config.index import RecordingEnv
from keybroker.deadline import Deadline
from keybroker.errors import KeybrokerError
from keybroker.model import Options, Request
from keybroker.sources.api import SETTING_KINDS, FetchContext, Setting, Source, get_source

#: Modules a source must not import at module level (it may inside ``fetch``).
HEAVY_MODULES = ("boto3", "botocore", "hvac", "keyring", "requests", "httpx", "urllib3",
                 "google.auth", "azure.identity")
EXIT_CODES = (2, 3, 4, 5, 6, 7, 8)


class _NoNetwork:
    """Any connection attempt while active is a contract failure."""

    def __enter__(self) -> _NoNetwork:
        self._connect = socket.socket.connect
        self._create = socket.create_connection

        def refuse(*args: Any, **kwargs: Any) -> Any:
            raise AssertionError("the source opened a network connection where it must not")

        socket.socket.connect = refuse  # type: ignore[method-assign]
        socket.create_connection = refuse
        return self

    def __exit__(self, *exc: object) -> None:
        socket.socket.connect = self._connect  # type: ignore[method-assign]
        socket.create_connection = self._create


class SourceContract:
    """Mix-in of contract tests; subclass it as ``Test…`` and set the attributes below."""

    #: the registered source name (built-in or entry point)
    source_name: ClassVar[str] = ""
    #: the module that defines the source (checked for a cheap import)
    module: ClassVar[str] = ""
    #: settings of a valid profile
    settings: ClassVar[Mapping[str, Any]] = {}
    #: settings whose fetch fails quickly without reaching a real service (None: skip)
    failing_settings: ClassVar[Mapping[str, Any] | None] = None
    #: environment variables holding credentials the source may read (values must never leak)
    secret_env: ClassVar[Mapping[str, str]] = {}
    #: the base environment for every check
    env: ClassVar[Mapping[str, str]] = {"HOME": "/nonexistent-home"}

    def _source(self) -> Source:
        return get_source(self.source_name)

    def _env(self) -> dict[str, str]:
        return {**self.env, **self.secret_env}

    # --- shape ---

    def test_implements_the_source_protocol(self) -> None:
        source = self._source()
        assert isinstance(source, Source)
        assert source.name == self.source_name
        assert source.default_storage in ("disk", "none")
        assert isinstance(source.settings, tuple)
        names = [s.name for s in source.settings]
        assert len(names) == len(set(names)), "a setting is declared twice"
        for setting in source.settings:
            assert isinstance(setting, Setting)
            assert setting.kind in SETTING_KINDS, setting
            assert setting.help, f"setting {setting.name!r} has no help text"

    def test_module_imports_cheaply(self) -> None:
        code = (
            "import sys, json\n"
            f"import {self.module}\n"
            f"print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))\n"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60,
                              check=False)
        assert proc.returncode == 0, proc.stderr.decode()
        loaded = json.loads(proc.stdout)
        assert loaded == [], f"{self.module} imports {loaded} at module level"

    # --- purity ---

    def _pure_calls(self) -> Iterator[Any]:
        source = self._source()
        for _ in range(2):
            recording = RecordingEnv(self._env())
            with _NoNetwork():
                canonical = source.canonical(self.settings, recording)
                inputs = list(_identity(source, self.settings, recording))
                label = source.describe(self.settings)
            yield canonical, inputs, label, recording.seen

    def test_canonical_identity_and_describe_are_pure(self) -> None:
        first, second = self._pure_calls()
        assert first == second, "canonical/identity_inputs/describe differ between two calls"
        canonical, inputs, label, _ = first
        json.dumps(canonical, sort_keys=True)  # must be JSON-able: it names the cache entry
        assert isinstance(label, str)
        for item in inputs:
            assert isinstance(item, tuple | list), item
            assert len(item) == 2, item
            assert item[0] in KINDS, item

    def test_no_credential_in_canonical_identity_or_label(self) -> None:
        canonical, inputs, label, _ = next(self._pure_calls())
        text = json.dumps([canonical, inputs, label], default=str)
        for value in self.secret_env.values():
            assert value not in text, "a credential's value appears where names belong"

    # --- errors ---

    def test_failing_fetch_maps_to_an_exit_code_and_leaks_nothing(self) -> None:
        if self.failing_settings is None:
            return
        source = self._source()
        env = self._env()
        request = Request(self.source_name, dict(self.failing_settings), Options(timeout=10.0))
        ctx = FetchContext(Deadline(10.0), env)
        import pytest  # noqa: PLC0415 - the kit runs under pytest; keybroker does not need it

        with pytest.raises(KeybrokerError) as info:
            source.fetch(request, ctx)
        assert info.value.exit_code in EXIT_CODES, info.value
        rendered = info.value.render() + repr(info.value.args)
        for value in self.secret_env.values():
            assert value not in rendered, "a credential leaked into an error message"


def _identity(source: Any, settings: Mapping[str, Any],
              env: Mapping[str, str]) -> list[tuple[str, str]]:
    fn = getattr(source, "identity_inputs", None)
    return [] if fn is None else [(str(k), str(v)) for k, v in fn(settings, env)]
