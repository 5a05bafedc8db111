"""The audit log, for auditors only."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request

from dossier_service.errors import BadRequest
from dossier_service.http.context import audit_context, identity, session
from dossier_service.services import audit, audit_log
from dossier_service.services.audit_log import AuditFilter
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
    page = int_param(request.args.get("page"), "page", default=1, minimum=1, maximum=1_000_000)
    per_page = int_param(
        request.args.get("per_page"), "per_page", default=100, minimum=1, maximum=1000
    )
    where = AuditFilter(
        case_id=request.args.get("case_id") or None,
        actor=request.args.get("actor") or None,
        action=request.args.get("action") or None,
        since=_since(request.args.get("since")),
    )
    db = session()
    rows, total = audit_log.list_entries(db, identity(), where, page=page, per_page=per_page)
    items = [audit.serialize(e) for e in rows]
    return jsonify({"items": items, "total": total, "page": page, "per_page": per_page})


def register(bp: Blueprint) -> None:
    """Add the audit route to the API blueprint."""
    bp.add_url_rule("/audit", view_func=list_entries, methods=["GET"])
