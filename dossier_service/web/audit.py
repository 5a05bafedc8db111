"""Protokoll: the audit log with filters, for auditors (data-protection staff) only.

The same rule as the API (``policy.require(AUDIT_READ)``); reading the log is itself
logged. The log shows who did what to which object; it never shows document content.
"""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, request
from flask.typing import ResponseReturnValue

from dossier_service.dates import day_start
from dossier_service.http.context import audit_context
from dossier_service.services import audit_log as audit_log_service
from dossier_service.services.audit_log import AuditFilter
from dossier_service.web.context import Pager, identity, page_arg, render, session

PER_PAGE = 50
FILTERS = ("actor", "action", "case_id", "outcome")
#: Suggestions for the action filter (it takes any action name).
KNOWN_ACTIONS = (
    "auth.login",
    "auth.failed",
    "auth.failed_summary",
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
    "document.correct",
    "document.history",
    "document.withdraw",
    "document.list_withdrawn",
    "document.read_withdrawn",
    "content.read_withdrawn",
    "document.purge",
    "document.move",
    "document.move_in",
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
    filters = {k: (request.args.get(k) or "").strip()[:64] for k in FILTERS}
    day_from, day_to = _day("from"), _day("to")
    where = AuditFilter(
        case_id=filters["case_id"] or None,
        actor=filters["actor"].lower() or None,
        action=filters["action"] or None,
        outcome=filters["outcome"] if filters["outcome"] in {"ok", "denied"} else None,
        since=day_start(day_from) if day_from else None,
        before=(day_start(day_to + dt.timedelta(days=1)) if day_to else None),
    )
    page = page_arg()
    db = session()
    rows, total = audit_log_service.list_entries(
        db, identity(), where, page=page, per_page=PER_PAGE, via="web"
    )
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
