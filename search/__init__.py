"""Derived full-text index of document versions: tantivy (embedded) or Elasticsearch."""

from __future__ import annotations

from typing import Any

from search.base import (
    FACET_NAMES,
    MAX_PER_PAGE,
    MAX_RESULT_WINDOW,
    MAX_TEXT_CHARS,
    Hit,
    IndexedDocument,
    IndexOutdated,
    InvalidRequest,
    QuerySyntaxError,
    RebuildInProgress,
    SearchBackend,
    SearchError,
    SearchFilter,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
)
from search.elastic import ElasticIndex
from search.query import ParsedQuery, parse_query
from search.tantivy_index import TantivyIndex

__all__ = [
    "FACET_NAMES",
    "MAX_PER_PAGE",
    "MAX_RESULT_WINDOW",
    "MAX_TEXT_CHARS",
    "ElasticIndex",
    "Hit",
    "IndexOutdated",
    "IndexedDocument",
    "InvalidRequest",
    "ParsedQuery",
    "QuerySyntaxError",
    "RebuildInProgress",
    "SearchBackend",
    "SearchError",
    "SearchFilter",
    "SearchRequest",
    "SearchResult",
    "SearchUnavailable",
    "TantivyIndex",
    "open_index",
    "parse_query",
]


def open_index(
    kind: str,
    *,
    path: str | None = None,
    url: str | None = None,
    prefix: str = "dossier-documents",
    **options: Any,
) -> SearchBackend:
    """Build the configured backend ("tantivy" needs path; "elasticsearch" needs url).

    Nothing is opened or contacted here: the index is created or reached on first use,
    so the service can start while Elasticsearch is down and report it via check().
    """
    if kind == "tantivy":
        if not path:
            raise ValueError("tantivy search needs an index directory (path)")
        return TantivyIndex(path, **options)
    if kind == "elasticsearch":
        if not url:
            raise ValueError("elasticsearch search needs a url")
        return ElasticIndex(url, prefix=prefix, **options)
    raise ValueError(f"unknown search kind {kind!r} (expected 'tantivy' or 'elasticsearch')")
