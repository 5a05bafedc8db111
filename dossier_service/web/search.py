"""Suche: one search box on every page, results with highlighted snippets, facets, paging.

The results come from ``services.search.search_documents``: the same policy filter as
the API, applied inside the index query, so hits, totals and facets count only what the
caller may read. Snippets are HTML-safe from the search backend (escaped text, matches in
``<mark>``); the template marks only that one field as safe.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, request
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from dossier_service.errors import DossierError
from dossier_service.http.context import audit_context
from dossier_service.models import DOCUMENT_TYPES
from dossier_service.services import search as search_service
from dossier_service.web.context import Pager, container, identity, page_arg, render, session
from dossier_service.web.errors import message_for

PER_PAGE = 20
MAX_QUERY_CHARS = 1000


def _year(raw: str | None) -> int | None:
    """A four-digit year from the facet link, or None."""
    if raw and raw.isdigit() and len(raw) == 4 and 1990 <= int(raw) <= 2200:
        return int(raw)
    return None


def search_page() -> ResponseReturnValue:
    """GET /search?q=&type=&unit=&year=&page=."""
    q = request.args.get("q", "").strip()
    doc_type = request.args.get("type") or None
    if doc_type not in DOCUMENT_TYPES:
        doc_type = None
    unit = (request.args.get("unit") or "").strip()[:32] or None
    year = _year(request.args.get("year"))
    page = page_arg(maximum=10_000 // PER_PAGE)
    filters = {"type": doc_type or "", "unit": unit or "", "year": str(year or "")}
    context: dict[str, Any] = {
        "q": q,
        "filters": filters,
        "result": None,
        "error": None,
        "document_types": DOCUMENT_TYPES,
        "pager": None,
    }
    if not q:
        return render("search.html", 200, **context)
    if len(q) > MAX_QUERY_CHARS:
        context["error"] = _("Die Suchanfrage ist zu lang (höchstens 1000 Zeichen).")
        return render("search.html", 400, **context)
    audit_context("search")
    params = search_service.SearchParams(
        q=q,
        types=frozenset({doc_type}) if doc_type else None,
        unit=unit,
        created_from=dt.date(year, 1, 1) if year else None,
        created_to=dt.date(year, 12, 31) if year else None,
        page=page,
        per_page=PER_PAGE,
    )
    db = session()
    try:
        result = search_service.search_documents(container(), db, identity(), params)
    except DossierError as exc:
        db.rollback()
        if exc.status not in {400, 422, 503}:
            raise
        context["error"] = message_for(exc)
        return render("search.html", exc.status, **context)
    context["result"] = result
    context["pager"] = Pager(page, PER_PAGE, result["total"])
    return render("search.html", 200, **context)


def register(bp: Blueprint) -> None:
    """Add the search route."""
    bp.add_url_rule("/search", "search", search_page)
