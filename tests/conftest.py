"""Shared fixtures: an isolated keybroker environment per test, and the backend plugins."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import freezegun
import pytest

from tests import scripted
from tests.kb import isolated_env

pytest_plugins = [  # a plugin before the plugins that import it (assertion rewriting)
    "tests.fixtures.keyring_service",
    "tests.fixtures.openbao",
    "tests.fixtures.standin",
    "tests.fixtures.claude_e2e",
    "tests.fixtures.moto_server",
    "tests.fixtures.oidc_provider",
    "tests.fixtures.users",
    "tests.fixtures.vault_setup",
    "tests.fixtures.install",
    "tests.fixtures.parallel",
]


# pytest's runner times each phase with the clock: a test that freezes it (freezegun) for its
# whole run would otherwise be reported as lasting decades in --durations. Only the runner:
# freezegun looks 5 frames up the stack, and a test's own call into keybroker must stay frozen
# even when it sits right below pytest's (``_pytest.python``) frames.
freezegun.configure(extend_ignore_list=["_pytest.runner"])


class KbEnv(dict[str, str]):
    """The environment of one test, with paths to its config, cache and data dirs."""

    base: Path

    @property
    def config_path(self) -> Path:
        return self.base / "config" / "keybroker" / "config.toml"

    @property
    def cache_dir(self) -> Path:
        return self.base / "cache" / "keybroker"

    @property
    def data_dir(self) -> Path:
        return self.base / "data" / "keybroker"

    def write_config(self, text: str) -> Path:
        self.config_path.parent.mkdir(parents=True, exist_ok=True)
        self.config_path.write_text(text)
        return self.config_path


@pytest.fixture
def src() -> Iterator[scripted.ScriptedSource]:
    """The scripted upstream (tests/scripted.py), registered for the test."""
    yield scripted.install()
    scripted.uninstall()


@pytest.fixture
def kb_env(tmp_path: Path) -> KbEnv:
    env = KbEnv(isolated_env(tmp_path))
    env.base = tmp_path
    return env
