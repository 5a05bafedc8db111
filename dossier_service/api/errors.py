"""One JSON error shape for every failure: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, g, jsonify
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from dossier_service.errors import DossierError, Forbidden, NotFound
from dossier_service.models import Document
from dossier_service.services import audit

log = logging.getLogger(__name__)

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    411: "length_required",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_failed",
    500: "internal_error",
    503: "service_unavailable",
}


def error_response(status: int, code: str, message: str, **extra: Any) -> Response:
    """Build the one error shape."""
    body: dict[str, Any] = {"code": code, "message": message}
    body.update({k: v for k, v in extra.items() if v is not None})
    response = jsonify({"error": body})
    response.status_code = status
    return response


#: Width of the audit log's id columns and the largest version its INTEGER column holds.
_ID_WIDTH = 36
_MAX_VERSION = 2**31 - 1


def _log_denial(exc: DossierError) -> None:
    """Record a refused attempt (outcome denied) in its own transaction."""
    from dossier_service.api.context import close_session, container

    who = g.get("identity")
    ctx = g.get("audit_context")
    if who is None or ctx is None:
        return
    close_session()  # the failed transaction must not commit
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
        with container().db.transaction() as session:
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


def register(app: Flask) -> None:
    """Install the handlers on the app (API and pages share them)."""

    @app.errorhandler(DossierError)
    def _domain_error(exc: DossierError) -> Response:
        if isinstance(exc, Forbidden | NotFound):
            _log_denial(exc)
        extra = {"field": exc.details.get("field")} if exc.details.get("field") else {}
        return error_response(exc.status, exc.code, exc.message, **extra)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 404:
            message = "There is nothing at this address."
        elif status == 405:
            message = "This method is not allowed here."
        response = error_response(status, _HTTP_CODES.get(status, "http_error"), message)
        if status == 405 and exc.get_response().headers.get("Allow"):
            response.headers["Allow"] = exc.get_response().headers["Allow"]
        return response

    @app.errorhandler(OperationalError)
    def _database_down(exc: OperationalError) -> Response:
        log.error("database error: %s", exc)
        return error_response(
            503, "database_unavailable", "The database cannot be reached. Please try again later."
        )

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception) -> Response:
        log.exception("unhandled error")
        return error_response(500, "internal_error", "An unexpected error occurred; it was logged.")
