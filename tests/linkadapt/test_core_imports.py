"""The core's import rules, read from the source (``ast``), and the one list of baseline names.

- ``linkadapt`` imports nothing from its consumers (``training``, ``service``,
  ``ran_distill``), anywhere: module level, inside functions, or via ``importlib``;
- modules outside ``linkadapt/sim/`` import nothing from ``linkadapt.sim``, scipy or
  gymnasium at module level (what runs on ``import``; ``if TYPE_CHECKING:`` blocks do
  not), so the xApp's ``import linkadapt`` stays numpy-only;
- baseline names are spelled in ``linkadapt/baselines.py`` only, once each.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

from linkadapt.baselines import BASELINE_NAMES

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "linkadapt"
CONSUMERS = ("training", "service", "ran_distill")
SIM_ONLY = ("linkadapt.sim", "scipy", "gymnasium")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    """Absolute module of a ``from ... import`` (relative imports resolved)."""
    if node.level == 0:
        return node.module or ""
    package = module if is_package else module.rpartition(".")[0]
    for _ in range(node.level - 1):
        package = package.rpartition(".")[0]
    return f"{package}.{node.module}" if node.module else package


def _imported(node: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Modules an import statement (or ``importlib.import_module("x")``) brings in."""
    if isinstance(node, ast.Import):
        yield from (alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom):
        base = _resolve(node, module, is_package)
        yield base
        yield from (f"{base}.{alias.name}" for alias in node.names)
    elif (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "import_module"
        and node.args
        and isinstance(node.args[0], ast.Constant)
        and isinstance(node.args[0].value, str)
    ):
        yield node.args[0].value


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """Statements that run on import: not function bodies, not ``if TYPE_CHECKING:``."""
    for stmt in body:
        yield stmt
        if isinstance(stmt, ast.If):
            yield from _module_level(stmt.orelse)
            if not _is_type_checking(stmt):
                yield from _module_level(stmt.body)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody):
                yield from _module_level(block)
            for handler in stmt.handlers:
                yield from _module_level(handler.body)
        elif isinstance(stmt, ast.With | ast.For | ast.While | ast.ClassDef):
            yield from _module_level(stmt.body)


def _is_sim_only(name: str) -> bool:
    return any(name == p or name.startswith(f"{p}.") for p in SIM_ONLY)


def _violations(source: str, module: str, is_package: bool) -> tuple[list[str], list[str]]:
    """(consumer imports anywhere, sim-only imports at module level) of one module."""
    tree = ast.parse(source)
    anywhere = [
        name
        for node in ast.walk(tree)
        for name in _imported(node, module, is_package)
        if name.split(".")[0] in CONSUMERS
    ]
    at_import = []
    for stmt in _module_level(tree.body):
        # a simple statement runs whole on import; a compound one's body is walked above
        nodes = ast.walk(stmt) if isinstance(stmt, ast.Expr | ast.Assign) else (stmt,)
        for node in nodes:
            at_import += [n for n in _imported(node, module, is_package) if _is_sim_only(n)]
    return anywhere, at_import


def _core_files() -> list[Path]:
    files = sorted(CORE.rglob("*.py"))
    assert len(files) > 20, "the core's sources were not found"
    return files


def test_checker_flags_what_it_must() -> None:
    """The walker itself: consumer imports anywhere, sim imports only when run on import."""
    src = (
        "from typing import TYPE_CHECKING\n"
        "import scipy.special\n"
        "from .sim import channel\n"
        "if TYPE_CHECKING:\n"
        "    from linkadapt.sim import Simulator\n"
        "def f():\n"
        "    import gymnasium\n"
        "    from training import x\n"
        "    importlib.import_module('service.app')\n"
        "importlib.import_module('gymnasium.spaces')\n"
    )
    anywhere, at_import = _violations(src, "linkadapt.bler", is_package=False)
    assert set(anywhere) >= {"training", "service.app"}
    assert {"scipy.special", "linkadapt.sim", "gymnasium.spaces"} <= set(at_import)
    assert "gymnasium" not in at_import  # imported inside a function: not on import
    assert "linkadapt.sim.Simulator" not in at_import  # TYPE_CHECKING only


@pytest.mark.parametrize("path", _core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_imports(path: Path) -> None:
    module = _module_name(path)
    anywhere, at_import = _violations(path.read_text(), module, path.name == "__init__.py")
    assert anywhere == [], f"{module} imports its consumers: {anywhere}"
    if not module.startswith("linkadapt.sim"):
        assert at_import == [], f"{module} loads the simulator stack on import: {at_import}"


def test_baseline_names_are_spelled_once_in_baselines_py() -> None:
    where: dict[str, list[str]] = {name: [] for name in BASELINE_NAMES}
    for path in _core_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in where:
                where[node.value].append(str(path.relative_to(ROOT)))
    assert where == {name: ["linkadapt/baselines.py"] for name in BASELINE_NAMES}
