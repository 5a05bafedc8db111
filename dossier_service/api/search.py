"""Full-text search over the dossiers the caller may read."""

from __future__ import annotations

import datetime as dt

from flask import Blueprint, Response, jsonify, request

from dossier_service.errors import BadRequest
from dossier_service.http.context import audit_context, container, identity, session
from dossier_service.services import search as search_service
from dossier_service.validation import int_param

MAX_QUERY_CHARS = 1000
#: Case ids are UUIDs (36 characters).
CASE_ID_CHARS = 36


def _date(name: str) -> dt.date | None:
    raw = request.args.get(name)
    if not raw:
        return None
    try:
        value = dt.date.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a date YYYY-MM-DD.", code="invalid_parameter") from None
    # The index stores timestamps that cannot express every year Python can; no document of
    # this service predates 1900 or follows 2100 anyway.
    if not 1900 <= value.year <= 2100:
        raise BadRequest(f"'{name}' must lie between 1900 and 2100.", code="invalid_parameter")
    return value


def search() -> Response:
    """GET /search?q=&type=&case_id=&unit=&created_from=&created_to=&page=&per_page=."""
    audit_context("search")
    q = request.args.get("q", "").strip()
    if not q:
        raise BadRequest("Enter at least one search word ('q').", code="query_missing")
    if len(q) > MAX_QUERY_CHARS:
        raise BadRequest(
            f"The query is longer than {MAX_QUERY_CHARS} characters.", code="query_too_long"
        )
    case_id = request.args.get("case_id") or None
    if case_id is not None and len(case_id) > CASE_ID_CHARS:
        # No case has such an id, and the audit entry's case column could not hold it.
        raise BadRequest("'case_id' is not a case id.", code="invalid_parameter")
    types = [t for raw in request.args.getlist("type") for t in raw.split(",") if t]
    params = search_service.SearchParams(
        q=q,
        types=frozenset(types) if types else None,
        case_id=case_id,
        unit=request.args.get("unit") or None,
        created_from=_date("created_from"),
        created_to=_date("created_to"),
        page=int_param(request.args.get("page"), "page", default=1, minimum=1, maximum=500),
        per_page=int_param(
            request.args.get("per_page"), "per_page", default=20, minimum=1, maximum=100
        ),
    )
    if params.page * params.per_page > 10_000:
        raise BadRequest(
            "Only the first 10,000 results can be paged through.", code="invalid_parameter"
        )
    db = session()
    body = search_service.search_documents(container(), db, identity(), params)
    return jsonify(body)


def register(bp: Blueprint) -> None:
    """Add the search route to the API blueprint."""
    bp.add_url_rule("/search", view_func=search, methods=["GET"])
