"""Properties of the search query parser: no crash on any text, round trips, normalisation."""

from __future__ import annotations

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from search.analysis import normalize
from search.base import QuerySyntaxError
from search.query import (
    MAX_CLAUSES,
    MAX_QUERY_CHARS,
    Clause,
    ParsedQuery,
    Phrase,
    Prefix,
    Term,
    parse_query,
)

#: Every code a refusal may carry; the API turns each into a message for the user.
REFUSAL_CODES = {
    "invalid_query",
    "query_too_long",
    "prefix_too_short",
    "phrase_too_long",
    "too_many_terms",
    "no_search_terms",
}
# Short enough that MAX_CLAUSES of them stay below MAX_QUERY_CHARS.
# Words of letters only: never an identifier, always one token, unchanged by normalize().
WORDS = st.text("abcdfghiklmnprstvwxyz", min_size=2, max_size=6)
CLAUSES = st.one_of(
    WORDS.map(Term),
    st.lists(WORDS, min_size=2, max_size=3).map(lambda words: Phrase(tuple(words))),
    WORDS.map(Prefix),
)


def render(clause: Clause) -> str:
    """The query text a caseworker would type for one clause."""
    if isinstance(clause, Term):
        return clause.word
    if isinstance(clause, Phrase):
        return f'"{clause.text}"'
    assert isinstance(clause, Prefix)
    return f"{clause.prefix}*"


@st.composite
def parsed_queries(draw: st.DrawFn) -> ParsedQuery:
    """A query of distinct clauses, at least one of them, at most MAX_CLAUSES."""
    clauses = draw(st.lists(CLAUSES, min_size=1, max_size=MAX_CLAUSES, unique=True))
    negated = draw(st.lists(st.booleans(), min_size=len(clauses), max_size=len(clauses)))
    return ParsedQuery(
        tuple(c for c, n in zip(clauses, negated, strict=True) if not n),
        tuple(c for c, n in zip(clauses, negated, strict=True) if n),
    )


def query_text(parsed: ParsedQuery, separator: str = " ") -> str:
    """Render a parsed query back to text (negated clauses with a leading '-')."""
    parts = [render(c) for c in parsed.must] + ["-" + render(c) for c in parsed.must_not]
    return separator.join(parts)


@given(st.text(max_size=MAX_QUERY_CHARS + 50))
def test_any_text_parses_or_is_refused_with_a_known_code(text):
    try:
        parsed = parse_query(text)
    except QuerySyntaxError as refusal:
        assert refusal.code in REFUSAL_CODES
    else:
        assert len(parsed.must) + len(parsed.must_not) <= MAX_CLAUSES


@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=200), st.sampled_from('"„“-*+ '))
def test_punctuation_heavy_text_never_crashes(text, noise):
    for candidate in (noise + text, text + noise, noise.join(text)):
        try:
            parse_query(candidate[:MAX_QUERY_CHARS])
        except QuerySyntaxError as refusal:
            assert refusal.code in REFUSAL_CODES


@given(parsed_queries(), st.sampled_from([" ", "  ", "\t", " \n "]))
def test_rendered_query_parses_back_to_itself(parsed, separator):
    assert parse_query(query_text(parsed, separator)) == parsed


@given(parsed_queries())
def test_typographic_quotes_and_surrounding_space_change_nothing(parsed):
    text = query_text(parsed)
    german = text.replace('"', "„", 1).replace('"', "“", 1)
    assert parse_query(german) == parse_query(f"  {text}\t") == parsed


@given(parsed_queries())
def test_repeated_clauses_are_kept_once(parsed):
    text = query_text(parsed)
    assume(2 * len(text) < MAX_QUERY_CHARS)
    assert parse_query(f"{text} {text}") == parsed


@given(st.text("abcdefghijklmnopqrstuvwxyzäöüß", min_size=2, max_size=12))
def test_prefix_is_stored_normalised(word):
    # "ae" folds to "a" (umlaut spelling): one letter left, refused as too short (below).
    assume(len(normalize(word)) >= 2)
    assert parse_query(word + "*") == ParsedQuery(must=(Prefix(normalize(word)),))


def test_a_prefix_that_folds_to_one_letter_is_too_short():
    with pytest.raises(QuerySyntaxError) as refused:
        parse_query("ae*")
    assert refused.value.code == "prefix_too_short"
    assert "ae counts as one" in str(refused.value)
