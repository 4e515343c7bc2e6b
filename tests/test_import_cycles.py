"""Imports in codedraft/ run one way only: no module imports, directly or through others, a module
that imports it back. Read from the source (ast), so a cycle hidden in a function's body counts.

The composition roots are the one exception: they exist to import every feature and plug it in,
and the features may use their constants; their imports inside functions are not edges here.
"""
from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "codedraft"
# Module -> why its deferred imports of features are wiring, not dependencies.
COMPOSITION_ROOTS = {
    "codedraft": "create_app builds the app from every feature",
    "codedraft.web": "registers every blueprint, the namespace and the store",
    "codedraft.cli": "registers every feature's commands",
    "codedraft.api.openapi": "merges every feature's part of the OpenAPI document",
}


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        modules[name] = path
    return modules


def _imported(node: ast.AST, modules: dict[str, Path]) -> set[str]:
    """The codedraft modules one import statement names (``from a import b`` names ``a.b`` when
    that is a module, else ``a``)."""
    found: set[str] = set()
    if isinstance(node, ast.Import):
        found.update(alias.name for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        submodules = {f"{node.module}.{alias.name}" for alias in node.names} & modules.keys()
        found.update(submodules)
        if len(submodules) < len(node.names):
            found.add(node.module)
    return found & modules.keys()


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        nodes = tree.body if name in COMPOSITION_ROOTS else list(ast.walk(tree))
        graph[name] = set().union(*(_imported(node, modules) for node in nodes)) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each a cycle or several."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(graph[module]):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for module in sorted(graph):
        if module not in index:
            visit(module)
    return found


def test_codedraft_has_no_import_cycles() -> None:
    assert _cycles(_graph()) == []


def test_the_check_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
