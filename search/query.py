"""Parser of the caseworker query language into a small AST both backends compile.

Language (everything is optional; all positive parts must match, in any searched field):

    word                  the word, any inflection (German stemming), umlauts folded
    "exact phrase"        these words in this order ("„…“" quotes work too)
    prefix*               words starting with ``prefix`` (at least 2 characters)
    -word  -"phrase"  -prefix*   exclude documents that match
    756.9217.0769.85      an AHV number (dots/spaces optional), case reference
    IAS-2026-000123       (IAS-2026-123 works), or ZEMIS number (separators optional):
    1234.5678.9           matched exactly on its field, or as text in the document

Garbage never crashes: an unbalanced quote runs to the end of the query, stray
punctuation is ignored, and what cannot be searched raises QuerySyntaxError with a
message meant for the user. A blank query parses to "match everything" (the filter alone
decides), which is how a caller lists a case's documents.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from search.analysis import normalize, tokenize
from search.base import QuerySyntaxError

__all__ = [
    "MAX_CLAUSES",
    "MAX_PHRASE_WORDS",
    "MAX_QUERY_CHARS",
    "MIN_PREFIX_CHARS",
    "Clause",
    "Identifier",
    "IdentifierField",
    "ParsedQuery",
    "Phrase",
    "Prefix",
    "Term",
    "detect_identifier",
    "parse_query",
]

#: Longest query accepted (characters, after trimming).
MAX_QUERY_CHARS = 1000

#: Most words/phrases/prefixes/identifiers one query may combine.
MAX_CLAUSES = 32

#: Most words in one phrase.
MAX_PHRASE_WORDS = 32

#: Shortest prefix before ``*`` (one letter would expand to a large part of the index).
MIN_PREFIX_CHARS = 2

IdentifierField = Literal["ahv", "case_reference", "zemis"]


@dataclass(frozen=True)
class Term:
    """One word as the user typed it (backends analyse it per field)."""

    word: str


@dataclass(frozen=True)
class Phrase:
    """Two or more words that must appear in this order, adjacent."""

    words: tuple[str, ...]

    @property
    def text(self) -> str:
        """The phrase as one string (for engines that analyse it themselves)."""
        return " ".join(self.words)


@dataclass(frozen=True)
class Prefix:
    """Words starting with ``prefix`` (already normalised: lower case, umlauts folded)."""

    prefix: str


@dataclass(frozen=True)
class Identifier:
    """An AHV number, case reference or ZEMIS number.

    Matches exactly on the keyword ``field`` (``value`` is normalised the way the index
    stores it), or where one of ``texts`` appears as a phrase in title or text.
    """

    field: IdentifierField
    value: str
    texts: tuple[str, ...]


Clause = Term | Phrase | Prefix | Identifier


@dataclass(frozen=True)
class ParsedQuery:
    """Clauses that must all match and clauses none of which may match."""

    must: tuple[Clause, ...] = ()
    must_not: tuple[Clause, ...] = ()

    @property
    def is_empty(self) -> bool:
        """True for a blank query: every document the filter allows matches."""
        return not self.must and not self.must_not


# Typographic quotes a German keyboard or a copy from Word produces, mapped to '"'.
_QUOTES = str.maketrans({c: '"' for c in "„“”«»‟″"})
# NUL and other control characters (except whitespace) are noise from copy & paste.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# AHV written with spaces ("756 9217 0769 85") would be split by the word scanner: join it
# first. Groups 3-4-4-2 with ".", " " or nothing between them.
_SPACED_AHV = re.compile(r"(?<![\w.])756[ .]?(\d{4})[ .]?(\d{4})[ .]?(\d{2})(?![\w.])")
_AHV = re.compile(r"756\.?\d{4}\.?\d{4}\.?\d{2}")
_CASE_REFERENCE = re.compile(r"IAS-(\d{4})-(\d{1,12})", re.IGNORECASE)
_ZEMIS = re.compile(r"\d[\d./-]*\d")
_ZEMIS_DIGITS = (6, 12)  # ZEMIS person numbers are 8 digits + check digit; allow slack
_TRAILING_PUNCTUATION = ",;:!?()[]{}"


def detect_identifier(token: str) -> Identifier | None:
    """Recognise an AHV number, case reference or ZEMIS number in one query token."""
    token = token.strip(_TRAILING_PUNCTUATION).rstrip(".")
    if _AHV.fullmatch(token):
        digits = token.replace(".", "")
        dotted = f"{digits[:3]}.{digits[3:7]}.{digits[7:11]}.{digits[11:]}"
        return Identifier("ahv", digits, _unique((token, dotted, digits)))
    match = _CASE_REFERENCE.fullmatch(token)
    if match:
        year, number = match.groups()
        reference = f"IAS-{year}-{int(number):06d}"
        return Identifier("case_reference", reference, _unique((token, reference)))
    if _ZEMIS.fullmatch(token):
        digits = re.sub(r"\D", "", token)
        if _ZEMIS_DIGITS[0] <= len(digits) <= _ZEMIS_DIGITS[1]:
            return Identifier("zemis", digits, _unique((token, digits)))
    return None


def _unique(items: tuple[str, ...]) -> tuple[str, ...]:
    """Drop duplicates, keeping order."""
    return tuple(dict.fromkeys(items))


def _scan(text: str) -> list[tuple[bool, bool, str]]:
    """Split the query into (negated, quoted, text) items; an open quote runs to the end."""
    items: list[tuple[bool, bool, str]] = []
    i, n = 0, len(text)
    while i < n:
        if text[i].isspace():
            i += 1
            continue
        negated = False
        while i < n and text[i] in "-+":
            # A leading "-" excludes; "+" (required) is the default anyway.
            negated = negated or text[i] == "-"
            i += 1
        if i >= n or text[i].isspace():
            continue  # a lone "-" or "+": nothing to apply it to
        if text[i] == '"':
            end = text.find('"', i + 1)
            end = n if end < 0 else end
            items.append((negated, True, text[i + 1 : end]))
            i = end + 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] != '"':
                i += 1
            items.append((negated, False, text[start:i]))
    return items


def _phrase_or_term(words: list[str]) -> Clause:
    """A single word is a Term; several adjacent words a Phrase."""
    if len(words) > MAX_PHRASE_WORDS:
        raise QuerySyntaxError(
            f"A phrase may have at most {MAX_PHRASE_WORDS} words.", code="phrase_too_long"
        )
    return Term(words[0]) if len(words) == 1 else Phrase(tuple(words))


def _bare_clauses(token: str) -> list[Clause]:
    """Clauses for one unquoted token: identifier, prefix, word or hyphenated phrase."""
    identifier = detect_identifier(token)
    if identifier is not None:
        return [identifier]
    if token.endswith("*"):
        words = [word for word, _, _ in tokenize(token.rstrip("*"))]
        if not words or len(normalize(words[-1])) < MIN_PREFIX_CHARS:
            raise QuerySyntaxError(
                f"Put at least {MIN_PREFIX_CHARS} letters before * (an umlaut spelled"
                " ae counts as one), e.g. Integr*.",
                code="prefix_too_short",
            )
        # "Kosten-Gut*": the leading words must match as they are, the last as a prefix.
        clauses: list[Clause] = [Term(word) for word in words[:-1]]
        clauses.append(Prefix(normalize(words[-1])))
        return clauses
    words = [word for word, _, _ in tokenize(token)]
    # "Kosten-Gutsprache" or "e-mail": the parts in this order, as a phrase.
    return [_phrase_or_term(words)] if words else []


def parse_query(text: str) -> ParsedQuery:
    """Parse caseworker input into a ParsedQuery; QuerySyntaxError if it cannot be run."""
    if not isinstance(text, str):
        raise QuerySyntaxError("The search query must be text.", code="invalid_query")
    cleaned = _CONTROL.sub(" ", text).translate(_QUOTES).strip()
    if not cleaned:
        return ParsedQuery()
    if len(cleaned) > MAX_QUERY_CHARS:
        raise QuerySyntaxError(
            f"The search query is too long (at most {MAX_QUERY_CHARS} characters).",
            code="query_too_long",
        )
    cleaned = _SPACED_AHV.sub(lambda m: f"756.{m[1]}.{m[2]}.{m[3]}", cleaned)
    must: list[Clause] = []
    must_not: list[Clause] = []
    for negated, quoted, item in _scan(cleaned):
        if quoted:
            identifier = detect_identifier(item.strip())
            if identifier is not None:
                clauses: list[Clause] = [identifier]
            else:
                words = [word for word, _, _ in tokenize(item)]
                clauses = [_phrase_or_term(words)] if words else []
        else:
            clauses = _bare_clauses(item)
        target = must_not if negated else must
        for clause in clauses:
            if clause not in target:
                target.append(clause)
        if len(must) + len(must_not) > MAX_CLAUSES:
            raise QuerySyntaxError(
                f"The search query combines too many terms (at most {MAX_CLAUSES}).",
                code="too_many_terms",
            )
    if not must and not must_not:
        raise QuerySyntaxError(
            "The search query contains no words to search for.", code="no_search_terms"
        )
    return ParsedQuery(tuple(must), tuple(must_not))
