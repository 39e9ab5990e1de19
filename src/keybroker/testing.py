"""The source contract as tests: every built-in source passes them, and so can yours.

Like keyring's backend test kit (``init_keyring``), subclass :class:`SourceContract` in a pytest
module, name the class ``Test…``, give it a factory for your source and the cases it needs;
pytest then runs the contract against it::

    from keybroker.testing import SourceContract, Working

    class TestMySource(SourceContract):
        def make_source(self):                       # the factory: a fresh source object
            return MySource()
        settings = {"url": "https://keys.example"}   # a valid profile (never fetched)
        failing_settings = {"url": "http://127.0.0.1:9"}  # fails fast, no real network
        secret_env = {"MYSOURCE_TOKEN": "tok-sentinel-1234567890"}  # credentials it may read

        def working(self):                           # settings and env under which fetch succeeds
            return Working({"url": self.server.url}, {"MYSOURCE_TOKEN": "t"}, "sk-expected")

``source_name = "mysource"`` instead of ``make_source`` finds a registered source (a built-in,
an entry point, or one passed to :func:`keybroker.sources.api.register`). A piece the kit
needs and does not get (``failing_settings``, ``working``) is a failing test, never a pass.

What it checks (docs/sources/writing-a-source.md explains each rule):

- the object implements :class:`keybroker.sources.api.Source`, with typed settings;
- the module imports cheaply: no SDK (boto3, hvac, keyring, requests …) at import time,
  because the full path imports it on every cache miss and ``doctor`` imports them all;
- ``canonical()``, ``identity_inputs()`` and ``describe()`` are pure: same answer twice, no
  network, the environment read by key only (the index records those reads: iterating the
  environment would make the fast path never hit);
- ``identity_inputs()`` names places (env/file/literal), never secret values, and says
  explicitly (:class:`~keybroker.sources.api.NoIdentity`) when there are none;
- every identity setting and every credential in ``secret_env`` changes the cache entry's
  name (so two callers, or two requests, never share an entry they should not);
- a successful fetch returns a :class:`~keybroker.sources.api.Secret` that is a printable key;
- a failing fetch raises a :class:`keybroker.errors.KeybrokerError` whose exit code is in the
  output contract's table, and no exception or message carries a credential.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, NoReturn
from unittest.mock import patch

from keybroker import clock
from keybroker.cache import ids
from keybroker.cache.crypto import DataKey
from keybroker.cache.digest import request_digest
from keybroker.config.index import RecordingEnv
from keybroker.deadline import Deadline
from keybroker.errors import KeybrokerError
from keybroker.model import Options, Request
from keybroker.sources.api import (
    SETTING_KINDS,
    FetchContext,
    NoIdentity,
    Secret,
    Setting,
    Source,
    get_source,
)
from keybroker.sources.base import identity_places
from keybroker.validate import validate_key

__all__ = ["EXIT_CODES", "HEAVY_MODULES", "SourceContract", "Working", "entry_name", "other_values"]

#: Modules a source must not import at module level (it may inside ``fetch``).
HEAVY_MODULES = (
    "boto3",
    "botocore",
    "hvac",
    "keyring",
    "requests",
    "httpx",
    "urllib3",
    "google.auth",
    "azure.identity",
)
EXIT_CODES = (2, 3, 4, 5, 6, 7, 8)
#: Secret.expires_at must be within this many seconds (DESIGN section 2: "not absurdly far").
MAX_LIFETIME = 10 * 365 * 86400.0


@dataclass(frozen=True)
class Working:
    """A request that succeeds: its settings, the environment, and the key it must return."""

    settings: Mapping[str, Any]
    env: Mapping[str, str] = field(default_factory=dict)
    value: str | None = None  # None: any valid key


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


def _fail(message: str) -> NoReturn:
    """Fail the running test with ``message`` (a piece the kit needs is missing)."""
    import pytest  # noqa: PLC0415 - the kit runs under pytest; keybroker does not need it

    pytest.fail(message, pytrace=False)


_NAMING_KEY = DataKey(os.urandom(32))


def entry_name(source: Source, settings: Mapping[str, Any], env: Mapping[str, str]) -> str:
    """The entry name a request gets, by the cache's own naming (:mod:`keybroker.cache.ids`)."""
    canonical = source.canonical(settings, env)
    material = ids.material(identity_places(source, settings, env), env)
    return ids.entry_id(_NAMING_KEY, request_digest(source.name, canonical), material)


def other_values(setting: Setting, value: Any) -> list[Any]:
    """Values of ``setting``'s kind that differ from ``value`` (None: not set, so its default
    may be any of the choices: each other choice is tried)."""
    if setting.choices:
        return [c for c in setting.choices if c != value]
    return [_other(setting, value)]


def _other(setting: Setting, value: Any) -> Any:
    kind = setting.kind
    if kind == "bool":
        return not bool(value)
    if kind in ("int", "duration"):
        return (value if isinstance(value, int | float) else 7) + 1
    if kind in ("argv", "str_list"):
        return [*(value or ["kb-contract"]), "kb-contract-other"]
    if kind == "table":
        return {**(value or {}), "kb_contract_other": "x"}
    if kind == "str_or_argv" and isinstance(value, list):
        return [*value, "kb-contract-other"]
    return f"{value}-other" if value else "kb-contract-other"


class SourceContract:
    """Mix-in of contract tests; subclass it as ``Test…`` and provide the pieces below."""

    #: a registered source name (built-in, entry point, or register()); or override make_source
    source_name: ClassVar[str] = ""
    #: the module that defines the source (default: the module of the source's class)
    module: ClassVar[str] = ""
    #: settings of a valid profile (used for the pure calls, never fetched)
    settings: ClassVar[Mapping[str, Any]] = {}
    #: settings whose fetch fails quickly without reaching a real service (required)
    failing_settings: ClassVar[Mapping[str, Any] | None] = None
    #: environment variables holding credentials the source may read (values must never leak,
    #: and each must change the entry name)
    secret_env: ClassVar[Mapping[str, str]] = {}
    #: the base environment for every check
    env: ClassVar[Mapping[str, str]] = {"HOME": "/nonexistent-home"}
    #: a second value for an identity setting where the kit's invented one is not valid
    identity_values: ClassVar[Mapping[str, Any]] = {}
    #: identity settings that leave the entry name alone *with these settings*, and why
    identity_exempt: ClassVar[Mapping[str, str]] = {}
    #: instead of failing_settings, for a source that cannot fail: why (its fetch is checked)
    never_fails: ClassVar[str] = ""

    def make_source(self) -> Source:
        """The factory (keyring's ``init_keyring``): a fresh source object for each test."""
        if not self.source_name:
            _fail(f"{type(self).__name__}: override make_source() or set source_name")
        return get_source(self.source_name)

    def working(self) -> Working:
        """A request whose fetch succeeds (may use a server your fixtures started)."""
        _fail(
            f"{type(self).__name__}: define working() -> Working(settings, env, value): the "
            "kit runs one successful fetch"
        )

    @property
    def source(self) -> Source:
        made = getattr(self, "_made", None)
        if made is None:
            made = self.make_source()
            self._made = made
        return made

    def base_env(self) -> Mapping[str, str]:
        """The environment every check starts from (override to use a fixture's)."""
        return self.env

    def _env(self) -> dict[str, str]:
        return {**self.base_env(), **self.secret_env}

    # --- shape ---

    def test_implements_the_source_protocol(self) -> None:
        source = self.source
        assert isinstance(source, Source), "the object lacks part of the Source protocol"
        if self.source_name:
            assert source.name == self.source_name
        assert source.name, "the source has no name"
        assert source.default_storage in ("disk", "none")
        assert isinstance(source.settings, tuple)
        names = [s.name for s in source.settings]
        assert len(names) == len(set(names)), "a setting is declared twice"
        for setting in source.settings:
            assert isinstance(setting, Setting)
            assert setting.kind in SETTING_KINDS, setting
            assert setting.help, f"setting {setting.name!r} has no help text"

    def test_module_imports_cheaply(self) -> None:
        module = self.module or type(self.source).__module__
        code = (
            "import sys, json\n"
            f"import {module}\n"
            f"print(json.dumps([m for m in {list(HEAVY_MODULES)!r} if m in sys.modules]))\n"
        )
        # the module is imported the way this process would find it (tests may add paths)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        proc = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, timeout=60, check=False, env=env
        )
        assert proc.returncode == 0, proc.stderr.decode()
        loaded = json.loads(proc.stdout)
        assert loaded == [], f"{module} imports {loaded} at module level"

    # --- purity ---

    def _pure_calls(self) -> Iterator[Any]:
        source = self.source
        for _ in range(2):
            recording = RecordingEnv(self._env())
            with _NoNetwork():
                canonical = source.canonical(self.settings, recording)
                inputs = source.identity_inputs(self.settings, recording)
                label = source.describe(self.settings)
                direct = source.direct_read(self.settings)
            yield canonical, inputs, label, direct

    def test_canonical_identity_and_describe_are_pure(self) -> None:
        first, second = self._pure_calls()
        assert first == second, "canonical/identity_inputs/describe differ between two calls"
        canonical, inputs, label, direct = first
        json.dumps(canonical, sort_keys=True)  # must be JSON-able: it names the cache entry
        assert isinstance(label, str)
        assert direct is None or (len(direct) == 2 and direct[0] in ("env", "file")), direct
        if isinstance(inputs, NoIdentity):
            return
        for item in inputs:
            assert isinstance(item, tuple | list), item
            assert len(item) == 2, item
            assert item[0] in ids.KINDS, item

    def test_identity_is_named_or_explicitly_none(self) -> None:
        _, inputs, _, _ = next(self._pure_calls())
        if isinstance(inputs, NoIdentity):
            assert inputs.reason.strip(), "NoIdentity needs the reason entries may be shared"
            assert not self.secret_env, (
                "the source reads credentials (secret_env) but binds no identity: every "
                "caller would share one entry"
            )
        else:
            assert list(inputs), (
                "identity_inputs() returned nothing: name the credentials' places, or return "
                "NoIdentity(reason) when the request presents none"
            )

    def test_no_credential_in_canonical_identity_or_label(self) -> None:
        canonical, inputs, label, _ = next(self._pure_calls())
        text = json.dumps([canonical, inputs, label], default=str)
        for value in self.secret_env.values():
            assert value not in text, "a credential's value appears where names belong"

    # --- the entry name ---

    def test_each_identity_setting_changes_the_entry_name(self) -> None:
        source, env = self.source, self._env()
        assert all(why.strip() for why in self.identity_exempt.values()), (
            "identity_exempt needs the reason each setting leaves the entry name alone"
        )
        base = entry_name(source, self.settings, env)
        same = []
        for setting in source.settings:
            if not setting.identity or setting.name in self.identity_exempt:
                continue
            current = self.settings.get(setting.name)
            if setting.name in self.identity_values:
                candidates = [self.identity_values[setting.name]]
            else:
                candidates = other_values(setting, current)
            names = set()
            for changed in candidates:
                try:
                    names.add(entry_name(source, {**self.settings, setting.name: changed}, env))
                except KeybrokerError as exc:
                    _fail(
                        f"{setting.name} = {changed!r} was refused ({exc.message}): give a "
                        "valid second value in identity_values"
                    )
            if candidates and names <= {base}:
                same.append(setting.name)
        assert not same, (
            f"identity settings {same} do not change the entry name: include them in "
            "canonical(), mark them identity=False, or list them in identity_exempt with why"
        )

    def test_each_credential_changes_the_entry_name(self) -> None:
        source, env = self.source, self._env()
        base = entry_name(source, self.settings, env)
        unbound = [
            name
            for name, value in self.secret_env.items()
            if entry_name(source, self.settings, {**env, name: value + "-other"}) == base
        ]
        assert not unbound, (
            f"credentials {unbound} do not change the entry name: name them in "
            "identity_inputs(), or two callers with different credentials share one key"
        )

    # --- fetch ---

    def test_successful_fetch_returns_a_valid_key(self) -> None:
        case = self.working()
        source = self.source
        request = Request(source.name, dict(case.settings), Options(timeout=20.0))
        env = {**self.base_env(), **case.env}
        ctx = FetchContext(Deadline(20.0), env)
        # a helper's ctx.env *is* its process environment, which SDKs (botocore, D-Bus) read
        with patch.dict(os.environ, env):
            secret = source.fetch(request, ctx)
        assert isinstance(secret, Secret), f"fetch returned {type(secret).__name__}, not Secret"
        validate_key(secret.value, source.name)
        if case.value is not None:
            assert secret.value == case.value, "fetch returned another key than expected"
        if secret.expires_at is not None:
            assert math.isfinite(secret.expires_at), "expires_at is not a finite number"
            assert secret.expires_at <= clock.now() + MAX_LIFETIME, "expires_at is absurdly far"

    def test_failing_fetch_maps_to_an_exit_code_and_leaks_nothing(self) -> None:
        source = self.source
        if self.failing_settings is None and self.never_fails:
            request = Request(source.name, dict(self.settings), Options(timeout=10.0))
            assert isinstance(
                source.fetch(request, FetchContext(Deadline(10.0), self._env())), Secret
            ), f"never_fails ({self.never_fails}), yet no Secret"
            return
        if self.failing_settings is None:
            _fail(
                f"{type(self).__name__}: set failing_settings (settings whose fetch fails "
                "fast without a real service): the kit checks the error's exit code and text"
            )
        import pytest  # noqa: PLC0415 - the kit runs under pytest; keybroker does not need it

        request = Request(source.name, dict(self.failing_settings), Options(timeout=10.0))
        ctx = FetchContext(Deadline(10.0), self._env())
        with pytest.raises(KeybrokerError) as info:
            source.fetch(request, ctx)
        assert info.value.exit_code in EXIT_CODES, info.value
        rendered = info.value.render() + repr(info.value.args)
        for value in self.secret_env.values():
            assert value not in rendered, "a credential leaked into an error message"
