"""A missing optional package or keychain backend: exit 2 and the exact fix, from every command.

Each command that needs an extra (aws, keychain, oidc) names the install command for this
very installation (a venv, a uv tool, plain pip …); doctor names it too; the keychain's
no-backend message names the backend class and what to start.

A missing optional package is hidden for real: a ``sitecustomize`` on PYTHONPATH installs a
meta-path finder that refuses the package's top-level name, so the installed keybroker meets
exactly what a user without the extra meets.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

from tests.conftest import KbEnv
from tests.kb import EXTRA_PROFILES, assert_fails, run

HIDER = """
import os, sys

HIDDEN = set(filter(None, os.environ.get("KB_TEST_HIDE", "").split(",")))


class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Hide())
"""


def hide(env: dict[str, str], base: Path, *packages: str) -> dict[str, str]:
    """``env`` in which ``packages`` cannot be imported by any keybroker process."""
    site = base / "hide-site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(HIDER)
    return dict(env, PYTHONPATH=str(site), KB_TEST_HIDE=",".join(packages))


def install_line(extra: str) -> re.Pattern[str]:
    """The exact command for this install (a venv's interpreter, a uv tool, plain pip …): the
    executables under test run on this same interpreter."""
    import sys  # noqa: PLC0415

    from keybroker.extras import install_command  # noqa: PLC0415

    # the console script may run the same interpreter under another name (python3 vs python)
    expected = re.escape(install_command(extra)).replace(
        re.escape(sys.executable), r"\S*/python[\d.]*"
    )
    return re.compile("install it: " + expected)


# --- missing extras: exit 2 and the exact command, from every command ---

MISSING_EXTRA_CASES = [
    ("botocore", "aws", "boto3", ["keybroker", "get", "a"]),
    ("botocore", "aws", "boto3", ["keybroker", "print-token", "a"]),
    ("botocore", "aws", "boto3", ["keybroker", "aws-credentials", "a"]),
    ("botocore", "aws", "boto3", ["keybroker-aws", "--secret-id", "x", "--region", "us-east-1"]),
    ("keyring", "keychain", "keyring", ["keybroker", "get", "k"]),
    ("keyring", "keychain", "keyring", ["keybroker", "keychain", "delete", "svc"]),
    ("keyring", "keychain", "keyring", ["keybroker-keychain", "--service", "svc"]),
    ("requests", "oidc", "requests", ["keybroker", "get", "o"]),
    ("requests", "oidc", "requests", ["keybroker", "ci", "export", "o"]),
    (
        "requests",
        "oidc",
        "requests",
        [
            "keybroker-oidc",
            "--issuer",
            "http://127.0.0.1:9",
            "--client-id",
            "c",
            "--client-secret-env",
            "KB_TEST_CLIENT_SECRET",
        ],
    ),
]


@pytest.mark.parametrize(
    ("hidden", "extra", "package", "argv"),
    MISSING_EXTRA_CASES,
    ids=[" ".join(c[3][:3]) for c in MISSING_EXTRA_CASES],
)
def test_missing_extra_is_a_usage_error_naming_the_command(
    kb_env: KbEnv, hidden: str, extra: str, package: str, argv: list[str]
) -> None:
    kb_env.write_config(EXTRA_PROFILES)
    env = hide(kb_env, kb_env.base, hidden)
    env["KB_TEST_CLIENT_SECRET"] = "not-a-real-secret"
    result = run(argv, env)
    assert_fails(result, 2, f"needs {package}, which is not installed")
    assert install_line(extra).search(result.stderr), result
    assert result.stderr.count("\n") == 1, result  # one line


@pytest.mark.parametrize(
    ("hidden", "extra", "profile"),
    [("botocore", "aws", "a"), ("keyring", "keychain", "k"), ("requests", "oidc", "o")],
)
def test_doctor_names_the_install_command(
    kb_env: KbEnv, hidden: str, extra: str, profile: str
) -> None:
    kb_env.write_config(EXTRA_PROFILES)
    env = dict(hide(kb_env, kb_env.base, hidden), KB_TEST_CLIENT_SECRET="x")
    result = run(["keybroker", "doctor", profile], env)
    assert result.code == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    assert install_line(extra).search(result.stdout), result


def test_a_missing_dependency_of_the_extra_is_named(kb_env: KbEnv) -> None:
    """requests present but urllib3 gone: the same command fixes it, and the line says why."""
    kb_env.write_config(EXTRA_PROFILES)
    env = dict(hide(kb_env, kb_env.base, "urllib3"), KB_TEST_CLIENT_SECRET="x")
    result = run(["keybroker", "get", "o"], env)
    assert_fails(result, 2, "needs requests, which is not installed (urllib3 is missing)")
    assert install_line("oidc").search(result.stderr), result


def test_install_command_per_installation(monkeypatch: pytest.MonkeyPatch) -> None:
    """The hint follows how keybroker was installed (pure function of sys.prefix)."""
    import sys  # noqa: PLC0415

    from keybroker import extras  # noqa: PLC0415

    monkeypatch.setattr(sys, "prefix", "/home/u/.local/share/uv/tools/keybroker")
    assert extras.install_command("aws").startswith("uv tool install 'keybroker[")
    assert "aws" in extras.install_command("aws")
    monkeypatch.setattr(sys, "prefix", "/home/u/.local/share/pipx/venvs/keybroker")
    assert extras.install_command("vault") == "pipx inject keybroker hvac"
    monkeypatch.setattr(sys, "prefix", sys.base_prefix)
    assert extras.install_command("oidc") == (
        "pip install 'keybroker[oidc]' (or for a uv tool: uv tool install 'keybroker[oidc]')"
    )


# --- the keychain's no-backend message names the backend and what to do ---


def test_no_keychain_backend_names_the_class_and_the_fix(kb_env: KbEnv) -> None:
    kb_env.write_config(EXTRA_PROFILES)
    env = dict(kb_env, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    for argv in (
        ["keybroker", "get", "k"],
        ["keybroker-keychain", "--service", "svc"],
        ["keybroker", "keychain", "delete", "svc"],
    ):
        result = run(argv, env)
        assert_fails(
            result,
            2,
            "(keyring.backends.fail.Keyring: no recommended backend)",
            "unset it, or name a real backend such as keyring.backends.",
        )
        assert "keyring chose" not in result.stderr
    doctor = run(["keybroker", "doctor", "k"], env)
    assert (
        "✗ profile 'k' keychain backend: no OS keychain backend is available "
        "(keyring.backends.fail.Keyring: no recommended backend)"
    ) in doctor.stdout, doctor


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Secret Service is Linux's")
def test_no_dbus_session_says_what_to_start(kb_env: KbEnv) -> None:
    kb_env.write_config(EXTRA_PROFILES)
    env = {k: v for k, v in kb_env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    result = run(["keybroker", "get", "k"], env)
    assert_fails(
        result,
        2,
        "no recommended backend",
        "DBUS_SESSION_BUS_ADDRESS is not set",
        "apt install gnome-keyring",
    )
