"""Issue 16's acceptance: a platform team rolls a Vault profile out to a machine.

As root: the per-machine install (docs/rollout.md), a system config with a Vault profile using
SSO (OpenBao's real OIDC auth method, pointed at the test oidc-provider), and Claude Code's
managed settings written by ``keybroker claude configure --scope managed``. Then a second OS
user, with no config of their own: helpers say to log in (exit 8), ``keybroker login`` signs
them in through the browser flow, and the apiKeyHelper from the managed settings prints the key.
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import threading
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.install import fresh_copy, machine_install_env, run_in
from tests.fixtures.openbao import OpenBao
from tests.fixtures.users import OsUser
from tests.fixtures.vault_setup import SIGN_IN


def as_user(
    user: OsUser, shared: Path, home: Path, command: str, **kwargs: Any
) -> subprocess.Popen[bytes]:
    """``command`` run by ``user`` through ``su``, with only what a login shell would have."""
    env = {
        "HOME": str(home),
        "XDG_CACHE_HOME": f"{home}/.cache",
        "XDG_CONFIG_HOME": f"{home}/.config",
        "XDG_DATA_HOME": f"{home}/.local/share",
        "KEYBROKER_SYSTEM_CONFIG": str(shared / "etc" / "keybroker" / "config.toml"),
        "PATH": f"{shared / 'bin'}:/usr/bin:/bin",
    }
    line = "env " + " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items()) + " " + command
    return subprocess.Popen(
        ["su", user.name, "-s", "/bin/sh", "-c", line],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={"PATH": "/usr/bin:/bin"},
        **kwargs,
    )


def finish(proc: subprocess.Popen[bytes], timeout: float = 120) -> tuple[int, bytes, bytes]:
    out, err = proc.communicate(timeout=timeout)
    return proc.returncode, out, err


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_system_config_and_managed_settings_roll_a_vault_profile_out_to_another_user(
    pep668_env: dict[str, str],
    machine_dir: Path,
    tmp_path: Path,
    openbao: OpenBao,
    oidc_vault: dict[str, str],
    other_user: OsUser,
) -> None:
    shared = machine_dir
    # 1. the per-machine install (as docs/rollout.md says: the system python3)
    env = machine_install_env(pep668_env, shared)
    installed = run_in(fresh_copy(tmp_path / "keybroker"), "./install.sh --no-demo", env)
    assert installed.returncode == 0, installed.stderr.decode()[-3000:]
    keybroker = shared / "bin" / "keybroker"

    # 2. the system layer, root's and readable by all: the profile, no secret in it
    etc = shared / "etc" / "keybroker"
    etc.mkdir(parents=True)
    (etc / "config.toml").write_text(
        f'[profiles.litellm]\nsource = "vault"\naddr = "{openbao.addr}"\n'
        f'path = "{oidc_vault["path"]}"\nfield = "key"\nauth_method = "oidc"\n'
        f'role = "{oidc_vault["role"]}"\nredirect_uri = "http://127.0.0.1:0/oidc/callback"\n'
    )
    for path in (shared / "etc", etc):
        path.chmod(0o755)
    (etc / "config.toml").chmod(0o644)

    # 3. Claude Code's managed settings, written by the admin
    managed = shared / "managed-settings.json"
    root_env = dict(
        os.environ,
        KEYBROKER_SYSTEM_CONFIG=str(etc / "config.toml"),
        HOME=str(tmp_path / "root-home"),
        PATH=f"{shared / 'bin'}:/usr/bin:/bin",
    )
    configured = subprocess.run(
        [
            str(keybroker),
            "claude",
            "configure",
            "litellm",
            "--scope",
            "managed",
            "--managed-path",
            str(managed),
            "--base-url",
            "https://litellm.example.com",
        ],
        env=root_env,
        capture_output=True,
        timeout=60,
        check=False,
    )
    assert configured.returncode == 0, configured.stderr
    assert not managed.exists()  # keybroker writes its own drop-in, never the shared file
    drop_in = shared / "managed-settings.d" / "keybroker.json"
    helper = json.loads(drop_in.read_text())["apiKeyHelper"]
    assert "litellm" in helper

    # 4. the developer: no config of their own; helpers never prompt
    home = shared / f"home-{other_user.name}"
    home.mkdir()
    shutil.chown(home, other_user.name, other_user.gid)
    code, out, err = finish(as_user(other_user, shared, home, helper))
    assert code == 8, err
    assert out == b""
    assert b"run: keybroker login litellm" in err
    code, out, err = finish(as_user(other_user, shared, home, "keybroker config show"))
    assert code == 0, err
    assert str(etc / "config.toml").encode() in out  # where the profile came from

    # 5. ... signs in once (the browser flow; the URL is followed by the scripted person, whose
    # browser runs as that user: the callback refuses a connection of another local user)
    browser = shared / "sign_in.py"
    shutil.copy(SIGN_IN, browser)
    browser.chmod(0o644)
    person_python = shared / "tools" / "keybroker" / "bin" / "python"
    login = as_user(other_user, shared, home, "keybroker login litellm --no-open")
    assert login.stderr is not None
    lines = b""
    for line in login.stderr:
        lines += line
        if line.startswith(b"http"):
            url = line.decode().strip()
            person = f"{person_python} {browser} {shlex.quote(url)} alice"
            threading.Thread(
                target=finish, daemon=True, args=(as_user(other_user, shared, home, person),)
            ).start()
    assert login.wait(timeout=120) == 0, lines

    # 6. ... and Claude Code's managed apiKeyHelper now prints the key, silently
    code, out, err = finish(as_user(other_user, shared, home, helper))
    assert code == 0, err
    assert out == oidc_vault["key"].encode() + b"\n"
    assert not (home / ".config" / "keybroker" / "config.toml").exists()
