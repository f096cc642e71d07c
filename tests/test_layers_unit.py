"""Imports go one way: CLI → services and steps → protocol clients → codecs (README, "Import layers").
The test bed (with the demo) is a development tool, left out of the wheel: only the CLI's ``demo``
command may import it, the demo's entry point and nothing else."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
#: Lowest first; a module may import its own layer and the ones before it.
LAYERS: dict[str, tuple[str, ...]] = {
    "codecs": ("spark_secrets.errors", "spark_secrets.duration", "spark_secrets.hadoop", "spark_secrets.secrets",
               "spark_secrets.jobsecrets.reference"),
    "protocol clients": ("spark_secrets.login", "spark_secrets.tokens", "spark_secrets.kube", "spark_secrets.plugin",
                         "spark_secrets.jobsecrets"),
    "services and steps": ("spark_secrets.renew", "spark_secrets.kube.rbac", "spark_secrets.runtime", "spark_secrets.check",
                           "spark_secrets.jobsecrets.resolver", "submit_steps"),
    "CLI": ("spark_secrets.cli", "spark_secrets.__main__"),
}
DEV_TOOLS = ("spark_secrets.testbed", "spark_secrets.jvm")
DEMO = "spark_secrets.testbed.demo"


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
            if name.startswith(DEV_TOOLS[0]) and (module, name) != ("spark_secrets.cli.main", DEMO):
                found.append(f"{module} imports the test bed ({name})")
    return found


def _modules() -> list[tuple[str, Path]]:
    out = []
    for package in ("spark_secrets", "submit_steps"):
        for path in sorted((ROOT / package).rglob("*.py")):
            module = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
            if not module.startswith(DEV_TOOLS) and module not in ("spark_secrets", "submit_steps"):
                out.append((module, path))
    return out


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
    assert violations("spark_secrets.cli.main", "from spark_secrets.testbed.demo import run_demo") == []
    assert violations("spark_secrets.cli.main", "from spark_secrets.testbed.bed import Testbed") == [
        "spark_secrets.cli.main imports the test bed (spark_secrets.testbed.bed)"]
