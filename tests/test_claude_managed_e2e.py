"""Acceptance (issue 22): the real Claude Code CLI with keybroker's managed drop-in as its only
settings sends the key.

Claude Code reads managed settings from a fixed folder (``/etc/claude-code`` on Linux; no
variable moves it). So the CLI runs in a private mount namespace where a test folder is bound
over ``/etc/claude-code``: the drop-in ``configure --scope managed`` wrote there is what the CLI
reads, no other process on the machine sees it, and nothing under /etc is written (the mount
point is created only when missing, and removed again).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e import fleet
from tests.e2e.cli import claude_env, run_claude
from tests.fixtures.claude_e2e import (
    E2E,
)
from tests.fixtures.claude_settings import configure, env_profiles
from tests.kb import IN_CI

#: serial: each test creates /etc/claude-code on the host if missing (the bind's mount point)
#: and removes it after; two at once on xdist workers removed it under each other's session
pytestmark = [pytest.mark.claude_e2e, pytest.mark.integration, pytest.mark.serial]
fleet_keybroker = fleet.fleet_keybroker  # the fixture, under its own name
MOUNT_POINT = Path("/etc/claude-code")
KEY = "sk-e2e-managed-drop-in-9b1d"


@pytest.fixture
def private_managed_dir(tmp_path: Path) -> Iterator[tuple[Path, tuple[str, ...]]]:
    """A folder to stand in for /etc/claude-code, and the argv prefix that binds it there."""
    unshare = shutil.which("unshare")
    if os.geteuid() != 0 or unshare is None:
        if IN_CI:
            pytest.fail("the managed-settings e2e test needs root and unshare(1) in CI")
        pytest.skip("needs root and unshare(1) for a private mount namespace")
    folder = tmp_path / "claude-code"
    folder.mkdir(mode=0o755)
    created = not MOUNT_POINT.exists()
    if created:
        MOUNT_POINT.mkdir(mode=0o755)
    prefix = (
        unshare,
        "--mount",
        "--propagation",
        "private",
        "/bin/sh",
        "-c",
        'mount --bind "$1" /etc/claude-code && shift && exec "$@"',
        "sh",
        str(folder),
    )
    try:
        yield folder, prefix
    finally:
        if created:
            MOUNT_POINT.rmdir()


def test_the_managed_drop_in_alone_gives_claude_code_the_key(
    e2e: E2E,
    private_managed_dir: tuple[Path, tuple[str, ...]],
    fleet_keybroker: Path,
) -> None:
    folder, prefix = private_managed_dir
    env_profiles(e2e.env, fleet=("E2E_MANAGED_KEY", KEY))
    configured = configure(
        e2e.env,
        "fleet",
        "--scope",
        "managed",
        "--managed-path",
        str(folder / "managed-settings.json"),
        "--executable",
        str(fleet_keybroker),
        "--base-url",
        e2e.api.url,
    )
    assert configured.code == 0, configured
    assert sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) == [
        "managed-settings.d",
        "managed-settings.d/keybroker.json",
    ]
    assert not (Path(e2e.env["HOME"]) / ".claude").exists()  # no user settings at all

    env = claude_env(e2e.env, e2e.api.url, retries=0)
    del env["ANTHROPIC_BASE_URL"]  # the drop-in's env points Claude Code at the gateway
    session = run_claude(e2e.cli.exe, env, e2e.project, helper=None, prefix=prefix)
    assert session.ok, session
    assert [(m.x_api_key, m.bearer) for m in e2e.api.messages()] == [(KEY, KEY)]
