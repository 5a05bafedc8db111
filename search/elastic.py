"""Production search backend: Elasticsearch 8 behind an alias, rebuilt into a new index."""

# Layout in the cluster (``prefix`` defaults to "dossier-documents"):
#
#   index template <prefix>     settings, German analyzers, strict mappings for <prefix>-*
#   alias <prefix>              what every read and write goes through
#   index <prefix>-initial      created on first use when the alias does not exist yet
#   index <prefix>-<utc stamp>  built by rebuild(); the alias moves to it in ONE
#                               update_aliases call, then the old index is deleted
#   index <prefix>_rebuild_lock one document "rebuild" while a rebuild runs: a second
#                               rebuild is refused, and writers also write to its target
#
# index_template(), build_query(), filter_query() and parse_response() are pure functions
# of their arguments, so their output can be asserted without a cluster.

from __future__ import annotations

import contextlib
import datetime as dt
import re
import secrets
from collections.abc import Iterable, Iterator
from typing import Any

import elastic_transport
import elasticsearch

from search.analysis import (
    ANALYSIS_VERSION,
    DOMAIN_WORDS,
    MAX_TOKEN_CHARS,
    MIN_COMPOUND_CHARS,
    MIN_PART_CHARS,
)
from search.base import (
    FIELD_BOOSTS,
    HIGHLIGHT_FRAGMENT_CHARS,
    HIGHLIGHT_MAX_ANALYZED_CHARS,
    MAX_CASE_IDS,
    MAX_RESULT_WINDOW,
    TIMEZONE_NAME,
    Hit,
    IndexedDocument,
    IndexOutdated,
    InvalidRequest,
    ProgressCallback,
    QuerySyntaxError,
    RebuildInProgress,
    SearchError,
    SearchFilter,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
    date_bounds_utc,
)
from search.query import Clause, Identifier, ParsedQuery, Phrase, Prefix, Term, parse_query

__all__ = [
    "FORMAT_VERSION",
    "ElasticIndex",
    "build_query",
    "document_body",
    "filter_query",
    "index_template",
    "parse_response",
]

#: Version of the mappings below; an index with another ``_meta.format`` must be rebuilt.
FORMAT_VERSION = 3  # 3: tags

#: Searched text fields with their boosts, in multi_match notation ("title^2").
TEXT_FIELDS = tuple(
    field if boost == 1.0 else f"{field}^{boost:g}" for field, boost in FIELD_BOOSTS.items()
)

_PREFIX_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,100}")
_BULK_DOCS = 500
_BULK_BYTES = 20_000_000
_PROGRESS_EVERY = 1000
_LOCK_ID = "rebuild"


# --- pure functions: template, queries, responses ------------------------------------------


def index_template(
    prefix: str, *, number_of_shards: int = 1, number_of_replicas: int | None = None
) -> dict[str, Any]:
    """The composable index template for ``<prefix>-*`` (body of put_index_template)."""
    settings: dict[str, Any] = {
        "number_of_shards": number_of_shards,
        "max_result_window": MAX_RESULT_WINDOW,
        "max_terms_count": MAX_CASE_IDS,
        "analysis": {
            "char_filter": {
                # AHV and ZEMIS keys are compared without separators, however written.
                "dossier_strip_separators": {
                    "type": "pattern_replace",
                    "pattern": "[^0-9A-Za-z]",
                    "replacement": "",
                }
            },
            "normalizer": {
                "dossier_identifier": {
                    "type": "custom",
                    "char_filter": ["dossier_strip_separators"],
                    "filter": ["uppercase"],
                },
                "dossier_reference": {"type": "custom", "filter": ["trim", "uppercase"]},
            },
            "filter": {
                "dossier_long_tokens": {"type": "length", "max": MAX_TOKEN_CHARS},
                # Emits the domain words IN ADDITION to the whole token, at its position.
                "dossier_decompounder": {
                    "type": "dictionary_decompounder",
                    "word_list": list(DOMAIN_WORDS),
                    "min_word_size": MIN_COMPOUND_CHARS,
                    "min_subword_size": MIN_PART_CHARS,
                    "max_subword_size": max(len(word) for word in DOMAIN_WORDS),
                    "only_longest_match": False,
                },
                "dossier_german_stemmer": {"type": "stemmer", "language": "light_german"},
            },
            "analyzer": {
                # Index time: words, their folded forms and their domain parts, stemmed.
                "dossier_german": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": [
                        "dossier_long_tokens",
                        "lowercase",
                        "german_normalization",
                        "asciifolding",
                        "dossier_decompounder",
                        "dossier_german_stemmer",
                    ],
                },
                # Query time: no decompounding, so "Kostengutsprache" does not match every
                # document that mentions "Kosten".
                "dossier_german_search": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": [
                        "dossier_long_tokens",
                        "lowercase",
                        "german_normalization",
                        "asciifolding",
                        "dossier_german_stemmer",
                    ],
                },
                # Prefix field: folded surface words plus domain parts, never stemmed, so
                # "Wohnungen*" matches "Wohnungen" and "gutspr*" matches "Kostengutsprache".
                "dossier_words": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": [
                        "dossier_long_tokens",
                        "lowercase",
                        "german_normalization",
                        "asciifolding",
                        "dossier_decompounder",
                    ],
                },
                # Names: folded (Müller = Mueller = Muller) but neither stemmed nor split.
                "dossier_names": {
                    "type": "custom",
                    "tokenizer": "standard",
                    "filter": ["lowercase", "german_normalization", "asciifolding"],
                },
            },
        },
    }
    if number_of_replicas is not None:
        settings["number_of_replicas"] = number_of_replicas
    german = {
        "type": "text",
        "analyzer": "dossier_german",
        "search_analyzer": "dossier_german_search",
    }
    mappings = {
        "dynamic": "strict",
        "_meta": {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION},
        "properties": {
            "doc_key": {"type": "keyword"},
            "document_id": {"type": "keyword"},
            "version": {"type": "integer"},
            "case_id": {"type": "keyword"},
            "case_reference": {"type": "keyword", "normalizer": "dossier_reference"},
            "type": {"type": "keyword"},
            "title": {**german, "copy_to": "words"},
            # Offsets in the postings make highlighting long texts cheap.
            "text": {**german, "index_options": "offsets", "copy_to": "words"},
            "person_names": {"type": "text", "analyzer": "dossier_names", "copy_to": "words"},
            # What prefix* expands against (doc ids only; index_prefixes makes short
            # prefixes a term lookup instead of a walk over the term dictionary).
            "words": {
                "type": "text",
                "analyzer": "dossier_words",
                "index_options": "docs",
                "norms": False,
                "index_prefixes": {"min_chars": 2, "max_chars": 10},
            },
            "zemis": {"type": "keyword", "normalizer": "dossier_identifier"},
            "ahv": {"type": "keyword", "normalizer": "dossier_identifier"},
            "created_at": {"type": "date"},
            "is_current": {"type": "boolean"},
            # Responsible unit when the entry was written: the unit facet only.
            "unit": {"type": "keyword"},
            # Keywords: the tags facet; searched like the title (copied into its terms).
            "tags": {"type": "keyword", "copy_to": ["title", "words"]},
        },
    }
    return {
        "index_patterns": [f"{prefix}-*"],
        "priority": 200,
        "template": {"settings": settings, "mappings": mappings},
        "_meta": {"description": "dossier service document search (derived, rebuildable)"},
    }


def _any(queries: list[dict[str, Any]]) -> dict[str, Any]:
    """A bool query matching if any of ``queries`` matches."""
    return {"bool": {"should": queries, "minimum_should_match": 1}}


def _clause(clause: Clause) -> dict[str, Any]:
    """One clause of the query language as Elasticsearch query DSL."""
    if isinstance(clause, Term):
        return {
            "multi_match": {
                "query": clause.word,
                "fields": list(TEXT_FIELDS),
                "type": "best_fields",
                "operator": "and",
            }
        }
    if isinstance(clause, Phrase):
        return _any(
            [
                {"match_phrase": {field: {"query": clause.text, "boost": boost}}}
                for field, boost in FIELD_BOOSTS.items()
            ]
        )
    if isinstance(clause, Prefix):
        # The words field (unstemmed words and compound parts) finds what the stemmed
        # fields cannot ("Wohnungen*"); the per-field prefixes are there so that the
        # highlighter (require_field_match) marks the matches in title and text.
        fields = ["words", *FIELD_BOOSTS]
        return _any([{"prefix": {field: {"value": clause.prefix}}} for field in fields])
    if isinstance(clause, Identifier):
        alternatives: list[dict[str, Any]] = [{"term": {clause.field: {"value": clause.value}}}]
        for text in clause.texts:
            alternatives.append({"match_phrase": {"title": {"query": text}}})
            alternatives.append({"match_phrase": {"text": {"query": text}}})
        return _any(alternatives)
    raise TypeError(f"unknown clause {clause!r}")


def _filters(search_filter: SearchFilter) -> list[dict[str, Any]]:
    """The filter as bool.filter clauses (not scored, cached by Elasticsearch)."""
    if search_filter.matches_nothing:
        return [{"match_none": {}}]
    filters: list[dict[str, Any]] = []
    if search_filter.case_ids is not None:
        filters.append({"terms": {"case_id": sorted(search_filter.case_ids)}})
    if search_filter.types is not None:
        filters.append({"terms": {"type": sorted(search_filter.types)}})
    if search_filter.current_only:
        filters.append({"term": {"is_current": True}})
    start, end = date_bounds_utc(search_filter.created_from, search_filter.created_to)
    if start is not None or end is not None:
        bounds: dict[str, str] = {}
        if start is not None:
            bounds["gte"] = start.isoformat()
        if end is not None:
            bounds["lt"] = end.isoformat()
        filters.append({"range": {"created_at": bounds}})
    return filters


def filter_query(search_filter: SearchFilter) -> dict[str, Any]:
    """A query matching exactly the documents the filter allows (for count)."""
    return {"bool": {"filter": _filters(search_filter)}}


def _query(parsed: ParsedQuery, search_filter: SearchFilter) -> dict[str, Any]:
    """Clauses and filter in ONE bool query, so hits, totals and aggregations agree."""
    bool_query: dict[str, Any] = {"filter": _filters(search_filter)}
    if parsed.must:
        bool_query["must"] = [_clause(c) for c in parsed.must]
    if parsed.must_not:
        bool_query["must_not"] = [_clause(c) for c in parsed.must_not]
    return {"bool": bool_query}


def build_query(request: SearchRequest, parsed: ParsedQuery | None = None) -> dict[str, Any]:
    """The search request body for ``request`` (QuerySyntaxError for unusable queries)."""
    if parsed is None:
        parsed = parse_query(request.query)
    newest_first = [{"created_at": {"order": "desc"}}, {"doc_key": {"order": "asc"}}]
    body: dict[str, Any] = {
        "query": _query(parsed, request.filter),
        "from": request.offset,
        "size": request.per_page,
        "track_total_hits": True,
        # Tie-breakers make paging stable: equal scores would otherwise reorder.
        "sort": (["_score", *newest_first] if parsed.must else newest_first),
        # The text can be megabytes; hits only need the metadata (highlights are separate).
        "_source": {"excludes": ["text"]},
    }
    if request.highlight:
        body["highlight"] = {
            "pre_tags": ["<mark>"],
            "post_tags": ["</mark>"],
            "encoder": "html",  # escapes the text around the tags
            "require_field_match": True,
            "max_analyzed_offset": HIGHLIGHT_MAX_ANALYZED_CHARS,
            "fields": {
                "text": {
                    "type": "unified",
                    "fragment_size": HIGHLIGHT_FRAGMENT_CHARS,
                    "number_of_fragments": 1,
                    "no_match_size": HIGHLIGHT_FRAGMENT_CHARS,
                },
                "title": {"type": "unified", "number_of_fragments": 0},
            },
        }
    if request.facets:
        size = request.facet_size
        body["aggs"] = {
            "type": {"terms": {"field": "type", "size": size}},
            "year": {
                "date_histogram": {
                    "field": "created_at",
                    "calendar_interval": "year",
                    "format": "yyyy",
                    "time_zone": TIMEZONE_NAME,
                    "min_doc_count": 1,
                }
            },
            # One more: an empty label ("") may take a slot and is dropped when parsing.
            "unit": {"terms": {"field": "unit", "size": size + 1}},
            "tags": {"terms": {"field": "tags", "size": size}},
        }
        if request.unit_check_cases:
            checked = sorted(request.unit_check_cases)
            body["aggs"]["unit_check"] = {
                "filter": {"terms": {"case_id": checked}},
                "aggs": {
                    "case_id": {
                        "terms": {"field": "case_id", "size": len(checked)},
                        "aggs": {"unit": {"terms": {"field": "unit", "size": 1000}}},
                    }
                },
            }
    return body


def document_body(doc: IndexedDocument) -> dict[str, Any]:
    """The _source stored for one document version."""
    return {
        "doc_key": doc.doc_key,
        "document_id": doc.document_id,
        "version": doc.version,
        "case_id": doc.case_id,
        "case_reference": doc.case_reference,
        "type": doc.type,
        "title": doc.title,
        "text": doc.text,
        "person_names": doc.person_names,
        "zemis": doc.zemis,
        "ahv": doc.ahv,
        "created_at": doc.created_at.isoformat(),
        "is_current": doc.is_current,
        "unit": doc.unit,
        "tags": list(doc.tags),
    }


def _highlight(hit: dict[str, Any]) -> str:
    """The snippet: a text fragment with a match, else the marked title, else the lead."""
    fields = hit.get("highlight") or {}
    text = fields.get("text") or []
    title = fields.get("title") or []
    if text and "<mark>" in text[0]:
        return str(text[0]).strip()
    if title and "<mark>" in title[0]:
        return str(title[0]).strip()
    # no_match_size fragment (already escaped by the html encoder), or nothing at all.
    return str(text[0]).strip() if text else ""


def _body(response: Any) -> Any:
    """The JSON body of a client response (ObjectApiResponse has no dict methods like get)."""
    return getattr(response, "body", response)


def parse_response(response: Any, request: SearchRequest) -> SearchResult:
    """Turn a search response (client response or plain dict) into a SearchResult."""
    response = _body(response)
    hits_part = response["hits"]
    total = hits_part["total"]
    hits = []
    for hit in hits_part["hits"]:
        source = hit["_source"]
        hits.append(
            Hit(
                doc_key=source["doc_key"],
                document_id=source["document_id"],
                version=int(source["version"]),
                case_id=source["case_id"],
                case_reference=source.get("case_reference", ""),
                title=source.get("title", ""),
                type=source["type"],
                created_at=dt.datetime.fromisoformat(source["created_at"]),
                is_current=bool(source["is_current"]),
                score=float(hit.get("_score") or 0.0),
                highlight=_highlight(hit) if request.highlight else "",
            )
        )
    facets: dict[str, dict[str, int]] = {}
    case_units: dict[str, dict[str, int]] = {}
    if request.facets:
        aggs = response.get("aggregations") or {}
        checked = ((aggs.get("unit_check") or {}).get("case_id") or {}).get("buckets") or []
        case_units = {
            str(b["key"]): {str(u["key"]): int(u["doc_count"]) for u in b["unit"]["buckets"]}
            for b in checked
        }
        for name in ("type", "year", "unit", "tags"):
            buckets = (aggs.get(name) or {}).get("buckets") or []
            facets[name] = {
                str(b.get("key_as_string", b["key"])): int(b["doc_count"])
                for b in buckets
                if b["doc_count"] > 0 and b["key"] != ""
            }
        facets["unit"] = dict(list(facets["unit"].items())[: request.facet_size])
    return SearchResult(
        total=int(total["value"] if isinstance(total, dict) else total),
        hits=hits,
        facets=facets,
        case_units=case_units,
    )


# --- error translation ---------------------------------------------------------------------


def _translate(exc: Exception, action: str) -> SearchError:
    """Map an elasticsearch/elastic_transport error to our exception tree."""
    if isinstance(exc, elastic_transport.TransportError):
        # Connection refused, timeout, TLS, serialisation: the cluster is not usable.
        return SearchUnavailable(f"elasticsearch {action} failed: {type(exc).__name__}")
    if isinstance(exc, elasticsearch.ApiError):
        status = exc.meta.status if exc.meta is not None else 0
        detail = f"elasticsearch {action} failed: HTTP {status} {exc.message}"
        if status in (401, 403, 408, 429) or status >= 500:
            return SearchUnavailable(detail)
        if status == 404:
            return SearchUnavailable(detail + " (index or alias missing)")
        text = str(exc.body).lower()
        if status == 400 and ("too_many" in text or "maxclausecount" in text):
            return QuerySyntaxError(
                "The search is too broad: use longer prefixes or fewer terms.",
                code="query_too_broad",
            )
        return SearchError(detail)
    return SearchError(f"elasticsearch {action} failed: {exc}")


@contextlib.contextmanager
def _errors(action: str) -> Iterator[None]:
    """Translate client errors raised inside the block."""
    try:
        yield
    except (elasticsearch.ApiError, elastic_transport.TransportError) as exc:
        raise _translate(exc, action) from None


def _status_of(item: dict[str, Any]) -> tuple[int, Any]:
    """(status, error) of one bulk response item."""
    (result,) = item.values()
    return int(result.get("status", 500)), result.get("error")


# --- the backend ------------------------------------------------------------------------------


class ElasticIndex:
    """SearchBackend on an Elasticsearch 8 cluster (reads and writes go through an alias)."""

    def __init__(
        self,
        url: str | None = None,
        *,
        prefix: str = "dossier-documents",
        client: Any = None,
        request_timeout: float = 10.0,
        number_of_shards: int = 1,
        number_of_replicas: int | None = None,
        rebuild_lock_ttl: dt.timedelta = dt.timedelta(hours=12),
        **client_options: Any,
    ) -> None:
        """Connect lazily to ``url`` (or use ``client``); ``prefix`` names alias and indices."""
        if not _PREFIX_RE.fullmatch(prefix):
            raise ValueError(f"invalid index prefix {prefix!r}: use [a-z0-9][a-z0-9_-]*")
        if client is None:
            if not url:
                raise ValueError("elasticsearch search needs a url")
            client = elasticsearch.Elasticsearch(
                url, request_timeout=request_timeout, **client_options
            )
        self._client = client
        self._url = url
        self.prefix = prefix
        self.alias = prefix
        self.lock_index = f"{prefix}_rebuild_lock"
        self._shards = number_of_shards
        self._replicas = number_of_replicas
        self._lock_ttl = rebuild_lock_ttl
        self._ready = False

    def describe(self) -> str:
        """Cluster location and alias, without credentials."""
        location = re.sub(r"//[^@/]*@", "//", self._url or "client")
        return f"elasticsearch:{location}/{self.alias}"

    def __repr__(self) -> str:
        """Show the location."""
        return f"ElasticIndex({self.describe()!r})"

    # --- setup ---------------------------------------------------------------------------

    def _ensure_ready(self) -> None:
        """Install the template and create the first index behind the alias if needed."""
        if self._ready:
            return
        indices = self._client.indices
        with _errors("setup"):
            template = index_template(
                self.prefix, number_of_shards=self._shards, number_of_replicas=self._replicas
            )
            indices.put_index_template(name=self.prefix, body=template)
            if not indices.exists_alias(name=self.alias):
                try:
                    # A fixed name: two processes starting at once create it only once.
                    indices.create(index=f"{self.prefix}-initial", aliases={self.alias: {}})
                except elasticsearch.BadRequestError as exc:
                    if "resource_already_exists" not in str(exc.body):
                        raise
                if not indices.exists_alias(name=self.alias):
                    raise SearchUnavailable(f"alias {self.alias} missing: run a rebuild")
        self._ready = True

    # --- writing -------------------------------------------------------------------------

    def _rebuild_target(self) -> str | None:
        """The index a running rebuild is loading (writers must write there too)."""
        with _errors("lock lookup"):
            try:
                lock = _body(self._client.get(index=self.lock_index, id=_LOCK_ID))
            except elasticsearch.NotFoundError:
                # No lock document, or the lock index itself does not exist yet.
                return None
        target = (lock.get("_source") or {}).get("target")
        return str(target) if target else None

    def _targets(self) -> list[str]:
        """Where writes go: the alias, plus the index a running rebuild is building."""
        self._ensure_ready()
        target = self._rebuild_target()
        return [self.alias] if target is None else [self.alias, target]

    def _bulk(self, operations: list[dict[str, Any]], *, ignore_missing: bool = False) -> None:
        """Send one bulk request; raise on any failed item (404s ignored for deletes)."""
        if not operations:
            return
        with _errors("bulk"):
            response = _body(self._client.bulk(operations=operations))
        if not response.get("errors"):
            return
        for item in response.get("items", []):
            status, error = _status_of(item)
            if status < 300 or (ignore_missing and status == 404):
                continue
            message = f"elasticsearch bulk item failed: HTTP {status} {error}"
            if status == 429 or status >= 500:
                raise SearchUnavailable(message)
            raise SearchError(message)

    def _index_docs(
        self,
        indices: list[str],
        docs: Iterable[IndexedDocument],
        progress: ProgressCallback | None = None,
    ) -> int:
        """Bulk-index ``docs`` into each of ``indices`` in bounded chunks."""
        count = 0
        operations: list[dict[str, Any]] = []
        size = 0
        for doc in docs:
            if not isinstance(doc, IndexedDocument):
                raise InvalidRequest(f"expected IndexedDocument, got {type(doc).__name__}")
            body = document_body(doc)
            for index in indices:
                operations.append({"index": {"_index": index, "_id": doc.doc_key}})
                operations.append(body)
            size += len(doc.text) + len(doc.title) + 500
            count += 1
            if len(operations) >= 2 * _BULK_DOCS * len(indices) or size >= _BULK_BYTES:
                self._bulk(operations)
                operations, size = [], 0
            if progress is not None and count % _PROGRESS_EVERY == 0:
                progress(count)
        self._bulk(operations)
        return count

    def upsert(self, docs: Iterable[IndexedDocument]) -> int:
        """Add or replace (by doc_key, the _id) the given versions."""
        return self._index_docs(self._targets(), docs)

    def delete(self, doc_keys: Iterable[str]) -> None:
        """Remove the given versions; unknown keys are ignored."""
        keys = list(doc_keys)
        if not all(isinstance(key, str) for key in keys):
            raise InvalidRequest("doc_keys must be str")
        targets = self._targets()
        for start in range(0, len(keys), _BULK_DOCS):
            chunk = keys[start : start + _BULK_DOCS]
            ops = [{"delete": {"_index": t, "_id": key}} for key in chunk for t in targets]
            self._bulk(ops, ignore_missing=True)

    def _by_query(
        self,
        action: str,
        query: dict[str, Any],
        script: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> None:
        """delete_by_query / update_by_query on every write target."""
        for target in self._targets():
            with _errors(action):
                # By-query operations only see refreshed documents: refresh first, so a
                # version indexed a moment ago is not missed.
                self._client.indices.refresh(index=target)
                if script is None:
                    self._client.delete_by_query(
                        index=target, body={"query": query}, conflicts="proceed", refresh=True
                    )
                else:
                    response = self._client.update_by_query(
                        index=target,
                        body={
                            "query": query,
                            "script": {
                                "source": script,
                                "lang": "painless",
                                "params": params or {},
                            },
                        },
                        conflicts="proceed",
                        refresh=True,
                    )
                    result = _body(response)
                    if result.get("failures") or result.get("version_conflicts"):
                        # A skipped document keeps its old value: let the task retry.
                        raise SearchUnavailable(
                            f"elasticsearch {action}: {len(result.get('failures') or [])} "
                            f"failure(s), {result.get('version_conflicts')} version conflict(s)"
                        )

    def delete_document(self, document_id: str) -> None:
        """Remove every version of a document."""
        self._by_query("delete_document", {"term": {"document_id": str(document_id)}})

    def delete_case(self, case_id: str) -> None:
        """Remove every version of every document of a case."""
        self._by_query("delete_case", {"term": {"case_id": str(case_id)}})

    def mark_not_current(self, document_id: str, except_version: int) -> None:
        """Flag every version of ``document_id`` other than ``except_version`` not current."""
        if isinstance(except_version, bool) or not isinstance(except_version, int):
            raise InvalidRequest("except_version must be an int")
        query = {
            "bool": {
                "filter": [
                    {"term": {"document_id": str(document_id)}},
                    {"term": {"is_current": True}},
                ],
                "must_not": [{"term": {"version": except_version}}],
            }
        }
        self._by_query("mark_not_current", query, script="ctx._source.is_current = false")

    def set_case_unit(self, case_id: str, unit: str) -> int:
        """Record ``unit`` on every entry of a case (after a transfer); return how many."""
        if not isinstance(case_id, str) or not isinstance(unit, str):
            raise InvalidRequest("case_id and unit must be str")
        query = {
            "bool": {
                "filter": [{"term": {"case_id": case_id}}],
                "must_not": [{"term": {"unit": unit}}],
            }
        }
        self._by_query(
            "set_case_unit", query, script="ctx._source.unit = params.unit", params={"unit": unit}
        )
        self._ensure_ready()
        with _errors("count"):
            response = self._client.count(
                index=self.alias, body={"query": {"term": {"case_id": case_id}}}
            )
        return int(_body(response)["count"])

    def case_units(self) -> dict[str, dict[str, int]]:
        """{case_id: {indexed unit: entries}} over the whole index (composite paging)."""
        self._ensure_ready()
        out: dict[str, dict[str, int]] = {}
        after: dict[str, Any] | None = None
        while True:
            composite: dict[str, Any] = {
                "size": 1000,
                "sources": [
                    {"case_id": {"terms": {"field": "case_id"}}},
                    {"unit": {"terms": {"field": "unit", "missing_bucket": True}}},
                ],
            }
            if after is not None:
                composite["after"] = after
            body = {"size": 0, "aggs": {"pairs": {"composite": composite}}}
            with _errors("case_units"):
                response = _body(self._client.search(index=self.alias, body=body))
            pairs = response["aggregations"]["pairs"]
            for bucket in pairs["buckets"]:
                key = bucket["key"]
                out.setdefault(str(key["case_id"]), {})[str(key["unit"] or "")] = int(
                    bucket["doc_count"]
                )
            after = pairs.get("after_key")
            if not pairs["buckets"] or after is None:
                return out

    def refresh(self) -> None:
        """Make completed writes visible to searches."""
        self._ensure_ready()
        with _errors("refresh"):
            self._client.indices.refresh(index=self.alias)

    # --- reading -------------------------------------------------------------------------

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a query; the filter sits in bool.filter of the same query as the aggregations."""
        if not isinstance(request, SearchRequest):
            raise InvalidRequest("search expects a SearchRequest")
        body = build_query(request)
        self._ensure_ready()
        with _errors("search"):
            response = self._client.search(index=self.alias, body=body)
        return parse_response(response, request)

    def count(self, filter: SearchFilter) -> int:
        """Number of indexed versions the filter allows."""
        if not isinstance(filter, SearchFilter):
            raise InvalidRequest("count expects a SearchFilter")
        self._ensure_ready()
        with _errors("count"):
            response = self._client.count(index=self.alias, body={"query": filter_query(filter)})
        return int(_body(response)["count"])

    def doc_keys(self) -> Iterator[str]:
        """Yield every indexed doc_key in ascending order (search_after paging)."""
        self._ensure_ready()
        after: list[Any] | None = None
        while True:
            body: dict[str, Any] = {
                "size": 5000,
                "query": {"match_all": {}},
                "sort": [{"doc_key": {"order": "asc"}}],
                "_source": False,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            with _errors("doc_keys"):
                response = _body(self._client.search(index=self.alias, body=body))
            hits = response["hits"]["hits"]
            if not hits:
                return
            for hit in hits:
                yield str(hit["sort"][0])
            after = hits[-1]["sort"]

    # --- rebuild -------------------------------------------------------------------------

    def _acquire_lock(self, owner: str) -> None:
        """Create the lock document; RebuildInProgress if a live rebuild holds it."""
        now = dt.datetime.now(dt.UTC)
        document = {"owner": owner, "started_at": now.isoformat(), "target": None}
        for _ in range(2):
            with _errors("rebuild lock"):
                try:
                    self._client.create(
                        index=self.lock_index, id=_LOCK_ID, document=document, refresh=True
                    )
                    return
                except elasticsearch.ConflictError:
                    current = _body(self._client.get(index=self.lock_index, id=_LOCK_ID))
            started = dt.datetime.fromisoformat(current["_source"]["started_at"])
            if now - started < self._lock_ttl:
                raise RebuildInProgress(
                    f"a rebuild of {self.alias} is running since {started.isoformat()}"
                )
            # A crashed rebuild's lock: take it over only if nobody changed it meanwhile.
            with _errors("rebuild lock"), contextlib.suppress(elasticsearch.ConflictError):
                self._client.delete(
                    index=self.lock_index,
                    id=_LOCK_ID,
                    if_seq_no=current["_seq_no"],
                    if_primary_term=current["_primary_term"],
                    refresh=True,
                )
        raise RebuildInProgress(f"could not take the rebuild lock of {self.alias}")

    def _set_lock_target(self, owner: str, target: str) -> None:
        """Announce the new index so writers start writing to it too."""
        document = {
            "owner": owner,
            "started_at": dt.datetime.now(dt.UTC).isoformat(),
            "target": target,
        }
        with _errors("rebuild lock"):
            self._client.index(index=self.lock_index, id=_LOCK_ID, document=document, refresh=True)

    def _release_lock(self, owner: str) -> None:
        """Delete the lock document if it is still ours."""
        with contextlib.suppress(SearchError), _errors("rebuild unlock"):
            try:
                current = _body(self._client.get(index=self.lock_index, id=_LOCK_ID))
            except elasticsearch.NotFoundError:
                return
            if current["_source"].get("owner") == owner:
                with contextlib.suppress(elasticsearch.NotFoundError):
                    self._client.delete(index=self.lock_index, id=_LOCK_ID, refresh=True)

    def _alias_indices(self) -> list[str]:
        """Concrete indices currently behind the alias."""
        with _errors("alias lookup"):
            try:
                return sorted(_body(self._client.indices.get_alias(name=self.alias)).keys())
            except elasticsearch.NotFoundError:
                return []

    def rebuild(
        self, docs: Iterable[IndexedDocument], progress: ProgressCallback | None = None
    ) -> int:
        """Load ``docs`` into ``<prefix>-<stamp>``, move the alias in one call, drop the old."""
        self._ensure_ready()
        owner = secrets.token_hex(8)
        self._acquire_lock(owner)
        new_index: str | None = None
        swapped = False
        try:
            stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%d%H%M%S%f")
            new_index = f"{self.prefix}-{stamp}"
            with _errors("rebuild create"):
                # No refreshes while loading (faster); restored before the swap.
                self._client.indices.create(
                    index=new_index, settings={"index": {"refresh_interval": "-1"}}
                )
            self._set_lock_target(owner, new_index)
            loaded = self._index_docs([new_index], docs, progress)
            with _errors("rebuild finish"):
                self._client.indices.put_settings(
                    index=new_index, settings={"index": {"refresh_interval": None}}
                )
                self._client.indices.refresh(index=new_index)
                old = [name for name in self._alias_indices() if name != new_index]
                actions: list[dict[str, Any]] = [
                    {"remove": {"index": name, "alias": self.alias}} for name in old
                ]
                actions.append({"add": {"index": new_index, "alias": self.alias}})
                # One call: readers see either the old index or the new one, never neither.
                self._client.indices.update_aliases(actions=actions)
                swapped = True
                for name in old:
                    self._client.indices.delete(index=name, ignore_unavailable=True)
        except BaseException:
            if new_index is not None and not swapped:
                with contextlib.suppress(Exception):
                    self._client.indices.delete(index=new_index, ignore_unavailable=True)
            raise
        finally:
            self._release_lock(owner)
        if progress is not None:
            progress(loaded)
        return loaded

    # --- health --------------------------------------------------------------------------

    def check(self) -> None:
        """Cluster reachable, alias present, mappings of our format; else SearchUnavailable."""
        self._ensure_ready()
        with _errors("health check"):
            health = _body(self._client.cluster.health(index=self.alias))
            mappings = _body(self._client.indices.get_mapping(index=self.alias))
        if health.get("status") == "red":
            raise SearchUnavailable(f"elasticsearch index {self.alias} is red")
        expected = {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION}
        for name, mapping in mappings.items():
            meta = (mapping.get("mappings") or {}).get("_meta") or {}
            if {key: meta.get(key) for key in expected} != expected:
                raise IndexOutdated(
                    f"elasticsearch index {name} has format {meta}, expected {expected}: rebuild it"
                )

    def close(self) -> None:
        """Close the client's connections."""
        with contextlib.suppress(Exception):
            self._client.close()
