"""Contract tests run identically against every search backend (tantivy; Elasticsearch if set)."""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from search import (
    ElasticIndex,
    IndexedDocument,
    IndexOutdated,
    InvalidRequest,
    QuerySyntaxError,
    RebuildInProgress,
    SearchBackend,
    SearchFilter,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
    TantivyIndex,
    open_index,
)
from search.base import MAX_TEXT_CHARS

#: Elasticsearch joins the suite when this is set (no server on developer machines).
ES_URL = os.environ.get("DOSSIER_TEST_ELASTICSEARCH_URL")
BACKENDS = ["tantivy"] + (["elasticsearch"] if ES_URL else [])

NOW = dt.datetime(2026, 3, 2, 10, 0, tzinfo=dt.UTC)
ALL = SearchFilter(case_ids=None)


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[SearchBackend]:
    """A fresh, empty index per test for each backend."""
    if request.param == "tantivy":
        index = TantivyIndex(tmp_path / "index")
        yield index
        index.close()
        return
    prefix = f"dossier-test-{uuid.uuid4().hex[:12]}"
    es = ElasticIndex(ES_URL, prefix=prefix)
    yield es
    client: Any = es._client
    client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    client.indices.delete(index=es.lock_index, ignore_unavailable=True)
    client.options(ignore_status=404).indices.delete_index_template(name=prefix)
    es.close()


def doc(
    document_id: str,
    *,
    version: int = 1,
    case_id: str = "case-a",
    case_reference: str = "IAS-2026-000001",
    type: str = "correspondence",
    title: str = "Brief",
    text: str = "",
    person_names: str = "Anna Beispiel",
    zemis: str = "",
    ahv: str = "",
    created_at: dt.datetime = NOW,
    is_current: bool = True,
    unit: str = "",
    tags: tuple[str, ...] = (),
) -> IndexedDocument:
    """An IndexedDocument with harmless defaults."""
    return IndexedDocument(
        document_id=document_id,
        version=version,
        case_id=case_id,
        case_reference=case_reference,
        type=type,
        title=title,
        text=text,
        person_names=person_names,
        zemis=zemis,
        ahv=ahv,
        created_at=created_at,
        is_current=is_current,
        unit=unit,
        tags=tags,
    )


def index(backend: SearchBackend, *docs: IndexedDocument) -> None:
    """Upsert and make visible."""
    assert backend.upsert(docs) == len(docs)
    backend.refresh()


def run(backend: SearchBackend, query: str, search_filter: SearchFilter = ALL, **kw: Any):
    """Search and return the result."""
    kw.setdefault("per_page", 100)
    return backend.search(SearchRequest(query, search_filter, **kw))


def found(backend: SearchBackend, query: str, search_filter: SearchFilter = ALL) -> set[str]:
    """document ids of all hits (asserting total agrees with the hit list)."""
    result = run(backend, query, search_filter)
    assert result.total == len(result.hits)
    return {hit.document_id for hit in result.hits}


# -- German analysis -------------------------------------------------------------------------


def test_stemming_haeuser_and_haus_find_each_other(backend: SearchBackend) -> None:
    """Plural/singular and umlaut: Häuser finds Haus and Haus finds Häuser."""
    index(
        backend,
        doc("singular", text="Das Haus an der Bahnhofstrasse."),
        doc("plural", text="Die Häuser im Quartier."),
        doc("other", text="Die Wohnung im Quartier."),
    )
    assert found(backend, "Häuser") == {"singular", "plural"}
    assert found(backend, "Haus") == {"singular", "plural"}


def test_eszett_and_ss_are_the_same(backend: SearchBackend) -> None:
    """Straße = Strasse in both directions (Swiss spelling in queries, German in documents)."""
    index(
        backend,
        doc("german", text="Wohnhaft an der Hauptstraße 5."),
        doc("swiss", text="Wohnhaft an der Hauptstrasse 7."),
        doc("other", text="Wohnhaft am Hauptplatz 1."),
    )
    assert found(backend, "Hauptstrasse") == {"german", "swiss"}
    assert found(backend, "Hauptstraße") == {"german", "swiss"}


@pytest.mark.parametrize("query", ["Müller", "Mueller", "Muller", "MÜLLER"])
def test_umlaut_spellings_of_a_name_are_one_name(backend: SearchBackend, query: str) -> None:
    """Müller, Mueller and Muller find the person however the name was written."""
    index(
        backend,
        doc("umlaut", person_names="Ayana Müller"),
        doc("digraph", person_names="Samuel Mueller"),
        doc("plain", text="Gespräch mit Herrn Muller vom Sozialdienst."),
        doc("other", person_names="Ayana Meier"),
    )
    assert found(backend, query) == {"umlaut", "digraph", "plain"}


def test_ue_after_q_is_not_folded(backend: SearchBackend) -> None:
    """'Quelle' keeps its 'ue' (no false match with 'Qulle'-like spellings of other words)."""
    index(backend, doc("quelle", text="Die Quelle der Angaben."))
    assert found(backend, "Quelle") == {"quelle"}
    assert found(backend, "Quellen") == {"quelle"}


def test_domain_compound_is_found_by_its_part(backend: SearchBackend) -> None:
    """Gutsprache finds Kostengutsprache; Bericht finds Abklärungsbericht."""
    index(
        backend,
        doc("compound", text="Die Kostengutsprache für den Deutschkurs ist erteilt."),
        doc("report", title="Abklärungsbericht", text="Zusammenfassung"),
        doc("costs", text="Die Kosten sind hoch."),
    )
    assert found(backend, "Gutsprache") == {"compound"}
    assert found(backend, "Kostengutsprache") == {"compound"}
    assert found(backend, "Bericht") == {"report"}
    # The whole word still wins exactly: a compound query is not split into its parts.
    assert found(backend, "Abklärungsbericht") == {"report"}


def test_query_compound_is_not_split(backend: SearchBackend) -> None:
    """'Kostengutsprache' must not find a document that only mentions 'Kosten'."""
    index(backend, doc("costs", text="Die Kosten sind hoch."))
    assert found(backend, "Kostengutsprache") == set()


# -- query language ----------------------------------------------------------------------


def test_phrase_order_matters(backend: SearchBackend) -> None:
    """Phrases "Haus verkauft" and "verkauft Haus" differ; bare words match both orders."""
    index(
        backend,
        doc("forward", text="Das Haus verkauft sich gut."),
        doc("backward", text="Die Familie hat verkauft. Haus und Hof bleiben leer."),
        doc("apart", text="Das Haus wurde im Mai verkauft."),
    )
    assert found(backend, '"Haus verkauft"') == {"forward"}
    assert found(backend, '"verkauft Haus"') == {"backward"}
    assert found(backend, "Haus verkauft") == {"forward", "backward", "apart"}
    assert found(backend, "„Haus verkauft“") == {"forward"}  # German typographic quotes


def test_prefix_matches_whole_surface_words_names_and_compound_parts(
    backend: SearchBackend,
) -> None:
    """A prefix longer than the stem still matches; names and compound parts match too."""
    index(
        backend,
        doc("plural", text="Zwei Wohnungen besichtigt."),
        doc("compound", text="Die Kostengutsprache liegt vor."),
        doc("name", person_names="Semhar Tesfay"),
    )
    assert found(backend, "wohnungen*") == {"plural"}
    assert found(backend, "gutspr*") == {"compound"}
    assert found(backend, "tesf*") == {"name"}


def test_prefix_matches_word_starts(backend: SearchBackend) -> None:
    """Integr* finds Integrationsplan and Integration, but not a word containing it later."""
    index(
        backend,
        doc("plan", title="Integrationsplan"),
        doc("word", text="Berufliche Integration im Kanton."),
        doc("inside", text="Reintegrierung"),
        doc("other", text="Sprachkurs"),
    )
    assert found(backend, "Integr*") == {"plan", "word"}
    assert found(backend, "integrationspl*") == {"plan"}


def test_exclude_removes_matches(backend: SearchBackend) -> None:
    """-word, -"phrase" and -prefix* exclude; exclusions alone search all the rest."""
    index(
        backend,
        doc("both", text="Sprachkurs und Praktikum"),
        doc("course", text="Sprachkurs Niveau A2"),
        doc("internship", text="Praktikum im Spital"),
    )
    assert found(backend, "Sprachkurs -Praktikum") == {"course"}
    assert found(backend, 'Sprachkurs -"Niveau A2"') == {"both"}
    assert found(backend, "Sprachkurs -Prak*") == {"course"}
    assert found(backend, "-Praktikum") == {"course"}


def test_all_words_must_match(backend: SearchBackend) -> None:
    """Several words: every one must match (in any searched field)."""
    index(
        backend,
        doc("both", text="Deutschkurs bestanden", person_names="Ayana Tesfay"),
        doc("one", text="Deutschkurs abgebrochen", person_names="Ayana Tesfay"),
        doc("split", title="Deutschkurs", text="Zertifikat", person_names="Lem Haile"),
    )
    assert found(backend, "Deutschkurs bestanden") == {"both"}
    assert found(backend, "Deutschkurs Tesfay") == {"both", "one"}
    assert found(backend, "Deutschkurs Zertifikat") == {"split"}
    assert found(backend, "Deutschkurs Zertifikat bestanden") == set()


@pytest.mark.parametrize(
    "query", ["756.9217.0769.85", "7569217076985", "756 9217 0769 85", "756.9217.076985"]
)
def test_ahv_number_with_or_without_separators(backend: SearchBackend, query: str) -> None:
    """An AHV number finds its person's documents however it is typed."""
    index(
        backend,
        doc("person", ahv="7569217076985"),
        doc("someone-else", ahv="7561234567897"),
    )
    assert found(backend, query) == {"person"}


@pytest.mark.parametrize("query", ["IAS-2026-000123", "ias-2026-000123", "IAS-2026-123"])
def test_case_reference(backend: SearchBackend, query: str) -> None:
    """A case reference finds the case's documents (leading zeros optional)."""
    index(
        backend,
        doc("mine", case_reference="IAS-2026-000123"),
        doc("other", case_reference="IAS-2026-000124"),
    )
    assert found(backend, query) == {"mine"}


@pytest.mark.parametrize("query", ["12345678.9", "123456789", "1234-5678-9", "12345678/9"])
def test_zemis_number_with_or_without_separators(backend: SearchBackend, query: str) -> None:
    """A ZEMIS number finds its person's documents with or without separators."""
    index(
        backend,
        doc("person", zemis="12345678.9"),
        doc("someone-else", zemis="98765432.1"),
    )
    assert found(backend, query) == {"person"}


def test_identifier_combines_with_words(backend: SearchBackend) -> None:
    """AHV plus a word: both must match."""
    index(
        backend,
        doc("plan", ahv="7569217076985", title="Integrationsplan"),
        doc("letter", ahv="7569217076985", title="Brief"),
    )
    assert found(backend, "756.9217.0769.85 Integrationsplan") == {"plan"}


# -- filter: inside the engine query ----------------------------------------------------------


def corpus_three_cases(backend: SearchBackend) -> None:
    """30 reports in case a (held by aarau), 5 in b, 2 in c (both baden); types, years vary."""
    docs = [
        doc(f"a{i}", case_id="case-a", text="Bericht zur Lage", unit="aarau") for i in range(30)
    ]
    docs += [
        doc(
            f"b{i}",
            case_id="case-b",
            type="integration_plan" if i < 2 else "correspondence",
            text="Bericht und Plan",
            created_at=dt.datetime(2025, 5, 1, tzinfo=dt.UTC) if i == 0 else NOW,
            unit="baden",
        )
        for i in range(5)
    ]
    docs += [doc(f"c{i}", case_id="case-c", text="Bericht", unit="baden") for i in range(2)]
    index(backend, *docs)


def test_filter_restricts_hits_total_and_facets(backend: SearchBackend) -> None:
    """Only case b's documents are counted anywhere: hits, total, every facet."""
    corpus_three_cases(backend)
    result = run(
        backend, "Bericht", SearchFilter(case_ids=frozenset({"case-b"})), per_page=10, facets=True
    )
    assert result.total == 5
    assert len(result.hits) == 5  # page 1 is full of allowed hits: nothing was dropped
    assert {hit.case_id for hit in result.hits} == {"case-b"}
    assert result.facets == {
        "type": {"integration_plan": 2, "correspondence": 3},
        "year": {"2025": 1, "2026": 4},
        "unit": {"baden": 5},
        "tags": {},
    }


def test_filter_with_several_cases_and_count(backend: SearchBackend) -> None:
    """Two allowed cases: totals and unit facet cover exactly those; count() agrees."""
    corpus_three_cases(backend)
    allowed = SearchFilter(case_ids=frozenset({"case-b", "case-c", "case-unknown"}))
    result = run(backend, "Bericht", allowed, facets=True)
    assert result.total == 7
    assert result.facets["unit"] == {"baden": 7}
    assert backend.count(allowed) == 7
    assert backend.count(ALL) == 37
    unrestricted = run(backend, "Bericht", ALL, per_page=1, facets=True)
    assert unrestricted.total == 37
    assert unrestricted.facets["unit"] == {"aarau": 30, "baden": 7}


def test_totals_and_pages_agree_with_and_without_facets(backend: SearchBackend) -> None:
    """With facets the total comes from the aggregation: it must equal the counted one."""
    corpus_three_cases(backend)
    for query in ("Bericht", "", "Bericht -Lage", "Plan*"):
        for search_filter in (ALL, SearchFilter(case_ids=frozenset({"case-b", "case-c"}))):
            plain = run(backend, query, search_filter, per_page=3, page=2)
            faceted = run(backend, query, search_filter, per_page=3, page=2, facets=True)
            assert faceted.total == plain.total, (query, search_filter)
            assert [h.doc_key for h in faceted.hits] == [h.doc_key for h in plain.hits]
    small = run(backend, "Bericht", ALL, facets=True, facet_size=1)
    assert small.total == 37 and len(small.facets["type"]) == 1
    assert small.facets["unit"] == {"aarau": 30}


def test_empty_case_set_matches_nothing(backend: SearchBackend) -> None:
    """An empty set of allowed cases: total 0, no hits, empty facets, count 0."""
    corpus_three_cases(backend)
    nothing = SearchFilter(case_ids=frozenset())
    for query in ("Bericht", ""):
        result = run(backend, query, nothing, facets=True)
        assert result == SearchResult(
            total=0, hits=[], facets={"type": {}, "year": {}, "unit": {}, "tags": {}}
        )
    assert backend.count(nothing) == 0


def test_unit_check_cases_counts_hits_per_case_and_indexed_unit(backend: SearchBackend) -> None:
    """The requested cases' hits come back per case and label; the filter still applies."""
    corpus_three_cases(backend)
    index(backend, doc("b-late", case_id="case-b", text="Bericht", unit="aarau"))
    checked = frozenset({"case-b", "case-c", "case-unknown"})
    result = run(backend, "Bericht", ALL, facets=True, unit_check_cases=checked)
    assert result.facets["unit"] == {"aarau": 31, "baden": 7}
    assert result.case_units == {"case-b": {"baden": 5, "aarau": 1}, "case-c": {"baden": 2}}
    # Outside the caller's filter nothing is reported, not even for a checked case.
    only_c = SearchFilter(case_ids=frozenset({"case-c"}))
    limited = run(backend, "Bericht", only_c, facets=True, unit_check_cases=checked)
    assert limited.case_units == {"case-c": {"baden": 2}}
    # Without facets there is no breakdown either.
    assert run(backend, "Bericht", ALL, unit_check_cases=checked).case_units == {}


def test_entries_without_unit_are_left_out_of_the_unit_facet(backend: SearchBackend) -> None:
    """An entry written without a unit counts in total and other facets, not under ''."""
    index(backend, doc("x", text="Bericht"), doc("y", text="Bericht", unit="aarau"))
    result = run(backend, "Bericht", facets=True)
    assert result.total == 2
    assert result.facets["unit"] == {"aarau": 1}
    assert sum(result.facets["type"].values()) == 2


def test_set_case_unit_relabels_every_entry_and_keeps_them_whole(backend: SearchBackend) -> None:
    """After a transfer the case's entries carry the new unit; text and metadata stay."""
    corpus_three_cases(backend)
    index(backend, doc("b-old", version=1, case_id="case-b", text="Bericht", is_current=False))
    assert backend.set_case_unit("case-b", "wohlen") == 6
    backend.refresh()
    result = run(backend, "Bericht", ALL, facets=True)
    assert result.facets["unit"] == {"aarau": 30, "wohlen": 5, "baden": 2}
    assert backend.case_units() == {
        "case-a": {"aarau": 30},
        "case-b": {"wohlen": 6},
        "case-c": {"baden": 2},
    }
    # The rewritten entries are complete: found by their words, highlighted, same fields.
    plans = run(backend, '"und Plan"', SearchFilter(case_ids=frozenset({"case-b"})))
    assert plans.total == 5
    assert all("<mark>Plan</mark>" in hit.highlight for hit in plans.hits)
    assert {h.type for h in plans.hits} == {"integration_plan", "correspondence"}
    old = run(backend, "Bericht", SearchFilter(case_ids=frozenset({"case-b"}), current_only=False))
    assert old.total == 6
    # Idempotent, and a case without entries is fine.
    assert backend.set_case_unit("case-b", "wohlen") == 6
    assert backend.set_case_unit("case-none", "wohlen") == 0


def test_types_filter(backend: SearchBackend) -> None:
    """types restricts to the given document types (empty set: nothing)."""
    corpus_three_cases(backend)
    plans = SearchFilter(case_ids=None, types=frozenset({"integration_plan"}))
    assert found(backend, "Bericht", plans) == {"b0", "b1"}
    assert backend.count(SearchFilter(case_ids=None, types=frozenset())) == 0


def test_date_range_uses_local_calendar_days(backend: SearchBackend) -> None:
    """created_from/to are inclusive Zurich days; the year facet uses Zurich years too."""
    index(
        backend,
        # 23:30 local on 31 Dec 2025 (UTC+1) ...
        doc("old-year", text="Notiz", created_at=dt.datetime(2025, 12, 31, 22, 30, tzinfo=dt.UTC)),
        # ... and 00:30 local on 1 Jan 2026, although it is still 2025 in UTC.
        doc("new-year", text="Notiz", created_at=dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC)),
        doc("summer", text="Notiz", created_at=dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)),
    )
    from_2026 = SearchFilter(case_ids=None, created_from=dt.date(2026, 1, 1))
    until_2025 = SearchFilter(case_ids=None, created_to=dt.date(2025, 12, 31))
    one_day = SearchFilter(
        case_ids=None, created_from=dt.date(2026, 1, 1), created_to=dt.date(2026, 1, 1)
    )
    assert found(backend, "Notiz", from_2026) == {"new-year", "summer"}
    assert found(backend, "Notiz", until_2025) == {"old-year"}
    assert found(backend, "Notiz", one_day) == {"new-year"}
    assert run(backend, "Notiz", facets=True).facets["year"] == {"2025": 1, "2026": 2}


def test_current_only_hides_old_versions(backend: SearchBackend) -> None:
    """By default only current versions are found; current_only=False shows all."""
    index(
        backend,
        doc("d", version=1, text="Entwurf Integrationsplan", is_current=False),
        doc("d", version=2, text="Integrationsplan final"),
    )
    current = run(backend, "Integrationsplan")
    assert [(h.document_id, h.version) for h in current.hits] == [("d", 2)]
    every = run(backend, "Integrationsplan", SearchFilter(case_ids=None, current_only=False))
    assert sorted(h.version for h in every.hits) == [1, 2]


def test_paging_is_disjoint_and_total_constant(backend: SearchBackend) -> None:
    """Pages of 10 over 25 hits: disjoint, complete, same total on every page."""
    index(backend, *[doc(f"p{i:02}", text="Protokoll " + "Wort " * i) for i in range(25)])
    pages = [run(backend, "Protokoll", page=page, per_page=10) for page in (1, 2, 3)]
    assert [p.total for p in pages] == [25, 25, 25]
    assert [len(p.hits) for p in pages] == [10, 10, 5]
    keys = [hit.doc_key for p in pages for hit in p.hits]
    assert len(set(keys)) == 25
    assert run(backend, "Protokoll", page=4, per_page=10).hits == []


def test_blank_query_lists_newest_first(backend: SearchBackend) -> None:
    """An empty query lists everything the filter allows, newest first."""
    index(
        backend,
        doc("old", created_at=NOW - dt.timedelta(days=2)),
        doc("new", created_at=NOW),
        doc("mid", created_at=NOW - dt.timedelta(days=1)),
    )
    result = run(backend, "")
    assert [hit.document_id for hit in result.hits] == ["new", "mid", "old"]
    assert result.total == 3


# -- results and highlights ---------------------------------------------------------------


def test_hit_fields(backend: SearchBackend) -> None:
    """A hit carries the version's metadata as indexed."""
    index(
        backend,
        doc(
            "d1",
            version=3,
            case_id="case-x",
            case_reference="ias-2026-000042",
            type="end_report",
            title="Schlussbericht",
            created_at=dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC),
        ),
    )
    (hit,) = run(backend, "Schlussbericht").hits
    assert (hit.doc_key, hit.document_id, hit.version) == ("d1:3", "d1", 3)
    assert (hit.case_id, hit.case_reference, hit.type) == (
        "case-x",
        "IAS-2026-000042",
        "end_report",
    )
    assert hit.title == "Schlussbericht"
    assert hit.created_at == dt.datetime(2026, 2, 1, 8, 0, tzinfo=dt.UTC)
    assert hit.is_current is True
    assert hit.score > 0


def test_highlight_marks_matches_and_escapes_html(backend: SearchBackend) -> None:
    """Matches are wrapped in <mark>; document text never reaches the page as HTML."""
    index(
        backend,
        doc("xss", text="Vorher <script>alert(1)</script> & danach: Kostengutsprache erteilt."),
    )
    (hit,) = run(backend, "Kostengutsprache").hits
    assert "<mark>Kostengutsprache</mark>" in hit.highlight
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in hit.highlight
    assert "<script>" not in hit.highlight
    assert "&amp;" in hit.highlight
    (hit,) = run(backend, "script").hits
    assert "<mark>script</mark>" in hit.highlight
    assert "<script>" not in hit.highlight


def test_highlight_marks_inflected_and_compound_forms(backend: SearchBackend) -> None:
    """What matched through stemming/decompounding is marked in its written form."""
    index(backend, doc("d", text="Die Häuser und die Kostengutsprache."))
    (hit,) = run(backend, "Haus Gutsprache").hits
    assert "<mark>Häuser</mark>" in hit.highlight
    assert "<mark>Kostengutsprache</mark>" in hit.highlight


def test_highlight_falls_back_to_title_then_lead(backend: SearchBackend) -> None:
    """No match in the text: the marked title; no text match at all: the escaped lead."""
    index(
        backend,
        doc("t", title="Integrationsplan", text="<b>Anhang</b> ohne Treffer", ahv="7569217076985"),
    )
    (hit,) = run(backend, "Integrationsplan").hits
    assert hit.highlight == "<mark>Integrationsplan</mark>"
    (hit,) = run(backend, "7569217076985").hits
    assert "<mark>" not in hit.highlight
    assert hit.highlight.startswith("&lt;b&gt;Anhang&lt;/b&gt;")
    (hit,) = run(backend, "Integrationsplan", highlight=False).hits
    assert hit.highlight == ""


def test_highlight_of_long_text_is_a_bounded_fragment(backend: SearchBackend) -> None:
    """A match deep in a long text yields a short fragment around it."""
    text = "Einleitung. " * 5000 + "Hier steht die Potenzialabklärung. " + "Schluss. " * 100
    index(backend, doc("long", text=text))
    (hit,) = run(backend, "Potenzialabklärung").hits
    assert "<mark>Potenzialabklärung</mark>" in hit.highlight
    assert len(hit.highlight) < 400


# -- writes ---------------------------------------------------------------------------------


def test_upsert_same_key_replaces(backend: SearchBackend) -> None:
    """Re-indexing a version replaces it: no duplicate, old text gone."""
    index(backend, doc("d", text="alter Text Zebra"))
    index(backend, doc("d", text="neuer Text Giraffe"))
    assert found(backend, "Zebra") == set()
    assert found(backend, "Giraffe") == {"d"}
    assert backend.count(ALL) == 1
    assert list(backend.doc_keys()) == ["d:1"]


def test_duplicates_within_one_batch_keep_the_last(backend: SearchBackend) -> None:
    """The same doc_key twice in one upsert leaves one entry, the later one."""
    index(backend, doc("d", text="erste Fassung"), doc("d", text="zweite Fassung"))
    assert backend.count(ALL) == 1
    assert found(backend, "zweite") == {"d"}


def test_delete_by_key_document_and_case(backend: SearchBackend) -> None:
    """delete removes versions, delete_document all versions, delete_case a whole case."""
    index(
        backend,
        doc("d1", version=1, case_id="a", is_current=False),
        doc("d1", version=2, case_id="a"),
        doc("d2", case_id="a"),
        doc("d3", case_id="b"),
        doc("d4", case_id="b"),
    )
    backend.delete(["d1:1", "does-not-exist:1"])
    backend.refresh()
    assert list(backend.doc_keys()) == ["d1:2", "d2:1", "d3:1", "d4:1"]
    backend.delete_document("d2")
    backend.refresh()
    assert list(backend.doc_keys()) == ["d1:2", "d3:1", "d4:1"]
    backend.delete_case("b")
    backend.refresh()
    assert list(backend.doc_keys()) == ["d1:2"]
    assert backend.count(SearchFilter(case_ids=frozenset({"b"}))) == 0


def test_mark_not_current(backend: SearchBackend) -> None:
    """Older versions drop out of current-only searches and stay searchable otherwise."""
    index(
        backend,
        doc("d", version=1, text="Vereinbarung Entwurf"),
        doc("d", version=2, text="Vereinbarung unterschrieben"),
        doc("e", version=1, text="Vereinbarung andere"),
    )
    backend.mark_not_current("d", except_version=2)
    backend.refresh()
    assert sorted(h.doc_key for h in run(backend, "Vereinbarung").hits) == ["d:2", "e:1"]
    history = run(backend, "Entwurf", SearchFilter(case_ids=None, current_only=False))
    (old,) = history.hits
    assert (old.doc_key, old.is_current) == ("d:1", False)
    assert "<mark>Entwurf</mark>" in old.highlight  # the text survived the update


def test_doc_keys_ascending(backend: SearchBackend) -> None:
    """doc_keys lists every version once, ascending."""
    index(backend, doc("b"), doc("a", version=2), doc("a"), doc("c"))
    assert list(backend.doc_keys()) == ["a:1", "a:2", "b:1", "c:1"]


def test_text_beyond_the_cap_is_not_indexed(backend: SearchBackend) -> None:
    """Text is cut at MAX_TEXT_CHARS: a word after the cap is not found."""
    filler = "x" * (MAX_TEXT_CHARS - len("Anfang "))
    index(backend, doc("big", text="Anfang " + filler + " Ende"))
    assert found(backend, "Anfang") == {"big"}
    assert found(backend, "Ende") == set()


# -- rebuild --------------------------------------------------------------------------------


def leftovers(backend: SearchBackend) -> list[str]:
    """Index generations/indices on disk or in the cluster besides the live one."""
    if isinstance(backend, TantivyIndex):
        live = os.readlink(backend._root / "CURRENT")
        return [name for name in backend.generations() if name != live]
    assert isinstance(backend, ElasticIndex)
    client: Any = backend._client
    everything = set(client.indices.get(index=f"{backend.prefix}-*").keys())
    behind_alias = set(client.indices.get_alias(name=backend.alias).keys())
    assert len(behind_alias) == 1
    return sorted(everything - behind_alias)


def test_rebuild_swaps_atomically(backend: SearchBackend) -> None:
    """During a rebuild searches see the whole old index; afterwards the whole new one."""
    index(backend, *[doc(f"old{i}", text="Bericht alt") for i in range(20)])
    seen_during: list[int] = []
    progress: list[int] = []

    def source() -> Iterator[IndexedDocument]:
        for i in range(1500):
            if i == 700:
                # Mid-rebuild: the live index is untouched and complete.
                seen_during.append(run(backend, "Bericht", per_page=1).total)
                with pytest.raises(RebuildInProgress):
                    backend.rebuild([])
                # A write arriving now reaches the live index and the new one.
                backend.upsert([doc("late", text="Bericht spät")])
                backend.refresh()
                seen_during.append(run(backend, "Bericht", per_page=1).total)
            yield doc(f"new{i:04}", text="Bericht neu")

    loaded = backend.rebuild(source(), progress=progress.append)
    backend.refresh()
    assert loaded == 1500
    assert progress[-1] == 1500 and progress[0] == 1000
    assert seen_during == [20, 21]  # the old index (+ the late write), never a half-built one
    assert run(backend, "Bericht", per_page=1).total == 1501
    assert found(backend, "alt") == set()
    assert found(backend, "spät") == {"late"}
    assert backend.count(ALL) == 1501
    assert leftovers(backend) == []


def test_rebuild_seen_from_another_thread_is_all_or_nothing(backend: SearchBackend) -> None:
    """A concurrent reader only ever sees the old total or the new total."""
    index(backend, *[doc(f"old{i}", text="Bericht") for i in range(10)])
    totals: set[int] = set()
    errors: list[BaseException] = []
    done = threading.Event()

    def reader() -> None:
        try:
            while not done.is_set():
                totals.add(run(backend, "Bericht", per_page=1).total)
        except BaseException as exc:  # surfaced in the main thread below
            errors.append(exc)

    thread = threading.Thread(target=reader)
    thread.start()
    try:

        def source() -> Iterator[IndexedDocument]:
            for i in range(400):
                if i % 100 == 0:
                    time.sleep(0.05)  # give the reader time to look mid-load
                yield doc(f"new{i}", text="Bericht")

        backend.rebuild(source())
        backend.refresh()
        time.sleep(0.1)
    finally:
        done.set()
        thread.join()
    assert errors == []
    assert totals <= {10, 400}
    assert run(backend, "Bericht", per_page=1).total == 400


def test_failed_rebuild_keeps_the_live_index(backend: SearchBackend) -> None:
    """A source that fails mid-way leaves the old index live and no half-built index."""
    index(backend, doc("keep", text="Bericht"))

    def source() -> Iterator[IndexedDocument]:
        yield doc("new", text="Bericht")
        raise RuntimeError("database went away")

    with pytest.raises(RuntimeError, match="database went away"):
        backend.rebuild(source())
    assert found(backend, "Bericht") == {"keep"}
    assert leftovers(backend) == []
    # The lock is released: the next rebuild runs.
    assert backend.rebuild([doc("next", text="Bericht")]) == 1
    backend.refresh()
    assert found(backend, "Bericht") == {"next"}


def test_second_instance_cannot_rebuild_concurrently(
    backend: SearchBackend, tmp_path: Path
) -> None:
    """Another process/instance on the same index is refused while a rebuild runs."""
    if isinstance(backend, TantivyIndex):
        other: SearchBackend = TantivyIndex(backend._root)
    else:
        assert isinstance(backend, ElasticIndex)
        other = ElasticIndex(ES_URL, prefix=backend.prefix)
    refused: list[bool] = []

    def source() -> Iterator[IndexedDocument]:
        with pytest.raises(RebuildInProgress):
            other.rebuild([doc("x")])
        refused.append(True)
        yield doc("y")

    assert backend.rebuild(source()) == 1
    assert refused == [True]
    assert other.rebuild([doc("z")]) == 1  # free again afterwards
    other.close()


# -- garbage in ---------------------------------------------------------------------------


GARBAGE = [
    '"Haus verk',
    "-",
    "- - -",
    "*",
    "a*",
    "Haus*" * 300,
    "x" * 10_000,
    "Haus\x00verkauft",
    '""',
    '"',
    "((Haus]] OR {Bericht} AND NOT:",
    "\\\"'; DROP TABLE documents; --",
    "title:Haus^3~2",
    "🙂 Haus 🙂",
    "\u200b\u202e",
    '-""',
    "/regex.*/",
    "ä" * 65,
]


@pytest.mark.parametrize("query", GARBAGE)
def test_garbage_queries_never_crash(backend: SearchBackend, query: str) -> None:
    """Any input yields a result or a QuerySyntaxError with a message for the user."""
    index(backend, doc("d", text="Das Haus verkauft sich. Bericht folgt."))
    try:
        result = run(backend, query, facets=True)
    except QuerySyntaxError as exc:
        assert exc.message and exc.code
        assert str(exc) == exc.message
    else:
        assert result.total == len(result.hits)


def test_garbage_queries_behave_sensibly(backend: SearchBackend) -> None:
    """Unbalanced quotes run to the end; NUL is a space; errors say what to do."""
    index(backend, doc("d", text="Das Haus verkauft sich. Bericht folgt."))
    assert found(backend, '"Haus verk') == set()  # phrase "Haus verk": no such words
    assert found(backend, '"Haus verkauft') == {"d"}
    assert found(backend, "Haus\x00verkauft") == {"d"}
    for query, code in [
        ("*", "prefix_too_short"),
        ("a*", "prefix_too_short"),
        ("x" * 10_000, "query_too_long"),
        ("-", "no_search_terms"),
        ('""', "no_search_terms"),
    ]:
        with pytest.raises(QuerySyntaxError) as info:
            run(backend, query)
        assert info.value.code == code


# -- requests and health --------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs",
    [{"page": 0}, {"per_page": 0}, {"per_page": 101}, {"page": 101, "per_page": 100}],
)
def test_out_of_range_paging_is_a_caller_error(kwargs: dict[str, Any]) -> None:
    """per_page ≤ 100, page ≥ 1, and no deeper than 10,000 results."""
    with pytest.raises(InvalidRequest):
        SearchRequest("Haus", ALL, **kwargs)


def test_check_passes_on_a_usable_index(backend: SearchBackend) -> None:
    """check() is quiet when the index works (and creates it on first use)."""
    assert isinstance(backend, SearchBackend)  # implements the whole protocol
    backend.check()
    assert backend.count(ALL) == 0


# -- tantivy specifics ------------------------------------------------------------------------


def test_tantivy_writes_from_another_instance_are_visible(tmp_path: Path) -> None:
    """A second instance (as another process would) sees writes without reopening."""
    writer = TantivyIndex(tmp_path / "ix")
    reader = TantivyIndex(tmp_path / "ix")
    writer.upsert([doc("d", text="Bericht")])
    assert found(reader, "Bericht") == {"d"}
    writer.upsert([doc("e", text="Bericht")])
    assert found(reader, "Bericht") == {"d", "e"}
    writer.rebuild([doc("f", text="Bericht")])
    assert found(reader, "Bericht") == {"f"}  # follows the swap to the new generation


_WRITER_SCRIPT = """
import datetime as dt, sys
from search import IndexedDocument, TantivyIndex
index = TantivyIndex(sys.argv[1])
for i in range(int(sys.argv[3])):
    index.upsert([IndexedDocument(
        document_id=f"{sys.argv[2]}{i}", version=1, case_id="c", case_reference="", type="t",
        title="", text="Bericht", person_names="", zemis="", ahv="",
        created_at=dt.datetime.now(dt.UTC), is_current=True)])
"""


def test_tantivy_concurrent_writer_processes(tmp_path: Path) -> None:
    """Writers in separate processes take turns (tantivy allows one writer): nothing lost."""
    import subprocess
    import sys

    root = tmp_path / "ix"
    TantivyIndex(root).check()  # create the index before the race
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WRITER_SCRIPT, str(root), name, "8"],
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("p", "q")
    ]
    reader = TantivyIndex(root)
    while any(proc.poll() is None for proc in procs):
        run(reader, "Bericht", per_page=1)  # reading during the writes never fails
    for proc in procs:
        assert proc.wait() == 0, proc.stderr.read() if proc.stderr else ""
    assert reader.count(ALL) == 16
    assert len(list(reader.doc_keys())) == 16


def test_tantivy_stale_rebuild_state_is_cleared(tmp_path: Path) -> None:
    """A crashed rebuild's state file does not make writers journal forever."""
    index_ = TantivyIndex(tmp_path / "ix")
    index_.upsert([doc("d")])
    (tmp_path / "ix" / "rebuild.json").write_text(json.dumps({"generation": "gen-x"}))
    (tmp_path / "ix" / "journal.jsonl").write_text("")
    index_.upsert([doc("e")])
    assert not (tmp_path / "ix" / "rebuild.json").exists()
    assert not (tmp_path / "ix" / "journal.jsonl").exists()
    assert list(index_.doc_keys()) == ["d:1", "e:1"]


def test_tantivy_outdated_format_asks_for_rebuild(tmp_path: Path) -> None:
    """An index written by another format version is refused until rebuilt."""
    index_ = TantivyIndex(tmp_path / "ix")
    index_.upsert([doc("d")])
    live = tmp_path / "ix" / os.readlink(tmp_path / "ix" / "CURRENT")
    (live / "FORMAT").write_text(json.dumps({"format": 0, "analysis": 0}))
    fresh = TantivyIndex(tmp_path / "ix")
    with pytest.raises(IndexOutdated, match="rebuild"):
        fresh.check()
    fresh.rebuild([doc("d")])
    fresh.check()
    assert list(fresh.doc_keys()) == ["d:1"]


def test_tantivy_unusable_directory_is_unavailable(tmp_path: Path) -> None:
    """A path that cannot hold an index raises SearchUnavailable, not OSError."""
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SearchUnavailable):
        TantivyIndex(blocker / "ix").check()


def test_open_index_factory(tmp_path: Path) -> None:
    """open_index builds the configured backend and rejects incomplete settings."""
    assert isinstance(open_index("tantivy", path=str(tmp_path / "ix")), TantivyIndex)
    es = open_index("elasticsearch", url="http://127.0.0.1:9", prefix="p")
    assert isinstance(es, ElasticIndex)
    assert es.describe() == "elasticsearch:http://127.0.0.1:9/p"
    with pytest.raises(ValueError, match="path"):
        open_index("tantivy")
    with pytest.raises(ValueError, match="url"):
        open_index("elasticsearch")
    with pytest.raises(ValueError, match="unknown"):
        open_index("solr")


def test_tantivy_highlight_finds_words_inside_punctuated_tokens_and_late_windows(
    tmp_path: Path,
) -> None:
    """Tokens like "(Wohnungen)." or "Haus-Verkauf" are marked word by word, also far in."""
    index_ = TantivyIndex(tmp_path / "ix")
    filler = "Lorem ipsum dolor sit amet. " * 400  # ~11,000 characters: several scan windows
    index(
        index_,
        doc("late", text=filler + "Sie fand zwei (Wohnungen). Das Haus-Verkauf-Projekt."),
    )
    (hit,) = run(index_, "Wohnung Haus").hits
    assert "(<mark>Wohnungen</mark>)." in hit.highlight
    assert "<mark>Haus</mark>-Verkauf-Projekt" in hit.highlight
    assert "Lorem" in hit.highlight  # context before the first match
    (prefix_hit,) = run(index_, "verk*").hits
    assert "Haus-<mark>Verkauf</mark>-Projekt" in prefix_hit.highlight
    index_.close()


def test_tags_are_searched_like_the_title_and_counted_in_their_facet(
    backend: SearchBackend,
) -> None:
    """A tag finds its document; the tags facet counts each tag once per matching entry."""
    backend.upsert(
        [
            doc("d1", title="Bericht", text="Alles gut.", tags=("sprachkurs", "schule aarau")),
            doc("d2", title="Notiz", text="Sprachkurs besucht.", tags=("sprachkurs",)),
            doc("d3", title="Brief", text="Nichts.", tags=()),
        ]
    )
    backend.refresh()
    found = run(backend, "aarau", facets=True)
    assert [hit.document_id for hit in found.hits] == ["d1"]
    everything = run(backend, "Sprachkurs", facets=True)
    assert {hit.document_id for hit in everything.hits} == {"d1", "d2"}
    assert everything.facets["tags"] == {"sprachkurs": 2, "schule aarau": 1}
