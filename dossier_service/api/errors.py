"""One JSON error shape for every failure: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

from flask import Flask, Response
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from dossier_service.errors import DossierError, Forbidden, NotFound
from dossier_service.http.denials import log_denial
from dossier_service.http.errors import error_response

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
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def register(app: Flask) -> None:
    """Install the handlers on the app (API and pages share them)."""

    @app.errorhandler(DossierError)
    def _domain_error(exc: DossierError) -> Response:
        if isinstance(exc, Forbidden | NotFound):
            log_denial(exc)
        extra = {"field": exc.details.get("field")} if exc.details.get("field") else {}
        if exc.details.get("public"):
            # Facts the caller may know and act on (the surviving case of a merged one).
            extra["details"] = exc.details["public"]
        response = error_response(exc.status, exc.code, exc.message, **extra)
        if exc.details.get("retry_after"):
            response.headers["Retry-After"] = str(int(exc.details["retry_after"]))
        return response

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
