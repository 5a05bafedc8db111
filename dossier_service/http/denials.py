"""The audit entry of a refused access (outcome denied), kept although the request fails."""

from __future__ import annotations

import logging
from typing import Any

from flask import g
from sqlalchemy import select

from dossier_service.errors import DossierError
from dossier_service.http.unit_of_work import separate_transaction
from dossier_service.models import Document
from dossier_service.services import audit

log = logging.getLogger(__name__)

#: Width of the audit log's id columns and the largest version its INTEGER column holds.
_ID_WIDTH = 36
_MAX_VERSION = 2**31 - 1


def log_denial(exc: DossierError) -> None:
    """Record a refused attempt (outcome denied) with the request's audit context."""
    who = g.get("identity")
    ctx = g.get("audit_context")
    if who is None or ctx is None:
        return
    ctx = dict(ctx)
    action = ctx.pop("action")
    detail: dict[str, Any] = {"status": exc.status, "code": exc.code}
    # A URL may name ids longer than the audit columns or versions beyond 32 bits; such an
    # id names nothing that exists. Keep a bounded copy in the detail instead, so the insert
    # does not fail (PostgreSQL enforces the widths) and the denied attempt is still logged.
    for key in ("case_id", "document_id"):
        value = ctx.get(key)
        if isinstance(value, str) and len(value) > _ID_WIDTH:
            detail[f"requested_{key}"] = value[:64]
            ctx[key] = None
    version = ctx.get("version")
    if isinstance(version, int) and not 0 <= version <= _MAX_VERSION:
        detail["requested_version"] = str(version)[:64]
        ctx["version"] = None
    try:
        # Its own transaction: the request's work rolls back, the denial must be stored.
        with separate_transaction() as session:
            if ctx.get("document_id") and not ctx.get("case_id"):
                # Log the case the refused document belongs to, so a case's log is complete.
                ctx["case_id"] = session.execute(
                    select(Document.case_id).where(Document.id == ctx["document_id"])
                ).scalar_one_or_none()
            audit.record(
                session,
                who,
                action,
                outcome="denied",
                case_id=ctx.get("case_id"),
                document_id=ctx.get("document_id"),
                version=ctx.get("version"),
                detail=detail,
            )
    except Exception:
        log.exception("could not write the audit entry of a denied request")
