"""``keybroker ci export``: every format, through the real executable.

The value is chosen to be hard to quote (', ", $, \\, `, %0A) so each format's escaping is
exercised, and every test checks that the value reaches only the place the format promises.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from keybroker import output, redact
from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.fixtures.users import OsUser
from tests.kb import Result, assert_fails, assert_nowhere, file_profiles, run

VALUE = "sk-'q\"d$HOME\\n`id`%0Aend"
OTHER = "sk-other-7f6e5d4c3b"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shells")


@pytest.fixture
def ci_env(kb_env: KbEnv) -> KbEnv:
    file_profiles(kb_env, k=("key.txt", VALUE), o=("other.txt", OTHER), missing=("nope.txt", None))
    return kb_env


def parse_github_env(text: str) -> dict[str, str]:
    """Read a $GITHUB_ENV file the way the runner does (heredoc blocks and NAME=value)."""
    values: dict[str, str] = {}
    lines = iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delimiter = line.split("<<", 1)
            body: list[str] = []
            for inner in lines:
                if inner == delimiter:
                    break
                body.append(inner)
            else:
                raise AssertionError(f"unterminated block for {name}")
            values[name] = "\n".join(body)
        elif "=" in line:
            name, value = line.split("=", 1)
            values[name] = value
    return values


# --- github ---


def test_github_masks_first_and_writes_value_only_to_github_env(ci_env: KbEnv) -> None:
    github_env = ci_env.base / "github_env"
    github_env.write_text("EARLIER=kept\n")
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "github"],
        dict(ci_env, GITHUB_ENV=str(github_env)),
    )
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    # the first thing the runner reads is the mask of the value itself (escaped as data)
    assert lines[0] == "::add-mask::" + VALUE.replace("%", "%25"), lines
    assert all(line.startswith("::add-mask::") for line in lines), lines
    assert VALUE.encode() not in result.out  # only its escaped mask form is on stdout
    assert (
        result.err == b"keybroker: exported ANTHROPIC_AUTH_TOKEN to $GITHUB_ENV "
        b"(masked in this job's logs)\n"
    )
    assert_nowhere(VALUE, result, dirs=[ci_env.cache_dir, ci_env.data_dir])
    text = github_env.read_text()
    assert text.startswith("EARLIER=kept\n")  # appended, not replaced
    assert parse_github_env(text) == {"EARLIER": "kept", "ANTHROPIC_AUTH_TOKEN": VALUE}
    delimiter = text.splitlines()[1].split("<<", 1)[1]
    assert delimiter.startswith("ghadelimiter_")
    assert len(delimiter) > 30


def test_github_masks_derived_forms(ci_env: KbEnv) -> None:
    github_env = ci_env.base / "github_env"
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "github"],
        dict(ci_env, GITHUB_ENV=str(github_env)),
    )
    assert result.code == 0, result
    masked = {
        line[len("::add-mask::") :].replace("%25", "%") for line in result.stdout.splitlines()
    }
    assert VALUE in masked
    assert json.dumps(VALUE)[1:-1] in masked  # how a JSON log would show it
    assert redact.derived_forms(VALUE)[2] in masked  # URL-encoded
    assert base64.b64encode(VALUE.encode()).decode() in masked


def test_github_several_variables_and_profiles(ci_env: KbEnv) -> None:
    github_env = ci_env.base / "github_env"
    result = run(
        [
            "keybroker",
            "ci",
            "export",
            "k",
            "--format",
            "github",
            "--var",
            "ANTHROPIC_AUTH_TOKEN",
            "--var",
            "OTHER_KEY=o",
        ],
        dict(ci_env, GITHUB_ENV=str(github_env)),
    )
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::add-mask::")
    assert f"::add-mask::{OTHER}" in lines
    assert parse_github_env(github_env.read_text()) == {
        "ANTHROPIC_AUTH_TOKEN": VALUE,
        "OTHER_KEY": OTHER,
    }
    # each block has its own delimiter
    delimiters = [ln.split("<<")[1] for ln in github_env.read_text().splitlines() if "<<" in ln]
    assert len(set(delimiters)) == 2


def test_github_without_github_env_is_a_usage_error(ci_env: KbEnv) -> None:
    result = run(["keybroker", "ci", "export", "k", "--format", "github"], ci_env)
    assert_fails(result, 2, "GITHUB_ENV is not set", secrets=[VALUE])


def test_github_refuses_an_output_file(ci_env: KbEnv) -> None:
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "github", "-o", "x.env"],
        dict(ci_env, GITHUB_ENV=str(ci_env.base / "github_env")),
    )
    assert_fails(result, 2, "not used with --format github", secrets=[VALUE])


def test_github_source_failure_prints_nothing(ci_env: KbEnv) -> None:
    github_env = ci_env.base / "github_env"
    result = run(
        ["keybroker", "ci", "export", "missing", "--format", "github"],
        dict(ci_env, GITHUB_ENV=str(github_env)),
    )
    assert_fails(result, 5, "nope.txt")
    assert not github_env.exists()


# --- shell ---


@pytest.mark.parametrize("shell", ["/bin/sh", "bash"])
def test_shell_output_round_trips_through_eval(ci_env: KbEnv, shell: str) -> None:
    script = 'eval "$(keybroker ci export k --var MY_KEY)" && printf "%s" "$MY_KEY"'
    result = run([shell, "-c", script], ci_env)
    assert result.code == 0, result
    assert result.out == VALUE.encode()
    assert result.err == b""


def test_shell_format_byte_for_byte(ci_env: KbEnv) -> None:
    result = run(["keybroker", "ci", "export", "k", "--format", "shell"], ci_env)
    assert result.code == 0, result
    assert result.out == b"export ANTHROPIC_AUTH_TOKEN='sk-'\"'\"'q\"d$HOME\\n`id`%0Aend'\n"
    assert result.err == b""


@pytest.mark.parametrize(
    "value",
    [
        "a'b",
        'a"b',
        "$(touch /tmp/kb-pwned)",
        "a\\b\\\\c",
        "`id`",
        "'",
        "''",
        "x'\"'\"'y",
        "${HOME}",
        "!event",
        "a;b|c&d",
        "-n",
    ],
)
def test_shell_quote_survives_eval_in_sh(value: str, tmp_path: Path) -> None:
    text = output.shell([("V", value)])
    proc = subprocess.run(
        ["/bin/sh", "-c", text + 'printf "%s" "$V"'],
        capture_output=True,
        check=False,
        cwd=tmp_path,
        timeout=30,
    )
    assert proc.returncode == 0, proc
    assert proc.stdout.decode() == value
    assert list(tmp_path.iterdir()) == []


# --- dotenv, json, gitlab ---


def test_dotenv_and_json(ci_env: KbEnv) -> None:
    dotenv = run(
        ["keybroker", "ci", "export", "k", "--format", "dotenv", "--var", "A", "--var", "B=o"],
        ci_env,
    )
    assert dotenv.code == 0, dotenv
    assert (
        dotenv.out == (f"A={output.dotenv_quote(VALUE)}\nB={output.dotenv_quote(OTHER)}\n").encode()
    )
    assert dotenv.out.startswith(b"A='sk-\\'q")  # single-quoted, python-dotenv's escapes
    assert dotenv.err == b""
    as_json = run(["keybroker", "ci", "export", "k", "--format", "json"], ci_env)
    assert as_json.code == 0, as_json
    assert json.loads(as_json.out) == {"ANTHROPIC_AUTH_TOKEN": VALUE}
    assert as_json.out == (json.dumps({"ANTHROPIC_AUTH_TOKEN": VALUE}) + "\n").encode()


def test_output_file_is_private_and_stdout_empty(ci_env: KbEnv) -> None:
    target = ci_env.base / "out.json"
    result = run(["keybroker", "ci", "export", "k", "--format", "json", "-o", str(target)], ci_env)
    assert result.code == 0, result
    assert result.out == b""
    assert json.loads(target.read_text()) == {"ANTHROPIC_AUTH_TOKEN": VALUE}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert_nowhere(VALUE, result)


def test_gitlab_writes_dotenv_report_and_replaces_same_name(ci_env: KbEnv) -> None:
    report = ci_env.base / "build.env"
    report.write_text("KEEP=1\nANTHROPIC_AUTH_TOKEN=stale\n")
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "gitlab", "--dotenv-file", str(report)],
        ci_env,
    )
    assert result.code == 0, result
    assert result.out == b""
    assert b"GitLab does not mask dotenv variables" in result.err
    assert_nowhere(VALUE, result)
    assert report.read_text() == f"KEEP=1\nANTHROPIC_AUTH_TOKEN={VALUE}\n"


def test_gitlab_needs_a_dotenv_file(ci_env: KbEnv) -> None:
    result = run(["keybroker", "ci", "export", "k", "--format", "gitlab"], ci_env)
    assert_fails(result, 2, "--dotenv-file", secrets=[VALUE])


# --- arguments ---


def test_var_pairs_without_profile_argument(ci_env: KbEnv) -> None:
    result = run(["keybroker", "ci", "export", "--var", "X=o", "--format", "dotenv"], ci_env)
    assert result.code == 0, result
    assert result.out == f"X='{OTHER}'\n".encode()


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--var", "1BAD"], "invalid variable name"),
        (["--var", "A;rm"], "invalid variable name"),
        (["--var", "A", "--var", "A=o"], "more than once"),
    ],
)
def test_bad_var_is_usage_error(ci_env: KbEnv, args: list[str], needle: str) -> None:
    result = run(["keybroker", "ci", "export", "k", *args], ci_env)
    assert_fails(result, 2, needle, secrets=[VALUE])


def test_bare_var_without_profile_is_usage_error(ci_env: KbEnv) -> None:
    result = run(["keybroker", "ci", "export", "--var", "X"], ci_env)
    assert_fails(result, 2, "no profile")


def test_unknown_profile(ci_env: KbEnv) -> None:
    result = run(["keybroker", "ci", "export", "nosuch"], ci_env)
    assert_fails(result, 2, "unknown profile 'nosuch'")


# --- pure formatting ---


def test_github_mask_escapes_workflow_command_data() -> None:
    assert output.github_escape_data("a%b\r\nc") == "a%25b%0D%0Ac"
    lines = output.github_mask_lines(["one\ntwo"]).splitlines()
    assert "::add-mask::one" in lines
    assert "::add-mask::two" in lines


def test_github_env_block_shape() -> None:
    block = output.github_env_block("N", "v", delimiter="ghadelimiter_x")
    assert block == "N<<ghadelimiter_x\nv\nghadelimiter_x\n"


# --- helpers/github-action: the composite action's steps, run as the runner runs them ---

ACTION = Path(__file__).resolve().parent.parent / "helpers" / "github-action" / "action.yml"
EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")
CACHE_ACTION = "actions/cache@"


class ActionsCache:
    """actions/cache as the runner sees it: restore ``path`` when ``key`` was saved by an
    earlier job, save it after the job when it was not (tar keeps symlinks; so does this)."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.pending: list[tuple[Path, Path]] = []

    def restore(self, path: Path, key: str) -> bool:
        saved = self.store / key
        if saved.is_dir():
            path.parent.mkdir(parents=True, exist_ok=True)
            if path.is_dir():  # what is restored replaces what was there (tar -x)
                shutil.rmtree(path)
            shutil.copytree(saved, path, symlinks=True)
            return True
        self.pending.append((path, saved))
        return False

    def post(self) -> None:
        for path, saved in self.pending:
            if path.is_dir():
                shutil.copytree(path, saved, symlinks=True)
        self.pending.clear()


def run_composite(
    action: dict[str, Any],
    inputs: dict[str, str],
    env: dict[str, str],
    tmp: Path,
    *,
    action_path: Path | None = None,
    cache: ActionsCache | None = None,
) -> tuple[list[Result], dict[str, str], dict[str, dict[str, str]]]:
    """A minimal composite-action runner: inputs, step outputs, $GITHUB_ENV and $GITHUB_PATH
    carried from step to step, ``if: inputs.X != 'v'``, and actions/cache (``cache``)."""
    values: dict[str, str] = {k: v.get("default", "") for k, v in action["inputs"].items()}
    values.update(inputs)
    outputs: dict[str, dict[str, str]] = {}
    context = {"github.action_path": str(action_path or ACTION.parent), "runner.os": "Linux"}
    env = dict(env)
    results: list[Result] = []

    def expand(text: str) -> str:
        def one(match: re.Match[str]) -> str:
            expr = match.group(1)
            if expr.startswith("inputs."):
                return values[expr[len("inputs.") :]]
            if expr in context:
                return context[expr]
            _, step_id, _, name = expr.split(".")
            return outputs.get(step_id, {}).get(name, "")

        return EXPR.sub(one, text)

    def condition(text: str) -> bool:
        found = re.fullmatch(r"inputs\.([\w-]+) (==|!=) '([^']*)'", text.strip())
        assert found, f"the test runner cannot evaluate if: {text}"
        equal = values[found.group(1)] == found.group(3)
        return equal if found.group(2) == "==" else not equal

    for step in action["runs"]["steps"]:
        if "if" in step and not condition(step["if"]):
            continue
        if step.get("uses", "").startswith(CACHE_ACTION):
            assert re.fullmatch(r"actions/cache@[0-9a-f]{40}", step["uses"]), "pin by commit"
            assert cache is not None, "this run installs: give it an ActionsCache"
            with_ = {k: expand(str(v)) for k, v in step["with"].items()}
            hit = cache.restore(Path(with_["path"]), with_["key"])
            outputs[step["id"]] = {"cache-hit": str(hit).lower()}
            continue
        output_file = tmp / f"output-{step['id']}"
        output_file.write_text("")
        step_env = dict(env, GITHUB_OUTPUT=str(output_file))
        step_env.update({k: expand(str(v)) for k, v in step.get("env", {}).items()})
        assert "${{" not in step["run"], "inputs must reach scripts through env only"
        result = run(
            ["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
            step_env,
            timeout=600,
        )
        results.append(result)
        if result.code != 0:
            break
        outputs[step["id"]] = parse_github_env(output_file.read_text())
        env.update(parse_github_env(Path(env["GITHUB_ENV"]).read_text()))
        path_file = Path(env["GITHUB_PATH"])
        if path_file.exists():
            extra = [line for line in path_file.read_text().splitlines() if line]
            env["PATH"] = os.pathsep.join([*reversed(extra), env["PATH"]])
            path_file.write_text("")
    if cache is not None:
        cache.post()
    return results, env, outputs


@pytest.fixture
def runner_env(ci_env: KbEnv, tmp_path: Path) -> dict[str, str]:
    runner_temp = tmp_path / "runner_temp"
    runner_temp.mkdir()
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    return dict(
        ci_env,
        RUNNER_TEMP=str(runner_temp),
        GITHUB_ENV=str(github_env),
        GITHUB_PATH=str(tmp_path / "github_path"),
    )


def test_github_action_exports_masked_with_inline_config(
    runner_env: dict[str, str], ci_env: KbEnv, tmp_path: Path
) -> None:
    import yaml  # noqa: PLC0415 - moto's dependency; only this test reads YAML

    action = yaml.safe_load(ACTION.read_text())
    config_toml = ci_env.config_path.read_text()
    env = {k: v for k, v in runner_env.items()}
    env["KEYBROKER_CONFIG"] = str(tmp_path / "no-default-config.toml")  # must come from input
    results, later, outputs = run_composite(
        action,
        {
            "install": "false",
            "profile": "k",
            "var": "API_TOKEN",
            "vars": "  OTHER=o \n\n",
            "config-toml": config_toml,
        },
        env,
        tmp_path,
    )
    assert [r.code for r in results] == [0, 0, 0], results
    export = results[-1]
    assert export.stdout.startswith("::add-mask::")
    assert VALUE.encode() not in export.out
    assert_nowhere(VALUE, *results)
    runner_temp = Path(runner_env["RUNNER_TEMP"])
    exported = parse_github_env(Path(runner_env["GITHUB_ENV"]).read_text())
    (private,) = runner_temp.glob("keybroker.*")  # this use's own dir (mktemp -d)
    assert outputs["prepare"]["state"] == str(private)
    assert stat.S_IMODE(private.stat().st_mode) == 0o700
    written = list(private.glob("config.*"))
    assert len(written) == 1
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o600
    assert exported == {
        "API_TOKEN": VALUE,
        "OTHER": OTHER,
        "KEYBROKER_CONFIG": str(written[0]),
        "KEYBROKER_CACHE_DIR": str(private / "cache"),
        "KEYBROKER_DATA_DIR": str(private / "data"),
    }
    assert outputs["export"]["config"] == str(written[0])
    for state in ("cache", "data"):
        assert stat.S_IMODE((private / state).stat().st_mode) == 0o700
    # A later step sees the config and the RUNNER_TEMP cache through the exported variables.
    later_step = run(["keybroker", "get", "o"], later)
    assert (later_step.code, later_step.stdout) == (0, OTHER + "\n"), later_step
    assert list((private / "cache").iterdir()), "cache not under RUNNER_TEMP"
    assert not ci_env.cache_dir.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("config", "kb.toml\nNODE_OPTIONS=--require=/tmp/evil.js"),
        ("profile", "k\nNODE_OPTIONS=--require=/tmp/evil.js"),
        ("var", "API_TOKEN\x1b]0;title\x07"),
        ("python", "python3\r"),
        ("vars", "OTHER=o\rNODE_OPTIONS=x"),
        ("config-toml", "[profiles.k]\x1b[2J\n"),
    ],
)
def test_github_action_refuses_control_characters_before_writing_anything(
    runner_env: dict[str, str], ci_env: KbEnv, tmp_path: Path, name: str, value: str
) -> None:
    """Issue 20 item 5. Before: a newline in ``config`` added lines (NODE_OPTIONS=…) to
    $GITHUB_ENV before keybroker ran. Now the first step refuses the input, and nothing is
    written to $GITHUB_ENV, $GITHUB_PATH or the step outputs."""
    import yaml  # noqa: PLC0415

    (tmp_path / "kb.toml").write_text(ci_env.config_path.read_text())
    inputs = {"install": "false", "profile": "k", "config": str(tmp_path / "kb.toml")}
    inputs[name] = value
    github_env = Path(runner_env["GITHUB_ENV"])
    results, _, _ = run_composite(
        yaml.safe_load(ACTION.read_text()),
        inputs,
        dict(runner_env, GITHUB_WORKSPACE=str(tmp_path)),
        tmp_path,
    )
    assert [r.code for r in results] == [1], results
    assert results[0].stdout.startswith(
        f"::error::keybroker: input '{name}' contains a control character"
    ), results[0]
    assert value not in results[0].stdout + results[0].stderr
    assert github_env.read_text() == ""
    assert not Path(runner_env["GITHUB_PATH"]).exists()
    assert (tmp_path / "output-prepare").read_text() == ""
    assert not list(Path(runner_env["RUNNER_TEMP"]).iterdir())


def test_github_action_ignores_a_state_dir_planted_by_another_user(
    runner_env: dict[str, str], ci_env: KbEnv, tmp_path: Path, other_user: OsUser
) -> None:
    """Another user's (or job's) $RUNNER_TEMP/keybroker with a config, cache and data key in
    it is never used: each use of the action works in a new private dir of its own."""
    import yaml  # noqa: PLC0415

    planted = Path(runner_env["RUNNER_TEMP"]) / "keybroker"
    for sub in ("cache", "data"):
        (planted / sub).mkdir(parents=True)
    for path in (planted, planted / "cache", planted / "data"):
        os.chown(path, other_user.uid, other_user.gid)
        path.chmod(0o777)
    results, later, outputs = run_composite(
        yaml.safe_load(ACTION.read_text()),
        {"install": "false", "profile": "k", "config-toml": ci_env.config_path.read_text()},
        runner_env,
        tmp_path,
    )
    assert [r.code for r in results] == [0, 0, 0], results
    state = Path(outputs["prepare"]["state"])
    assert state.parent == planted.parent
    assert state != planted
    assert (state.stat().st_uid, stat.S_IMODE(state.stat().st_mode)) == (os.getuid(), 0o700)
    assert later["KEYBROKER_DATA_DIR"] == str(state / "data")
    assert list((planted / "cache").iterdir()) == list((planted / "data").iterdir()) == []


def test_github_action_lock_pins_every_dependency_with_hashes() -> None:
    """requirements.lock covers pyproject's dependencies and extras, each == and hashed."""
    import tomllib  # noqa: PLC0415

    project = tomllib.loads((ACTION.parent.parent.parent / "pyproject.toml").read_text())
    wanted = {re.split(r"[<>=\[ ;]", d)[0].lower() for d in project["project"]["dependencies"]}
    for extra, deps in project["project"]["optional-dependencies"].items():
        if extra not in ("test", "all"):
            wanted |= {re.split(r"[<>=\[ ;]", d)[0].lower() for d in deps}
    wanted.add("hatchling")  # the build backend: the action builds without isolation
    lock = (ACTION.parent / "requirements.lock").read_text()
    entry = r"^([A-Za-z0-9_.-]+)==(\S+)(?: ;[^\\]*)? \\\n((?:\s+--hash=sha256:[0-9a-f]{64}.*\n)+)"
    entries = re.findall(entry, lock, re.M)
    pinned = {name.lower() for name, _, _ in entries}
    assert wanted <= pinned, wanted - pinned
    assert len(entries) == len(re.findall(r"^[A-Za-z0-9_.-]+==", lock, re.M))


PLANTED = '#!/bin/sh\necho "$ACTIONS_ID_TOKEN_REQUEST_TOKEN" >> {mark}\nexit 0\n'


def plant(where: list[Path], mark: Path) -> int:
    """What another repository's job on the same self-hosted runner can do: replace every
    executable named keybroker or python* it finds in the tool cache and the actions cache
    by its own, and append to every cached wheel. Returns how many files it touched."""
    touched = 0
    for root in where:
        for path in [p for p in root.rglob("*") if p.is_file() or p.is_symlink()]:
            if path.name == "keybroker" or re.fullmatch(r"python[\d.]*", path.name):
                path.unlink()
                path.write_text(PLANTED.format(mark=mark))
                path.chmod(0o755)
                touched += 1
            elif path.suffix == ".whl":
                with path.open("ab") as wheel:
                    wheel.write(b"planted")
                touched += 1
    return touched


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(1200)
def test_github_action_installs_per_job_from_verified_wheels_and_runs_nothing_planted(
    runner_env: dict[str, str], ci_env: KbEnv, tmp_path: Path
) -> None:
    """Jobs on one self-hosted runner (its tool cache persists) sharing actions/cache. The
    first downloads the locked wheels, the second installs from the cached wheels (verified
    by hash, nothing downloaded). Then another repository's job plants a keybroker/python in
    every place the action ever wrote, and corrupts the cached wheels. Before: the venv in
    $RUNNER_TOOL_CACHE (or restored from the cache) was trusted once `keybroker --version`
    ran, so the planted keybroker ran with ACTIONS_ID_TOKEN_REQUEST_TOKEN. Now: every job
    installs into a new private venv, from wheels whose sha256 the lock pins."""
    import yaml  # noqa: PLC0415

    from tests.fixtures.install import fresh_copy  # noqa: PLC0415

    checkout = fresh_copy(tmp_path / "_actions" / "keybroker" / "v0")
    action_path = checkout / "helpers" / "github-action"
    action = yaml.safe_load((action_path / "action.yml").read_text())
    cache = ActionsCache(tmp_path / "actions-cache")
    tool_cache = tmp_path / "hostedtoolcache"  # a self-hosted runner's: kept across jobs
    tool_cache.mkdir()
    mark = tmp_path / "planted-code-ran"
    config_toml = ci_env.config_path.read_text()

    def job(name: str) -> tuple[dict[str, dict[str, str]], list[Result], Path, Path]:
        job_tmp = tmp_path / name
        job_tmp.mkdir()
        (job_tmp / "runner_temp").mkdir()
        (job_tmp / "github_env").write_text("")
        env = dict(
            runner_env,
            RUNNER_TOOL_CACHE=str(tool_cache),
            RUNNER_TEMP=str(job_tmp / "runner_temp"),
            GITHUB_ENV=str(job_tmp / "github_env"),
            GITHUB_PATH=str(job_tmp / "github_path"),
            ACTIONS_ID_TOKEN_REQUEST_TOKEN="request-token-of-" + name,
            PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin",  # python3 >= 3.11
            KEYBROKER_CONFIG=str(tmp_path / "none.toml"),
        )
        started = time.monotonic()
        results, later, outputs = run_composite(
            action,
            {"profile": "k", "config-toml": config_toml},
            env,
            job_tmp,
            action_path=action_path,
            cache=cache,
        )
        sys.stderr.write(f"\naction, job {name}: {time.monotonic() - started:.1f} s\n")
        assert not mark.exists(), f"planted code ran: {mark.read_text()}"
        assert [r.code for r in results] == [0, 0, 0], results
        assert_nowhere(VALUE, *results)
        exported = parse_github_env(Path(env["GITHUB_ENV"]).read_text())
        assert exported["ANTHROPIC_AUTH_TOKEN"] == VALUE
        venv = Path(outputs["install"]["keybroker"]).parent.parent
        assert later["PATH"].split(os.pathsep)[0] == str(venv / "bin")
        where = run(["python3", "-c", "import keybroker; print(keybroker.__file__)"], later)
        assert where.stdout.startswith(str(venv)), where
        later_step = run(["keybroker", "get", "o"], later)
        assert (later_step.code, later_step.stdout) == (0, OTHER + "\n"), later_step
        return outputs, results, venv, Path(env["RUNNER_TEMP"])

    first, first_results, *first_dirs = job("first")
    second, second_results, *second_dirs = job("second")
    assert plant([tool_cache, cache.store], mark) > 0
    third, third_results, *third_dirs = job("third")  # before: the planted keybroker ran

    for venv, runner_temp in (first_dirs, second_dirs, third_dirs):
        assert venv.parent.parent == runner_temp  # $RUNNER_TEMP/keybroker.XXXXXXXX/venv
        assert stat.S_IMODE(venv.parent.stat().st_mode) == 0o700
    assert (first["cache"]["cache-hit"], first["install"]["cache-hit"]) == ("false", "false")
    assert "(installed)" in first_results[1].stdout
    assert first["prepare"]["key"] == second["prepare"]["key"]
    assert (second["cache"]["cache-hit"], second["install"]["cache-hit"]) == ("true", "true")
    assert "(verified wheels from the cache)" in second_results[1].stdout
    assert third["cache"]["cache-hit"] == "true"  # restored, but its wheels were refused
    assert third["install"]["cache-hit"] == "false"
    assert "(installed)" in third_results[1].stdout


def test_github_action_install_step_is_valid_bash() -> None:
    import yaml  # noqa: PLC0415

    action = yaml.safe_load(ACTION.read_text())
    for step in action["runs"]["steps"]:
        if "run" not in step:
            continue
        proc = subprocess.run(
            ["bash", "-n", "-c", step["run"]], capture_output=True, check=False, timeout=30
        )
        assert proc.returncode == 0, (step["id"], proc.stderr)


GITLAB = ACTION.parent.parent / "gitlab" / "keybroker.gitlab-ci.yml"


def gitlab_snippet() -> dict[str, Any]:
    import yaml  # noqa: PLC0415

    snippet: dict[str, Any] = yaml.safe_load(GITLAB.read_text())
    return snippet


def gitlab_variables(snippet: dict[str, Any], project_dir: Path) -> dict[str, str]:
    """The snippet's variables as a job sees them (GitLab expands $CI_PROJECT_DIR in them)."""
    return {
        k: str(v).replace("$CI_PROJECT_DIR", str(project_dir))
        for k, v in snippet["variables"].items()
    }


def documented_profile() -> str:
    """The keybroker.toml the snippet's header documents, as a file's text."""
    lines = GITLAB.read_text().splitlines()
    start = lines.index("#   # keybroker.toml") + 1
    body = []
    for line in lines[start:]:
        if not line.startswith("#   "):
            break
        body.append(line[len("#   ") :])
    return "\n".join(body) + "\n"


def test_gitlab_snippet_one_id_token_name_and_audience() -> None:
    """One variable, one audience: the jobs, the documented profile and the vault docs agree."""
    import tomllib  # noqa: PLC0415

    snippet = gitlab_snippet()
    profile = tomllib.loads(documented_profile())["profiles"]["litellm"]
    for job in (".keybroker-in-job", ".keybroker-dotenv"):
        tokens = snippet[job]["id_tokens"]
        assert list(tokens) == [profile["jwt_env"]] == ["VAULT_ID_TOKEN"]
        assert tokens["VAULT_ID_TOKEN"]["aud"] == profile["addr"]
    vault_doc = (ACTION.parent.parent.parent / "docs" / "sources" / "vault.md").read_text()
    assert f"{{ VAULT_ID_TOKEN: {{ aud: {profile['addr']} }} }}" in vault_doc
    assert 'jwt_env = "VAULT_ID_TOKEN"' in vault_doc
    assert snippet["variables"]["KEYBROKER_PROFILE"] == "litellm"
    assert "KEYBROKER_PACKAGE" not in snippet["variables"]


def test_gitlab_snippet_commands_work(
    ci_env: KbEnv, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The snippet's keybroker lines, run by /bin/sh with GitLab's variables, as a job would."""
    snippet = gitlab_snippet()
    env = dict(ci_env, **gitlab_variables(snippet, tmp_path), CI_PROJECT_DIR=str(tmp_path))
    env["KEYBROKER_PROFILE"] = "k"
    Path(env["KEYBROKER_CONFIG"]).write_text(ci_env.config_path.read_text())
    ci_env.config_path.unlink()  # the job reads the project's keybroker.toml, nothing else
    monkeypatch.chdir(tmp_path)
    dotenv_line = snippet[".keybroker-dotenv"]["script"][-1]
    result = run(["/bin/sh", "-c", dotenv_line], env)
    assert result.code == 0, result
    assert result.out == b""
    report = snippet[".keybroker-dotenv"]["artifacts"]["reports"]["dotenv"]
    assert (tmp_path / report).read_text() == f"ANTHROPIC_AUTH_TOKEN={VALUE}\n"
    loading = flatten(snippet[".keybroker-in-job"]["before_script"][1:])  # after the install
    result = run(
        ["/bin/sh", "-c", "\n".join([*loading, 'printf "%s" "$ANTHROPIC_AUTH_TOKEN"'])], env
    )
    assert (result.code, result.out, result.err) == (0, VALUE.encode(), b"")


# --- fail closed: every place that tells people how to load a key (issue 20 item 4) ---

REPO = ACTION.parent.parent.parent
#: ``eval`` of a keybroker command substitution: ``eval ""`` succeeds when keybroker fails.
EVAL_SUBSTITUTION = re.compile(r"""eval\s+["']?\$\(\s*keybroker\b(?!\s+completion)""")
#: A key loaded from ``$(keybroker ci export …)``: fine only as NAME="$(…)" || exit.
EXPORT_SUBSTITUTION = re.compile(r"\$\(\s*keybroker\s+ci\s+export\b")
FAIL_CLOSED = re.compile(r'\w+="\$\(keybroker ci export [^\n]*?\)" (?:\\?\|){2} exit\b')


def load_instructions(ci_env: KbEnv) -> dict[str, str]:
    """Every text that tells people how to load a key: docs, README, helpers, and what the
    CLI itself prints (its help and its hints)."""
    texts = {
        str(path.relative_to(REPO)): path.read_text()
        for path in [
            REPO / "README.md",
            *sorted((REPO / "docs").rglob("*.md")),
            *sorted(p for p in (REPO / "helpers").rglob("*") if p.is_file()),
        ]
    }
    texts["ci export --help"] = run(["keybroker", "ci", "export", "--help"], ci_env).stdout
    texts["--format gitlab hint"] = run(
        ["keybroker", "ci", "export", "k", "--format", "gitlab"], ci_env
    ).err.decode()
    return texts


def test_every_documented_way_to_load_a_key_fails_closed(ci_env: KbEnv) -> None:
    """Before: the snippet, docs/ci.md and the ``--format gitlab`` hint said
    ``eval "$(keybroker ci export …)"``."""
    texts = load_instructions(ci_env)
    assert "kb_env=" in texts["--format gitlab hint"], texts["--format gitlab hint"]
    seen = 0
    for name, text in texts.items():
        assert not EVAL_SUBSTITUTION.search(text), (name, EVAL_SUBSTITUTION.search(text))
        for match in EXPORT_SUBSTITUTION.finditer(text):
            start = text.rfind("\n", 0, match.start()) + 1
            line = text[start : text.find("\n", match.end())]
            assert FAIL_CLOSED.search(line), (name, line)
            seen += 1
    assert seen >= 5  # the snippet, docs/ci.md (table, GitLab, other CI), help, hint


FAILING_TOKEN = "VAULT_ID_TOKEN"  # the ID token the snippet's jobs declare


@pytest.fixture
def failing_job(kb_env: KbEnv, tmp_path: Path) -> dict[str, str]:
    """A GitLab-like job environment whose keybroker fails as with a forgotten ``id_tokens:``
    block: the documented Vault JWT profile, and no VAULT_ID_TOKEN in the job."""
    snippet = gitlab_snippet()
    project = tmp_path / "project"
    project.mkdir()
    env = dict(kb_env, **gitlab_variables(snippet, project), CI_PROJECT_DIR=str(project))
    env.pop(FAILING_TOKEN, None)
    profile = documented_profile().replace("https://vault.example.com", "http://127.0.0.1:9")
    Path(env["KEYBROKER_CONFIG"]).write_text(profile)
    probe = run(["keybroker", "get", "litellm"], env)
    assert probe.code not in (0, 1), probe  # a real, clean failure
    assert probe.out == b"", probe
    return env


def assert_job_stopped(result: Result, after: Path) -> None:
    assert result.code != 0, result
    assert not after.exists(), "the job went on after keybroker failed"
    assert result.err.startswith(b"keybroker: "), result.err


@pytest.mark.parametrize("shell", ["/bin/sh", "bash"])
def test_gitlab_snippet_stops_the_job_when_keybroker_fails(
    failing_job: dict[str, str], shell: str
) -> None:
    """The snippet's own lines (after its install), then the job's script. Before: ``eval ""``
    returned 0 and the script ran with an empty ANTHROPIC_AUTH_TOKEN."""
    loading = flatten(gitlab_snippet()[".keybroker-in-job"]["before_script"][1:])
    after = Path(failing_job["CI_PROJECT_DIR"]) / "after"
    script = "\n".join([*loading, f'touch "{after}"'])
    assert_job_stopped(run([shell, "-c", script], failing_job), after)


def doc_shell_blocks(path: Path) -> list[str]:
    """The ```sh blocks of ``path`` that load a key with ``ci export``."""
    return [
        block
        for block in re.findall(r"```sh\n(.*?)```", path.read_text(), re.S)
        if "ci export" in block
    ]


@pytest.mark.parametrize("shell", ["/bin/sh", "bash"])
def test_docs_ci_shell_blocks_stop_when_keybroker_fails(
    failing_job: dict[str, str], shell: str
) -> None:
    blocks = doc_shell_blocks(REPO / "docs" / "ci.md")
    assert blocks
    for block in blocks:
        after = Path(failing_job["CI_PROJECT_DIR"]) / "after"
        result = run([shell, "-c", block + f'touch "{after}"\n'], failing_job)
        assert_job_stopped(result, after)


def flatten(script: list[Any]) -> list[str]:
    """A job's script as GitLab runs it: nested lists (from YAML anchors) flattened."""
    return [
        line for item in script for line in (flatten(item) if isinstance(item, list) else [item])
    ]


def git_tag(source: Path, tag: str) -> None:
    """Make ``source`` a git repository with one commit tagged ``tag`` (the pinned ref)."""
    git = [
        "git",
        "-C",
        str(source),
        "-c",
        "user.name=t",
        "-c",
        "user.email=t@t",
        "-c",
        "init.defaultBranch=main",
        "-c",
        "commit.gpgsign=false",
    ]
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "release"], ["tag", tag]):
        subprocess.run([*git, *args], check=True, capture_output=True, timeout=60)


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.timeout(900)
def test_gitlab_snippet_job_as_written_against_openbao(
    openbao: OpenBao, kb_env: KbEnv, tmp_path: Path
) -> None:
    """A .keybroker-in-job job end to end: install at the pinned tag, then the documented
    profile logs in to (real) OpenBao with the VAULT_ID_TOKEN GitLab would give the job; the
    next pipeline restores the venv from the GitLab cache and installs nothing."""
    from tests.fixtures.install import fresh_copy  # noqa: PLC0415
    from tests.fixtures.vault_setup import enable, read_policy, sign  # noqa: PLC0415

    snippet = gitlab_snippet()
    job = snippet[".keybroker-in-job"]
    aud = job["id_tokens"]["VAULT_ID_TOKEN"]["aud"]
    # Vault's side, as docs/sources/vault.md sets it up: a JWT role bound to that audience.
    from cryptography.hazmat.primitives import serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import rsa  # noqa: PLC0415

    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    enable(openbao, "auth", "gitlab-jwt", {"type": "jwt"})
    openbao.api(
        "POST",
        "auth/gitlab-jwt/config",
        {"jwt_validation_pubkeys": [public_pem], "bound_issuer": "https://gitlab.example.com"},
    )
    profile_text = documented_profile()
    import tomllib  # noqa: PLC0415

    profile = tomllib.loads(profile_text)["profiles"]["litellm"]
    openbao.api(
        "POST",
        f"auth/gitlab-jwt/role/{profile['role']}",
        {
            "role_type": "jwt",
            "bound_audiences": [aud],
            "user_claim": "sub",
            "token_policies": [read_policy(openbao, f"secret/data/{profile['path']}")],
            "token_ttl": "1h",
        },
    )
    key = "sk-gitlab-" + os.urandom(12).hex()
    openbao.kv_put(profile["path"], {profile["field"]: key})

    project = tmp_path / "project"
    project.mkdir()
    (project / "keybroker.toml").write_text(
        profile_text.replace(profile["addr"], openbao.addr) + 'auth_mount = "gitlab-jwt"\n'
    )
    release = fresh_copy(tmp_path / "keybroker-release")
    git_tag(release, "v-test")

    def pipeline(repo: str) -> Any:
        env = dict(kb_env, **gitlab_variables(snippet, project), CI_PROJECT_DIR=str(project))
        env.update(
            KEYBROKER_REPO=repo,
            KEYBROKER_REF="v-test",
            PATH=os.path.dirname(sys.executable) + ":/usr/bin:/bin",
            VAULT_ID_TOKEN=sign(private, iss="https://gitlab.example.com", aud=aud),
        )
        lines = [*flatten(job["before_script"]), 'printf "%s" "$ANTHROPIC_AUTH_TOKEN"']
        return run(["/bin/sh", "-ec", "\n".join(lines)], env, timeout=800), env

    first, env = pipeline(str(release))
    assert (first.code, first.out) == (0, key.encode()), first
    assert_nowhere(key, run(["/bin/true"], env))
    assert not (project / ".keybroker-src").exists()
    venv = project / snippet[".keybroker-in-job"]["cache"]["paths"][0]
    assert (venv / "bin" / "keybroker").exists()
    # Next pipeline: GitLab restores .keybroker-venv from the cache; nothing is cloned or
    # installed (the repository address is unreachable now and it still works).
    kb_env_cache = Path(kb_env["XDG_CACHE_HOME"])
    shutil.rmtree(kb_env_cache, ignore_errors=True)
    second, _ = pipeline(str(tmp_path / "gone.git"))
    assert (second.code, second.out) == (0, key.encode()), second
    assert b"Cloning" not in second.err


# --- the CI per-job dir: created privately, refused when someone else made it, cleaned up ---

JOB = "4242"


@pytest.fixture
def job_env(kb_env: KbEnv, tmp_path: Path) -> tuple[dict[str, str], Path]:
    """A GitLab shell-runner job: CI set, a job id, /tmp shared (here: a sticky 1777 dir), and
    a profile whose key goes through the disk cache (so the job dir is used)."""
    shared_tmp = tmp_path / "shared-tmp"
    shared_tmp.mkdir()
    shared_tmp.chmod(0o1777)
    (tmp_path / "key.txt").write_text(OTHER + "\n")
    kb_env.write_config(
        f'[profiles.k]\nsource = "file"\nstorage = "disk"\n'
        f"path = {json.dumps(str(tmp_path / 'key.txt'))}\n"
    )
    env = dict(kb_env, CI="true", GITLAB_CI="true", CI_JOB_ID=JOB, TMPDIR=str(shared_tmp))
    return env, shared_tmp / f"keybroker-{os.getuid()}-{JOB}"


def test_ci_job_dir_is_created_private_and_cleaned_up(job_env: tuple[dict[str, str], Path]) -> None:
    env, job = job_env
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv"], env)
    assert (result.code, result.out) == (0, f"ANTHROPIC_AUTH_TOKEN='{OTHER}'\n".encode()), result
    info = job.lstat()
    assert stat.S_ISDIR(info.st_mode)
    assert info.st_uid == os.getuid()
    assert stat.S_IMODE(info.st_mode) == 0o700
    assert {p.name for p in job.iterdir()} == {"cache", "data"}
    gone = run(["keybroker", "ci", "cleanup"], env)
    assert (gone.code, gone.out, gone.err) == (0, b"", f"keybroker: removed {job}\n".encode())
    assert not job.exists()
    again = run(["keybroker", "ci", "cleanup"], env)
    assert (again.code, again.err) == (
        0,
        f"keybroker: {job} does not exist; nothing to remove\n".encode(),
    )


@pytest.mark.parametrize("mode", [0o700, 0o777])
def test_ci_job_dir_made_beforehand_by_another_user_is_refused(
    job_env: tuple[dict[str, str], Path], other_user: OsUser, mode: int
) -> None:
    """Issue 20 item 7. Before: another user's /tmp/keybroker-<uid>-<job> was used as is (it
    could later rename the job's ``data`` away, or swap in its own)."""
    env, job = job_env
    job.mkdir()
    os.chown(job, other_user.uid, other_user.gid)
    job.chmod(mode)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv"], env)
    assert_fails(
        result,
        7,
        f"the CI job directory {job} belongs to uid {other_user.uid}, not to you",
        secrets=[OTHER],
    )
    assert result.err.count(b"\n") == 1  # one line, with its hint
    assert list(job.iterdir()) == [], "keybroker put files in another user's directory"
    refused = run(["keybroker", "ci", "cleanup"], env)
    assert_fails(refused, 7, f"{job} belongs to uid {other_user.uid}, not to you")
    assert job.is_dir()


def test_ci_job_dir_planted_as_a_link_is_refused(
    job_env: tuple[dict[str, str], Path], other_user: OsUser, tmp_path: Path
) -> None:
    """The job dir's name is a link another user made to a dir of theirs: refused (the link
    and what it leads to are theirs), and ``ci cleanup`` does not follow it."""
    env, job = job_env
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o700)
    os.chown(theirs, other_user.uid, other_user.gid)
    job.symlink_to(theirs)
    os.lchown(job, other_user.uid, other_user.gid)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv"], env)
    assert_fails(
        result, 7, f"the CI job directory {job} belongs to uid {other_user.uid}", secrets=[OTHER]
    )
    assert list(theirs.iterdir()) == []
    refused = run(["keybroker", "ci", "cleanup"], env)
    assert_fails(refused, 7, f"{job} is not a directory (a link?); not removing it")
    assert theirs.is_dir()
    assert job.is_symlink()


def test_ci_job_dir_with_a_loose_mode_is_refused(job_env: tuple[dict[str, str], Path]) -> None:
    env, job = job_env
    job.mkdir()
    job.chmod(0o777)
    result = run(["keybroker", "ci", "export", "k", "--format", "dotenv"], env)
    assert_fails(
        result,
        7,
        f"the CI job directory {job} is open to group or others (mode 0777)",
        secrets=[OTHER],
    )
    assert list(job.iterdir()) == []


def test_gitlab_snippet_after_script_removes_the_job_dir(
    job_env: tuple[dict[str, str], Path], tmp_path: Path
) -> None:
    """The snippet's after_script, run in a new shell as GitLab does (no PATH from
    before_script: keybroker by its path in the venv)."""
    env, job = job_env
    assert run(["keybroker", "get", "k"], env).code == 0
    assert job.is_dir()
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    exe = shutil.which("keybroker", path=env["PATH"])
    assert exe
    (venv / "bin" / "keybroker").symlink_to(exe)
    snippet = gitlab_snippet()
    for job_name in (".keybroker-in-job", ".keybroker-dotenv"):
        assert snippet[job_name]["after_script"] == snippet[".keybroker-in-job"]["after_script"]
    lines = flatten(snippet[".keybroker-in-job"]["after_script"])
    result = run(
        ["/bin/sh", "-c", "\n".join(lines)],
        dict(env, KEYBROKER_VENV=str(venv), PATH="/usr/bin:/bin"),
    )
    assert (result.code, result.err) == (0, f"keybroker: removed {job}\n".encode()), result
    assert not job.exists()
