"""No module but policy.py tests a role, a unit kind or a case status to decide access.

The pages, the API and the services ask ``dossier_service.policy`` (``rights``,
``reads_every_case``, ``load_case``, the SQL conditions); a second copy of a rule would
drift. This test reads the package's syntax trees and templates and fails on every such
test outside the policy, except the few listed below with the reason they are not access.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from pathlib import Path

import dossier_service
from dossier_service.models import ROLES, UNIT_KINDS

PACKAGE = Path(dossier_service.__file__).parent
POLICY = PACKAGE / "policy.py"
CASE_STATES = frozenset({"open", "closed"})

#: (module, function) -> why its test of a role, unit kind or case status is not access.
ALLOWED: dict[tuple[str, str], str] = {
    ("services/accounts.py", "create_user"): (
        "validates a new account: auditors and archivists sit in the canton (data, not access)"
    ),
    ("services/notifications.py", "canton_unit_id"): "finds the canton unit to notify",
    ("services/closing.py", "reopen_case"): "only a closed case can be reopened (409, state)",
    ("services/snapshot.py", "open_closure"): "the closing in force of a closed case (a fact)",
    ("services/exports.py", "_select_by_ids"): "exports only closed cases (archive business)",
    ("services/exports.py", "_select_closed_before"): "selects closed cases to export",
    ("services/exports.py", "_load_facts"): "re-checks that the packaged case is still closed",
    ("services/retention.py", "_due"): "selects closed cases past their retention period",
    ("services/monitoring.py", "stalled_condition"): "open cases without activity (monitoring)",
    ("services/monitoring.py", "_measures_without_follow_up"): "measures of open cases",
    ("services/monitoring.py", "monitor_run"): "notifies about open cases near deadlines",
    ("services/monitoring.py", "stalled_report"): "lists open cases without activity",
    ("api/cases.py", "list_cases"): "validates the status filter of the case listing",
    ("web/cases.py", "case_list"): "validates the status filter of the case list",
}
#: Template lines that show a label by role or unit kind (not access).
ALLOWED_TEMPLATE_LINES: dict[tuple[str, str], str] = {
    ("cases/list.html", "me.unit_kind == 'organisation'"): (
        "chooses the sentence that introduces an organisation's case list"
    ),
}

_TEMPLATE_TESTS = re.compile(
    r"is_canton|\.role\s*(==|!=|\bin\b|\bnot in\b)|unit_kind\s*(==|!=|\bin\b|\bnot in\b)"
)


def _literals(node: ast.expr) -> set[str]:
    """The string constants a comparison operand names (one, or a set/tuple/list of them)."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return {node.value}
    if isinstance(node, ast.Set | ast.Tuple | ast.List):
        return {
            e.value for e in node.elts if isinstance(e, ast.Constant) and isinstance(e.value, str)
        }
    return set()


def _name(node: ast.expr) -> str | None:
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Name):
        return node.id
    return None


def _is_access_test(compare: ast.Compare) -> bool:
    """A comparison of a role, a unit kind or a case status (by name and by the values)."""
    operands = [compare.left, *compare.comparators]
    values = set().union(*(_literals(o) for o in operands))
    for operand in operands:
        name = _name(operand)
        if name in {"role", "unit_kind"}:
            return True
        if name == "kind" and values & set(UNIT_KINDS):
            return True
        if name == "status" and values & CASE_STATES:
            return True
        if values & set(ROLES) - {"admin"} and name is not None and name.endswith("role"):
            return True
    return False


def _findings(path: Path) -> Iterator[tuple[str, int, str]]:
    """(enclosing function, line, source) of every role, unit-kind or status test in a module."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    source = path.read_text(encoding="utf-8").splitlines()

    def visit(node: ast.AST, function: str) -> Iterator[tuple[str, int, str]]:
        for child in ast.iter_child_nodes(node):
            inner = function
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                inner = child.name
            if (isinstance(child, ast.Attribute) and child.attr == "is_canton") or (
                isinstance(child, ast.Compare) and _is_access_test(child)
            ):
                yield inner, child.lineno, source[child.lineno - 1].strip()
            yield from visit(child, inner)

    yield from visit(tree, "<module>")


def _package_findings() -> dict[tuple[str, str], list[str]]:
    found: dict[tuple[str, str], list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        if path == POLICY or "migrations" in path.parts:
            continue
        module = path.relative_to(PACKAGE).as_posix()
        for function, line, text in _findings(path):
            found.setdefault((module, function), []).append(f"{module}:{line}: {text}")
    return found


def test_no_module_outside_the_policy_decides_access_by_role_kind_or_status():
    """Every role, unit-kind or case-status test outside policy.py is on the allow-list."""
    found = _package_findings()
    unexpected = [line for key, lines in found.items() if key not in ALLOWED for line in lines]
    assert not unexpected, (
        "Ask dossier_service.policy (rights, reads_every_case, load_case) instead of:\n"
        + "\n".join(unexpected)
    )


def test_every_allow_list_entry_is_still_needed():
    """An entry whose function no longer tests a role, kind or status is removed."""
    found = _package_findings()
    assert not [key for key in ALLOWED if key not in found]


def test_templates_ask_the_view_not_the_role():
    """Templates get rights from the view; they test a role or unit kind only for a label."""
    unexpected = []
    used = set()
    for path in sorted((PACKAGE / "templates").rglob("*.html")):
        name = path.relative_to(PACKAGE / "templates").as_posix()
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not _TEMPLATE_TESTS.search(line):
                continue
            allowed = [key for key in ALLOWED_TEMPLATE_LINES if key[0] == name and key[1] in line]
            used.update(allowed)
            if not allowed:
                unexpected.append(f"{name}:{number}: {line.strip()}")
    assert not unexpected, "\n".join(unexpected)
    assert used == set(ALLOWED_TEMPLATE_LINES)


def test_the_detector_finds_the_tests_it_is_meant_to_find(tmp_path):
    """The checker itself: each kind of access test is found, a label lookup is not."""
    sample = tmp_path / "sample.py"
    sample.write_text(
        "def a(who, case, unit, kind):\n"
        "    x = who.role == 'caseworker'\n"
        "    y = who.unit_kind in {'canton'}\n"
        "    z = who.is_canton\n"
        "    w = case.status == 'open'\n"
        "    v = unit.kind != 'municipality'\n"
        "def b(item, labels):\n"
        "    return item.status == 'requested' or item.kind == 'orphan' or labels['canton']\n",
        encoding="utf-8",
    )
    assert [(f, line) for f, line, _ in _findings(sample)] == [
        ("a", 2),
        ("a", 3),
        ("a", 4),
        ("a", 5),
        ("a", 6),
    ]
