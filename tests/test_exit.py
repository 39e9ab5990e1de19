"""A helper call leaves as soon as its answer is out; everything else exits the usual way.

``keybroker.cli.entry.leave`` flushes stdout and stderr, then ``os._exit``s: the interpreter's
teardown (~8% of a cold call, docs/performance.md) is skipped. What it skips is made visible
with a ``sitecustomize`` on ``PYTHONPATH`` that registers an exit handler writing a marker
file: the handler runs only when the usual exit runs.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from keybroker.cli import entry
from tests.conftest import KbEnv
from tests.fixtures.openbao import OpenBao
from tests.kb import assert_fails, file_profile, run

KEY = "sk-exit-0123456789abcdef"

SITECUSTOMIZE = """
import atexit, os, sys, threading
MARK = os.environ["EXIT_MARK"]

def at_exit():
    with open(MARK, "a") as f:
        f.write("atexit\\n")

atexit.register(at_exit)
if os.environ.get("EXIT_THREAD"):
    def late():
        # alive until the interpreter's own exit begins (it stops the main thread, then
        # waits for this one): the mark is written only by the usual exit, however slow
        # the call before it was
        threading.main_thread().join()
        with open(MARK, "a") as f:
            f.write("thread\\n")
    threading.Thread(target=late, daemon=False).start()
"""


@pytest.fixture
def watched(kb_env: KbEnv, tmp_path: Path) -> tuple[KbEnv, Path]:
    """``kb_env`` whose processes record, in the returned file, whether their exit ran."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    mark = tmp_path / "exit-mark"
    kb_env["PYTHONPATH"] = str(site)
    kb_env["EXIT_MARK"] = str(mark)
    return kb_env, mark


def marks(path: Path) -> list[str]:
    return path.read_text().split() if path.exists() else []


def test_a_helper_call_answers_in_full_and_skips_the_teardown(
    watched: tuple[KbEnv, Path],
) -> None:
    kb_env, mark = watched
    file_profile(kb_env, KEY)
    for _ in ("miss", "hit"):
        result = run(["keybroker", "get", "k"], kb_env)
        assert (result.code, result.out, result.err) == (0, KEY.encode() + b"\n", b"")
    assert marks(mark) == []


def test_a_cold_vault_call_through_the_standalone_helper_skips_the_teardown(
    watched: tuple[KbEnv, Path], bao: OpenBao
) -> None:
    kb_env, mark = watched
    bao.kv_put("exit-path", {"key": KEY})
    env = dict(kb_env, VAULT_ADDR=bao.addr, VAULT_TOKEN=bao.root_token)
    result = run(["keybroker-vault", "--path", "exit-path", "--field", "key"], env)
    assert (result.code, result.out, result.err) == (0, KEY.encode() + b"\n", b"")
    assert marks(mark) == []


def test_a_failing_helper_call_keeps_its_exit_code_and_whole_message(
    watched: tuple[KbEnv, Path],
) -> None:
    kb_env, mark = watched
    kb_env.write_config('[profiles.gone]\nsource = "env"\nvar = "KB_TEST_UNSET_VARIABLE"\n')
    result = run(["keybroker", "get", "gone"], kb_env)
    assert_fails(result, 5, "KB_TEST_UNSET_VARIABLE")
    assert result.err.endswith(b"\n")
    assert marks(mark) == []


def test_other_commands_exit_the_usual_way(watched: tuple[KbEnv, Path]) -> None:
    kb_env, mark = watched
    assert run(["keybroker", "--version"], kb_env).code == 0
    assert marks(mark) == ["atexit"]


def test_a_live_thread_makes_a_helper_call_wait_and_exit_the_usual_way(
    watched: tuple[KbEnv, Path],
) -> None:
    kb_env, mark = watched
    file_profile(kb_env, KEY)
    kb_env["EXIT_THREAD"] = "1"
    result = run(["keybroker", "get", "k"], kb_env)
    assert (result.code, result.out) == (0, KEY.encode() + b"\n")
    assert marks(mark) == ["thread", "atexit"]


def test_may_leave_at_once_only_without_click_or_live_threads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delitem(__import__("sys").modules, "click", raising=False)
    assert entry.may_leave_at_once()
    done = threading.Event()
    worker = threading.Thread(target=done.wait, daemon=False)
    worker.start()
    try:
        assert not entry.may_leave_at_once()
    finally:
        done.set()
        worker.join()
    assert entry.may_leave_at_once()
    daemon = threading.Thread(target=done.wait, daemon=True)  # already set: ends at once
    daemon.start()
    daemon.join()
    monkeypatch.setitem(__import__("sys").modules, "click", object())
    assert not entry.may_leave_at_once()
