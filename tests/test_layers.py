"""The module structure docs/internals.md describes: no import circle, and
the request layer never depends on the kernel that hosts it."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).parent.parent / "zembed"
REQUEST_LAYER = {
    "zembed._routing", "zembed._handlers", "zembed._magics", "zembed._profiling", "zembed._introspect",
    "zembed._execute", "zembed._cell", "zembed._outbox", "zembed._host_queue", "zembed._services",
}  # fmt: skip


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return modules


def _imports(name: str, path: Path, known: dict[str, Path]) -> set[str]:
    """zembed modules ``name`` imports when it runs, at the top or lazily in
    a function; imports under ``if TYPE_CHECKING:`` are for the type checker only."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test):
                for statement in child.orelse:
                    visit(statement)
                continue
            if isinstance(child, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - child.level + 1] if child.level else []
                module = ".".join(base + ([child.module] if child.module else []))
                if child.module and module in known:
                    found.add(module)
                found.update(f"{module}.{alias.name}" for alias in child.names if f"{module}.{alias.name}" in known)
            elif isinstance(child, ast.Import):
                found.update(alias.name for alias in child.names if alias.name in known)
            visit(child)

    visit(ast.parse(path.read_text()))
    return found - {name}


def _graph() -> dict[str, set[str]]:
    known = _modules()
    return {name: _imports(name, path, known) for name, path in known.items()}


def test_the_scan_sees_imports_of_every_kind():
    graph = _graph()
    assert "zembed._routing" in graph["zembed._kernel"]  # from ._routing import Router
    assert "zembed._handlers" in graph["zembed._routing"]  # from . import _handlers
    assert "zembed._magics" in graph["zembed._kernel"]  # lazily, in Kernel.magics
    assert "zembed._kernel" not in graph["zembed._services"]  # only under TYPE_CHECKING, if at all


def test_no_import_circle():
    graph = _graph()
    circles = []
    for start in graph:
        stack = [(start, [start])]
        while stack:
            module, path = stack.pop()
            for imported in graph[module]:
                if imported == start:
                    circles.append(" -> ".join([*path, start]))
                elif imported not in path and imported > start:  # each circle once, from its smallest module
                    stack.append((imported, [*path, imported]))
    assert circles == []


def test_the_request_layer_does_not_depend_on_the_kernel():
    graph = _graph()
    hosting = {"zembed", "zembed._kernel", "zembed._api", "zembed._sockets"}
    assert {module: graph[module] & hosting for module in REQUEST_LAYER} == {module: set() for module in REQUEST_LAYER}
