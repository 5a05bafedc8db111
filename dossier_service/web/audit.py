"""Protokoll: the audit log with filters, for auditors (data-protection staff) only.

The same rule as the API (``policy.require(AUDIT_READ)``); reading the log is itself
logged. The log shows who did what to which object; it never shows document content.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from sqlalchemy import func, select

from dossier_service.api.context import audit_context
from dossier_service.dates import day_start
from dossier_service.models import AuditEntry
from dossier_service.policy import Action, require
from dossier_service.services import audit
from dossier_service.web.context import Pager, identity, page_arg, render, session

PER_PAGE = 50
FILTERS = ("actor", "action", "case_id", "outcome")
#: Suggestions for the action filter (it takes any action name).
KNOWN_ACTIONS = (
    "auth.login",
    "auth.failed",
    "auth.throttled",
    "auth.logout",
    "case.create",
    "case.read",
    "case.list",
    "case.update",
    "case.close",
    "case.reopen",
    "document.create",
    "document.read",
    "document.list",
    "version.create",
    "content.read",
    "search",
    "transfer.create",
    "delegation.create",
    "delegation.end",
    "cost_approval.request",
    "cost_approval.decide",
    "notification.read",
    "report.read",
    "audit.read",
    "web.csrf_refused",
)


def _day(name: str) -> dt.date | None:
    """A date filter from an <input type="date"> (YYYY-MM-DD); anything else is ignored."""
    raw = request.args.get(name) or ""
    try:
        return dt.date.fromisoformat(raw) if raw else None
    except ValueError:
        return None


def audit_log() -> ResponseReturnValue:
    """GET /audit?actor=&action=&case_id=&outcome=&from=&to=&page=."""
    audit_context("audit.read")
    who = identity()
    require(who, Action.AUDIT_READ)
    filters = {k: (request.args.get(k) or "").strip()[:64] for k in FILTERS}
    day_from, day_to = _day("from"), _day("to")
    query = select(AuditEntry)
    if filters["actor"]:
        query = query.where(AuditEntry.actor == filters["actor"].lower())
    if filters["action"]:
        query = query.where(AuditEntry.action == filters["action"])
    if filters["case_id"]:
        query = query.where(AuditEntry.case_id == filters["case_id"])
    if filters["outcome"] in {"ok", "denied"}:
        query = query.where(AuditEntry.outcome == filters["outcome"])
    if day_from:
        start = day_start(day_from)
        query = query.where(AuditEntry.at >= start)
    if day_to:
        end = day_start(day_to + dt.timedelta(days=1))
        query = query.where(AuditEntry.at < end)
    page = page_arg()
    db = session()
    total = db.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = list(
        db.execute(
            query.order_by(AuditEntry.id.desc()).limit(PER_PAGE).offset((page - 1) * PER_PAGE)
        ).scalars()
    )
    audit.record(
        db,
        who,
        "audit.read",
        detail={k: v for k, v in filters.items() if v} | {"returned": len(rows), "via": "web"},
    )
    db.commit()
    return render(
        "audit.html",
        entries=rows,
        filters={
            **filters,
            "from": day_from.isoformat() if day_from else "",
            "to": day_to.isoformat() if day_to else "",
        },
        actions=KNOWN_ACTIONS,
        pager=Pager(page, PER_PAGE, total),
    )


def register(bp: Blueprint) -> None:
    """Add the audit-log route."""
    bp.add_url_rule("/audit", "audit_log", audit_log)
