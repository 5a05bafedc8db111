"""The canton's reports: IAS indicators (JSON or CSV) and the stalled-cases dashboard."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request

from dossier_service.dates import local_today
from dossier_service.errors import BadRequest
from dossier_service.http.context import audit_context, container, identity, session
from dossier_service.services import indicators, monitoring


def _as_of() -> dt.date:
    raw = request.args.get("as_of")
    if not raw:
        return local_today()
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest("'as_of' must be a date YYYY-MM-DD.", code="invalid_parameter") from None
    if not dt.date(1990, 1, 1) <= value <= dt.date(2200, 12, 31):
        raise BadRequest("'as_of' is out of range.", code="invalid_parameter")
    return value


def ias_report() -> Response:
    """GET /reports/ias?as_of=YYYY-MM-DD[&format=csv]: counts and goal indicators."""
    audit_context("report.read")
    fmt = request.args.get("format", "json")
    if fmt not in {"json", "csv"}:
        raise BadRequest("'format' must be json or csv.", code="invalid_parameter")
    as_of = _as_of()
    db = session()
    report = indicators.ias_report(db, identity(), as_of)
    if fmt == "csv":
        return Response(
            indicators.ias_csv(report),
            mimetype="text/csv",
            headers={
                "Content-Type": "text/csv; charset=utf-8",
                "Content-Disposition": f'attachment; filename="ias-indikatoren-{as_of}.csv"',
                "Cache-Control": "private, no-store",
            },
        )
    return jsonify(report)


def stalled_report() -> Response:
    """GET /reports/stalled?as_of=: stalled open cases per responsible unit."""
    audit_context("report.read")
    as_of = _as_of()
    db = session()
    report = monitoring.stalled_report(db, identity(), as_of, container().settings.stall_days)
    return jsonify(report)


def register(bp: Blueprint) -> None:
    """Add the report routes to the API blueprint."""
    bp.add_url_rule("/reports/ias", view_func=ias_report, methods=["GET"])
    bp.add_url_rule("/reports/stalled", view_func=stalled_report, methods=["GET"])
