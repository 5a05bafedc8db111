"""Full-text search across the dossiers a caller may read.

Security trimming: the set of readable cases comes from the ONE access policy
(``policy.readable_cases``, the same SQL condition single reads use), evaluated against the
database at query time and handed to the index as a filter inside the engine query. Totals,
facets, paging and highlights therefore only ever count what the caller may read, and a
transfer takes effect on the very next search with no reindex.

The ``unit`` facet counts hits per unit responsible NOW. The index records on each entry
the unit responsible when it was written (a terms aggregation over ~200 units is cheap,
one over every case id is not); a transfer relabels the entries through a queued task.
Until that task has marked the responsibility period synced (``index_synced_at``), the
entries of a moved case may carry the previous unit, so for every such case the index also
reports its hits per case and indexed unit, and the facet moves them to the unit the
database names. A periodic task resends relabellings that did not finish.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.errors import BadRequest, ServiceUnavailable, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import DOCUMENT_TYPES, Case, Document, Responsibility, Unit
from dossier_service.policy import Action, readable_cases, reads_every_case, require
from dossier_service.services import audit
from search import (
    InvalidRequest,
    QuerySyntaxError,
    SearchFilter,
    SearchRequest,
    SearchUnavailable,
)
from search.base import MAX_FACET_SIZE

if TYPE_CHECKING:
    from dossier_service.container import Container

#: Most pending relabellings one search corrects (each costs a bucket in the aggregation;
#: tantivy allows 65,000). Normally there are a handful, for a few seconds after transfers.
MAX_PENDING_RELABELS = 20_000


@dataclass(frozen=True)
class SearchParams:
    """The caller's search request, already parsed from the query string."""

    q: str
    types: frozenset[str] | None = None
    case_id: str | None = None
    unit: str | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    page: int = 1
    per_page: int = 20


def _readable_case_ids(session: Session, identity: Identity) -> frozenset[str] | None:
    """None when the caller reads every case (the canton), else the readable ids."""
    if reads_every_case(identity):
        return None
    return frozenset(session.execute(select(Case.id).where(readable_cases(identity))).scalars())


def _cases_held_by(session: Session, unit_code: str) -> frozenset[str]:
    return frozenset(
        session.execute(
            select(Responsibility.case_id)
            .join(Unit, Unit.id == Responsibility.unit_id)
            .where(Unit.code == unit_code, Responsibility.ended_at.is_(None))
        ).scalars()
    )


def _pending_relabels(session: Session, allowed: frozenset[str] | None) -> dict[str, str]:
    """{case_id: responsible unit code} of allowed cases whose index labels may be stale."""
    query = (
        select(Responsibility.case_id, Unit.code)
        .join(Unit, Unit.id == Responsibility.unit_id)
        .where(Responsibility.ended_at.is_(None), Responsibility.index_synced_at.is_(None))
        .order_by(Responsibility.started_at.desc())
        .limit(MAX_PENDING_RELABELS)
    )
    if allowed is not None and len(allowed) <= 1000:
        query = query.where(Responsibility.case_id.in_(allowed))
    moved = dict(session.execute(query).all())
    if allowed is not None:
        moved = {case_id: code for case_id, code in moved.items() if case_id in allowed}
    return moved


def _unit_facet(
    indexed: dict[str, int], case_units: dict[str, dict[str, int]], moved: dict[str, str]
) -> dict[str, int]:
    """Hits per responsible unit: the index's labels, corrected for recently moved cases."""
    counts: Counter[str] = Counter(indexed)
    for case_id, by_unit in case_units.items():
        for unit, hits in by_unit.items():
            counts[unit] -= hits
        counts[moved[case_id]] += sum(by_unit.values())
    return {unit: n for unit, n in counts.most_common() if n > 0 and unit}


def search_documents(
    container: Container, session: Session, identity: Identity, params: SearchParams
) -> dict[str, Any]:
    """Search the readable dossiers; audited as ``search`` with the query and hit count."""
    require(identity, Action.CASE_READ)
    if params.types is not None and not params.types <= set(DOCUMENT_TYPES):
        raise Unprocessable(
            "'type' must be one of: " + ", ".join(DOCUMENT_TYPES) + ".", field="type"
        )
    allowed = _readable_case_ids(session, identity)
    if params.case_id is not None:
        # An unreadable or unknown case simply yields nothing: no existence leak.
        allowed = frozenset({params.case_id}) if allowed is None else allowed & {params.case_id}
    if params.unit is not None:
        held = _cases_held_by(session, params.unit)
        allowed = held if allowed is None else allowed & held
    moved = _pending_relabels(session, allowed)
    request_filter = SearchFilter(
        case_ids=allowed,
        types=params.types,
        created_from=params.created_from,
        created_to=params.created_to,
    )
    try:
        request = SearchRequest(
            query=params.q,
            filter=request_filter,
            page=params.page,
            per_page=params.per_page,
            facets=True,
            highlight=True,
            facet_size=MAX_FACET_SIZE,
            unit_check_cases=frozenset(moved),
        )
        result = container.search.search(request)
    except QuerySyntaxError as exc:
        # One API code for every unusable query; the parser's own code tells the web page
        # which German hint to show (details stay out of the JSON error).
        raise BadRequest(str(exc), code="invalid_query", reason=exc.code) from None
    except InvalidRequest as exc:
        raise BadRequest(str(exc), code="invalid_parameter") from None
    except SearchUnavailable as exc:
        raise ServiceUnavailable(
            "The search index cannot be reached. Please try again later.", code="search_unavailable"
        ) from exc
    # A document withdrawn or moved a moment ago may still be in the index as it was until
    # its reindex task ran (right after the commit; a search outage delays it): never show
    # a withdrawn one, nor one whose entry still names the case it left.
    hit_ids = {hit.document_id for hit in result.hits}
    live = (
        dict(
            session.execute(
                select(Document.id, Document.case_id).where(
                    Document.id.in_(hit_ids), Document.withdrawn_at.is_(None)
                )
            ).all()
        )
        if hit_ids
        else {}
    )
    hits = [hit for hit in result.hits if live.get(hit.document_id) == hit.case_id]
    facets = {
        "type": dict(result.facets.get("type", {})),
        "unit": _unit_facet(result.facets.get("unit", {}), result.case_units, moved),
        "year": dict(result.facets.get("year", {})),
        "tags": dict(result.facets.get("tags", {})),
    }
    audit.record(
        session,
        identity,
        "search",
        case_id=params.case_id,
        detail={
            "q": params.q[:500],
            "hits": result.total,
            "types": sorted(params.types) if params.types else None,
            "unit": params.unit,
            "page": params.page,
            # What this page showed, so each person's access log names the searches too.
            "documents": [hit.document_id for hit in hits],
            "cases": sorted({hit.case_id for hit in hits}),
        },
    )
    return {
        "total": result.total,
        "page": params.page,
        "per_page": params.per_page,
        "items": [
            {
                "document_id": hit.document_id,
                "version": hit.version,
                "case_id": hit.case_id,
                "case_reference": hit.case_reference,
                "title": hit.title,
                "type": hit.type,
                "score": round(hit.score, 4),
                "highlight": hit.highlight,
            }
            for hit in hits
        ],
        "facets": facets,
    }
