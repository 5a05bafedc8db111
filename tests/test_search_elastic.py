"""Elasticsearch backend without a server: template, built queries, responses, and the
write/rebuild protocol against an in-memory stand-in for the client."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import elastic_transport
import elasticsearch
import pytest

from search.analysis import ANALYSIS_VERSION, DOMAIN_WORDS
from search.base import (
    IndexedDocument,
    QuerySyntaxError,
    RebuildInProgress,
    SearchError,
    SearchFilter,
    SearchRequest,
    SearchUnavailable,
)
from search.elastic import (
    FORMAT_VERSION,
    ElasticIndex,
    build_query,
    document_body,
    filter_query,
    index_template,
    parse_response,
)

ALL = SearchFilter(case_ids=None)
NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)


def request(query: str = "Haus", search_filter: SearchFilter = ALL, **kw: Any) -> SearchRequest:
    """A SearchRequest with defaults."""
    return SearchRequest(query, search_filter, **kw)


def make_doc(document_id: str = "d1", version: int = 1, **kw: Any) -> IndexedDocument:
    """A small IndexedDocument."""
    fields: dict[str, Any] = {
        "case_id": "c1",
        "case_reference": "IAS-2026-000001",
        "type": "correspondence",
        "title": "Brief",
        "text": "Text",
        "person_names": "Anna Müller",
        "zemis": "12345678.9",
        "ahv": "7569217076985",
        "created_at": NOW,
        "is_current": True,
    }
    fields.update(kw)
    return IndexedDocument(document_id=document_id, version=version, **fields)


# -- index template ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    """The template for prefix 'dossier-documents'."""
    return index_template("dossier-documents", number_of_shards=2, number_of_replicas=1)


def test_template_applies_to_prefixed_indices(template: dict[str, Any]) -> None:
    """Pattern <prefix>-* (rebuilds are <prefix>-<stamp>); shards/replicas configurable."""
    assert template["index_patterns"] == ["dossier-documents-*"]
    settings = template["template"]["settings"]
    assert settings["number_of_shards"] == 2
    assert settings["number_of_replicas"] == 1
    assert "number_of_replicas" not in index_template("x")["template"]["settings"]


def test_template_german_analyzer_chain(template: dict[str, Any]) -> None:
    """Index analyzer: normalisation, decompounding, light_german; search: no decompounder."""
    analysis = template["template"]["settings"]["analysis"]
    analyzers = analysis["analyzer"]
    assert analyzers["dossier_german"] == {
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
    }
    search_filters = analyzers["dossier_german_search"]["filter"]
    assert "dossier_decompounder" not in search_filters
    assert search_filters[-1] == "dossier_german_stemmer"
    assert "german_normalization" in search_filters
    assert analyzers["dossier_names"]["filter"] == [
        "lowercase",
        "german_normalization",
        "asciifolding",
    ]
    assert analysis["filter"]["dossier_german_stemmer"] == {
        "type": "stemmer",
        "language": "light_german",
    }


def test_template_decompounder_uses_the_shared_word_list(template: dict[str, Any]) -> None:
    """dictionary_decompounder with analysis.DOMAIN_WORDS, emitting all parts."""
    decompounder = template["template"]["settings"]["analysis"]["filter"]["dossier_decompounder"]
    assert decompounder["type"] == "dictionary_decompounder"
    assert decompounder["word_list"] == list(DOMAIN_WORDS)
    assert "gutsprache" in decompounder["word_list"]
    assert "abklarung" in decompounder["word_list"]  # normalised like the tokens it sees
    assert decompounder["only_longest_match"] is False
    assert decompounder["max_subword_size"] >= max(len(w) for w in DOMAIN_WORDS)


def test_template_keyword_fields_and_identifier_normalizer(template: dict[str, Any]) -> None:
    """Case reference, AHV and ZEMIS are keywords; AHV/ZEMIS lose their separators."""
    mappings = template["template"]["mappings"]
    props = mappings["properties"]
    assert mappings["dynamic"] == "strict"
    assert mappings["_meta"] == {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION}
    for name in ("doc_key", "document_id", "case_id", "type", "case_reference", "ahv", "zemis"):
        assert props[name]["type"] == "keyword", name
    assert props["ahv"]["normalizer"] == props["zemis"]["normalizer"] == "dossier_identifier"
    assert props["case_reference"]["normalizer"] == "dossier_reference"
    analysis = template["template"]["settings"]["analysis"]
    normalizer = analysis["normalizer"]["dossier_identifier"]
    assert normalizer["char_filter"] == ["dossier_strip_separators"]
    assert analysis["char_filter"]["dossier_strip_separators"]["pattern"] == "[^0-9A-Za-z]"
    for name in ("title", "text"):
        assert props[name]["analyzer"] == "dossier_german"
        assert props[name]["search_analyzer"] == "dossier_german_search"
    assert props["person_names"]["analyzer"] == "dossier_names"
    assert props["created_at"] == {"type": "date"}
    assert props["is_current"] == {"type": "boolean"}
    assert props["version"] == {"type": "integer"}
    # The unit is a plain keyword for the facet; no other responsibility data is held.
    assert props["unit"] == {"type": "keyword"}
    assert not any(word in name for name in props for word in ("delegat", "reader", "acl"))
    # Prefixes expand against unstemmed, folded words of title, text and names.
    assert {props[name]["copy_to"] for name in ("title", "text", "person_names")} == {"words"}
    assert props["words"]["analyzer"] == "dossier_words"
    words = analysis["analyzer"]["dossier_words"]["filter"]
    assert "dossier_decompounder" in words and "dossier_german_stemmer" not in words


# -- built queries ----------------------------------------------------------------------------


def test_filter_sits_inside_bool_filter() -> None:
    """case ids, types, current flag and local-day range are bool.filter clauses."""
    search_filter = SearchFilter(
        case_ids=frozenset({"c2", "c1"}),
        types=frozenset({"end_report"}),
        created_from=dt.date(2026, 1, 1),
        created_to=dt.date(2026, 6, 30),
    )
    body = build_query(request("Haus", search_filter))
    assert body["query"]["bool"]["filter"] == [
        {"terms": {"case_id": ["c1", "c2"]}},
        {"terms": {"type": ["end_report"]}},
        {"term": {"is_current": True}},
        {
            "range": {
                "created_at": {
                    "gte": "2025-12-31T23:00:00+00:00",
                    "lt": "2026-06-30T22:00:00+00:00",
                }
            }
        },
    ]


def test_unrestricted_filter_and_all_versions() -> None:
    """case_ids=None adds no case clause; current_only=False no is_current clause."""
    body = build_query(request("Haus", SearchFilter(case_ids=None, current_only=False)))
    assert body["query"]["bool"]["filter"] == []


@pytest.mark.parametrize(
    "search_filter",
    [SearchFilter(case_ids=frozenset()), SearchFilter(case_ids=None, types=frozenset())],
)
def test_empty_sets_match_none(search_filter: SearchFilter) -> None:
    """An empty set of cases/types is match_none inside the filter (aggs see nothing)."""
    body = build_query(request("Haus", search_filter, facets=True))
    assert body["query"]["bool"]["filter"] == [{"match_none": {}}]
    assert "aggs" in body


def test_words_phrases_prefixes_and_excludes() -> None:
    """Terms → multi_match(and); phrases → match_phrase; prefixes → prefix; -x → must_not."""
    body = build_query(request('Häuser "Haus verkauft" Integr* -Praktikum'))
    bool_query = body["query"]["bool"]
    term, phrase, prefix = bool_query["must"]
    assert term == {
        "multi_match": {
            "query": "Häuser",
            "fields": ["title^2", "text", "person_names^2"],
            "type": "best_fields",
            "operator": "and",
        }
    }
    assert phrase == {
        "bool": {
            "should": [
                {"match_phrase": {"title": {"query": "Haus verkauft", "boost": 2.0}}},
                {"match_phrase": {"text": {"query": "Haus verkauft", "boost": 1.0}}},
                {"match_phrase": {"person_names": {"query": "Haus verkauft", "boost": 2.0}}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert prefix == {
        "bool": {
            "should": [
                {"prefix": {"words": {"value": "integr"}}},
                {"prefix": {"title": {"value": "integr"}}},
                {"prefix": {"text": {"value": "integr"}}},
                {"prefix": {"person_names": {"value": "integr"}}},
            ],
            "minimum_should_match": 1,
        }
    }
    assert bool_query["must_not"] == [
        {
            "multi_match": {
                "query": "Praktikum",
                "fields": ["title^2", "text", "person_names^2"],
                "type": "best_fields",
                "operator": "and",
            }
        }
    ]


@pytest.mark.parametrize(
    ("query", "field", "value"),
    [
        ("756.9217.0769.85", "ahv", "7569217076985"),
        ("7569217076985", "ahv", "7569217076985"),
        ("ias-2026-123", "case_reference", "IAS-2026-000123"),
        ("12345678.9", "zemis", "123456789"),
    ],
)
def test_identifiers_are_exact_keyword_terms(query: str, field: str, value: str) -> None:
    """An identifier is a term on its keyword field, or a phrase in title/text."""
    (clause,) = build_query(request(query))["query"]["bool"]["must"]
    should = clause["bool"]["should"]
    assert should[0] == {"term": {field: {"value": value}}}
    assert {"match_phrase": {"text": {"query": query}}} in should
    assert clause["bool"]["minimum_should_match"] == 1


def test_blank_query_is_filter_only_newest_first() -> None:
    """No must clauses; sorted by creation (newest first) with a stable tie-breaker."""
    body = build_query(request("", SearchFilter(case_ids=frozenset({"c1"}))))
    assert "must" not in body["query"]["bool"]
    assert body["sort"] == [{"created_at": {"order": "desc"}}, {"doc_key": {"order": "asc"}}]


def test_paging_sort_and_source() -> None:
    """from/size from the page; score first with tie-breakers; big text not returned."""
    body = build_query(request("Haus", page=3, per_page=25))
    assert (body["from"], body["size"]) == (50, 25)
    assert body["sort"] == [
        "_score",
        {"created_at": {"order": "desc"}},
        {"doc_key": {"order": "asc"}},
    ]
    assert body["track_total_hits"] is True
    assert body["_source"] == {"excludes": ["text"]}


def test_highlight_settings() -> None:
    """<mark> tags, HTML encoder, one text fragment with a lead when nothing matched."""
    highlight = build_query(request("Haus"))["highlight"]
    assert highlight["pre_tags"] == ["<mark>"]
    assert highlight["post_tags"] == ["</mark>"]
    assert highlight["encoder"] == "html"
    assert highlight["fields"]["text"]["number_of_fragments"] == 1
    assert highlight["fields"]["text"]["no_match_size"] > 0
    assert highlight["fields"]["title"]["number_of_fragments"] == 0
    assert highlight["max_analyzed_offset"] > 0
    assert "highlight" not in build_query(request("Haus", highlight=False))


def test_aggregations_share_the_filtered_query() -> None:
    """type/unit terms and a yearly date_histogram in Zurich time, in the same body."""
    body = build_query(request("Haus", SearchFilter(case_ids=frozenset({"c1"})), facets=True))
    assert body["aggs"] == {
        "type": {"terms": {"field": "type", "size": 1000}},
        "year": {
            "date_histogram": {
                "field": "created_at",
                "calendar_interval": "year",
                "format": "yyyy",
                "time_zone": "Europe/Zurich",
                "min_doc_count": 1,
            }
        },
        "unit": {"terms": {"field": "unit", "size": 1001}},
        "tags": {"terms": {"field": "tags", "size": 1000}},
    }
    assert "post_filter" not in body  # the filter is never applied after aggregating
    assert "aggs" not in build_query(request("Haus"))


def test_unit_check_cases_become_a_filtered_sub_aggregation() -> None:
    """Recently moved cases: hits per case and indexed unit, inside the same query."""
    body = build_query(request("Haus", facets=True, unit_check_cases=frozenset({"c2", "c1"})))
    assert body["aggs"]["unit_check"] == {
        "filter": {"terms": {"case_id": ["c1", "c2"]}},
        "aggs": {
            "case_id": {
                "terms": {"field": "case_id", "size": 2},
                "aggs": {"unit": {"terms": {"field": "unit", "size": 1000}}},
            }
        },
    }


def test_build_query_raises_query_syntax_errors() -> None:
    """Unusable input fails before any request is sent."""
    with pytest.raises(QuerySyntaxError):
        build_query(request("*"))


def test_filter_query_for_count() -> None:
    """count uses the same filter clauses."""
    assert filter_query(SearchFilter(case_ids=frozenset({"c1"}))) == {
        "bool": {"filter": [{"terms": {"case_id": ["c1"]}}, {"term": {"is_current": True}}]}
    }


def test_document_body() -> None:
    """The stored _source: normalised identifiers, ISO UTC time."""
    body = document_body(make_doc())
    assert body["doc_key"] == "d1:1"
    assert body["ahv"] == "7569217076985"
    assert body["zemis"] == "123456789"
    assert body["created_at"] == "2026-03-02T10:00:00+00:00"
    assert set(body) == {
        "doc_key", "document_id", "version", "case_id", "case_reference", "type", "title",
        "text", "person_names", "zemis", "ahv", "created_at", "is_current", "unit", "tags",
    }  # fmt: skip


# -- responses ----------------------------------------------------------------------------------


def es_hit(key: str, highlight: dict[str, list[str]] | None = None, score: Any = 1.5) -> dict:
    """A hit as Elasticsearch returns it."""
    document_id, version = key.split(":")
    source = document_body(make_doc(document_id, int(version)))
    del source["text"]
    hit: dict[str, Any] = {"_id": key, "_score": score, "_source": source}
    if highlight is not None:
        hit["highlight"] = highlight
    return hit


def test_parse_response_hits_total_facets() -> None:
    """Totals, hit fields, facets (year from key_as_string, empty buckets dropped)."""
    response = {
        "hits": {
            "total": {"value": 42, "relation": "eq"},
            "hits": [es_hit("d1:1", {"text": ["Das <mark>Haus</mark> &lt;b&gt;"]})],
        },
        "aggregations": {
            "type": {"buckets": [{"key": "correspondence", "doc_count": 42}]},
            "year": {
                "buckets": [
                    {"key": 1, "key_as_string": "2025", "doc_count": 0},
                    {"key": 2, "key_as_string": "2026", "doc_count": 42},
                ]
            },
            "unit": {"buckets": [{"key": "aarau", "doc_count": 41}, {"key": "", "doc_count": 1}]},
            "unit_check": {
                "doc_count": 3,
                "case_id": {
                    "buckets": [
                        {
                            "key": "c1",
                            "doc_count": 3,
                            "unit": {
                                "buckets": [
                                    {"key": "aarau", "doc_count": 2},
                                    {"key": "baden", "doc_count": 1},
                                ]
                            },
                        }
                    ]
                },
            },
        },
    }
    result = parse_response(wrap(response), request("Haus", facets=True))
    assert result == parse_response(response, request("Haus", facets=True))
    assert result.total == 42
    (hit,) = result.hits
    assert (hit.doc_key, hit.document_id, hit.version, hit.case_id) == ("d1:1", "d1", 1, "c1")
    assert hit.created_at == NOW
    assert hit.score == 1.5
    assert hit.highlight == "Das <mark>Haus</mark> &lt;b&gt;"
    assert result.facets == {
        "type": {"correspondence": 42},
        "year": {"2026": 42},
        "unit": {"aarau": 41},
        "tags": {},
    }
    assert result.case_units == {"c1": {"aarau": 2, "baden": 1}}


def test_parse_response_highlight_fallbacks() -> None:
    """Marked text first, then the marked title, then the (escaped) lead; None score → 0."""
    hits = [
        es_hit("a:1", {"text": ["lead &lt;i&gt;"], "title": ["<mark>Plan</mark>"]}),
        es_hit("b:1", {"text": ["lead &lt;i&gt;"]}, score=None),
        es_hit("c:1"),
    ]
    response = {"hits": {"total": {"value": 3}, "hits": hits}}
    result = parse_response(response, request("Plan"))
    assert [h.highlight for h in result.hits] == ["<mark>Plan</mark>", "lead &lt;i&gt;", ""]
    assert result.hits[1].score == 0.0
    assert result.facets == {}


# -- the backend against an in-memory client ----------------------------------------------------


def meta(status: int) -> elastic_transport.ApiResponseMeta:
    """Response metadata for building client exceptions."""
    return elastic_transport.ApiResponseMeta(
        status=status,
        http_version="1.1",
        headers=elastic_transport.HttpHeaders(),
        duration=0.0,
        node=elastic_transport.NodeConfig("http", "localhost", 9200),
    )


def wrap(body: Any) -> elastic_transport.ObjectApiResponse[Any]:
    """A body as the real client returns it: ObjectApiResponse, which has no dict.get."""
    return elastic_transport.ObjectApiResponse(body=body, meta=meta(200))


def api_error(cls: type[elasticsearch.ApiError], status: int, body: Any) -> Exception:
    """An elasticsearch ApiError subclass as the client raises it."""
    return cls(str(body), meta=meta(status), body=body)


class FakeIndices:
    """The indices namespace of FakeClient."""

    def __init__(self, client: FakeClient) -> None:
        self.c = client

    def put_index_template(self, name: str, body: dict[str, Any]) -> None:
        self.c.calls.append(("put_index_template", name))
        self.c.templates[name] = body

    def exists_alias(self, name: str) -> bool:
        return any(name in aliases for aliases in self.c.aliases.values())

    def create(self, index: str, aliases: dict | None = None, settings: dict | None = None):
        self.c.calls.append(("create", index, settings))
        if index in self.c.docs:
            raise api_error(
                elasticsearch.BadRequestError,
                400,
                {"error": {"type": "resource_already_exists_exception"}},
            )
        self.c.docs[index] = {}
        self.c.aliases[index] = set(aliases or {})

    def get_alias(self, name: str) -> elastic_transport.ObjectApiResponse[Any]:
        found: dict[str, Any] = {
            index: {} for index, aliases in self.c.aliases.items() if name in aliases
        }
        if not found:
            raise api_error(elasticsearch.NotFoundError, 404, {"error": "alias missing"})
        return wrap(found)

    def update_aliases(self, actions: list[dict[str, Any]]) -> None:
        self.c.calls.append(("update_aliases", actions))
        for action in actions:
            ((kind, spec),) = action.items()
            if kind == "remove":
                self.c.aliases[spec["index"]].discard(spec["alias"])
            else:
                self.c.aliases[spec["index"]].add(spec["alias"])

    def delete(self, index: str, ignore_unavailable: bool = False) -> None:
        self.c.calls.append(("delete_index", index))
        self.c.docs.pop(index, None)
        self.c.aliases.pop(index, None)

    def refresh(self, index: str) -> None:
        self.c.calls.append(("refresh", index))

    def put_settings(self, index: str, settings: dict[str, Any]) -> None:
        self.c.calls.append(("put_settings", index, settings))

    def get_mapping(self, index: str) -> elastic_transport.ObjectApiResponse[Any]:
        return wrap(
            {
                name: {"mappings": self.c.mapping_meta}
                for name, aliases in self.c.aliases.items()
                if index in aliases
            }
        )


class FakeCluster:
    """The cluster namespace of FakeClient."""

    def __init__(self, client: FakeClient) -> None:
        self.c = client

    def health(self, index: str) -> elastic_transport.ObjectApiResponse[Any]:
        return wrap({"status": self.c.health})


class FakeClient:
    """Just enough of elasticsearch.Elasticsearch, in memory, recording the calls."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.templates: dict[str, Any] = {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.aliases: dict[str, set[str]] = {}
        self.locks: dict[str, dict[str, Any]] = {}
        self.health = "green"
        self.update_result: dict = {"updated": 0, "failures": [], "version_conflicts": 0}
        self.mapping_meta: dict[str, Any] = {
            "_meta": {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION}
        }
        self.fail_next: Exception | None = None
        self.bulk_items_status: int | None = None
        self.indices = FakeIndices(self)
        self.cluster = FakeCluster(self)

    def _resolve(self, name: str) -> list[str]:
        if name in self.docs:
            return [name]
        return [index for index, aliases in self.aliases.items() if name in aliases]

    def bulk(self, operations: list[dict[str, Any]]) -> elastic_transport.ObjectApiResponse[Any]:
        self.calls.append(("bulk", len(operations)))
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        items = []
        i = 0
        while i < len(operations):
            ((kind, spec),) = operations[i].items()
            (index,) = self._resolve(spec["_index"]) or [spec["_index"]]
            status = 200
            if kind == "index":
                self.docs.setdefault(index, {})[spec["_id"]] = operations[i + 1]
                i += 2
            else:
                status = 200 if self.docs.get(index, {}).pop(spec["_id"], None) else 404
                i += 1
            if self.bulk_items_status is not None:
                status = self.bulk_items_status
            items.append({kind: {"_index": index, "_id": spec["_id"], "status": status}})
        errors = any(it[k]["status"] >= 300 for it in items for k in it)
        return wrap({"errors": errors, "items": items})

    def get(self, index: str, id: str) -> elastic_transport.ObjectApiResponse[Any]:
        lock = self.locks.get(id)
        if lock is None:
            raise api_error(elasticsearch.NotFoundError, 404, {"found": False})
        return wrap({"_source": lock["doc"], "_seq_no": lock["seq"], "_primary_term": 1})

    def create(self, index: str, id: str, document: dict[str, Any], refresh: bool) -> None:
        self.calls.append(("lock_create", document.get("target")))
        if id in self.locks:
            raise api_error(elasticsearch.ConflictError, 409, {"error": "exists"})
        self.locks[id] = {"doc": dict(document), "seq": 0}

    def index(self, index: str, id: str, document: dict[str, Any], refresh: bool) -> None:
        self.calls.append(("lock_update", document.get("target")))
        seq = self.locks[id]["seq"] + 1 if id in self.locks else 0
        self.locks[id] = {"doc": dict(document), "seq": seq}

    def delete(self, index: str, id: str, refresh: bool, **cond: Any) -> None:
        self.calls.append(("lock_delete",))
        lock = self.locks.get(id)
        if lock is None:
            raise api_error(elasticsearch.NotFoundError, 404, {})
        if cond and cond.get("if_seq_no") != lock["seq"]:
            raise api_error(elasticsearch.ConflictError, 409, {})
        del self.locks[id]

    def search(self, index: str, body: dict[str, Any]) -> elastic_transport.ObjectApiResponse[Any]:
        self.calls.append(("search", index, body))
        if self.fail_next is not None:
            exc, self.fail_next = self.fail_next, None
            raise exc
        if "search_after" in body or body.get("_source") is False:
            keys = sorted(k for name in self._resolve(index) for k in self.docs[name])
            after = body.get("search_after", [""])[0]
            page = [k for k in keys if k > after][: body["size"]]
            return wrap({"hits": {"hits": [{"_id": k, "sort": [k]} for k in page]}})
        return wrap({"hits": {"total": {"value": 0}, "hits": []}})

    def count(self, index: str, body: dict[str, Any]) -> elastic_transport.ObjectApiResponse[Any]:
        self.calls.append(("count", index, body))
        return wrap({"count": sum(len(self.docs[name]) for name in self._resolve(index))})

    def delete_by_query(self, index: str, body: dict, conflicts: str, refresh: bool) -> None:
        self.calls.append(("delete_by_query", index, body, conflicts))

    def update_by_query(self, index: str, body: dict, conflicts: str, refresh: bool) -> dict:
        self.calls.append(("update_by_query", index, body, conflicts))
        return dict(self.update_result)

    def close(self) -> None:
        self.calls.append(("close",))


@pytest.fixture
def fake() -> FakeClient:
    """A fresh in-memory client."""
    return FakeClient()


@pytest.fixture
def es(fake: FakeClient) -> ElasticIndex:
    """ElasticIndex on the fake client."""
    return ElasticIndex(prefix="dossier-documents", client=fake)


def names(fake: FakeClient) -> list[str]:
    """The kinds of calls made, in order."""
    return [call[0] for call in fake.calls]


def test_first_use_installs_template_and_initial_index(fake: FakeClient, es: ElasticIndex) -> None:
    """The template is put and <prefix>-initial created behind the alias, once."""
    es.upsert([make_doc()])
    es.upsert([make_doc("d2")])
    assert fake.templates["dossier-documents"] == index_template("dossier-documents")
    assert fake.aliases == {"dossier-documents-initial": {"dossier-documents"}}
    assert names(fake).count("put_index_template") == 1
    assert set(fake.docs["dossier-documents-initial"]) == {"d1:1", "d2:1"}


def test_initial_index_race_is_harmless(
    fake: FakeClient, es: ElasticIndex, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process created the initial index between our check and our create."""
    answers = iter([False, True])

    def exists_alias(name: str) -> bool:
        if fake.docs == {}:
            # The other process wins the race right after our first look.
            fake.docs["dossier-documents-initial"] = {}
            fake.aliases["dossier-documents-initial"] = {"dossier-documents"}
        return next(answers)

    monkeypatch.setattr(fake.indices, "exists_alias", exists_alias)
    es.upsert([make_doc()])
    assert ("create", "dossier-documents-initial", None) in fake.calls
    assert fake.aliases == {"dossier-documents-initial": {"dossier-documents"}}
    assert set(fake.docs["dossier-documents-initial"]) == {"d1:1"}


def test_upsert_writes_through_the_alias_with_doc_key_ids(
    fake: FakeClient, es: ElasticIndex
) -> None:
    """Bulk index ops go to the alias with _id = doc_key; bodies are document_body()."""
    doc = make_doc()
    assert es.upsert([doc]) == 1
    assert fake.docs["dossier-documents-initial"]["d1:1"] == document_body(doc)


def test_upsert_during_rebuild_also_writes_to_the_new_index(
    fake: FakeClient, es: ElasticIndex
) -> None:
    """While a rebuild's lock names a target, writes go to the alias and the target."""
    es.refresh()
    fake.docs["dossier-documents-2026"] = {}
    fake.aliases["dossier-documents-2026"] = set()
    fake.locks["rebuild"] = {"doc": {"target": "dossier-documents-2026"}, "seq": 0}
    es.upsert([make_doc()])
    es.delete(["d1:1", "missing:1"])  # 404s for deletes are ignored
    assert "d1:1" not in fake.docs["dossier-documents-2026"]
    es.upsert([make_doc("d2")])
    assert set(fake.docs["dossier-documents-initial"]) == {"d2:1"}
    assert set(fake.docs["dossier-documents-2026"]) == {"d2:1"}


def test_bulk_item_failures_are_translated(fake: FakeClient, es: ElasticIndex) -> None:
    """429/5xx items → SearchUnavailable; other item errors → SearchError."""
    fake.bulk_items_status = 429
    with pytest.raises(SearchUnavailable):
        es.upsert([make_doc()])
    fake.bulk_items_status = 400
    with pytest.raises(SearchError) as info:
        es.upsert([make_doc()])
    assert not isinstance(info.value, SearchUnavailable)


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (elasticsearch.ConnectionError("refused"), SearchUnavailable),
        (elasticsearch.ConnectionTimeout("slow"), SearchUnavailable),
        (api_error(elasticsearch.ApiError, 503, {"error": "unavailable"}), SearchUnavailable),
        (api_error(elasticsearch.AuthenticationException, 401, {}), SearchUnavailable),
        (api_error(elasticsearch.NotFoundError, 404, {"error": "no index"}), SearchUnavailable),
        (
            api_error(
                elasticsearch.BadRequestError,
                400,
                {"error": {"caused_by": {"type": "too_many_nested_clauses"}}},
            ),
            QuerySyntaxError,
        ),
        (api_error(elasticsearch.BadRequestError, 400, {"error": "parsing"}), SearchError),
    ],
)
def test_client_errors_become_search_errors(
    fake: FakeClient, es: ElasticIndex, exc: Exception, expected: type[SearchError]
) -> None:
    """Callers never see elasticsearch exceptions."""
    es.refresh()
    fake.fail_next = exc
    with pytest.raises(expected) as info:
        es.search(request("Haus"))
    assert type(info.value) is expected
    assert not isinstance(info.value, elasticsearch.ApiError | elastic_transport.TransportError)


def test_search_sends_the_built_query_to_the_alias(fake: FakeClient, es: ElasticIndex) -> None:
    """search() is build_query() against the alias, parsed by parse_response()."""
    req = request("Haus", SearchFilter(case_ids=frozenset({"c1"})), facets=True)
    result = es.search(req)
    (call,) = [c for c in fake.calls if c[0] == "search"]
    assert call[1] == "dossier-documents"
    assert call[2] == build_query(req)
    assert result.total == 0


def test_count_and_doc_keys(fake: FakeClient, es: ElasticIndex) -> None:
    """count uses filter_query; doc_keys pages with search_after in ascending order."""
    es.upsert([make_doc(f"d{i:05}") for i in range(5003)])
    assert es.count(ALL) == 5003
    count_call = next(c for c in fake.calls if c[0] == "count")
    assert count_call[2] == {"query": filter_query(ALL)}
    keys = list(es.doc_keys())
    assert keys == sorted(keys) and len(keys) == 5003
    assert len([c for c in fake.calls if c[0] == "search"]) == 3  # 5000 + 3 + empty page


def test_by_query_operations_refresh_first(fake: FakeClient, es: ElasticIndex) -> None:
    """delete_case/delete_document/mark_not_current refresh, then run by-query."""
    es.refresh()
    fake.calls.clear()
    es.delete_case("c1")
    es.delete_document("d1")
    es.mark_not_current("d1", except_version=3)
    es.set_case_unit("c1", "baden")
    assert names(fake)[:8] == [
        "refresh", "delete_by_query", "refresh", "delete_by_query", "refresh", "update_by_query",
        "refresh", "update_by_query",
    ]  # fmt: skip
    relabel = fake.calls[7][2]
    assert relabel["query"] == {
        "bool": {
            "filter": [{"term": {"case_id": "c1"}}],
            "must_not": [{"term": {"unit": "baden"}}],
        }
    }
    assert relabel["script"]["source"] == "ctx._source.unit = params.unit"
    assert relabel["script"]["params"] == {"unit": "baden"}
    assert fake.calls[1][2] == {"query": {"term": {"case_id": "c1"}}}
    assert fake.calls[3][2] == {"query": {"term": {"document_id": "d1"}}}
    update = fake.calls[5][2]
    assert update["query"]["bool"]["must_not"] == [{"term": {"version": 3}}]
    assert update["script"]["source"] == "ctx._source.is_current = false"
    assert all(call[3] == "proceed" for call in fake.calls if call[0].endswith("by_query"))


def test_rebuild_moves_the_alias_in_one_call_and_drops_the_old_index(
    fake: FakeClient, es: ElasticIndex
) -> None:
    """create new (no refresh) → announce target → bulk → refresh → ONE alias swap → delete."""
    es.upsert([make_doc("old")])
    fake.calls.clear()
    progress: list[int] = []
    loaded = es.rebuild((make_doc(f"n{i}") for i in range(1200)), progress=progress.append)
    assert loaded == 1200
    assert progress == [1000, 1200]
    (new,) = [name for name in fake.docs if name != "dossier-documents-initial"]
    assert new.startswith("dossier-documents-2")
    assert fake.aliases == {new: {"dossier-documents"}}
    assert "dossier-documents-initial" not in fake.docs
    assert len(fake.docs[new]) == 1200
    swaps = [call for call in fake.calls if call[0] == "update_aliases"]
    assert swaps == [
        (
            "update_aliases",
            [
                {"remove": {"index": "dossier-documents-initial", "alias": "dossier-documents"}},
                {"add": {"index": new, "alias": "dossier-documents"}},
            ],
        )
    ]
    order = names(fake)
    assert order.index("lock_create") < order.index("create") < order.index("lock_update")
    assert order.index("lock_update") < order.index("bulk")
    assert order.index("update_aliases") < order.index("delete_index") < order.index("lock_delete")
    assert ("create", new, {"index": {"refresh_interval": "-1"}}) in fake.calls
    assert ("put_settings", new, {"index": {"refresh_interval": None}}) in fake.calls
    assert fake.locks == {}


def test_rebuild_refused_while_another_runs(fake: FakeClient, es: ElasticIndex) -> None:
    """A fresh lock document means another rebuild runs: RebuildInProgress, nothing touched."""
    es.refresh()
    fake.locks["rebuild"] = {
        "doc": {"owner": "x", "started_at": dt.datetime.now(dt.UTC).isoformat(), "target": None},
        "seq": 4,
    }
    with pytest.raises(RebuildInProgress):
        es.rebuild([make_doc()])
    assert fake.locks["rebuild"]["doc"]["owner"] == "x"
    assert list(fake.docs) == ["dossier-documents-initial"]


def test_stale_lock_of_a_crashed_rebuild_is_taken_over(fake: FakeClient, es: ElasticIndex) -> None:
    """A lock older than the TTL is removed (conditionally) and the rebuild proceeds."""
    es.refresh()
    old = dt.datetime.now(dt.UTC) - dt.timedelta(days=2)
    fake.locks["rebuild"] = {
        "doc": {"owner": "dead", "started_at": old.isoformat(), "target": "gone"},
        "seq": 7,
    }
    assert es.rebuild([make_doc()]) == 1
    assert fake.locks == {}


def test_failed_rebuild_leaves_alias_and_releases_lock(fake: FakeClient, es: ElasticIndex) -> None:
    """The half-built index is deleted, the alias stays, the lock is gone."""
    es.upsert([make_doc("keep")])

    def source() -> Iterator[IndexedDocument]:
        yield make_doc("new")
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError):
        es.rebuild(source())
    assert fake.aliases == {"dossier-documents-initial": {"dossier-documents"}}
    assert list(fake.docs) == ["dossier-documents-initial"]
    assert fake.locks == {}


def test_check_reports_red_cluster_and_outdated_format(fake: FakeClient, es: ElasticIndex) -> None:
    """check() passes when healthy; red or another mapping format → SearchUnavailable."""
    es.check()
    fake.health = "red"
    with pytest.raises(SearchUnavailable, match="red"):
        es.check()
    fake.health = "green"
    fake.mapping_meta = {"_meta": {"format": FORMAT_VERSION - 1, "analysis": ANALYSIS_VERSION}}
    with pytest.raises(SearchUnavailable, match="rebuild"):
        es.check()


def test_prefix_and_url_validation() -> None:
    """Index names must be lowercase; a url (or client) is required; no secrets in describe."""
    with pytest.raises(ValueError, match="prefix"):
        ElasticIndex("http://localhost:9200", prefix="Dossier")
    with pytest.raises(ValueError, match="url"):
        ElasticIndex(None)
    es = ElasticIndex("https://user:secret@es.example:9200", prefix="dossier")
    assert "secret" not in es.describe()
    assert es.describe() == "elasticsearch:https://es.example:9200/dossier"


def test_relabel_with_skipped_documents_is_retried(fake: FakeClient, es: ElasticIndex) -> None:
    """update_by_query that skipped documents (conflicts, failures) raises for a retry."""
    es.refresh()
    fake.update_result = {"updated": 3, "failures": [], "version_conflicts": 2}
    with pytest.raises(SearchUnavailable, match="2 version conflict"):
        es.set_case_unit("c1", "baden")
    fake.update_result = {"updated": 0, "failures": [{"cause": "x"}], "version_conflicts": 0}
    with pytest.raises(SearchUnavailable, match="1 failure"):
        es.mark_not_current("d1", except_version=2)
