"""German text analysis shared by the tantivy backend, the query parser and the tests."""

# The chain mirrors the Elasticsearch analyzer built in ``search.elastic`` so both backends
# agree on what a "word" is:
#
#   tokenize ([^\W_]+, Unicode)  →  lowercase  →  german_normalization (ß→ss, ä/ae→a,
#   ö/oe→o, ü/ue→u; "ue" after "q" or a vowel stays)  →  fold other diacritics (é→e)
#   →  decompound (domain words emitted IN ADDITION to the whole word)
#   →  stem (Snowball German, tantivy's built-in Rust stemmer)
#
# The output is plain strings of terms: tantivy only splits them on whitespace, which keeps
# per-word work in Python to a dictionary lookup (index_terms is cached).
#
# Person names are only normalised (no stemming, no decompounding): "Müller", "Mueller"
# and "Muller" are one name, but a name is not a word to be reduced to its stem.

from __future__ import annotations

import functools
import re
import threading
import unicodedata
from dataclasses import dataclass

import tantivy

__all__ = [
    "ANALYSIS_VERSION",
    "DOMAIN_WORDS",
    "MAX_TOKEN_CHARS",
    "MIN_COMPOUND_CHARS",
    "MIN_PART_CHARS",
    "AnalyzedText",
    "analyze",
    "analyze_names",
    "decompound",
    "german_normalize",
    "index_terms",
    "name_term",
    "normalize",
    "search_term",
    "stem",
    "tokenize",
    "words",
]

#: Bump whenever the output of this module changes: an index built with another version
#: must be rebuilt, because stored terms would no longer match analysed queries.
ANALYSIS_VERSION = 1

#: Tokens longer than this are dropped (base64 blobs, OCR garbage, hashes in PDFs).
MAX_TOKEN_CHARS = 64

#: Only words at least this long are decompounded (Elasticsearch's ``min_word_size``).
MIN_COMPOUND_CHARS = 5

#: Dictionary words shorter than this are never emitted as parts (``min_subword_size``).
MIN_PART_CHARS = 3

# Curated IAS vocabulary (Integrationsagenda, social services, asylum). A compound that
# contains one of these words is also indexed under that word, so "Gutsprache" finds
# "Kostengutsprache" and "Bericht" finds "Abklärungsbericht". Kept short on purpose: every
# entry also matches inside unrelated words ("plan" in "Planet"), trading precision for
# the recall caseworkers ask for. Written naturally here; normalised below.
# fmt: off
_DOMAIN_WORDS_SOURCE = (
    "abklärung", "abrechnung", "anmeldung", "antrag", "arbeit", "asyl", "aufenthalt",
    "ausbildung", "ausweis", "bedarf", "beratung", "bericht", "beruf", "beschäftigung",
    "beschluss", "bestätigung", "betreuung", "bewilligung", "bildung", "budget", "coaching",
    "deutsch", "dienst", "einsatz", "entscheid", "familie", "flüchtling", "gemeinde",
    "gesundheit", "gespräch", "gesuch", "gutsprache", "hilfe", "integration", "job",
    "kanton", "kosten", "kurs", "lehre", "leistung", "lohn", "markt", "massnahme",
    "nachweis", "pflicht", "plan", "potential", "potenzial", "praktikum", "programm",
    "protokoll", "prüfung", "rechnung", "schluss", "schule", "sozial", "sprache",
    "standort", "stelle", "unterkunft", "unterstützung", "vereinbarung", "verfügung", "vor",
    "wohnung", "zertifikat", "ziel", "zeugnis",
)
# fmt: on

# Characters that do not decompose under NFKD but that Elasticsearch's asciifolding maps.
_EXTRA_FOLDS = str.maketrans(
    {"ø": "o", "ł": "l", "đ": "d", "ð": "d", "þ": "th", "æ": "ae", "œ": "oe", "ı": "i"}
)

_WORD_RE = re.compile(r"[^\W_]+")

# States of the german_normalization automaton (Lucene's GermanNormalizationFilter).
_N, _V, _U = 0, 1, 2


def german_normalize(word: str) -> str:
    """Fold a LOWER-CASE word like Lucene's german_normalization: ß→ss, ä/ae→a, ö/oe→o, ü/ue→u.

    "e" is dropped after "a"/"o", and after a "u" that follows a consonant, so "mueller" →
    "muller" but "quelle", "bauer" and "feuer" keep their "e".
    """
    if not any(c in word for c in "aouäöüß"):
        return word
    out: list[str] = []
    state = _N
    for ch in word:
        if ch in "ao":
            state = _U
        elif ch == "u":
            state = _U if state == _N else _V
        elif ch == "e":
            if state == _U:
                state = _V
                continue
            state = _V
        elif ch in "iqy":
            state = _V
        elif ch == "ä":
            ch, state = "a", _V
        elif ch == "ö":
            ch, state = "o", _V
        elif ch == "ü":
            ch, state = "u", _V
        elif ch == "ß":
            ch, state = "ss", _N
        else:
            state = _N
        out.append(ch)
    return "".join(out)


def _fold_diacritics(word: str) -> str:
    """Strip the remaining accents (é→e, ç→c, ø→o) so foreign names match however typed."""
    if word.isascii():
        return word
    decomposed = unicodedata.normalize("NFKD", word.translate(_EXTRA_FOLDS))
    # Keep letters and digits only: drops the combining accents, and the odd compatibility
    # decomposition that yields spaces or punctuation (terms must stay single tokens).
    return "".join(c for c in decomposed if c.isalnum())


@functools.lru_cache(maxsize=262_144)
def normalize(word: str) -> str:
    """Lower-case, German-normalise and accent-fold one word (no stemming)."""
    return _fold_diacritics(german_normalize(word.lower()))


#: The domain dictionary in normalised form (what the decompounder compares against);
#: ``search.elastic`` hands the same list to Elasticsearch's dictionary_decompounder.
DOMAIN_WORDS: tuple[str, ...] = tuple(sorted({normalize(w) for w in _DOMAIN_WORDS_SOURCE}))

# One C-speed scan rejects the (vast) majority of words that contain no domain word.
_ANY_DOMAIN_WORD = re.compile("|".join(re.escape(w) for w in DOMAIN_WORDS))


def decompound(normalized_word: str) -> tuple[str, ...]:
    """Return the domain words contained in a normalised word (never the word itself)."""
    # Same rule as Elasticsearch's dictionary_decompounder with only_longest_match=false:
    # every dictionary word found anywhere inside the token is emitted.
    if len(normalized_word) < MIN_COMPOUND_CHARS:
        return ()
    if _ANY_DOMAIN_WORD.search(normalized_word) is None:
        return ()
    return tuple(
        part
        for part in DOMAIN_WORDS
        if part != normalized_word and len(part) >= MIN_PART_CHARS and part in normalized_word
    )


class _Stemmer:
    """Thread-safe access to tantivy's Snowball German stemmer (Rust) for single words."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._analyzer: tantivy.TextAnalyzer | None = None

    def __call__(self, word: str) -> str:
        with self._lock:
            # Built lazily: importing this module must stay cheap for the ES-only path.
            if self._analyzer is None:
                self._analyzer = (
                    tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.whitespace())
                    .filter(tantivy.Filter.stemmer("german"))
                    .build()
                )
            stems = self._analyzer.analyze(word)
        return stems[0] if stems else word


_stem = _Stemmer()


@functools.lru_cache(maxsize=262_144)
def stem(normalized_word: str) -> str:
    """Snowball-German stem of a normalised word; words with digits are kept as they are."""
    if not normalized_word or not normalized_word.isalpha():
        return normalized_word
    return _stem(normalized_word)


@functools.lru_cache(maxsize=262_144)
def index_terms(word: str) -> tuple[str, ...]:
    """Terms indexed for one surface word: its stem first, then the stems of its parts."""
    norm = normalize(word)
    whole = stem(norm)
    terms = [whole]
    for part in decompound(norm):
        part_stem = stem(part)
        if part_stem not in terms:
            terms.append(part_stem)
    return tuple(terms)


def search_term(word: str) -> str:
    """The single term a query word is looked up by in title/text (no decompounding).

    Queries are not decompounded: "Kostengutsprache" must not find every "Kosten".
    """
    return index_terms(word)[0]


def name_term(word: str) -> str:
    """The term a word is looked up by in person names (normalised, not stemmed)."""
    return normalize(word)


def tokenize(text: str) -> list[tuple[str, int, int]]:
    """Return (word, start, end) for each word of ``text``; over-long tokens are skipped."""
    return [
        (m.group(), m.start(), m.end())
        for m in _WORD_RE.finditer(text)
        if m.end() - m.start() <= MAX_TOKEN_CHARS
    ]


def words(text: str) -> list[str]:
    """The words of ``text`` without offsets (the fast path used for indexing)."""
    return [word for word in _WORD_RE.findall(text) if len(word) <= MAX_TOKEN_CHARS]


@dataclass(frozen=True, slots=True)
class AnalyzedText:
    """Index terms of a text as space-separated strings, ready for a whitespace tokenizer.

    ``terms`` holds one stem per word, in order (so phrases keep their positions);
    ``parts`` holds the stems of the domain words found inside compounds. Parts live apart
    because a compound and its parts occupy the same word position, which sequential
    whitespace tokens cannot express. ``words`` holds the distinct normalised (unstemmed)
    words, what ``prefix*`` queries are matched against.
    """

    terms: str
    parts: str
    words: str = ""


def analyze(text: str) -> AnalyzedText:
    """Analyse title/body text: stems of the words, and of the compounds' domain parts."""
    whole: list[str] = []
    parts: list[str] = []
    surface: dict[str, None] = {}  # ordered set: a prefix field needs each word once
    for word in words(text):
        terms = index_terms(word)
        whole.append(terms[0])
        surface[normalize(word)] = None
        if len(terms) > 1:
            parts.extend(terms[1:])
    return AnalyzedText(" ".join(whole), " ".join(parts), " ".join(surface))


def analyze_names(text: str) -> str:
    """Analyse person names: normalised words (no stemming or decompounding), space-separated."""
    return " ".join(name_term(word) for word in words(text))
