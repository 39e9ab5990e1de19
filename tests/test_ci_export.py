"""``keybroker ci export``: every format, through the real executable.

The value is chosen to be hard to quote (', ", $, \\, `, %0A) so each format's escaping is
exercised, and every test checks that the value reaches only the place the format promises.
"""

from __future__ import annotations

import base64
import json
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from keybroker import output
from tests.kb import assert_fails, assert_nowhere, run

VALUE = "sk-'q\"d$HOME\\n`id`%0Aend"
OTHER = "sk-other-7f6e5d4c3b"
pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX shells")


@pytest.fixture
def ci_env(kb_env):
    (kb_env.base / "key.txt").write_text(VALUE + "\n")
    (kb_env.base / "other.txt").write_text(OTHER + "\n")
    kb_env.write_config(
        f'[profiles.k]\nsource = "file"\npath = {json.dumps(str(kb_env.base / "key.txt"))}\n'
        f'[profiles.o]\nsource = "file"\npath = {json.dumps(str(kb_env.base / "other.txt"))}\n'
        f'[profiles.missing]\nsource = "file"\npath = '
        f'{json.dumps(str(kb_env.base / "nope.txt"))}\n'
    )
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


def test_github_masks_first_and_writes_value_only_to_github_env(ci_env):
    github_env = ci_env.base / "github_env"
    github_env.write_text("EARLIER=kept\n")
    result = run(["keybroker", "ci", "export", "k", "--format", "github"],
                 dict(ci_env, GITHUB_ENV=str(github_env)))
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    # the first thing the runner reads is the mask of the value itself (escaped as data)
    assert lines[0] == "::add-mask::" + VALUE.replace("%", "%25"), lines
    assert all(line.startswith("::add-mask::") for line in lines), lines
    assert VALUE.encode() not in result.out  # only its escaped mask form is on stdout
    assert result.err == b"keybroker: exported ANTHROPIC_AUTH_TOKEN to $GITHUB_ENV " \
                         b"(masked in this job's logs)\n"
    assert_nowhere(VALUE, result, dirs=[ci_env.cache_dir, ci_env.data_dir])
    text = github_env.read_text()
    assert text.startswith("EARLIER=kept\n")  # appended, not replaced
    assert parse_github_env(text) == {"EARLIER": "kept", "ANTHROPIC_AUTH_TOKEN": VALUE}
    delimiter = text.splitlines()[1].split("<<", 1)[1]
    assert delimiter.startswith("ghadelimiter_")
    assert len(delimiter) > 30


def test_github_masks_derived_forms(ci_env):
    github_env = ci_env.base / "github_env"
    result = run(["keybroker", "ci", "export", "k", "--format", "github"],
                 dict(ci_env, GITHUB_ENV=str(github_env)))
    assert result.code == 0, result
    masked = {line[len("::add-mask::"):].replace("%25", "%") for line in result.stdout.splitlines()}
    assert VALUE in masked
    assert json.dumps(VALUE)[1:-1] in masked  # how a JSON log would show it
    assert output.derived_forms(VALUE)[2] in masked  # URL-encoded
    assert base64.b64encode(VALUE.encode()).decode() in masked


def test_github_several_variables_and_profiles(ci_env):
    github_env = ci_env.base / "github_env"
    result = run(
        ["keybroker", "ci", "export", "k", "--format", "github",
         "--var", "ANTHROPIC_AUTH_TOKEN", "--var", "OTHER_KEY=o"],
        dict(ci_env, GITHUB_ENV=str(github_env)),
    )
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    assert lines[0].startswith("::add-mask::")
    assert f"::add-mask::{OTHER}" in lines
    assert parse_github_env(github_env.read_text()) == {
        "ANTHROPIC_AUTH_TOKEN": VALUE, "OTHER_KEY": OTHER,
    }
    # each block has its own delimiter
    delimiters = [ln.split("<<")[1] for ln in github_env.read_text().splitlines() if "<<" in ln]
    assert len(set(delimiters)) == 2


def test_github_without_github_env_is_a_usage_error(ci_env):
    result = run(["keybroker", "ci", "export", "k", "--format", "github"], ci_env)
    assert_fails(result, 2, "GITHUB_ENV is not set", secrets=[VALUE])


def test_github_refuses_an_output_file(ci_env):
    result = run(["keybroker", "ci", "export", "k", "--format", "github", "-o", "x.env"],
                 dict(ci_env, GITHUB_ENV=str(ci_env.base / "github_env")))
    assert_fails(result, 2, "not used with --format github", secrets=[VALUE])


def test_github_source_failure_prints_nothing(ci_env):
    github_env = ci_env.base / "github_env"
    result = run(["keybroker", "ci", "export", "missing", "--format", "github"],
                 dict(ci_env, GITHUB_ENV=str(github_env)))
    assert_fails(result, 5, "nope.txt")
    assert not github_env.exists()


# --- shell ---


@pytest.mark.parametrize("shell", ["/bin/sh", "bash"])
def test_shell_output_round_trips_through_eval(ci_env, shell):
    script = 'eval "$(keybroker ci export k --var MY_KEY)" && printf "%s" "$MY_KEY"'
    result = run([shell, "-c", script], ci_env)
    assert result.code == 0, result
    assert result.out == VALUE.encode()
    assert result.err == b""


def test_shell_format_byte_for_byte(ci_env):
    result = run(["keybroker", "ci", "export", "k", "--format", "shell"], ci_env)
    assert result.code == 0, result
    assert result.out == b"export ANTHROPIC_AUTH_TOKEN='sk-'\"'\"'q\"d$HOME\\n`id`%0Aend'\n"
    assert result.err == b""


@pytest.mark.parametrize("value", [
    "a'b", "a\"b", "$(touch /tmp/kb-pwned)", "a\\b\\\\c", "`id`", "'", "''", "x'\"'\"'y",
    "${HOME}", "!event", "a;b|c&d", "-n",
])
def test_shell_quote_survives_eval_in_sh(value, tmp_path):
    text = output.shell([("V", value)])
    proc = subprocess.run(["/bin/sh", "-c", text + 'printf "%s" "$V"'], capture_output=True,
                          check=False, cwd=tmp_path, timeout=30)
    assert proc.returncode == 0, proc
    assert proc.stdout.decode() == value
    assert list(tmp_path.iterdir()) == []


# --- dotenv, json, gitlab ---


def test_dotenv_and_json(ci_env):
    dotenv = run(["keybroker", "ci", "export", "k", "--format", "dotenv", "--var", "A",
                  "--var", "B=o"], ci_env)
    assert dotenv.code == 0, dotenv
    assert dotenv.out == (f"A={output.dotenv_quote(VALUE)}\n"
                          f"B={output.dotenv_quote(OTHER)}\n").encode()
    assert dotenv.out.startswith(b"A='sk-\\'q")  # single-quoted, python-dotenv's escapes
    assert dotenv.err == b""
    as_json = run(["keybroker", "ci", "export", "k", "--format", "json"], ci_env)
    assert as_json.code == 0, as_json
    assert json.loads(as_json.out) == {"ANTHROPIC_AUTH_TOKEN": VALUE}
    assert as_json.out == (json.dumps({"ANTHROPIC_AUTH_TOKEN": VALUE}) + "\n").encode()


def test_output_file_is_private_and_stdout_empty(ci_env):
    target = ci_env.base / "out.json"
    result = run(["keybroker", "ci", "export", "k", "--format", "json", "-o", str(target)],
                 ci_env)
    assert result.code == 0, result
    assert result.out == b""
    assert json.loads(target.read_text()) == {"ANTHROPIC_AUTH_TOKEN": VALUE}
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert_nowhere(VALUE, result)


def test_gitlab_writes_dotenv_report_and_replaces_same_name(ci_env):
    report = ci_env.base / "build.env"
    report.write_text("KEEP=1\nANTHROPIC_AUTH_TOKEN=stale\n")
    result = run(["keybroker", "ci", "export", "k", "--format", "gitlab", "--dotenv-file",
                  str(report)], ci_env)
    assert result.code == 0, result
    assert result.out == b""
    assert b"GitLab does not mask dotenv variables" in result.err
    assert_nowhere(VALUE, result)
    assert report.read_text() == f"KEEP=1\nANTHROPIC_AUTH_TOKEN={VALUE}\n"


def test_gitlab_needs_a_dotenv_file(ci_env):
    result = run(["keybroker", "ci", "export", "k", "--format", "gitlab"], ci_env)
    assert_fails(result, 2, "--dotenv-file", secrets=[VALUE])


# --- arguments ---


def test_var_pairs_without_profile_argument(ci_env):
    result = run(["keybroker", "ci", "export", "--var", "X=o", "--format", "dotenv"], ci_env)
    assert result.code == 0, result
    assert result.out == f"X='{OTHER}'\n".encode()


@pytest.mark.parametrize(("args", "needle"), [
    (["--var", "1BAD"], "invalid variable name"),
    (["--var", "A;rm"], "invalid variable name"),
    (["--var", "A", "--var", "A=o"], "more than once"),
])
def test_bad_var_is_usage_error(ci_env, args, needle):
    result = run(["keybroker", "ci", "export", "k", *args], ci_env)
    assert_fails(result, 2, needle, secrets=[VALUE])


def test_bare_var_without_profile_is_usage_error(ci_env):
    result = run(["keybroker", "ci", "export", "--var", "X"], ci_env)
    assert_fails(result, 2, "no profile")


def test_unknown_profile(ci_env):
    result = run(["keybroker", "ci", "export", "nosuch"], ci_env)
    assert_fails(result, 2, "unknown profile 'nosuch'")


# --- pure formatting ---


def test_github_mask_escapes_workflow_command_data():
    assert output.github_escape_data("a%b\r\nc") == "a%25b%0D%0Ac"
    lines = output.github_mask_lines(["one\ntwo"]).splitlines()
    assert "::add-mask::one" in lines
    assert "::add-mask::two" in lines


def test_github_env_block_shape():
    block = output.github_env_block("N", "v", delimiter="ghadelimiter_x")
    assert block == "N<<ghadelimiter_x\nv\nghadelimiter_x\n"


# --- helpers/github-action: the composite action's steps, run as the runner runs them ---

ACTION = Path(__file__).resolve().parent.parent / "helpers" / "github-action" / "action.yml"
EXPR = re.compile(r"\$\{\{\s*([^}]+?)\s*\}\}")


def run_composite(action: dict, inputs: dict[str, str], env: dict[str, str], tmp: Path):
    """A minimal composite-action runner: inputs and step outputs in env, bash -eo pipefail."""
    values = {k: v.get("default", "") for k, v in action["inputs"].items()}
    values.update(inputs)
    outputs: dict[str, dict[str, str]] = {}
    results = []
    for step in action["runs"]["steps"]:
        def expand(text: str) -> str:
            def one(match: re.Match[str]) -> str:
                expr = match.group(1)
                if expr.startswith("inputs."):
                    return values[expr[len("inputs."):]]
                _, step_id, _, name = expr.split(".")
                return outputs.get(step_id, {}).get(name, "")
            return EXPR.sub(one, text)

        output_file = tmp / f"output-{step['id']}"
        output_file.write_text("")
        step_env = dict(env, GITHUB_OUTPUT=str(output_file))
        step_env.update({k: expand(str(v)) for k, v in step.get("env", {}).items()})
        assert "${{" not in step["run"], "inputs must reach scripts through env only"
        result = run(["bash", "--noprofile", "--norc", "-eo", "pipefail", "-c", step["run"]],
                     step_env)
        results.append(result)
        if result.code != 0:
            break
        outputs[step["id"]] = dict(
            line.split("=", 1) for line in output_file.read_text().splitlines() if "=" in line
        )
    return results


@pytest.fixture
def runner_env(ci_env, tmp_path):
    runner_temp = tmp_path / "runner_temp"
    runner_temp.mkdir()
    github_env = tmp_path / "github_env"
    github_env.write_text("")
    return dict(ci_env, RUNNER_TEMP=str(runner_temp), GITHUB_ENV=str(github_env),
                GITHUB_PATH=str(tmp_path / "github_path"))


def test_github_action_exports_masked_with_inline_config(runner_env, ci_env, tmp_path):
    import yaml  # noqa: PLC0415 - moto's dependency; only this test reads YAML

    action = yaml.safe_load(ACTION.read_text())
    config_toml = ci_env.config_path.read_text()
    env = {k: v for k, v in runner_env.items()}
    env["KEYBROKER_CONFIG"] = str(tmp_path / "no-default-config.toml")  # must come from input
    results = run_composite(
        action,
        {"install": "false", "profile": "k", "var": "API_TOKEN", "vars": "  OTHER=o \n\n",
         "config-toml": config_toml},
        env, tmp_path,
    )
    assert [r.code for r in results] == [0, 0], results
    export = results[1]
    assert export.stdout.startswith("::add-mask::")
    assert VALUE.encode() not in export.out
    assert_nowhere(VALUE, *results)
    assert parse_github_env(Path(runner_env["GITHUB_ENV"]).read_text()) == {
        "API_TOKEN": VALUE, "OTHER": OTHER,
    }
    written = list(Path(runner_env["RUNNER_TEMP"]).glob("keybroker-config-*.toml"))
    assert len(written) == 1
    assert stat.S_IMODE(written[0].stat().st_mode) == 0o600


def test_github_action_install_step_is_valid_bash():
    import yaml  # noqa: PLC0415

    action = yaml.safe_load(ACTION.read_text())
    for step in action["runs"]["steps"]:
        proc = subprocess.run(["bash", "-n", "-c", step["run"]], capture_output=True,
                              check=False, timeout=30)
        assert proc.returncode == 0, (step["id"], proc.stderr)


def test_gitlab_snippet_commands_work(ci_env, tmp_path, monkeypatch):
    """The snippet's keybroker lines, run by /bin/sh with GitLab's variables, as a job would."""
    import yaml  # noqa: PLC0415

    snippet = yaml.safe_load((ACTION.parent.parent / "gitlab" / "keybroker.gitlab-ci.yml")
                             .read_text())
    env = dict(ci_env, **{k: str(v) for k, v in snippet["variables"].items()})
    env["KEYBROKER_PROFILE"] = "k"
    monkeypatch.chdir(tmp_path)
    dotenv_line = snippet[".keybroker-dotenv"]["script"][-1]
    result = run(["/bin/sh", "-c", dotenv_line], env)
    assert result.code == 0, result
    assert result.out == b""
    report = snippet[".keybroker-dotenv"]["artifacts"]["reports"]["dotenv"]
    assert (tmp_path / report).read_text() == f"ANTHROPIC_AUTH_TOKEN={VALUE}\n"
    eval_line = snippet[".keybroker-in-job"]["before_script"][-1]
    result = run(["/bin/sh", "-c", eval_line + '\nprintf "%s" "$ANTHROPIC_AUTH_TOKEN"'], env)
    assert (result.code, result.out, result.err) == (0, VALUE.encode(), b"")
