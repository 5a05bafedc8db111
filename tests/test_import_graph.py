"""The import graph of the service: no cycles, and dependencies that point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("dossier_service", "storage", "search", "workers")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            if "migrations" not in path.parts:
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (a package's __init__ or a submodule)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(module: str, path: Path) -> set[str]:
    """Project modules imported anywhere in the file: module level, functions, TYPE_CHECKING
    excluded (typing-only imports never run)."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only.update(id(child) for child in ast.walk(node))
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(tree):
        if id(node) in typing_only:
            continue
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                anchor = anchor[: len(anchor) - node.level + (1 if is_package else 0)]
                base = ".".join([*anchor, base] if base else anchor)
            # "from package import module" imports the submodule, not just the package.
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target is not None and target != module:
                found.add(target)
    return found


GRAPH = {module: _imports(module, path) for module, path in MODULES.items()}


def _is_ancestor(package: str, module: str) -> bool:
    """Importing a submodule runs its package's __init__ first: not a dependency to count."""
    return module.startswith(package + ".")


def _cycles() -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def edges(module: str) -> list[str]:
        return sorted(t for t in GRAPH[module] if not _is_ancestor(t, module))

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in edges(module):
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

    for module in sorted(GRAPH):
        if module not in index:
            visit(module)
    return found


def test_the_graph_sees_function_level_imports():
    # cli.py imports services inside its commands; the graph must count those too.
    assert "dossier_service.services.accounts" in GRAPH["dossier_service.cli"]


def test_no_import_cycles():
    assert _cycles() == []


@pytest.mark.parametrize("package", ["storage", "search"])
def test_storage_and_search_import_nothing_of_the_service(package):
    offenders = {
        module: sorted(t for t in targets if t.split(".")[0] in {"dossier_service", "workers"})
        for module, targets in GRAPH.items()
        if module.split(".")[0] == package
    }
    assert {m: t for m, t in offenders.items() if t} == {}


def test_services_never_import_flask():
    offenders = []
    for module, path in MODULES.items():
        if not module.startswith("dossier_service.services"):
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [(module, n) for n in names if n.split(".")[0] in {"flask", "werkzeug"}]
    assert offenders == []


def test_only_entry_points_import_workers():
    entry_points = {"dossier_service.app", "dossier_service.cli"}
    offenders = {
        module
        for module, targets in GRAPH.items()
        if module.startswith("dossier_service")
        and module not in entry_points
        and any(t.split(".")[0] == "workers" for t in targets)
    }
    assert offenders == set()


def test_the_web_layer_imports_nothing_of_the_api_layer():
    offenders = {
        module: sorted(t for t in targets if t.startswith("dossier_service.api"))
        for module, targets in GRAPH.items()
        if module.startswith("dossier_service.web")
    }
    assert {m: t for m, t in offenders.items() if t} == {}
