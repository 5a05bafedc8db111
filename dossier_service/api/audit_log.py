"""The audit log, for auditors only."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request
from sqlalchemy import func, select

from dossier_service.errors import BadRequest
from dossier_service.http.context import audit_context, identity, session
from dossier_service.models import AuditEntry
from dossier_service.policy import Action, require
from dossier_service.services import audit
from dossier_service.validation import int_param


def _since(raw: str | None) -> dt.datetime | None:
    if not raw:
        return None
    try:
        value = dt.datetime.fromisoformat(raw)
        # Converted here rather than in the query, so that an offset pushing the instant out
        # of the representable years (0001-01-01T00:00+01:00) is a 400, not an OverflowError.
        return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)
    except (ValueError, OverflowError):
        raise BadRequest(
            "'since' must be an ISO date or timestamp.", code="invalid_parameter"
        ) from None


def list_entries() -> Response:
    """GET /audit?case_id=&actor=&action=&since=&page=&per_page=."""
    audit_context("audit.read")
    who = identity()
    require(who, Action.AUDIT_READ)
    page = int_param(request.args.get("page"), "page", default=1, minimum=1, maximum=1_000_000)
    per_page = int_param(
        request.args.get("per_page"), "per_page", default=100, minimum=1, maximum=1000
    )
    query = select(AuditEntry)
    filters = {k: request.args.get(k) for k in ("case_id", "actor", "action")}
    if filters["case_id"]:
        query = query.where(AuditEntry.case_id == filters["case_id"])
    if filters["actor"]:
        query = query.where(AuditEntry.actor == filters["actor"])
    if filters["action"]:
        query = query.where(AuditEntry.action == filters["action"])
    since = _since(request.args.get("since"))
    if since is not None:
        query = query.where(AuditEntry.at >= since)
    db = session()
    total = db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = (
        db.execute(
            query.order_by(AuditEntry.id.desc()).limit(per_page).offset((page - 1) * per_page)
        )
        .scalars()
        .all()
    )
    items = [audit.serialize(e) for e in rows]
    # Reading the log is itself an access to personal data.
    audit.record(
        db,
        who,
        "audit.read",
        detail={k: v for k, v in filters.items() if v} | {"returned": len(items)},
    )
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


def register(bp: Blueprint) -> None:
    """Add the audit route to the API blueprint."""
    bp.add_url_rule("/audit", view_func=list_entries, methods=["GET"])
