"""Compiles a parsed query and a search filter into one tantivy query."""

from __future__ import annotations

import re
from typing import Any

import tantivy

from search.analysis import name_term, search_term, tokenize
from search.base import FIELD_BOOSTS, SearchFilter, date_bounds_utc
from search.query import Clause, Identifier, ParsedQuery, Phrase, Prefix, Term

__all__ = ["Compiler"]


class Compiler:
    """Compiles a ParsedQuery plus a SearchFilter into one tantivy Query."""

    def __init__(self, schema: tantivy.Schema) -> None:
        self._schema = schema

    def _term(self, field: str, value: Any) -> tantivy.Query:
        return tantivy.Query.term_query(self._schema, field, value)

    def _words(self, field: str, terms: list[str]) -> tantivy.Query:
        """A phrase over analysed terms (tantivy panics on one-term phrases: use a term)."""
        if len(terms) == 1:
            return self._term(field, terms[0])
        words: list[str | tuple[int, str]] = list(terms)
        return tantivy.Query.phrase_query(self._schema, field, words)

    @staticmethod
    def _weighted(field: str, query: tantivy.Query) -> tantivy.Query:
        """``query`` on ``field`` with the field's boost (unwrapped when it is 1)."""
        weight = FIELD_BOOSTS[field]
        return query if weight == 1.0 else tantivy.Query.boost_query(query, weight)

    def _any(self, queries: list[tantivy.Query]) -> tantivy.Query:
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])

    def _text_phrase(self, text: str) -> tantivy.Query | None:
        """``text`` as a phrase in title or text (None if it has no words)."""
        words = [word for word, _, _ in tokenize(text)]
        if not words:
            return None
        terms = [search_term(word) for word in words]
        return self._any([self._words("title", terms), self._words("text", terms)])

    def clause(self, clause: Clause) -> tantivy.Query:
        """One clause: it matches if it matches in ANY of the searched fields."""
        weighted = self._weighted
        if isinstance(clause, Term):
            stem = search_term(clause.word)
            return self._any(
                [
                    weighted("title", self._term("title", stem)),
                    weighted("text", self._term("text", stem)),
                    # Compound parts carry no boost of their own (they are parts of words).
                    self._term("parts", stem),
                    weighted("person_names", self._term("person_names", name_term(clause.word))),
                ]
            )
        if isinstance(clause, Phrase):
            stems = [search_term(word) for word in clause.words]
            names = [name_term(word) for word in clause.words]
            return self._any(
                [
                    weighted("title", self._words("title", stems)),
                    weighted("text", self._words("text", stems)),
                    weighted("person_names", self._words("person_names", names)),
                ]
            )
        if isinstance(clause, Prefix):
            # The prefix is alphanumeric by construction (it comes out of the tokenizer),
            # so it is safe to use as a regex literal; re.escape is a second guard.
            pattern = re.escape(clause.prefix) + ".*"
            return tantivy.Query.regex_query(self._schema, "prefix", pattern)
        if isinstance(clause, Identifier):
            alternatives = [self._term(clause.field, clause.value)]
            for text in clause.texts:
                phrase = self._text_phrase(text)
                if phrase is not None:
                    alternatives.append(phrase)
            return self._any(alternatives)
        raise TypeError(f"unknown clause {clause!r}")

    def filter(self, search_filter: SearchFilter) -> list[tantivy.Query]:
        """The filter as a list of queries that must all match (scored 0)."""
        queries: list[tantivy.Query] = []
        if search_filter.matches_nothing:
            return [tantivy.Query.empty_query()]
        if search_filter.case_ids is not None:
            queries.append(
                tantivy.Query.term_set_query(
                    self._schema, "case_id", sorted(search_filter.case_ids)
                )
            )
        if search_filter.types is not None:
            queries.append(
                tantivy.Query.term_set_query(self._schema, "type", sorted(search_filter.types))
            )
        if search_filter.current_only:
            queries.append(self._term("is_current", True))
        start, end = date_bounds_utc(search_filter.created_from, search_filter.created_to)
        if start is not None or end is not None:
            queries.append(
                tantivy.Query.range_query(
                    self._schema,
                    "created_at",
                    tantivy.FieldType.Date,
                    start,
                    end,
                    include_lower=True,
                    include_upper=end is None,
                )
            )
        return queries

    def compile(self, parsed: ParsedQuery, search_filter: SearchFilter) -> tantivy.Query:
        """The whole engine query: clauses AND filter in one boolean query."""
        occur = tantivy.Occur
        parts: list[tuple[tantivy.Occur, tantivy.Query]] = [
            (occur.Must, self.clause(c)) for c in parsed.must
        ]
        if not parts:
            # Only exclusions (or nothing): start from everything the filter allows.
            parts.append((occur.Must, tantivy.Query.all_query()))
        parts.extend((occur.MustNot, self.clause(c)) for c in parsed.must_not)
        parts.extend(
            (occur.Must, tantivy.Query.const_score_query(q, 0.0))
            for q in self.filter(search_filter)
        )
        return tantivy.Query.boolean_query(parts)
