"""Unit tests for the German analysis, the query parser and the search data types."""

from __future__ import annotations

import datetime as dt

import pytest

from search.analysis import (
    DOMAIN_WORDS,
    MAX_TOKEN_CHARS,
    analyze,
    analyze_names,
    decompound,
    german_normalize,
    index_terms,
    name_term,
    normalize,
    search_term,
    stem,
    tokenize,
    words,
)
from search.base import (
    MAX_CASE_IDS,
    MAX_TEXT_CHARS,
    IndexedDocument,
    InvalidRequest,
    QuerySyntaxError,
    SearchFilter,
    SearchRequest,
    date_bounds_utc,
    local_year,
)
from search.query import (
    MAX_CLAUSES,
    MAX_QUERY_CHARS,
    Identifier,
    ParsedQuery,
    Phrase,
    Prefix,
    Term,
    detect_identifier,
    parse_query,
)

# -- normalisation -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("müller", "muller"),
        ("mueller", "muller"),
        ("muller", "muller"),
        ("straße", "strasse"),
        ("strasse", "strasse"),
        ("häuser", "hauser"),
        ("haeuser", "hauser"),
        ("übung", "ubung"),
        ("uebung", "ubung"),
        ("ärger", "arger"),
        ("aerger", "arger"),
        ("österreich", "osterreich"),
        ("oesterreich", "osterreich"),
        # "ue" after q, and after a vowel, is not an umlaut: the e stays.
        ("quelle", "quelle"),
        ("bauer", "bauer"),
        ("feuer", "feuer"),
        ("steuer", "steuer"),
        ("neue", "neue"),
    ],
)
def test_german_normalize_like_elasticsearch(word: str, expected: str) -> None:
    """The folding rules of Lucene's GermanNormalizationFilter."""
    assert german_normalize(word) == expected


@pytest.mark.parametrize(
    ("word", "expected"),
    [("Müller", "muller"), ("MÜLLER", "muller"), ("José", "jose"), ("Øystein", "oystein"),
     ("Çelik", "celik"), ("STRASSE", "strasse"), ("Straße", "strasse")],
)  # fmt: skip
def test_normalize_lowercases_and_folds_accents(word: str, expected: str) -> None:
    """normalize = lowercase + German folding + accent folding for foreign names."""
    assert normalize(word) == expected


def test_stemming_unifies_inflections() -> None:
    """Häuser/Haus, Gesprächen/Gespräch, Abklärungen/Abklärung share a stem."""
    assert search_term("Häuser") == search_term("Haus")
    assert search_term("Gesprächen") == search_term("Gespräch")
    assert search_term("Abklärungen") == search_term("Abklärung")
    assert search_term("Strasse") == search_term("Straße")


def test_words_with_digits_are_not_stemmed() -> None:
    """Numbers and codes stay as they are (a stemmer would mangle 'b2b' or '2026er')."""
    assert stem("2026") == "2026"
    assert stem("a2") == "a2"


# -- decompounding -----------------------------------------------------------------------


def test_domain_words_cover_the_required_vocabulary() -> None:
    """The dictionary holds the IAS vocabulary, normalised (no umlauts), sorted, unique."""
    required = {
        "kosten", "gutsprache", "integration", "plan", "bericht", "schluss", "vereinbarung",
        "abklarung", "potenzial", "potential", "kurs", "sprache", "programm", "gesprach",
        "protokoll", "standort", "anmeldung", "bestatigung", "lehre", "vor", "beschaftigung",
        "arbeit", "markt", "sozial", "dienst", "hilfe",
    }  # fmt: skip
    assert required <= set(DOMAIN_WORDS)
    assert list(DOMAIN_WORDS) == sorted(set(DOMAIN_WORDS))
    assert all(word == normalize(word) for word in DOMAIN_WORDS)


@pytest.mark.parametrize(
    ("word", "parts"),
    [
        ("kostengutsprache", {"kosten", "gutsprache", "sprache"}),
        ("integrationsplan", {"integration", "plan"}),
        ("abklarungsbericht", {"abklarung", "bericht"}),
        ("arbeitsmarktintegration", {"arbeit", "markt", "integration"}),
        ("sozialdienst", {"sozial", "dienst"}),
        ("schlussbericht", {"schluss", "bericht"}),
    ],
)
def test_decompound_finds_domain_parts(word: str, parts: set[str]) -> None:
    """Every dictionary word inside the compound is found."""
    assert set(decompound(word)) >= parts


def test_decompound_never_returns_the_word_itself_or_splits_short_words() -> None:
    """Parts are strictly inside the word; words under 5 letters are left alone."""
    assert decompound("bericht") == ()
    assert decompound("kurs") == ()
    assert decompound("haus") == ()
    assert decompound("zebrastreifen") == ()


def test_parts_are_emitted_in_addition_to_the_whole_word() -> None:
    """index_terms: the whole word's stem first, then the parts' stems."""
    terms = index_terms("Kostengutsprache")
    assert terms[0] == search_term("Kostengutsprache") == stem("kostengutsprache")
    assert search_term("Gutsprache") in terms
    assert search_term("Kosten") in terms
    assert len(terms) == len(set(terms))


def test_analyze_keeps_word_order_and_puts_parts_aside() -> None:
    """One term per word, in order (phrases); compound parts in a separate string."""
    analyzed = analyze("Die Kostengutsprache, erteilt.")
    assert analyzed.terms.split() == [
        search_term("Die"),
        search_term("Kostengutsprache"),
        search_term("erteilt"),
    ]
    assert set(analyzed.parts.split()) == set(index_terms("Kostengutsprache")[1:])
    assert search_term("Gutsprache") in analyzed.parts.split()
    assert analyze("Haus und Hof").parts == ""


def test_terms_are_single_tokens() -> None:
    """No term contains whitespace or punctuation (they are split on whitespace later)."""
    text = "Ligatur ﬁnal ﷽ Zürich ½ Straße"
    for term in analyze(text).terms.split() + analyze_names(text).split():
        assert term.isalnum(), term
    assert len(analyze(text).terms.split()) == len(words(text))


def test_tokenize_skips_overlong_tokens_and_punctuation() -> None:
    """Base64 blobs and separators do not become terms."""
    blob = "A" * (MAX_TOKEN_CHARS + 1)
    assert [word for word, _, _ in tokenize(f"Haus, {blob} Hof_Garten!")] == [
        "Haus",
        "Hof",
        "Garten",
    ]


def test_names_are_normalised_not_stemmed() -> None:
    """Names fold umlauts but keep their endings (Müllers is not Müller)."""
    assert analyze_names("Ayana Müller-Tesfay") == "ayana muller tesfay"
    assert name_term("Mueller") == name_term("Müller") == "muller"
    assert name_term("Müllers") != name_term("Müller")


# -- query parser ---------------------------------------------------------------------------


def test_parse_words_phrases_prefixes_excludes() -> None:
    """The four constructs of the query language."""
    parsed = parse_query('Haus "Integration im Kanton" Integr* -Praktikum -"alter Plan" -Entw*')
    assert parsed == ParsedQuery(
        must=(Term("Haus"), Phrase(("Integration", "im", "Kanton")), Prefix("integr")),
        must_not=(Term("Praktikum"), Phrase(("alter", "Plan")), Prefix("entw")),
    )


def test_parse_prefix_is_normalised() -> None:
    """Prefixes are compared with index terms, so they are folded like them."""
    assert parse_query("Abklä*") == ParsedQuery(must=(Prefix("abkla"),))
    assert parse_query("Kosten-Gut*") == ParsedQuery(must=(Term("Kosten"), Prefix("gut")))


def test_parse_hyphenated_word_is_a_phrase() -> None:
    """'Kosten-Gutsprache' must match those words in this order."""
    assert parse_query("Kosten-Gutsprache") == ParsedQuery(must=(Phrase(("Kosten", "Gutsprache")),))


def test_parse_single_word_phrase_is_a_term_and_duplicates_collapse() -> None:
    """'"Haus"' is just Haus; repeating a word adds nothing."""
    assert parse_query('"Haus" Haus haus') == ParsedQuery(must=(Term("Haus"), Term("haus")))


def test_parse_unbalanced_quote_runs_to_the_end() -> None:
    """An open quote is closed at the end of the query."""
    assert parse_query('Bericht "Haus verkauft') == ParsedQuery(
        must=(Term("Bericht"), Phrase(("Haus", "verkauft")))
    )


def test_parse_typographic_quotes_and_control_characters() -> None:
    """„…“ and «…» are quotes; NUL and other control characters are spaces."""
    assert parse_query("„Haus verkauft“") == ParsedQuery(must=(Phrase(("Haus", "verkauft")),))
    assert parse_query("«Haus verkauft»") == ParsedQuery(must=(Phrase(("Haus", "verkauft")),))
    assert parse_query("Haus\x00verkauft\x07") == ParsedQuery(must=(Term("Haus"), Term("verkauft")))


@pytest.mark.parametrize("query", ["", "   ", "\x00", "\t\n"])
def test_parse_blank_query_matches_everything(query: str) -> None:
    """A blank query is empty: the filter alone decides."""
    parsed = parse_query(query)
    assert parsed == ParsedQuery()
    assert parsed.is_empty


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("*", "prefix_too_short"),
        ("a*", "prefix_too_short"),
        ("Haus *", "prefix_too_short"),
        ("-", "no_search_terms"),
        ("- + -", "no_search_terms"),
        ('""', "no_search_terms"),
        ("!!! ???", "no_search_terms"),
        ("x" * (MAX_QUERY_CHARS + 1), "query_too_long"),
        (" ".join(f"w{i}" for i in range(MAX_CLAUSES + 1)), "too_many_terms"),
        ('"' + " ".join(["wort"] * 33) + '"', "phrase_too_long"),
    ],
)
def test_parse_errors_are_friendly(query: str, code: str) -> None:
    """Unusable queries raise QuerySyntaxError with a code and a sentence for the user."""
    with pytest.raises(QuerySyntaxError) as info:
        parse_query(query)
    assert info.value.code == code
    assert info.value.message.endswith(".")
    assert isinstance(info.value, ValueError)


def test_parse_rejects_non_text() -> None:
    """A non-string query is a QuerySyntaxError, not a TypeError deep inside."""
    with pytest.raises(QuerySyntaxError):
        parse_query(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "query", ["756.9217.0769.85", "7569217076985", "756 9217 0769 85", "756.9217.076985"]
)
def test_parse_ahv_forms(query: str) -> None:
    """Every written form of an AHV number becomes one identifier clause."""
    parsed = parse_query(query)
    assert len(parsed.must) == 1
    (clause,) = parsed.must
    assert isinstance(clause, Identifier)
    assert (clause.field, clause.value) == ("ahv", "7569217076985")
    assert "756.9217.0769.85" in clause.texts and "7569217076985" in clause.texts


def test_parse_case_reference_pads_the_number() -> None:
    """IAS-2026-123 and ias-2026-000123 both mean IAS-2026-000123."""
    for query in ("IAS-2026-123", "ias-2026-000123", "IAS-2026-000123,"):
        (clause,) = parse_query(query).must
        assert isinstance(clause, Identifier)
        assert (clause.field, clause.value) == ("case_reference", "IAS-2026-000123")
        assert "IAS-2026-000123" in clause.texts


@pytest.mark.parametrize("query", ["12345678.9", "123456789", "1234-5678-9", "12345678/9"])
def test_parse_zemis_forms(query: str) -> None:
    """ZEMIS numbers with or without separators become one identifier (digits only)."""
    (clause,) = parse_query(query).must
    assert isinstance(clause, Identifier)
    assert (clause.field, clause.value) == ("zemis", "123456789")


def test_identifier_detection_leaves_words_and_short_numbers_alone() -> None:
    """A year or a word is not an identifier."""
    assert detect_identifier("2026") is None
    assert detect_identifier("Haus") is None
    assert detect_identifier("IAS-26-1") is None
    assert parse_query("-756.9217.0769.85").must_not[0] == detect_identifier("756.9217.0769.85")


# -- data types -----------------------------------------------------------------------------


def make_doc(**overrides: object) -> IndexedDocument:
    """A valid IndexedDocument with overrides."""
    fields: dict[str, object] = {
        "document_id": "d1",
        "version": 2,
        "case_id": "c1",
        "case_reference": " ias-2026-000001 ",
        "type": "correspondence",
        "title": "Brief",
        "text": "Text",
        "person_names": "Anna",
        "zemis": "1234.5678-9",
        "ahv": "756.9217.0769.85",
        "created_at": dt.datetime(2026, 3, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1))),
        "is_current": True,
    }
    fields.update(overrides)
    return IndexedDocument(**fields)  # type: ignore[arg-type]


def test_indexed_document_normalises_identifiers_and_time() -> None:
    """doc_key derived; AHV digits; ZEMIS without separators; reference upper; time UTC."""
    doc = make_doc()
    assert doc.doc_key == "d1:2"
    assert doc.ahv == "7569217076985"
    assert doc.zemis == "123456789"
    assert doc.case_reference == "IAS-2026-000001"
    assert doc.created_at == dt.datetime(2026, 3, 1, 11, tzinfo=dt.UTC)
    assert doc.created_at.utcoffset() == dt.timedelta(0)
    assert make_doc(doc_key="d1:2").doc_key == "d1:2"


def test_indexed_document_caps_text() -> None:
    """Text beyond MAX_TEXT_CHARS is cut."""
    assert len(make_doc(text="x" * (MAX_TEXT_CHARS + 10)).text) == MAX_TEXT_CHARS


@pytest.mark.parametrize(
    "overrides",
    [
        {"doc_key": "d1:3"},
        {"document_id": ""},
        {"document_id": "a:b"},
        {"version": 0},
        {"version": True},
        {"case_id": ""},
        {"type": ""},
        {"title": None},
        {"ahv": "1234"},
        {"ahv": "7571234567890"},
        {"created_at": dt.datetime(2026, 3, 1)},
        {"created_at": dt.date(2026, 3, 1)},
        {"is_current": "yes"},
    ],
)
def test_indexed_document_rejects_caller_bugs(overrides: dict[str, object]) -> None:
    """Malformed documents raise InvalidRequest (a ValueError) before reaching an index."""
    with pytest.raises(InvalidRequest):
        make_doc(**overrides)


def test_search_filter_coerces_and_validates() -> None:
    """Collections become frozensets; strings, datetimes and huge id sets are refused."""
    search_filter = SearchFilter(case_ids=["a", "b", "a"], types={"plan"})  # type: ignore[arg-type]
    assert search_filter.case_ids == frozenset({"a", "b"})
    assert search_filter.types == frozenset({"plan"})
    assert not search_filter.matches_nothing
    assert SearchFilter(case_ids=frozenset()).matches_nothing
    assert SearchFilter(case_ids=None, types=frozenset()).matches_nothing
    with pytest.raises(InvalidRequest):
        SearchFilter(case_ids="abc")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        SearchFilter(case_ids=[1, 2])  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        SearchFilter(case_ids=None, created_from=dt.datetime(2026, 1, 1))
    with pytest.raises(InvalidRequest):
        SearchFilter(case_ids=frozenset(str(i) for i in range(MAX_CASE_IDS + 1)))


def test_search_filter_has_no_default_for_case_ids() -> None:
    """'All cases' must be asked for explicitly (None), never fallen into by omission."""
    with pytest.raises(TypeError):
        SearchFilter()  # type: ignore[call-arg]


def test_search_request_offset() -> None:
    """offset counts from page 1."""
    request = SearchRequest("x", SearchFilter(case_ids=None), page=3, per_page=20)
    assert request.offset == 40


def test_date_bounds_follow_zurich_offsets() -> None:
    """Local midnight is 23:00 UTC in winter and 22:00 UTC in summer; 'to' is inclusive."""
    start, end = date_bounds_utc(dt.date(2026, 1, 1), dt.date(2026, 7, 1))
    assert start == dt.datetime(2025, 12, 31, 23, 0, tzinfo=dt.UTC)
    assert end == dt.datetime(2026, 7, 1, 22, 0, tzinfo=dt.UTC)
    assert date_bounds_utc(None, None) == (None, None)


def test_local_year_is_zurich_year() -> None:
    """New Year's Eve 23:30 UTC is already next year in Zurich."""
    assert local_year(dt.datetime(2025, 12, 31, 23, 30, tzinfo=dt.UTC)) == 2026
    assert local_year(dt.datetime(2025, 12, 31, 22, 30, tzinfo=dt.UTC)) == 2025
