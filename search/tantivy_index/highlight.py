"""Highlights for hits of the embedded index: the query's words marked in the stored text."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator

from search.analysis import MAX_TOKEN_CHARS, index_terms, normalize, search_term, tokenize
from search.base import HIGHLIGHT_FRAGMENT_CHARS, HIGHLIGHT_MAX_ANALYZED_CHARS
from search.query import Identifier, ParsedQuery, Phrase, Prefix, Term

__all__ = ["Highlighter"]

# Texts are scanned in windows of about this many characters (see Highlighter._first_match).
_SCAN_WINDOW = 4096
_WORD = re.compile(r"[^\W_]+")
_NON_WORD = re.compile(r"[\W_]")


class Highlighter:
    """Marks the words a query matched in stored text; output is HTML-escaped."""

    def __init__(self, parsed: ParsedQuery) -> None:
        terms: set[str] = set()
        prefixes: list[str] = []
        for clause in parsed.must:
            if isinstance(clause, Term):
                terms.add(search_term(clause.word))
            elif isinstance(clause, Phrase):
                terms.update(search_term(word) for word in clause.words)
            elif isinstance(clause, Prefix):
                prefixes.append(clause.prefix)
            elif isinstance(clause, Identifier):
                for text in clause.texts:
                    terms.update(search_term(word) for word, _, _ in tokenize(text))
        self._terms = frozenset(terms)
        self._prefixes = tuple(prefixes)
        # Words repeat a lot within and across the hits of one page: decide each once
        # (sets, so a window's words are sorted into known/matching in C). The same for
        # whitespace-separated tokens: str.split is several times faster than a Unicode
        # word regex, so texts are split first and only matching tokens are looked into.
        self._known: set[str] = set()
        self._matching: set[str] = set()
        self._known_tokens: set[str] = set()
        self._matching_tokens: set[str] = set()

    def _decide(self, word: str) -> bool:
        return any(term in self._terms for term in index_terms(word)) or (
            bool(self._prefixes) and normalize(word).startswith(self._prefixes)
        )

    def _matching_of(self, words: set[str]) -> set[str]:
        """The words of ``words`` that the query matches."""
        unknown = words - self._known
        if unknown and len(self._known) < 100_000:
            self._known |= unknown
            self._matching |= {word for word in unknown if self._decide(word)}
        elif unknown:
            return (words & self._matching) | {word for word in unknown if self._decide(word)}
        return words & self._matching

    def _tokens_matching(self, tokens: set[str]) -> set[str]:
        """The tokens of ``tokens`` that hold at least one matching word."""
        unknown = tokens - self._known_tokens
        if not unknown:
            return tokens & self._matching_tokens
        hits = {token for token in unknown if self._matching_of(set(_WORD.findall(token)))}
        if len(self._known_tokens) >= 100_000:
            return (tokens & self._matching_tokens) | hits
        self._known_tokens |= unknown
        self._matching_tokens |= hits
        return tokens & self._matching_tokens

    def _word_spans(self, chunk: str, offset: int) -> Iterator[tuple[int, int]]:
        """Spans of the matching words in ``chunk`` (which starts at ``offset``), in order."""
        tokens = chunk.split()
        matching = self._tokens_matching(set(tokens))
        if not matching:
            return
        cursor = 0
        for token in tokens:
            # Only whitespace lies between tokens: the next occurrence is this token.
            cursor = chunk.find(token, cursor)
            if token in matching:
                words = self._matching_of(set(_WORD.findall(token)))
                for match in _WORD.finditer(token):
                    if match.group() in words and match.end() - match.start() <= MAX_TOKEN_CHARS:
                        yield offset + cursor + match.start(), offset + cursor + match.end()
            cursor += len(token)

    def _spans(self, text: str, start: int, end: int) -> list[tuple[int, int]]:
        """Character spans of matching words within text[start:end]."""
        return list(self._word_spans(text[start:end], start))

    @staticmethod
    def _render(text: str, start: int, end: int, spans: list[tuple[int, int]]) -> str:
        """Escape text[start:end], wrapping the spans in <mark>."""
        out: list[str] = []
        cursor = start
        for s, e in spans:
            out.append(html.escape(text[cursor:s]))
            out.append(f"<mark>{html.escape(text[s:e])}</mark>")
            cursor = e
        out.append(html.escape(text[cursor:end]))
        return "".join(out).strip()

    def _first_match(self, text: str, limit: int) -> int | None:
        """Offset of the first matching word in text[:limit], scanned window by window.

        Each distinct token and word is decided once per query; only a window that holds a
        match is walked token by token. Windows end between words, and an early match
        leaves the rest of a long text unread.
        """
        pos = 0
        while pos < limit:
            end = min(limit, pos + _SCAN_WINDOW)
            if end < limit:
                boundary = _NON_WORD.search(text, end, limit)
                end = boundary.start() if boundary else limit
            for first, _ in self._word_spans(text[pos:end], pos):
                return first
            pos = end
        return None

    def fragment(self, text: str) -> str | None:
        """A ~200-character snippet around the first match in ``text`` (None: no match)."""
        if not self._terms and not self._prefixes:
            return None
        first = self._first_match(text, min(len(text), HIGHLIGHT_MAX_ANALYZED_CHARS))
        if first is None:
            return None
        # Some context before the match, cut at word boundaries.
        start = max(0, first - HIGHLIGHT_FRAGMENT_CHARS // 4)
        while 0 < start < first and not text[start - 1].isspace():
            start += 1
        end = min(len(text), start + HIGHLIGHT_FRAGMENT_CHARS)
        while start < end < len(text) and not text[end].isspace():
            end -= 1
        if end <= first:
            end = min(len(text), start + HIGHLIGHT_FRAGMENT_CHARS)
        return self._render(text, start, end, self._spans(text, start, end))

    def whole(self, text: str) -> str | None:
        """All of a short text (a title) with its matches marked (None: no match)."""
        spans = self._spans(text, 0, len(text))
        return self._render(text, 0, len(text), spans) if spans else None

    @staticmethod
    def lead(text: str) -> str:
        """The escaped beginning of ``text``, shown when the query matched elsewhere."""
        end = min(len(text), HIGHLIGHT_FRAGMENT_CHARS)
        while 0 < end < len(text) and not text[end].isspace():
            end -= 1
        if end == 0:
            end = min(len(text), HIGHLIGHT_FRAGMENT_CHARS)
        return html.escape(text[:end]).strip()

    def highlight(self, title: str, text: str) -> str:
        """Snippet from the text if it matched there, else the marked title, else a lead."""
        return self.fragment(text) or self.whole(title) or self.lead(text)
