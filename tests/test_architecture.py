"""The shape of the code, checked: dependencies point one way and the hit path stays small.

An import-linter equivalent over the package's own AST: every ``import`` counts, including
the ones inside functions (a lazy import is still a dependency).

- ``keybroker.fastpath`` (and every keybroker module it reaches) never imports click, tomllib,
  platformdirs, the SDKs, :mod:`keybroker.resolve`, :mod:`keybroker.config`, any source or any
  command module;
- ``keybroker.cache`` never imports ``keybroker.sources``, ``keybroker.config`` or the CLI;
- no import cycles between modules, lazy imports included.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import keybroker

ROOT = Path(keybroker.__file__).parent

FASTPATH_FORBIDDEN = (
    "click",
    "tomllib",
    "platformdirs",
    "boto3",
    "botocore",
    "hvac",
    "keyring",
    "requests",
    "json",
    "dataclasses",
    "argparse",
    "keybroker.resolve",
    "keybroker.config",
    "keybroker.sources",
    "keybroker.cli",
)


def module_name(path: Path) -> str:
    rel = path.relative_to(ROOT.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(p): p for p in ROOT.rglob("*.py")}


def imports(name: str) -> Iterator[str]:
    """Names module ``name`` imports where they run (inside functions too; ``if
    TYPE_CHECKING:`` blocks skipped); keybroker uses absolute imports only."""
    tree = ast.parse(MODULES[name].read_text())

    def visit(node: ast.AST) -> Iterator[str]:
        if (
            isinstance(node, ast.If)
            and isinstance(node.test, ast.Name)
            and (node.test.id == "TYPE_CHECKING")
        ):
            yield from (x for child in node.orelse for x in visit(child))
            return
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                if full in MODULES:
                    yield full
        for child in ast.iter_child_nodes(node):
            yield from visit(child)

    yield from visit(tree)


def reachable(start: str) -> dict[str, str]:
    """Every module reachable from ``start`` through runtime imports → who imported it."""
    seen: dict[str, str] = {start: ""}
    todo = [start]
    while todo:
        current = todo.pop()
        for target in imports(current):
            candidates = [target]
            parts = target.split(".")
            candidates += [".".join(parts[:i]) for i in range(1, len(parts))]
            for candidate in candidates:
                if candidate not in seen:
                    seen[candidate] = current
                    if candidate in MODULES:
                        todo.append(candidate)
    return seen


#: Reachable on purpose, each behind a branch a hit does not take by default:
#: - keyring, only with KEYBROKER_DATA_KEY_STORE=keychain (docs/performance.md: that opt-in
#:   costs the keyring import on every call);
#: - platformdirs, only on Windows (paths.py follows its rules itself on Linux and macOS);
#: - json in redact, only when a secret is registered (the keychain data key), never on a hit;
#: - json in events, only when the caller rule finds no process table answering (the
#:   ``repeat-unavailable`` notice, at most once an hour per cache: keybroker.cache.caller).
ALLOWED = {
    ("keybroker.keyrings", "keyring"),
    ("keybroker.paths", "platformdirs"),
    ("keybroker.redact", "json"),
    ("keybroker.events", "json"),
}


def test_fastpath_imports_nothing_of_the_full_path() -> None:
    found = {}
    for name in MODULES:
        if name.startswith("keybroker.fastpath"):
            found.update(reachable(name))
    bad = {
        m: via
        for m, via in found.items()
        if any(m == f or m.startswith(f + ".") for f in FASTPATH_FORBIDDEN)
        and (via, m) not in ALLOWED
    }
    assert not bad, f"the hit path reaches full-path modules: {bad}"


def test_every_forbidden_keybroker_module_exists() -> None:
    """A rule about a module that is gone forbids nothing and misleads the reader."""
    gone = [
        f
        for f in FASTPATH_FORBIDDEN
        if f.startswith("keybroker.") and not any(m == f or m.startswith(f + ".") for m in MODULES)
    ]
    assert gone == []


def test_cache_never_imports_sources_config_or_cli() -> None:
    bad = {}
    for name in MODULES:
        if name.startswith("keybroker.cache"):
            for target in imports(name):
                if target.startswith(
                    ("keybroker.sources", "keybroker.config", "keybroker.cli", "keybroker.resolve")
                ):
                    bad[name] = target
    assert not bad, bad


def test_no_import_cycles_not_even_through_lazy_imports() -> None:
    """Dependencies point one way: no cycle between modules, counting imports inside
    functions too (a lazy import is still a dependency)."""
    graph = {name: {t for t in imports(name) if t in MODULES and t != name} for name in MODULES}
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt]
                raise AssertionError(f"import cycle: {' -> '.join(cycle)}")
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_every_command_of_the_group_names_a_real_command() -> None:
    """The lazy group imports a command's module only when it runs: a wrong target would be
    found by the first user who types the command, so each one is loaded here."""
    import importlib  # noqa: PLC0415

    import click  # noqa: PLC0415

    from keybroker.cli.app import COMMANDS  # noqa: PLC0415

    for name, target in COMMANDS.items():
        module, _, attr = target.partition(":")
        command = getattr(importlib.import_module(module), attr)
        assert isinstance(command, click.Command), target
        assert command.name == name, target
