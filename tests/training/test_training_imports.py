"""The shape of ``training``: ``training.dqn`` sits on top, and no two modules import each other.

Every import counts, including the ones inside function bodies: a cycle hidden in a
function is still a cycle (it only fails later, at call time). The graph is read from the
source with ``ast``, nothing is imported.
"""

from __future__ import annotations

import ast
from pathlib import Path

import training

ROOT = Path(training.__file__).resolve().parent


def _module_name(path: Path) -> str:
    parts = ("training", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _imported(node: ast.AST, module: str, is_package: bool, known: set[str]) -> list[str]:
    """The ``training`` modules one import statement loads (``from a import b`` names
    module ``a.b`` when that is a module, else ``a``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolve against this module's package
        package = module if is_package else module.rsplit(".", 1)[0]
        base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1])
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    out = []
    for alias in node.names:
        sub = f"{target}.{alias.name}"
        out.append(sub if sub in known else target)
    return out


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        targets = set()
        for node in ast.walk(tree):
            for target in _imported(node, name, path.name == "__init__.py", known):
                if target in known and target != name:
                    targets.add(target)
        graph[name] = targets
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_graph_sees_function_level_imports() -> None:
    """Control: the reader finds imports inside functions (``cli`` keeps torch out that way)."""
    graph = _graph()
    assert "training.evaluate" in graph["training.cli"]  # imported inside a command
    assert "training.networks" in graph["training.export"]


def test_only_training_dqn_imports_training_dqn() -> None:
    offenders = {
        module: sorted(t for t in targets if t == "training.dqn" or t.startswith("training.dqn."))
        for module, targets in _graph().items()
        if not (module == "training.dqn" or module.startswith("training.dqn."))
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_training_import_graph_has_no_cycles() -> None:
    assert _cycles(_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    """Control for the test above: a known cycle is reported."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def test_the_package_exports_resolve() -> None:
    for name in training.__all__:
        assert getattr(training, name) is not None, name
