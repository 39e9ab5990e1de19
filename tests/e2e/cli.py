"""Run the pinned Claude Code CLIs in print mode against the test server.

Three versions are pinned by lockfile, each in its own npm directory: 2.1.197 in
``tests/e2e/claude``, the main package's newest, 2.1.332, in ``tests/e2e/claude-latest``, and
the linux-x64 platform package's newest, 2.1.337 (ahead of the main package), in
``tests/e2e/claude-linux-x64``. From npm each ships as a native executable
(``@anthropic-ai/claude-code`` plus a platform package), so none needs a particular Node
version; the platform package alone has no ``node_modules/.bin`` link, and its ``claude``
binary runs on its own.

What the CLI needs, observed with 2.1.197 and 2.1.332: ``claude -p PROMPT --output-format
json`` with a fresh ``HOME``, ``ANTHROPIC_BASE_URL`` at the server and the four "no phoning
home" variables below asks for no login and no onboarding; it runs ``apiKeyHelper`` through
``/bin/sh -c`` (stdin a socket that is never closed, ``CLAUDE_CODE_ENTRYPOINT=sdk-cli`` in its
environment), sends the key as ``x-api-key`` and ``Authorization: Bearer``, and on a 401
re-runs the helper before each retry: ``CLAUDE_CODE_MAX_RETRIES`` retries on 2.1.197, two
more on 2.1.332. A failing helper is reported on stderr as ``apiKeyHelper failed: exited N:
<the helper's stderr>`` and the request goes out with an empty key; the JSON result then says
``"is_error": true, "api_error_status": 401``.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.kb import Result, require_backend

_HERE = Path(__file__).resolve().parent
#: Claude Code version → the npm directory whose lockfile pins it (oldest first).
VERSIONS: dict[str, Path] = {
    "2.1.197": _HERE / "claude",
    "2.1.332": _HERE / "claude-latest",
    "2.1.337": _HERE / "claude-linux-x64",
}
#: Where ``npm ci`` puts each directory's ``claude`` (the main package links it into .bin).
EXECUTABLES: dict[str, Path] = {
    "2.1.197": Path("node_modules/.bin/claude"),
    "2.1.332": Path("node_modules/.bin/claude"),
    "2.1.337": Path("node_modules/@anthropic-ai/claude-code-linux-x64/claude"),
}
NEWEST = max(VERSIONS, key=lambda v: tuple(int(p) for p in v.split(".")))

#: Keep the CLI off the network (besides ANTHROPIC_BASE_URL) and away from its updater.
QUIET_ENV = {
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
}
#: Generous: a cold start of the 240 MB binary on a loaded 2-core machine takes seconds.
RUN_TIMEOUT = 240.0
PROMPT = "Reply with the test word."
HELPER_FAILED = "apiKeyHelper failed: "


def find_claude(version: str) -> Path:
    """The CLI pinned at ``version``, checked by running it; fails in CI, skips elsewhere."""
    package_dir = VERSIONS[version]
    executable = package_dir / EXECUTABLES[version]
    if not executable.exists():
        require_backend(
            f"claude {version}",
            f"{executable} is missing: run 'npm ci' in {package_dir} (scripts/test does)",
        )
    try:
        proc = subprocess.run(
            [str(executable), "--version"],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT,
            check=False,
            env={**os.environ, **QUIET_ENV},
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        require_backend(f"claude {version}", f"{executable} --version did not run: {exc}")
        raise  # unreachable: require_backend fails or skips
    printed = proc.stdout.decode(errors="replace").strip()
    if proc.returncode != 0 or not printed:
        # e.g. npm ran with --ignore-scripts: bin/claude.exe is still the placeholder stub that
        # the postinstall step replaces with the native binary of the optional dependency.
        require_backend(
            f"claude {version}",
            f"{executable} --version exited {proc.returncode}: "
            f"{proc.stderr.decode(errors='replace').strip()[:500]}",
        )
    installed = printed.split()[0]
    if installed != version:
        pytest.fail(f"{package_dir} installed Claude Code {installed!r}, not {version}")
    return executable


def claude_env(base: Mapping[str, str], base_url: str, *, retries: int) -> dict[str, str]:
    """``base`` (an isolated keybroker env) plus what the CLI needs, minus any real credential.

    ``base`` already has its own ``HOME`` (so ``~/.claude`` is empty) and no ``CLAUDE_CODE_*``
    variables; here every other ``ANTHROPIC_*``/``CLAUDE_*`` variable of the developer's
    shell is dropped too, so no real key or config dir can leak into a test.
    """
    env = {k: v for k, v in base.items() if not k.startswith(("ANTHROPIC_", "CLAUDE_"))}
    env.update(QUIET_ENV)
    env["ANTHROPIC_BASE_URL"] = base_url
    env["CLAUDE_CODE_MAX_RETRIES"] = str(retries)
    return env


@dataclass
class ClaudeRun:
    """One ``claude -p`` session: the process result and its parsed JSON answer."""

    result: Result
    payload: dict[str, Any]

    @property
    def ok(self) -> bool:
        return self.result.code == 0 and self.payload.get("is_error") is False

    @property
    def text(self) -> str:
        return str(self.payload.get("result", ""))

    def helper_failures(self) -> list[str]:
        """The CLI's ``apiKeyHelper failed: …`` lines, one per failed helper run."""
        return [line for line in self.result.stderr.splitlines() if line.startswith(HELPER_FAILED)]

    def __repr__(self) -> str:
        return f"ClaudeRun({self.result!r})"


def run_claude(
    executable: Path,
    env: Mapping[str, str],
    cwd: Path,
    *,
    helper: str | None,
    prompt: str = PROMPT,
    extra_args: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
) -> ClaudeRun:
    """``claude -p`` in ``cwd``; ``helper`` goes in ``--settings`` (None: use settings files).

    ``prefix`` runs the CLI through another command (e.g. a private mount namespace).

    ``cwd`` is always a test's own directory, never the repository, so no project
    ``.claude/settings.json`` or ``CLAUDE.md`` other than the test's can be picked up.
    """
    argv = [*prefix, str(executable), "-p", prompt, "--output-format", "json"]
    if helper is not None:
        argv += ["--settings", json.dumps({"apiKeyHelper": helper})]
    argv += extra_args
    try:
        proc = subprocess.run(
            argv,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            timeout=RUN_TIMEOUT,
            cwd=cwd,
            env=dict(env),
            check=False,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"claude -p did not finish within {RUN_TIMEOUT}s: {exc.stderr!r}")
    result = Result(proc.returncode, proc.stdout, proc.stderr)
    try:
        payload = json.loads(proc.stdout)
    except ValueError:
        pytest.fail(f"claude -p did not print one JSON result: {result!r}")
    if not isinstance(payload, dict):
        pytest.fail(f"claude -p printed JSON that is not an object: {result!r}")
    return ClaudeRun(result, payload)
