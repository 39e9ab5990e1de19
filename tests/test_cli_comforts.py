"""Errors that say what to do, and the CLI's comforts (issue 17), through the real executables.

A missing optional package is hidden for real: a ``sitecustomize`` on PYTHONPATH installs a
meta-path finder that refuses the package's top-level name, so the installed keybroker meets
exactly what a user without the extra meets.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from mypy_boto3_secretsmanager import SecretsManagerClient

from tests.conftest import KbEnv
from tests.fixtures.moto_server import RecordingProxy
from tests.kb import Result, assert_fails, run

HIDER = '''
import os, sys

HIDDEN = set(filter(None, os.environ.get("KB_TEST_HIDE", "").split(",")))


class Hide:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in HIDDEN:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, Hide())
'''

PROFILES = """
[profiles.a]
source = "aws"
secret_id = "kb-absent"
region = "us-east-1"

[profiles.k]
source = "keychain"
service = "svc"

[profiles.o]
source = "oidc"
issuer = "http://127.0.0.1:9"
client_id = "c"
client_secret_env = "KB_TEST_CLIENT_SECRET"
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


# --- 1. missing extras: exit 2 and the exact command, from every command ---

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
    ("requests", "oidc", "requests",
     ["keybroker-oidc", "--issuer", "http://127.0.0.1:9", "--client-id", "c",
      "--client-secret-env", "KB_TEST_CLIENT_SECRET"]),
]


@pytest.mark.parametrize(("hidden", "extra", "package", "argv"), MISSING_EXTRA_CASES,
                         ids=[" ".join(c[3][:3]) for c in MISSING_EXTRA_CASES])
def test_missing_extra_is_a_usage_error_naming_the_command(
    kb_env: KbEnv, hidden: str, extra: str, package: str, argv: list[str]
) -> None:
    kb_env.write_config(PROFILES)
    env = hide(kb_env, kb_env.base, hidden)
    env["KB_TEST_CLIENT_SECRET"] = "not-a-real-secret"
    result = run(argv, env)
    assert_fails(result, 2, f"needs {package}, which is not installed")
    assert install_line(extra).search(result.stderr), result
    assert result.stderr.count("\n") == 1, result  # one line


@pytest.mark.parametrize(("hidden", "extra", "profile"),
                         [("botocore", "aws", "a"), ("keyring", "keychain", "k"),
                          ("requests", "oidc", "o")])
def test_doctor_names_the_install_command(
    kb_env: KbEnv, hidden: str, extra: str, profile: str
) -> None:
    kb_env.write_config(PROFILES)
    env = dict(hide(kb_env, kb_env.base, hidden), KB_TEST_CLIENT_SECRET="x")
    result = run(["keybroker", "doctor", profile], env)
    assert result.code == 1, result
    assert "Traceback" not in result.stderr + result.stdout
    assert install_line(extra).search(result.stdout), result


def test_a_missing_dependency_of_the_extra_is_named(kb_env: KbEnv) -> None:
    """requests present but urllib3 gone: the same command fixes it, and the line says why."""
    kb_env.write_config(PROFILES)
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



# --- 4. the keychain's no-backend message names the backend and what to do ---


def test_no_keychain_backend_names_the_class_and_the_fix(kb_env: KbEnv) -> None:
    kb_env.write_config(PROFILES)
    env = dict(kb_env, PYTHON_KEYRING_BACKEND="keyring.backends.fail.Keyring")
    for argv in (["keybroker", "get", "k"], ["keybroker-keychain", "--service", "svc"],
                 ["keybroker", "keychain", "delete", "svc"]):
        result = run(argv, env)
        assert_fails(result, 2, "(keyring.backends.fail.Keyring: no recommended backend)",
                     "unset it, or name a real backend such as keyring.backends.")
        assert "keyring chose" not in result.stderr
    doctor = run(["keybroker", "doctor", "k"], env)
    assert ("✗ profile 'k' keychain backend: no OS keychain backend is available "
            "(keyring.backends.fail.Keyring: no recommended backend)") in doctor.stdout, doctor


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Secret Service is Linux's")
def test_no_dbus_session_says_what_to_start(kb_env: KbEnv) -> None:
    kb_env.write_config(PROFILES)
    env = {k: v for k, v in kb_env.items() if k != "DBUS_SESSION_BUS_ADDRESS"}
    result = run(["keybroker", "get", "k"], env)
    assert_fails(result, 2, "no recommended backend", "DBUS_SESSION_BUS_ADDRESS is not set",
                 "apt install gnome-keyring")


# --- 2. cache clear keeps logins unless asked; cache list says what each entry is ---

#: side-store names exactly as the sources write them (vault_auth, oidc_tokens, oidc_http,
#: oidc_doctor, aws)
AUX_NAMES = {
    ("vault", "token jwt:jwt/ci http://127.0.0.1:8200 ns=-"): "login token",
    ("oidc", "refresh:0123abcd"): "refresh token",
    ("aws", "role-0123456789abcdef"): "role credentials",
    ("oidc", "discovery:https://login.example.com"): "discovery",
    ("oidc", "jwks:https://login.example.com"): "jwks",
}


def seed_logins(kb_env: KbEnv) -> None:
    """Side-store entries written through the store's own CacheAux (what sources use)."""
    from keybroker.cache.store import Cache, CacheAux  # noqa: PLC0415
    from keybroker.sources.base import AuxEntry  # noqa: PLC0415

    cache = Cache.open(kb_env)
    for source, name in AUX_NAMES:
        CacheAux(cache, source).put(name, AuxEntry("not-a-real-token", None, {}))


def seed_key(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.c]\nsource = "command"\ncommand = ["echo", "kb-cmd-key"]\n')
    assert run(["keybroker", "get", "c"], kb_env).code == 0


def listed_kinds(kb_env: KbEnv) -> list[str]:
    listed = run(["keybroker", "cache", "list", "--json"], kb_env)
    assert listed.code == 0, listed
    return sorted(e["kind"] for e in json.loads(listed.out)["entries"])


def test_cache_list_labels_each_kind(kb_env: KbEnv) -> None:
    seed_key(kb_env)
    seed_logins(kb_env)
    listed = run(["keybroker", "cache", "list"], kb_env)
    assert listed.code == 0, listed
    for (source, name), kind in AUX_NAMES.items():
        line = next(ln for ln in listed.stdout.splitlines() if f"aux:{source}:{name}"[:40] in ln)
        assert f"({kind})" in line, (kind, line)
    assert "(login token)" in listed.stdout
    assert listed.stdout.count("(login token)") == 1  # the vault token only
    assert listed_kinds(kb_env) == sorted(["key", "login-token", "refresh-token",
                                           "role-credentials", "discovery", "jwks"])


def test_cache_clear_keeps_logins_and_says_what_it_removed(kb_env: KbEnv) -> None:
    seed_key(kb_env)
    seed_logins(kb_env)
    cleared = run(["keybroker", "cache", "clear"], kb_env)
    assert cleared.code == 0, cleared
    assert cleared.out == b""
    assert cleared.stderr == (
        "keybroker: removed 1 key; kept 5 logins (run 'keybroker cache clear --logins' to "
        "remove them, or --all for everything)\n"
    )
    assert listed_kinds(kb_env) == sorted(["login-token", "refresh-token", "role-credentials",
                                           "discovery", "jwks"])

    seed_key(kb_env)
    logins = run(["keybroker", "cache", "clear", "--logins"], kb_env)
    assert logins.code == 0, logins
    assert logins.stderr == (
        "keybroker: removed 1 discovery, 1 jwks, 1 login token, 1 refresh token, "
        "1 role credentials\n"
    )
    assert listed_kinds(kb_env) == ["key"]

    seed_logins(kb_env)
    everything = run(["keybroker", "cache", "clear", "--all"], kb_env)
    assert everything.stderr == (
        "keybroker: removed 1 discovery, 1 jwks, 1 key, 1 login token, 1 refresh token, "
        "1 role credentials\n"
    )
    assert listed_kinds(kb_env) == []
    empty = run(["keybroker", "cache", "clear"], kb_env)
    assert empty.stderr == "keybroker: no cache entries to remove\n"


def test_cache_clear_flags_that_do_not_go_together(kb_env: KbEnv) -> None:
    seed_key(kb_env)
    assert_fails(run(["keybroker", "cache", "clear", "--logins", "--all"], kb_env), 2,
                 "--logins and --all cannot be used together")
    assert_fails(run(["keybroker", "cache", "clear", "c", "--all"], kb_env), 2,
                 "leave out the profile 'c'", "or run: keybroker cache clear c")


def test_cleared_keys_leave_the_assumed_role_in_place(
    kb_env: KbEnv, aws_proxy: RecordingProxy, secretsmanager: SecretsManagerClient
) -> None:
    """The real thing: after 'cache clear' the next get reads the secret again but reuses the
    role credentials it had (no second AssumeRole, no login needed)."""
    from tests.fixtures.moto_server import aws_env, unique_name  # noqa: PLC0415

    kb_env.update(aws_env(aws_proxy.url))
    name = unique_name()
    secretsmanager.create_secret(Name=name, SecretString="sk-aws-clear-test-1")
    kb_env.write_config(
        f'[profiles.r]\nsource = "aws"\nsecret_id = "{name}"\n'
        'role_arn = "arn:aws:iam::123456789012:role/keybroker-reader"\n'
    )
    assert run(["keybroker", "get", "r"], kb_env).code == 0
    cleared = run(["keybroker", "cache", "clear"], kb_env)
    assert cleared.stderr.startswith("keybroker: removed 1 key; kept 1 login "), cleared
    assert run(["keybroker", "get", "r"], kb_env).code == 0
    assert aws_proxy.count("AssumeRole") == 1, aws_proxy.operations
    assert aws_proxy.count("GetSecretValue") == 2, aws_proxy.operations


# --- 7. shell completion: the script, and profile names from the config ---


def complete(kb_env: KbEnv, words: str, shell: str = "bash") -> Result:
    """Run the completion protocol the script uses against the real executable."""
    cword = len(words.split()) - (0 if words.endswith(" ") else 1)
    incomplete = "" if words.endswith(" ") else words.rsplit(maxsplit=1)[-1]
    env = dict(kb_env, _KEYBROKER_COMPLETE=f"{shell}_complete", COMP_WORDS=words,
               COMP_CWORD=incomplete if shell == "fish" else str(cword))  # fish sends the word
    return run(["keybroker"], env)


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_completion_prints_the_script_for_each_shell(kb_env: KbEnv, shell: str) -> None:
    result = run(["keybroker", "completion", shell], kb_env)
    assert result.code == 0, result
    assert "_KEYBROKER_COMPLETE" in result.stdout
    assert f"{shell}_complete" in result.stdout
    assert result.err == b""


def test_completion_refuses_an_unknown_shell(kb_env: KbEnv) -> None:
    result = run(["keybroker", "completion", "tcsh"], kb_env)
    assert result.code == 2, result
    assert "'tcsh' is not one of 'bash', 'zsh', 'fish'" in result.stderr


def test_profile_names_complete_from_the_config(kb_env: KbEnv) -> None:
    kb_env.write_config(PROFILES + '\n[profiles.other]\nsource = "env"\nvar = "X"\n')
    got = complete(kb_env, "keybroker get ")
    assert got.code == 0, got
    assert got.stdout.splitlines() == ["plain,a", "plain,demo", "plain,k", "plain,o",
                                       "plain,other"]
    assert complete(kb_env, "keybroker print-token o").stdout.splitlines() == [
        "plain,o", "plain,other"]
    for words in ("keybroker doctor ot", "keybroker cache clear ot", "keybroker ci export ot",
                  "keybroker exec ot", "keybroker login ot", "keybroker aws-credentials ot"):
        assert complete(kb_env, words).stdout.splitlines() == ["plain,other"], words
    assert "other" in complete(kb_env, "keybroker get ", shell="zsh").stdout.split("\n")
    # fish's line format changed between click releases (8.4: type/value/help lines; 8.5:
    # "type,value"): compare with what this click's FishComplete writes for the item
    from click.shell_completion import CompletionItem, FishComplete  # noqa: PLC0415

    fish_item = FishComplete.format_completion(None, CompletionItem("other"))  # type: ignore[arg-type]
    assert complete(kb_env, "keybroker get ", shell="fish").stdout.endswith(fish_item + "\n")


def test_profile_completion_follows_config_flag_and_survives_a_broken_config(kb_env: KbEnv) -> None:
    other = kb_env.base / "other.toml"
    other.write_text('[profiles.elsewhere]\nsource = "env"\nvar = "X"\n')
    got = complete(kb_env, f"keybroker get --config {other} e")
    assert got.stdout.splitlines() == ["plain,elsewhere"], got
    kb_env.write_config("[profiles.broken\n")
    broken = complete(kb_env, "keybroker get ")
    assert broken.code == 0
    assert broken.out.strip() == b""  # no candidates, and no error text in the prompt
    assert broken.err == b""


def test_command_names_complete(kb_env: KbEnv) -> None:
    assert complete(kb_env, "keybroker pr").stdout.splitlines() == ["plain,print-token"]


# --- 8. unknown commands: did you mean ---


@pytest.mark.parametrize(("typed", "meant"), [("prnt-token", "print-token"), ("cach", "cache"),
                                              ("doctr", "doctor"), ("complete", "completion")])
def test_unknown_command_suggests_the_close_one(kb_env: KbEnv, typed: str, meant: str) -> None:
    result = run(["keybroker", typed, "demo"], kb_env)
    assert result.code == 2, result
    assert result.out == b""
    assert f"Error: No such command '{typed}'. Did you mean '{meant}'?" in result.stderr


def test_unknown_command_without_a_close_one(kb_env: KbEnv) -> None:
    result = run(["keybroker", "xyzzy"], kb_env)
    assert result.code == 2, result
    assert "Error: No such command 'xyzzy'.\n" in result.stderr


# --- 3. doctor on a VPC-endpoint network: STS unreachable, Secrets Manager fine ---


def vpc_endpoint_env(kb_env: KbEnv, moto_endpoint: str) -> dict[str, str]:
    """Secrets Manager only through the profile's endpoint_url; STS refuses connections."""
    from tests.fixtures.moto_server import aws_env, closed_port_url  # noqa: PLC0415

    env = dict(kb_env, **aws_env(moto_endpoint))
    del env["AWS_ENDPOINT_URL"]  # nothing but the profile's endpoint_url reaches moto
    env["AWS_ENDPOINT_URL_STS"] = closed_port_url()
    return env


def test_doctor_with_only_a_secrets_manager_endpoint_skips_sts(
    kb_env: KbEnv, moto_endpoint: str, secretsmanager: SecretsManagerClient
) -> None:
    from tests.fixtures.moto_server import unique_name  # noqa: PLC0415

    name = unique_name()
    secretsmanager.create_secret(Name=name, SecretString="sk-aws-vpc-endpoint-1")
    kb_env.write_config(f'[profiles.vpc]\nsource = "aws"\nsecret_id = "{name}"\n'
                        f'region = "us-east-1"\nendpoint_url = "{moto_endpoint}"\n')
    env = vpc_endpoint_env(kb_env, moto_endpoint)
    assert run(["keybroker", "get", "vpc"], env).code == 0  # what the user saw working
    doctor = run(["keybroker", "doctor", "vpc"], env)
    lines = [ln for ln in doctor.stdout.splitlines() if ln[2:].startswith("profile 'vpc'")]
    identity = next(ln for ln in lines if "sts:GetCallerIdentity" in ln)
    assert identity.startswith("– profile 'vpc' AWS credentials (sts:GetCallerIdentity): "
                               "skipped: STS is not reachable from here"), identity
    assert f"Secrets Manager accepts these credentials at {moto_endpoint}" in identity
    assert any(ln.startswith("✓ profile 'vpc' secretsmanager:DescribeSecret") for ln in lines)
    assert not [ln for ln in lines if ln.startswith("✗")], doctor
    assert doctor.code == 0, doctor


def test_doctor_still_fails_sts_when_secrets_manager_fails_too(
    kb_env: KbEnv, moto_endpoint: str
) -> None:
    kb_env.write_config('[profiles.vpc]\nsource = "aws"\nsecret_id = "kb-absent-secret"\n'
                        f'region = "us-east-1"\nendpoint_url = "{moto_endpoint}"\n')
    env = vpc_endpoint_env(kb_env, moto_endpoint)
    doctor = run(["keybroker", "doctor", "vpc"], env)
    assert doctor.code == 1, doctor
    assert "✗ profile 'vpc' AWS credentials (sts:GetCallerIdentity): cannot reach" \
        in doctor.stdout, doctor
    assert "✗ profile 'vpc' secretsmanager:DescribeSecret" in doctor.stdout


# --- terminals: a real pty for the stream that must look like one ---

COLOUR_VARS = ("NO_COLOR", "FORCE_COLOR", "CLICOLOR_FORCE", "CLICOLOR", "TERM",
               "KEYBROKER_QUIET", "CLAUDECODE", "CLAUDE_CODE_ENTRYPOINT")


def plain_env(kb_env: KbEnv, **extra: str) -> dict[str, str]:
    """The test env without the runner's colour/quiet/Claude variables, TERM=xterm."""
    env = {k: v for k, v in kb_env.items() if k not in COLOUR_VARS}
    env["TERM"] = "xterm-256color"
    env.update(extra)
    return env


def run_tty(argv: list[str], env: dict[str, str], on: str, timeout: float = 60,
            columns: int = 0) -> Result:
    """Run with ``on`` ("stdout" or "stderr") attached to a pseudo-terminal, the other a pipe.

    What the terminal received is returned in that stream's slot (the pty turns \\n into
    \\r\\n), so a test sees exactly what a person would.
    """
    import os  # noqa: PLC0415
    import pty  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import threading  # noqa: PLC0415

    from tests.kb import exe  # noqa: PLC0415

    master, slave = pty.openpty()
    if columns:
        import fcntl  # noqa: PLC0415
        import struct  # noqa: PLC0415
        import termios  # noqa: PLC0415

        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, columns, 0, 0))
    streams = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, on: slave}
    program = exe(argv[0]) if argv[0].startswith("keybroker") else argv[0]
    proc = subprocess.Popen([program, *argv[1:]], env=env, stdin=subprocess.PIPE,
                            stdout=streams["stdout"], stderr=streams["stderr"])
    os.close(slave)
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: every writer closed the terminal
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain)
    reader.start()
    piped = proc.stderr if on == "stdout" else proc.stdout
    assert piped is not None
    other = piped.read()
    proc.wait(timeout=timeout)
    reader.join(timeout=10)
    os.close(master)
    assert proc.stdin is not None
    proc.stdin.close()
    out, err = (bytes(received), other) if on == "stdout" else (other, bytes(received))
    return Result(proc.returncode, out, err)


# --- 6. colour: terminals only, never in pipes, NO_COLOR and TERM=dumb respected ---

ESC = b"\x1b["


def test_doctor_colour_only_in_a_terminal(kb_env: KbEnv) -> None:
    piped = run(["keybroker", "doctor", "demo"], plain_env(kb_env))
    assert piped.code == 0, piped
    assert "✓ profile 'demo'" in piped.stdout
    assert ESC not in piped.out + piped.err

    tty = run_tty(["keybroker", "doctor", "demo"], plain_env(kb_env), on="stdout")
    assert tty.code == 0, tty
    assert b"\x1b[32m\xe2\x9c\x93\x1b[0m \x1b[1mprofile 'demo'\x1b[0m" in tty.out, tty  # green ✓

    for quiet in ({"NO_COLOR": "1"}, {"TERM": "dumb"}, {"CLICOLOR": "0"},
                  {"NO_COLOR": "1", "FORCE_COLOR": "1"}):
        tty = run_tty(["keybroker", "doctor", "demo"], plain_env(kb_env, **quiet), on="stdout")
        assert tty.code == 0, (quiet, tty)
        assert "✓ profile 'demo'".encode() in tty.out, (quiet, tty)
        assert ESC not in tty.out, quiet


def test_forced_colour_and_red_failures(kb_env: KbEnv) -> None:
    kb_env.write_config('[profiles.gone]\nsource = "env"\nvar = "KB_TEST_UNSET_VARIABLE"\n')
    for force in ({"FORCE_COLOR": "1"}, {"CLICOLOR_FORCE": "1"}):
        tty = run_tty(["keybroker", "doctor", "gone"], plain_env(kb_env, TERM="dumb", **force),
                      on="stdout")
        assert tty.code == 1, tty
        assert b"\x1b[31m\xe2\x9c\x97\x1b[0m \x1b[1mprofile 'gone'\x1b[0m" in tty.out, tty
        assert b"\x1b[33mfix:\x1b[0m" in tty.out
        piped = run(["keybroker", "doctor", "gone"], plain_env(kb_env, **force))
        assert b"\x1b[31m\xe2\x9c\x97" in piped.out, piped  # forced means forced
    assert ESC not in run(["keybroker", "doctor", "gone"], plain_env(kb_env)).out


def test_print_token_headings_in_colour_in_a_terminal(kb_env: KbEnv) -> None:
    tty = run_tty(["keybroker", "print-token", "demo"], plain_env(kb_env), on="stdout")
    assert tty.code == 0, tty
    assert b"\x1b[1;36mprofile   \x1b[0m  demo" in tty.out, tty
    piped = run(["keybroker", "print-token", "demo"], plain_env(kb_env))
    assert piped.code == 0, piped
    assert ESC not in piped.out
    assert piped.stdout.startswith("profile     demo\n")
    as_json = run_tty(["keybroker", "print-token", "demo", "--json"], plain_env(kb_env),
                      on="stdout")
    assert ESC not in as_json.out


# --- 5. a status line while slow work runs: on a terminal only, and erased afterwards ---

ERASE = b"\r\x1b[K"
SLOW = '[profiles.slow]\nsource = "command"\ncommand = ["sh", "-c", "sleep 2; echo kb-slow-key"]\n'
#: the status module around a stalling process, in a process of its own (stderr on a pty)
STALL = """
import os, subprocess, sys
from keybroker import progress
with progress.status("waiting for vault.example.com", os.environ):
    subprocess.run(["sh", "-c", "sleep 2"], check=True)
print("done")
"""


def test_status_line_appears_redraws_and_is_erased_on_a_terminal(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env), on="stderr")
    assert result.code == 0, result
    assert result.out == b"done\n"
    assert b"\rkeybroker: waiting for vault.example.com\xe2\x80\xa6 1s\x1b[K" in result.err, result
    assert result.err.endswith(ERASE), result  # nothing left on the terminal
    # after the erase, the line holds nothing: every draw starts with \r and is cleared
    assert result.err.count(b"\rkeybroker: ") >= 1


def test_status_line_on_a_dumb_terminal_pads_instead_of_escapes(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env, TERM="dumb"), on="stderr")
    assert result.code == 0, result
    assert b"\x1b" not in result.err
    drawn = b"keybroker: waiting for vault.example.com\xe2\x80\xa6 1s"
    assert b"\r" + drawn in result.err
    assert result.err.endswith(b"\r" + b" " * len(drawn.decode()) + b"\r"), result


def test_status_line_never_wraps_on_a_narrow_terminal(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env), on="stderr", columns=30)
    assert result.code == 0, result
    # 29 columns: the name is cut, the elapsed time stays
    assert b"\rkeybroker: waiting for va\xe2\x80\xa6 1s\x1b[K" in result.err, result


@pytest.mark.parametrize("quiet", [{"CLAUDECODE": "1"}, {"CLAUDE_CODE_ENTRYPOINT": "cli"},
                                   {"KEYBROKER_QUIET": "1"}])
def test_no_status_line_under_claude_code_or_quiet(kb_env: KbEnv, quiet: dict[str, str]) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run_tty([python(), "-c", STALL], plain_env(kb_env, **quiet), on="stderr")
    assert result.code == 0, result
    assert result.err == b"", (quiet, result)


def test_no_status_line_without_a_terminal(kb_env: KbEnv) -> None:
    from tests.kb import python  # noqa: PLC0415

    result = run([python(), "-c", STALL], plain_env(kb_env))
    assert result.code == 0, result
    assert result.err == b"", result
    kb_env.write_config(SLOW)
    got = run(["keybroker", "get", "slow"], plain_env(kb_env))
    assert got.out == b"kb-slow-key\n", got
    assert got.err == b"", got


def test_get_shows_the_status_while_a_source_stalls(kb_env: KbEnv) -> None:
    kb_env.write_config(SLOW)
    result = run_tty(["keybroker", "get", "slow"], plain_env(kb_env), on="stderr")
    assert result.out == b"kb-slow-key\n", result  # stdout untouched: the key and \n only
    assert b"\rkeybroker: waiting for command (sh)\xe2\x80\xa6 1s\x1b[K" in result.err, result
    assert result.err.endswith(ERASE), result
    hit = run_tty(["keybroker", "get", "slow"], plain_env(kb_env), on="stderr")
    assert hit.out == b"kb-slow-key\n"
    assert hit.err == b"", hit  # a cache hit never waits, never draws
