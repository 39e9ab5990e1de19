"""A miss continues from what the fast path found (issue 23): nothing is done twice.

The fast path loads the data key, reads the index, names the entry, opens (decrypts) it and
computes the caller; the full path takes its :class:`~keybroker.fastpath.main.Probe` and goes
on. These tests run ``keybroker get`` in-process through the real entry point and count the
expensive steps on a miss: at most one config parse (none while the index is current: the
request comes from its record), one caller computation, one entry decryption.
"""

from __future__ import annotations

import os
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any
from unittest.mock import patch

import pytest

import keybroker.cache.caller as caller_mod
import keybroker.cache.entry as entry_mod
from keybroker.cache import crypto, repeats
from keybroker.cache.index import Record
from keybroker.cli.entry import main
from keybroker.fastpath import main as fast
from tests import scripted
from tests.conftest import KbEnv
from tests.kb import entry_file, plant

CALLER = "c0ffee-claude-4242-helper"  # caller ids are fingerprints: no spaces


class Counts:
    def __init__(self) -> None:
        self.parses = 0
        self.callers = 0
        self.decryptions = 0


def counted(counts: Counts, field: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        setattr(counts, field, getattr(counts, field) + 1)
        return fn(*args, **kwargs)

    return wrapper


@pytest.fixture
def counts(kb_env: KbEnv) -> Iterator[Counts]:
    found = Counts()
    with (
        patch.object(tomllib, "loads", counted(found, "parses", tomllib.loads)),
        patch.object(entry_mod, "unseal", counted(found, "decryptions", crypto.unseal)),
        patch.object(
            caller_mod,
            "caller_for",
            counted(found, "callers", lambda env, strict, cache_dir: CALLER),
        ),
    ):
        yield found


def get(env: KbEnv, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with patch.dict(os.environ, env, clear=True):
        code = main(["get", "p"])
    return code, capsys.readouterr().out


@dataclass
class Warm:
    """Under Claude Code, with the index built by a first call (the fixture :func:`warm`)."""

    env: KbEnv
    src: scripted.ScriptedSource
    capsys: pytest.CaptureFixture[str]
    counts: Counts

    def get(self) -> tuple[int, str]:
        return get(self.env, self.capsys)

    def counted_get(self) -> tuple[tuple[int, str], tuple[int, int, int]]:
        """:meth:`get`, counted from zero: its exit code and output, and the (parses, callers,
        decryptions) it took."""
        counts = self.counts
        counts.parses = counts.callers = counts.decryptions = 0
        answer = self.get()
        return answer, (counts.parses, counts.callers, counts.decryptions)


@pytest.fixture
def warm(
    kb_env: KbEnv,
    src: scripted.ScriptedSource,
    capsys: pytest.CaptureFixture[str],
    counts: Counts,
) -> Warm:
    kb_env.write_config('[profiles.p]\nsource = "scripted"\nid = "x"\n')
    kb_env["CLAUDE_CODE_ENTRYPOINT"] = "cli"
    assert get(kb_env, capsys) == (0, "sk-scripted-0001\n")
    return Warm(kb_env, src, capsys, counts)


def test_a_miss_parses_the_config_computes_the_caller_and_decrypts_the_entry_once(
    warm: Warm,
) -> None:
    """With the index current the request comes from its record: no parse at all; with the
    config changed since, one parse (which also rebuilds the index)."""
    now = time.time()
    plant(warm.env, "p", "sk-in-the-mandatory-window", now - 3300, now + 300)
    assert warm.counted_get() == ((0, "sk-scripted-0002\n"), (0, 1, 1))
    assert warm.src.fetches == 2
    warm.env.write_config('[profiles.p]\nsource = "scripted"\nid = "x"\n# edited\n')
    now = time.time()
    plant(warm.env, "p", "sk-in-the-mandatory-window", now - 3300, now + 300)
    assert warm.counted_get() == ((0, "sk-scripted-0003\n"), (1, 1, 1))


def test_a_refusal_computes_the_caller_once(warm: Warm) -> None:
    """After a 401 the caller was computed three times in one call."""
    now = time.time()
    plant(warm.env, "p", "sk-refused-by-the-gateway", now - 10, now + 3600)
    record = repeats.Seen()
    record.callers[CALLER] = now - 5  # served 5 s ago: asking again means it was refused
    repeats.write(entry_file(warm.env, "p", ".seen"), record)
    assert warm.counted_get() == ((0, "sk-scripted-0002\n"), (0, 1, 1))


def test_a_new_environment_is_indexed_from_the_config_already_parsed(warm: Warm) -> None:
    """The fast path missed because the environment differs from every indexed variant: the
    full path adds this variant from the config it parsed for the call, not a second parse."""
    kb_env = warm.env
    scripted_reads = "SCRIPTED_ADDR"
    with patch.object(
        warm.src,
        "canonical",
        lambda settings, env: {"id": settings["id"], "addr": env.get(scripted_reads)},
    ):
        kb_env.write_config('[profiles.p]\nsource = "scripted"\nid = "x"\n\n')
        assert warm.get()[0] == 0  # config changed: the index is rebuilt
        kb_env[scripted_reads] = "https://b.example"
        (code, _), (parses, _, _) = warm.counted_get()
        assert code == 0
        assert parses == 1
        with patch.dict(os.environ, kb_env, clear=True):
            probe = fast.try_get({"profile": "p"}, time.monotonic())
        assert probe.value is not None, probe  # the new variant was remembered
        assert probe.record is not None
        assert isinstance(probe.record, Record)
        assert len(probe.record.variants) == 2
