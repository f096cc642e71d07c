"""Imports go one way: CLI → services and steps → protocol clients → codecs (README, "Import layers").
The test bed (with the demo) is a development tool, left out of the wheel: only the CLI's ``demo``
command may import it, the demo's entry point and nothing else.

Inside a layer imports may go either way, but never round: no module (the test bed's and the JVM
tool's included) is part of an import cycle, counting imports made only for type checking and inside
functions, since a cycle there is one refactoring away from an import-time failure. And no module is
over :data:`MAX_LINES` lines, so that each one can be read in one sitting."""

from __future__ import annotations

import ast
from collections.abc import Iterable, Mapping
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Lowest first; a module may import its own layer and the ones before it.
LAYERS: dict[str, tuple[str, ...]] = {
    "codecs": ("spark_secrets.errors", "spark_secrets.extras", "spark_secrets.duration", "spark_secrets.logs",
               "spark_secrets.hadoop", "spark_secrets.secrets", "spark_secrets.jobsecrets.reference"),
    "protocol clients": ("spark_secrets.transport", "spark_secrets.login", "spark_secrets.tokens", "spark_secrets.kube",
                         "spark_secrets.plugin", "spark_secrets.jobsecrets", "spark_secrets.connect"),
    "services and steps": ("spark_secrets.renew", "spark_secrets.kube.rbac", "spark_secrets.runtime", "spark_secrets.check",
                           "spark_secrets.jobsecrets.resolver", "spark_secrets.connect.server", "submit_steps"),
    "CLI": ("spark_secrets.cli", "spark_secrets.__main__"),
}
DEV_TOOLS = ("spark_secrets.testbed", "spark_secrets.jvm")
DEMO = "spark_secrets.testbed.demo"
PACKAGES = ("spark_secrets", "submit_steps")
#: The longest a module of the project may be (issue 29).
MAX_LINES = 400


def _layer(module: str) -> int | None:
    """The layer of the longest prefix naming ``module`` (``kube.rbac`` is a service in a package of clients)."""
    matches = [(len(p), rank) for rank, prefixes in enumerate(LAYERS.values())
               for p in prefixes if module == p or module.startswith(p + ".")]
    return max(matches)[1] if matches else None


def violations(module: str, source: str) -> list[str]:
    """The imports of ``module`` (given its source) that point up the layers, or into the test bed."""
    mine = _layer(module)
    found = []
    for node in ast.walk(ast.parse(source)):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module] if isinstance(node, ast.ImportFrom) and node.module else [])
        for name in names:
            theirs = _layer(name)
            if mine is not None and theirs is not None and theirs > mine:
                found.append(f"{module} ({list(LAYERS)[mine]}) imports {name} ({list(LAYERS)[theirs]})")
            if name.startswith(DEV_TOOLS[0]) and (module, name) != ("spark_secrets.cli.embedded", DEMO):
                found.append(f"{module} imports the test bed ({name})")
    return found


def _all_modules() -> dict[str, Path]:
    """Every module of the project by dotted name, a package's ``__init__`` under the package's name."""
    out = {}
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            out[".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")] = path
    return out


def _modules() -> list[tuple[str, Path]]:
    return [(module, path) for module, path in _all_modules().items()
            if not module.startswith(DEV_TOOLS) and module not in PACKAGES]


# -- no import cycle ------------------------------------------------------------------------------------
def imported(module: str, source: str, known: Iterable[str], *, is_package: bool = False) -> set[str]:
    """The project modules ``module`` imports anywhere in ``source`` (under ``if TYPE_CHECKING:`` and in
    functions too). ``from pkg import name`` is ``pkg.name`` when that is a module, else ``pkg``; a
    relative import is resolved against ``module``'s package."""
    known = set(known)
    package = module if is_package else module.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(source)):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                anchor = ".".join(parts[:len(parts) - node.level + 1])
                base = f"{anchor}.{base}" if base else anchor
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        for target in targets:
            while target and target not in known:  # ``import a.b.c`` of a module ``a.b``
                target = target.rpartition(".")[0]
            if target and target != module:
                found.add(target)
    return found


def import_graph(sources: Mapping[str, tuple[str, bool]]) -> dict[str, set[str]]:
    """Module → the project modules it imports, from ``{module: (source, is_package)}``."""
    return {module: imported(module, source, sources, is_package=is_package)
            for module, (source, is_package) in sources.items()}


def cycles(graph: Mapping[str, set[str]]) -> list[str]:
    """One cycle (``a -> b -> a``) per strongly connected group of modules importing one another."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:  # Tarjan's algorithm; the graph is a few hundred modules deep at most
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                member = stack.pop()
                group.append(member)
                if member == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(" -> ".join(_cycle_through(group, graph)) for group in groups)


def _cycle_through(group: list[str], graph: Mapping[str, set[str]]) -> list[str]:
    """A shortest path from the group's first module back to itself, inside the group (breadth first)."""
    start, members = group[0], set(group)
    paths = {start: [start]}
    queue = [start]
    while queue:
        node = queue.pop(0)
        for nxt in sorted(graph[node] & members):
            if nxt == start:
                return paths[node] + [start]
            if nxt not in paths:
                paths[nxt] = paths[node] + [nxt]
                queue.append(nxt)
    raise AssertionError(f"no cycle through {group}")  # a strongly connected group always has one


def test_no_import_cycle() -> None:
    sources = {module: (path.read_text(), path.name == "__init__.py") for module, path in _all_modules().items()}
    assert cycles(import_graph(sources)) == []


def test_the_cycle_check_sees_type_checking_and_function_imports() -> None:
    """Control: a cycle closed only under ``if TYPE_CHECKING:`` or in a function is one; ``from pkg import
    name`` is the module ``pkg.name`` when there is one, else ``pkg`` (whose ``__init__`` counts)."""
    sources = {
        "p": ("from p.a import A\n", True),
        "p.a": ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from p.b import B\nA = 1\n", False),
        "p.b": ("def f():\n    from . import c\n", False),
        "p.c": ("import p.a.x\n", False),
        "p.d": ("from p import A\n", False),  # a name of p's __init__: an edge to p, which imports p.a only
        "q": ("import os\nfrom p import d\n", False),
    }
    graph = import_graph(sources)
    assert graph == {"p": {"p.a"}, "p.a": {"p.b"}, "p.b": {"p.c"}, "p.c": {"p.a"}, "p.d": {"p"}, "q": {"p.d"}}
    assert cycles(graph) == ["p.a -> p.b -> p.c -> p.a"]
    assert cycles({**graph, "p.a": {"p.b", "p.d"}}) == ["p -> p.a -> p.d -> p"]
    assert cycles({"x": {"y"}, "y": {"x"}, "u": {"v"}, "v": {"u"}}) == ["u -> v -> u", "x -> y -> x"]
    assert cycles({"x": {"y"}, "y": set()}) == []


# -- no long module -------------------------------------------------------------------------------------
def oversized(modules: Mapping[str, str], limit: int = MAX_LINES) -> list[str]:
    """``module: N lines`` for each of ``{module: source}`` longer than ``limit`` lines, longest first."""
    lengths = {module: len(source.splitlines()) for module, source in modules.items()}
    return [f"{m}: {n} lines" for m, n in sorted(lengths.items(), key=lambda item: (-item[1], item[0])) if n > limit]


def test_no_module_is_over_the_limit() -> None:
    assert oversized({module: path.read_text() for module, path in _all_modules().items()}) == []


def test_the_size_check_sees_a_long_module() -> None:
    """Control: one line over the limit is reported, the limit itself is not."""
    modules = {"a": "x = 1\n" * MAX_LINES, "b": "x = 1\n" * (MAX_LINES + 1), "c": "x = 1\n" * (MAX_LINES + 9)}
    assert oversized(modules) == [f"c: {MAX_LINES + 9} lines", f"b: {MAX_LINES + 1} lines"]


def test_every_module_has_a_layer() -> None:
    assert [m for m, _ in _modules() if _layer(m) is None] == []


@pytest.mark.parametrize(("module", "path"), _modules(), ids=[m for m, _ in _modules()])
def test_imports_only_point_down(module: str, path: Path) -> None:
    assert violations(module, path.read_text()) == []


def test_the_check_sees_an_upward_import_and_the_test_bed() -> None:
    """Control: the checker does fail on what it forbids."""
    assert violations("spark_secrets.hadoop.token", "from spark_secrets.renew.service import RenewService") == [
        "spark_secrets.hadoop.token (codecs) imports spark_secrets.renew.service (services and steps)"]
    assert violations("submit_steps.secret", "import spark_secrets.testbed.bed") == [
        "submit_steps.secret imports the test bed (spark_secrets.testbed.bed)"]
    assert violations("spark_secrets.cli.main", "from spark_secrets.hadoop.token import Token") == []
    assert violations("spark_secrets.cli.embedded", "from spark_secrets.testbed.demo import run_demo") == []
    assert violations("spark_secrets.cli.main", "from spark_secrets.testbed.bed import Testbed") == [
        "spark_secrets.cli.main imports the test bed (spark_secrets.testbed.bed)"]
