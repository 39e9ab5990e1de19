"""A helper's command line is declared once (keybroker.flags): click's ``get``, the standalone
helpers' argparse parser, the fast path's whitelist and the full path's defaults all follow
the one table, and the fast path's miss reasons are compared by name."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

import keybroker
from keybroker import flags
from keybroker.cli import entry
from keybroker.fastpath import reasons
from keybroker.fastpath.argv import parse_get, parse_standalone
from keybroker.fastpath.main import Probe
from keybroker.flags import GET, STANDALONE, Flag

ROOT = Path(keybroker.__file__).parent
#: spellings that name a helper flag (dashless ones too: the fast path's deny list used them)
SPELLINGS = {f.name for f in flags.FLAGS} | {f.name[2:] for f in flags.FLAGS if "-" in f.name[2:]}


def declarations() -> dict[str, list[str]]:
    """Where each flag's spelling appears as a declaration: an option of a parser
    (``click.option``, ``add_argument``) anywhere, or an item of a whitelist (a tuple, list or
    set literal) in the fast path."""
    found: dict[str, list[str]] = {}
    for path in ROOT.rglob("*.py"):
        tree = ast.parse(path.read_text())
        in_fastpath = path.parent.name == "fastpath"
        for node in ast.walk(tree):
            items: list[ast.expr] = []
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and (node.func.attr in ("option", "add_argument"))
            ):
                items = list(node.args)
            elif in_fastpath and isinstance(node, ast.Tuple | ast.List | ast.Set):
                items = list(node.elts)
            for item in items:
                if isinstance(item, ast.Constant) and item.value in SPELLINGS:
                    where = f"{path.relative_to(ROOT)}:{item.lineno}"
                    found.setdefault(str(item.value), []).append(where)
    return found


def test_each_helper_flag_is_spelled_in_the_table_only() -> None:
    outside = {
        name: [w for w in places if not w.startswith("flags.py:")]
        for name, places in declarations().items()
    }
    assert {k: v for k, v in outside.items() if v} == {}


def _value(item: Flag) -> list[str]:
    return [item.name] + (
        ["x.toml" if item.kind == flags.FILE else "5m"] if item.takes_value else []
    )


def test_click_get_takes_exactly_the_table_flags() -> None:
    from keybroker.cli.get import get  # noqa: PLC0415

    options = {tuple(p.opts): p.name for p in get.params if p.param_type_name == "option"}
    assert options == {(f.name,): f.dest for f in flags.of(GET)}


def test_standalone_parser_takes_the_table_flags_then_the_settings() -> None:
    from keybroker.cli.standalone import _parser  # noqa: PLC0415
    from keybroker.sources.base import get_source  # noqa: PLC0415

    source = get_source("vault")
    parser = _parser(source)
    spelled = {s for action in parser._actions for s in action.option_strings}
    expected = {f.name for f in flags.of(STANDALONE)} | {s.cli_flag for s in source.settings}
    expected |= {"--no-" + s.cli_flag[2:] for s in source.settings if s.kind == "bool"}
    assert spelled - {"-h", "--help", "--version"} == expected
    for item in flags.of(STANDALONE):
        ns = parser.parse_args(_value(item))
        assert getattr(ns, item.dest) == (_value(item)[1] if item.takes_value else True)


@pytest.mark.parametrize("item", flags.of(GET), ids=repr)
def test_fast_get_serves_only_fast_flags(item: Flag) -> None:
    opts = parse_get(["p", *_value(item)])
    assert (opts is not None) == item.fast
    if opts is not None:
        assert opts[item.dest] == (_value(item)[1] if item.takes_value else True)


@pytest.mark.parametrize("item", flags.of(STANDALONE), ids=repr)
def test_fast_standalone_sends_full_path_flags_on(item: Flag) -> None:
    given = parse_standalone(["--path", "x", item.name, "v"])
    assert (given is not None) == item.fast


def test_a_miss_reaches_the_full_path_with_every_get_flag_at_its_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    handed: list[dict[str, Any]] = []

    def run_get(opts: dict[str, Any], probe: Probe) -> int:
        handed.append(opts)
        return 0

    monkeypatch.setattr("keybroker.fastpath.main.try_get", lambda opts, started: Probe(started))
    monkeypatch.setattr("keybroker.cli.fastget.run_get", run_get)
    assert entry.main(["get", "p", "--reject-repeats"]) == 0
    expected = {**flags.defaults(GET), "profile": "p", "reject_repeats": True}
    assert handed == [expected]


def test_cli_compares_miss_reasons_by_name() -> None:
    """``why == "env"`` drifts when the fast path renames a reason; the name cannot."""
    values = {v for k, v in vars(reasons).items() if k.isupper() and isinstance(v, str)}
    bare = []
    for path in (ROOT / "cli").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Compare):
                continue
            sides = [node.left, *node.comparators]
            names = [s.id for s in sides if isinstance(s, ast.Name)]
            literals = [
                c.value
                for s in sides
                for c in ast.walk(s)
                if isinstance(c, ast.Constant) and c.value in values
            ]
            if any("why" in n for n in names) and literals:
                bare.append(f"{path.name}:{node.lineno}")
    assert bare == []
