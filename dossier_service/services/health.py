"""Readiness of the service's backends: database, object store and broker."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from sqlalchemy import text

from dossier_service.services import outbox, processing

if TYPE_CHECKING:
    from dossier_service.container import Container


def check(container: Container, broker_probe: Any) -> tuple[bool, dict[str, Any]]:
    """Probe each backend; return (all healthy, per-backend status)."""
    checks: dict[str, Any] = {}
    try:
        with container.db.transaction() as session:
            session.execute(text("SELECT 1"))
        checks["database"] = {"ok": True}
    except Exception as exc:
        checks["database"] = {"ok": False, "error": type(exc).__name__}
    try:
        container.store.check()
        checks["storage"] = {"ok": True}
    except Exception as exc:
        checks["storage"] = {"ok": False, "error": type(exc).__name__}
    try:
        broker_probe()
        checks["broker"] = {"ok": True}
    except Exception as exc:
        checks["broker"] = {"ok": False, "error": type(exc).__name__}
    if checks["database"]["ok"]:
        checks["outbox"] = {"unsent": outbox.unsent_count(container.db)}
        # Reported, not a failed check: the service serves; an operator looks (operations.md).
        checks["processing"] = {"overdue": processing.overdue_count(container)}
    healthy = all(v.get("ok", True) for v in checks.values())
    return healthy, checks
