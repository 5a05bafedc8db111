"""The test suite's own layout: test modules share builders through helper modules only."""

from __future__ import annotations

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _imported(tree: ast.Module) -> list[tuple[str, str]]:
    """(module, name) of every import in a module, function-level ones included."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            found += [(node.module, alias.name) for alias in node.names]
        elif isinstance(node, ast.Import):
            found += [(alias.name, "") for alias in node.names]
    return found


def _is_test_module(module: str) -> bool:
    return module.rsplit(".", 1)[-1].startswith("test_")


def test_no_test_module_imports_another_test_module_or_conftest():
    offences = []
    for path in sorted(TESTS.rglob("*.py")):
        for module, name in _imported(ast.parse(path.read_text("utf-8"))):
            if not module.startswith("tests."):
                continue
            if _is_test_module(module) or module.endswith(".conftest"):
                offences.append(f"{path.relative_to(TESTS)}: {module} {name}".rstrip())
    assert offences == [], "move shared builders into tests/factories.py"


def test_the_check_sees_function_level_imports():
    tree = ast.parse("def f():\n    from tests.test_sip import closed_case\n")
    assert _imported(tree) == [("tests.test_sip", "closed_case")]
    assert _is_test_module("tests.test_sip") and not _is_test_module("tests.factories")
