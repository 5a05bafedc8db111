"""Embedded search backend: a tantivy index in a local directory, rebuilt beside and swapped."""

# Layout of the root directory:
#
#   CURRENT            symlink to the live generation (swapped with an atomic rename)
#   gen-<utc>-<rand>/  one tantivy index + FORMAT (format/analysis versions)
#   write.lock         flock held by every writer (tantivy allows one writer per index;
#                      this also orders writes against a rebuild's final swap)
#   rebuild.lock       flock held for a whole rebuild: a second rebuild is refused
#   rebuild.json       present while a rebuild runs: names the generation being built
#   journal.jsonl      writes made during a rebuild, replayed into the new generation
#                      just before the swap, so no upload is lost to a concurrent rebuild
#
# Text is analysed in Python (search.analysis) and handed to tantivy as strings of terms
# split on whitespace: the German chain needs ae/oe/ue folding and additive decompounding,
# which tantivy's built-in filters do not offer (its SplitCompoundWords replaces a word by
# its parts, and only when the parts cover it fully); the stemmer itself is tantivy's Rust
# Snowball German. Compound parts go to their own field "parts" (words, not phrases). The
# original strings are stored as bytes; highlights are computed from them in Python with
# the same analysis, and HTML-escaped.
#
# FORMAT_VERSION 2. Searchable: title, text, person_names (terms, positions), parts,
# prefix (normalised surface words of title, text and names plus compound parts, doc ids
# only: prefix* queries expand in ONE field instead of four), doc_key, document_id,
# case_id, case_reference, type, zemis, ahv, version, created_at, year (Zurich calendar
# year), is_current, unit. ``unit`` (responsible unit when the entry was written) only
# feeds the unit facet, which the search service corrects from the database for cases
# that moved recently; who may see an entry is never decided from the index.

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import html
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import tantivy

from search.analysis import (
    ANALYSIS_VERSION,
    MAX_TOKEN_CHARS,
    analyze,
    analyze_names,
    index_terms,
    name_term,
    normalize,
    search_term,
    tokenize,
)
from search.base import (
    HIGHLIGHT_FRAGMENT_CHARS,
    HIGHLIGHT_MAX_ANALYZED_CHARS,
    MAX_FACET_SIZE,
    Hit,
    IndexedDocument,
    IndexOutdated,
    InvalidRequest,
    ProgressCallback,
    RebuildInProgress,
    SearchError,
    SearchFilter,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
    date_bounds_utc,
    local_year,
)
from search.query import Clause, Identifier, ParsedQuery, Phrase, Prefix, Term, parse_query

__all__ = ["FORMAT_VERSION", "TantivyIndex"]

#: Version of the schema below; a generation written with another one must be rebuilt.
FORMAT_VERSION = 2

_CURRENT = "CURRENT"
_FORMAT_FILE = "FORMAT"
_WRITE_LOCK = "write.lock"
_REBUILD_LOCK = "rebuild.lock"
_REBUILD_STATE = "rebuild.json"
_JOURNAL = "journal.jsonl"
_GENERATION_RE = re.compile(r"gen-[0-9TZ]+-[0-9a-f]{8}")

# Searched text fields and their boosts: a match in the title or the person's name says
# more about a document than one somewhere in fifty pages of text.
_TITLE_BOOST = 2.0
_NAMES_BOOST = 2.0

#: Original strings are stored in these bytes fields (the searchable fields hold terms).
_SOURCE_FIELDS = {"title": "title_src", "text": "text_src", "person_names": "names_src"}

_UPSERT_CHUNK = 500

# Highlighting scans texts in windows of about this many characters (see _first_match).
_SCAN_WINDOW = 4096
_WORD = re.compile(r"[^\W_]+")
_NON_WORD = re.compile(r"[\W_]")
_PROGRESS_EVERY = 1000


def _build_schema() -> tantivy.Schema:
    """The index schema: keyword fields raw, text fields as analysed term strings."""
    sb = tantivy.SchemaBuilder()
    for name in ("doc_key", "document_id", "case_reference", "zemis", "ahv"):
        sb.add_text_field(name, stored=True, tokenizer_name="raw")
    for name in ("case_id", "type", "unit"):
        # fast: the facets are terms aggregations over these columns.
        sb.add_text_field(name, stored=True, tokenizer_name="raw", fast=True)
    for name in ("title", "text", "person_names"):
        # Terms produced by search.analysis, split on whitespace; positions for phrases.
        sb.add_text_field(name, stored=False, tokenizer_name="whitespace")
    # Domain parts of compounds in title or text: matched as words, never in phrases.
    sb.add_text_field("parts", stored=False, tokenizer_name="whitespace", index_option="freq")
    # Every distinct word once, doc ids only: what prefix* expands against.
    sb.add_text_field("prefix", stored=False, tokenizer_name="whitespace", index_option="basic")
    for name in _SOURCE_FIELDS.values():
        # The original strings, for hits, highlights and re-indexing (not searchable).
        sb.add_bytes_field(name, stored=True, indexed=False)
    sb.add_integer_field("version", stored=True, indexed=True)
    sb.add_date_field("created_at", stored=True, indexed=True, fast=True)
    sb.add_integer_field("year", stored=False, indexed=True, fast=True)
    sb.add_boolean_field("is_current", stored=True, indexed=True, fast=True)
    return sb.build()


def _to_tantivy(doc: IndexedDocument) -> tantivy.Document:
    """Turn an IndexedDocument into a tantivy Document."""
    out = tantivy.Document()
    out.add_text("doc_key", doc.doc_key)
    out.add_text("document_id", doc.document_id)
    out.add_text("case_id", doc.case_id)
    out.add_text("case_reference", doc.case_reference)
    out.add_text("type", doc.type)
    out.add_text("unit", doc.unit)
    out.add_text("zemis", doc.zemis)
    out.add_text("ahv", doc.ahv)
    title, text = analyze(doc.title), analyze(doc.text)
    out.add_text("title", title.terms)
    out.add_text("text", text.terms)
    out.add_text("parts", f"{title.parts} {text.parts}")
    names = analyze_names(doc.person_names)
    out.add_text("person_names", names)
    # Compound parts go in stemmed ("gutsprach"): unstemmed parts as well cost a third of
    # the indexing rate and a slower p95 for prefix queries in bench/search.py.
    out.add_text("prefix", f"{title.words} {text.words} {names} {title.parts} {text.parts}")
    for field, source in _SOURCE_FIELDS.items():
        out.add_bytes(source, getattr(doc, field).encode("utf-8"))
    out.add_integer("version", doc.version)
    out.add_date("created_at", doc.created_at)
    out.add_integer("year", local_year(doc.created_at))
    out.add_boolean("is_current", doc.is_current)
    return out


def _from_stored(stored: dict[str, list[Any]]) -> IndexedDocument:
    """Rebuild an IndexedDocument from a stored tantivy document."""

    def first(name: str, default: Any = "") -> Any:
        values = stored.get(name) or [default]
        return values[0]

    def source(field: str) -> str:
        return bytes(first(_SOURCE_FIELDS[field], b"")).decode("utf-8")

    return IndexedDocument(
        document_id=first("document_id"),
        version=int(first("version", 0)),
        case_id=first("case_id"),
        case_reference=first("case_reference"),
        type=first("type"),
        title=source("title"),
        text=source("text"),
        person_names=source("person_names"),
        zemis=first("zemis"),
        ahv=first("ahv"),
        created_at=first("created_at"),
        is_current=bool(first("is_current", False)),
        unit=first("unit"),
    )


def _doc_to_json(doc: IndexedDocument) -> dict[str, Any]:
    """Serialise a document for the rebuild journal."""
    data = dataclasses.asdict(doc)
    data["created_at"] = doc.created_at.isoformat()
    return data


def _doc_from_json(data: dict[str, Any]) -> IndexedDocument:
    """Inverse of _doc_to_json."""
    data = dict(data)
    data["created_at"] = dt.datetime.fromisoformat(data["created_at"])
    return IndexedDocument(**data)


_HIT_FIELDS = (
    "doc_key",
    "document_id",
    "version",
    "case_id",
    "case_reference",
    "type",
    "created_at",
    "is_current",
)


def _count(result: tantivy.SearchResult) -> int:
    """The total of a search run with count=True (the stubs omit the attribute)."""
    return int(getattr(result, "count", 0) or 0)


def _nested_buckets(agg: dict[str, Any]) -> dict[str, dict[str, int]]:
    """A terms aggregation with a ``unit`` terms sub-aggregation as {key: {unit: count}}."""
    return {
        str(bucket["key"]): {
            str(sub["key"]): int(sub["doc_count"]) for sub in bucket["unit"]["buckets"]
        }
        for bucket in agg["buckets"]
    }


def _stored_matches(index: tantivy.Index, query: tantivy.Query) -> list[IndexedDocument]:
    """Every entry ``query`` matches, rebuilt from its stored fields (for rewrites)."""
    searcher = index.searcher()
    total = _count(searcher.search(query, 1, count=True))
    if not total:
        return []
    hits = searcher.search(query, total).hits
    return [_from_stored(searcher.doc(address).to_dict()) for _, address in hits]


def _is_tantivy_failure(exc: BaseException) -> bool:
    """True for errors the tantivy binding raises (ValueError/OSError, or a Rust panic)."""
    # A Rust panic surfaces as pyo3's PanicException, which derives from BaseException.
    return isinstance(exc, ValueError | OSError) or type(exc).__name__ == "PanicException"


# --- query compilation ---------------------------------------------------------------------


class _Compiler:
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
        boost = tantivy.Query.boost_query
        if isinstance(clause, Term):
            stem = search_term(clause.word)
            return self._any(
                [
                    boost(self._term("title", stem), _TITLE_BOOST),
                    self._term("text", stem),
                    self._term("parts", stem),
                    boost(self._term("person_names", name_term(clause.word)), _NAMES_BOOST),
                ]
            )
        if isinstance(clause, Phrase):
            stems = [search_term(word) for word in clause.words]
            names = [name_term(word) for word in clause.words]
            return self._any(
                [
                    boost(self._words("title", stems), _TITLE_BOOST),
                    self._words("text", stems),
                    boost(self._words("person_names", names), _NAMES_BOOST),
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


# --- highlighting ---------------------------------------------------------------------------


class _Highlighter:
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


# --- the backend ------------------------------------------------------------------------------


class TantivyIndex:
    """SearchBackend on a local directory (one writer at a time, any number of readers)."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        writer_heap_bytes: int = 64_000_000,
        rebuild_heap_bytes: int = 256_000_000,
        lock_timeout: float = 60.0,
    ) -> None:
        """Use (and create on first use) the index under ``path``; nothing is opened yet."""
        self._root = Path(path)
        self._schema = _build_schema()
        self._compiler = _Compiler(self._schema)
        self._writer_heap = writer_heap_bytes
        self._rebuild_heap = rebuild_heap_bytes
        self._lock_timeout = lock_timeout
        self._mutex = threading.RLock()
        self._pid = os.getpid()
        self._generation: str | None = None
        self._index: tantivy.Index | None = None
        self._meta_signature: tuple[str, int, int, int] | None = None
        self._closed = False

    def describe(self) -> str:
        """Human-readable location for logs."""
        return f"tantivy:{self._root}"

    def __repr__(self) -> str:
        """Show the location."""
        return f"TantivyIndex({str(self._root)!r})"

    # --- files and locks ---------------------------------------------------------------

    @contextlib.contextmanager
    def _flock(self, name: str, *, timeout: float | None) -> Iterator[None]:
        """Hold an exclusive flock on root/name; None timeout = fail at once if busy."""
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._root / name, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SearchUnavailable(f"search index at {self._root} not usable: {exc}") from None
        try:
            deadline = time.monotonic() + (timeout or 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if timeout is None:
                        raise RebuildInProgress("a rebuild of this index is running") from None
                    if time.monotonic() >= deadline:
                        raise SearchUnavailable(
                            f"search index at {self._root} busy for {timeout:.0f}s"
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def _write_lock(self) -> contextlib.AbstractContextManager[None]:
        return self._flock(_WRITE_LOCK, timeout=self._lock_timeout)

    def _rebuild_running(self) -> bool:
        """True if a rebuild (in any process) is loading a new generation right now.

        Call with the write lock held. A state file left by a crashed rebuild is removed.
        """
        state = self._root / _REBUILD_STATE
        if not state.exists():
            return False
        try:
            with self._flock(_REBUILD_LOCK, timeout=None):
                # Nobody holds the rebuild lock: the state is stale (crashed rebuild).
                state.unlink(missing_ok=True)
                (self._root / _JOURNAL).unlink(missing_ok=True)
                return False
        except RebuildInProgress:
            return True

    def _fsync_root(self) -> None:
        fd = os.open(self._root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- generations -------------------------------------------------------------------

    def _new_generation(self) -> tuple[str, tantivy.Index]:
        """Create an empty generation directory with an index and its FORMAT file."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"gen-{stamp}-{secrets.token_hex(4)}"
        path = self._root / name
        path.mkdir(parents=True)
        index = tantivy.Index(self._schema, path=str(path), reuse=False)
        fmt = {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION}
        (path / _FORMAT_FILE).write_text(json.dumps(fmt), encoding="utf-8")
        return name, index

    def _point_to(self, name: str) -> None:
        """Atomically make ``name`` the live generation (symlink + rename)."""
        tmp = self._root / f".{_CURRENT}.{secrets.token_hex(4)}"
        os.symlink(name, tmp)
        os.replace(tmp, self._root / _CURRENT)
        self._fsync_root()

    def _open_generation(self, name: str) -> tantivy.Index:
        """Open an existing generation after checking that its format is ours."""
        path = self._root / name
        try:
            fmt = json.loads((path / _FORMAT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            fmt = None
        expected = {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION}
        if fmt != expected:
            raise IndexOutdated(
                f"search index {path} has format {fmt}, expected {expected}: rebuild it"
            )
        return tantivy.Index.open(str(path))

    def _live(self, *, locked: bool = False) -> tuple[str, tantivy.Index]:
        """The live generation's name and open index (created on first use).

        ``locked``: the caller holds the write lock (flock is not re-entrant across
        descriptors, so taking it again here would wait for ourselves).
        """
        if self._closed:
            raise SearchError("search index is closed")
        if os.getpid() != self._pid:
            # tantivy's threads do not survive fork(): reopen in the child.
            with self._mutex:
                self._pid, self._generation, self._index = os.getpid(), None, None
        target = self._resolve(locked=locked)
        with self._mutex:
            if self._index is None or self._generation != target:
                try:
                    self._index = self._open_generation(target)
                except SearchError:
                    raise
                except BaseException as exc:
                    if not _is_tantivy_failure(exc):
                        raise
                    raise SearchUnavailable(f"cannot open search index {target}: {exc}") from None
                self._generation = target
            return target, self._index

    def _resolve(self, *, locked: bool = False) -> str:
        """Name of the live generation, creating the first one if there is none yet."""
        try:
            return os.readlink(self._root / _CURRENT)
        except FileNotFoundError:
            return self._initialise(locked=locked)
        except OSError as exc:
            raise SearchUnavailable(f"search index at {self._root} not usable: {exc}") from None

    def _initialise(self, *, locked: bool) -> str:
        """Create the first generation if there is none yet; return the live name."""
        with contextlib.nullcontext() if locked else self._write_lock():
            try:
                return os.readlink(self._root / _CURRENT)
            except FileNotFoundError:
                pass
            try:
                name, _ = self._new_generation()
                self._point_to(name)
            except OSError as exc:
                raise SearchUnavailable(f"cannot create search index: {exc}") from None
            return name

    def _current_target(self) -> str | None:
        try:
            return os.readlink(self._root / _CURRENT)
        except OSError:
            return None

    # --- writing -----------------------------------------------------------------------

    def _apply(self, index: tantivy.Index, ops: list[dict[str, Any]]) -> None:
        """Apply write operations to ``index`` in order, then commit and reload."""
        writer = index.writer(heap_size=self._writer_heap, num_threads=1)
        try:
            for op in ops:
                kind = op["op"]
                if kind == "upsert":
                    for doc in op["docs"]:
                        # Delete-then-add in one writer: the delete only hits older copies.
                        writer.delete_documents_by_term("doc_key", doc.doc_key)
                        writer.add_document(_to_tantivy(doc))
                elif kind == "delete":
                    for key in op["doc_keys"]:
                        writer.delete_documents_by_term("doc_key", key)
                elif kind == "delete_document":
                    writer.delete_documents_by_term("document_id", op["document_id"])
                elif kind == "delete_case":
                    writer.delete_documents_by_term("case_id", op["case_id"])
                elif kind == "set_case_unit":
                    # Needs the committed state too: rewrite each entry from its stored copy.
                    writer.commit()
                    index.reload()
                    for doc in self._entries_of_case(index, op["case_id"]):
                        if doc.unit != op["unit"]:
                            writer.delete_documents_by_term("doc_key", doc.doc_key)
                            moved = dataclasses.replace(doc, unit=op["unit"])
                            writer.add_document(_to_tantivy(moved))
                elif kind == "mark_not_current":
                    # Needs the committed state (earlier ops of this batch included).
                    writer.commit()
                    index.reload()
                    for doc in self._stale_versions(index, op):
                        writer.delete_documents_by_term("doc_key", doc.doc_key)
                        writer.add_document(_to_tantivy(dataclasses.replace(doc, is_current=False)))
                else:  # pragma: no cover - ops are built in this module
                    raise ValueError(f"unknown operation {kind!r}")
            writer.commit()
        except BaseException:
            with contextlib.suppress(BaseException):
                writer.rollback()
            raise
        finally:
            with contextlib.suppress(BaseException):
                writer.wait_merging_threads()
        index.reload()

    def _stale_versions(self, index: tantivy.Index, op: dict[str, Any]) -> list[IndexedDocument]:
        """Current versions of op's document other than op's except_version."""
        q = tantivy.Query
        query = q.boolean_query(
            [
                (tantivy.Occur.Must, q.term_query(self._schema, "document_id", op["document_id"])),
                (tantivy.Occur.Must, q.term_query(self._schema, "is_current", True)),
                (
                    tantivy.Occur.MustNot,
                    q.term_query(self._schema, "version", int(op["except_version"])),
                ),
            ]
        )
        return _stored_matches(index, query)

    def _entries_of_case(self, index: tantivy.Index, case_id: str) -> list[IndexedDocument]:
        """Every entry of a case, rebuilt from the stored fields."""
        return _stored_matches(index, tantivy.Query.term_query(self._schema, "case_id", case_id))

    def _write(self, ops: list[dict[str, Any]]) -> None:
        """Apply ops to the live generation (and journal them if a rebuild is running)."""
        with self._write_lock():
            _, index = self._live(locked=True)
            try:
                if self._rebuild_running():
                    self._append_journal(ops)
                self._apply(index, ops)
            except SearchError:
                raise
            except BaseException as exc:
                if not _is_tantivy_failure(exc):
                    raise
                raise SearchUnavailable(f"search index write failed: {exc}") from None

    def _append_journal(self, ops: list[dict[str, Any]]) -> None:
        """Record ops for the rebuild to replay (called with the write lock held)."""
        with open(self._root / _JOURNAL, "a", encoding="utf-8") as journal:
            for op in ops:
                line = dict(op)
                if "docs" in line:
                    line["docs"] = [_doc_to_json(doc) for doc in op["docs"]]
                journal.write(json.dumps(line, ensure_ascii=False) + "\n")
            journal.flush()
            os.fsync(journal.fileno())

    def _read_journal(self) -> list[dict[str, Any]]:
        """The ops recorded during a rebuild, documents deserialised."""
        ops: list[dict[str, Any]] = []
        path = self._root / _JOURNAL
        if not path.exists():
            return ops
        with open(path, encoding="utf-8") as journal:
            for line in journal:
                op = json.loads(line)
                if "docs" in op:
                    op["docs"] = [_doc_from_json(data) for data in op["docs"]]
                ops.append(op)
        return ops

    def upsert(self, docs: Iterable[IndexedDocument]) -> int:
        """Add or replace (by doc_key) the given versions; return how many were written."""
        written = 0
        chunk: list[IndexedDocument] = []
        for doc in docs:
            if not isinstance(doc, IndexedDocument):
                raise InvalidRequest(f"upsert expects IndexedDocument, got {type(doc).__name__}")
            chunk.append(doc)
            if len(chunk) >= _UPSERT_CHUNK:
                self._write([{"op": "upsert", "docs": chunk}])
                written += len(chunk)
                chunk = []
        if chunk:
            self._write([{"op": "upsert", "docs": chunk}])
            written += len(chunk)
        return written

    def delete(self, doc_keys: Iterable[str]) -> None:
        """Remove the given versions; unknown keys are ignored."""
        keys = list(doc_keys)
        if not all(isinstance(key, str) for key in keys):
            raise InvalidRequest("doc_keys must be str")
        if keys:
            self._write([{"op": "delete", "doc_keys": keys}])

    def delete_document(self, document_id: str) -> None:
        """Remove every version of a document."""
        self._write([{"op": "delete_document", "document_id": str(document_id)}])

    def delete_case(self, case_id: str) -> None:
        """Remove every version of every document of a case."""
        self._write([{"op": "delete_case", "case_id": str(case_id)}])

    def mark_not_current(self, document_id: str, except_version: int) -> None:
        """Flag every version of ``document_id`` other than ``except_version`` not current."""
        if isinstance(except_version, bool) or not isinstance(except_version, int):
            raise InvalidRequest("except_version must be an int")
        self._write(
            [
                {
                    "op": "mark_not_current",
                    "document_id": str(document_id),
                    "except_version": except_version,
                }
            ]
        )

    def set_case_unit(self, case_id: str, unit: str) -> int:
        """Record ``unit`` on every entry of a case (after a transfer); return how many."""
        if not isinstance(case_id, str) or not isinstance(unit, str):
            raise InvalidRequest("case_id and unit must be str")
        self._write([{"op": "set_case_unit", "case_id": case_id, "unit": unit}])
        return int(
            self._read(
                lambda index: _count(
                    index.searcher().search(
                        tantivy.Query.term_query(self._schema, "case_id", case_id), 1, count=True
                    )
                )
            )
        )

    def case_units(self) -> dict[str, dict[str, int]]:
        """{case_id: {indexed unit: entries}} over the whole index (for drift checks)."""

        def run(index: tantivy.Index) -> dict[str, dict[str, int]]:
            searcher = index.searcher()
            # One aggregation per unit instead of one with a bucket per case: tantivy
            # caps an aggregation at 65,000 buckets, and no unit holds that many cases.
            aggs = {"unit": {"terms": {"field": "unit", "size": MAX_FACET_SIZE}}}
            units = searcher.aggregate(tantivy.Query.all_query(), aggs)["unit"]["buckets"]
            out: dict[str, dict[str, int]] = {}
            for bucket in units:
                unit = str(bucket["key"])
                held = tantivy.Query.term_query(self._schema, "unit", unit)
                cases = {"case_id": {"terms": {"field": "case_id", "size": 60_000}}}
                for case in searcher.aggregate(held, cases)["case_id"]["buckets"]:
                    out.setdefault(str(case["key"]), {})[unit] = int(case["doc_count"])
            return out

        return dict(self._read(run))

    def refresh(self) -> None:
        """Make all committed writes visible (every write commits; this reloads readers)."""
        self._read(lambda index: index.reload(), force_reload=True)

    # --- reading -----------------------------------------------------------------------

    def _read(self, run: Callable[[tantivy.Index], Any], *, force_reload: bool = False) -> Any:
        """Run a read against the live generation; retry once if a swap raced with it."""
        for attempt in range(2):
            generation, index = self._live()
            try:
                self._reload_if_changed(generation, index, force=force_reload)
                return run(index)
            except SearchError:
                raise
            except BaseException as exc:
                if not _is_tantivy_failure(exc):
                    raise
                # A rebuild in another process may have swapped and deleted this
                # generation between our readlink and the read: try the new one.
                if attempt == 0 and self._current_target() != generation:
                    continue
                raise SearchUnavailable(f"search failed: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _reload_if_changed(self, generation: str, index: tantivy.Index, *, force: bool) -> None:
        """Reload the reader when meta.json changed (a commit, in any process).

        tantivy's own reload policy lags ~0.5 s behind other processes' commits; a stat is
        cheaper than reloading on every read and sees them at once.
        """
        try:
            st = os.stat(self._root / generation / "meta.json")
            signature: tuple[str, int, int, int] | None = (
                generation,
                st.st_ino,
                st.st_mtime_ns,
                st.st_size,
            )
        except OSError:
            signature = None
        if force or signature is None or signature != self._meta_signature:
            index.reload()
            self._meta_signature = signature

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a query; the filter is part of the engine query (totals/facets respect it)."""
        if not isinstance(request, SearchRequest):
            raise InvalidRequest("search expects a SearchRequest")
        parsed = parse_query(request.query)
        query = self._compiler.compile(parsed, request.filter)
        highlighter = _Highlighter(parsed) if request.highlight else None

        def run(index: tantivy.Index) -> SearchResult:
            searcher = index.searcher()
            # With facets, the aggregation visits every match anyway and yields the total
            # (every entry has exactly one type); the page of hits then needs no full count,
            # so tantivy can skip blocks that cannot reach the top (block-max WAND).
            count = not request.facets
            if parsed.must:
                result = searcher.search(
                    query, request.per_page, count=count, offset=request.offset
                )
            else:
                # Nothing to rank by: list newest first.
                result = searcher.search(
                    query,
                    request.per_page,
                    count=count,
                    offset=request.offset,
                    order_by_field="created_at",
                    order=tantivy.Order.Desc,
                )
            hits = [
                self._hit(searcher.doc(address), score if parsed.must else 0.0, highlighter)
                for score, address in result.hits
            ]
            facets: dict[str, dict[str, int]] = {}
            case_units: dict[str, dict[str, int]] = {}
            total = _count(result)
            if request.facets:
                total, facets = self._facets(searcher, query, request.facet_size)
                if request.unit_check_cases:
                    case_units = self._case_units_of(searcher, query, request.unit_check_cases)
            return SearchResult(total=total, hits=hits, facets=facets, case_units=case_units)

        return self._read(run)

    @staticmethod
    def _hit(doc: tantivy.Document, score: float, highlighter: _Highlighter | None) -> Hit:
        """Build a Hit from a stored document."""
        stored: dict[str, Any] = {name: doc.get_first(name) for name in _HIT_FIELDS}
        title = bytes(doc.get_first("title_src") or b"").decode("utf-8")
        text = bytes(doc.get_first("text_src") or b"").decode("utf-8") if highlighter else ""
        return Hit(
            doc_key=stored["doc_key"],
            document_id=stored["document_id"],
            version=int(stored["version"]),
            case_id=stored["case_id"],
            case_reference=stored["case_reference"] or "",
            title=title,
            type=stored["type"],
            created_at=stored["created_at"],
            is_current=bool(stored["is_current"]),
            score=float(score),
            highlight=highlighter.highlight(title, text) if highlighter else "",
        )

    @staticmethod
    def _facets(
        searcher: tantivy.Searcher, query: tantivy.Query, size: int
    ) -> tuple[int, dict[str, dict[str, int]]]:
        """The total and the type / year / unit counts over every match (filter included)."""
        aggs = {
            # Every type, whatever ``size`` says: their sum is the total.
            "type": {"terms": {"field": "type", "size": MAX_FACET_SIZE}},
            "year": {"terms": {"field": "year", "size": size}},
            # One more: an empty label ("") may take a slot and is dropped below.
            "unit": {"terms": {"field": "unit", "size": size + 1}},
        }
        raw = searcher.aggregate(query, aggs)
        facets = {
            # Entries written without a unit ("") are left out of the unit facet.
            name: {
                str(b["key"]): int(b["doc_count"]) for b in raw[name]["buckets"] if b["key"] != ""
            }
            for name in aggs
        }
        total = sum(facets["type"].values())
        for name in ("type", "unit"):
            facets[name] = dict(list(facets[name].items())[:size])
        return total, facets

    def _case_units_of(
        self, searcher: tantivy.Searcher, query: tantivy.Query, cases: frozenset[str]
    ) -> dict[str, dict[str, int]]:
        """{case_id: {indexed unit: hits}} for the query's hits in ``cases``."""
        occur = tantivy.Occur
        within = tantivy.Query.boolean_query(
            [
                (occur.Must, query),
                (
                    occur.Must,
                    tantivy.Query.term_set_query(self._schema, "case_id", sorted(cases)),
                ),
            ]
        )
        aggs = {
            "case_id": {
                "terms": {"field": "case_id", "size": len(cases)},
                "aggs": {"unit": {"terms": {"field": "unit", "size": 1000}}},
            }
        }
        return _nested_buckets(searcher.aggregate(within, aggs)["case_id"])

    def count(self, filter: SearchFilter) -> int:
        """Number of indexed versions the filter allows."""
        if not isinstance(filter, SearchFilter):
            raise InvalidRequest("count expects a SearchFilter")
        query = self._compiler.compile(ParsedQuery(), filter)
        return int(self._read(lambda index: _count(index.searcher().search(query, 1))))

    def doc_keys(self) -> Iterator[str]:
        """Yield every indexed doc_key in ascending order (for drift checks)."""

        def run(index: tantivy.Index) -> list[tuple[str, int]]:
            # The filter makes tantivy count live documents only: deleted ones drop out.
            return index.searcher().terms_with_prefix(
                "doc_key", "", filter_query=tantivy.Query.all_query()
            )

        terms = self._read(run)
        return iter(sorted(term for term, count in terms if count > 0))

    # --- rebuild -----------------------------------------------------------------------

    def rebuild(
        self, docs: Iterable[IndexedDocument], progress: ProgressCallback | None = None
    ) -> int:
        """Build a new generation from ``docs`` beside the live one and swap atomically."""
        with self._flock(_REBUILD_LOCK, timeout=None):
            new_name: str | None = None
            try:
                with self._write_lock():
                    # Only the pointer is needed: the live generation may be unreadable
                    # (outdated format), which is exactly when a rebuild is run.
                    self._resolve(locked=True)
                    self._remove_stale_generations()
                    new_name, new_index = self._new_generation()
                    # From here on, writers journal their ops (they check under this lock).
                    (self._root / _JOURNAL).write_text("", encoding="utf-8")
                    (self._root / _REBUILD_STATE).write_text(
                        json.dumps({"generation": new_name, "pid": os.getpid()}),
                        encoding="utf-8",
                    )
                loaded = self._load(new_index, docs, progress)
                with self._write_lock():
                    old_name = self._current_target()
                    self._apply(new_index, self._read_journal())
                    self._point_to(new_name)
                    (self._root / _REBUILD_STATE).unlink(missing_ok=True)
                    (self._root / _JOURNAL).unlink(missing_ok=True)
                with self._mutex:
                    self._generation, self._index = new_name, new_index
                if old_name and old_name != new_name:
                    shutil.rmtree(self._root / old_name, ignore_errors=True)
            except BaseException as exc:
                self._abandon(new_name)
                if isinstance(exc, SearchError) or not _is_tantivy_failure(exc):
                    raise
                raise SearchUnavailable(f"search index rebuild failed: {exc}") from None
        if progress is not None:
            progress(loaded)
        return loaded

    def _load(
        self,
        index: tantivy.Index,
        docs: Iterable[IndexedDocument],
        progress: ProgressCallback | None,
    ) -> int:
        """Bulk-load ``docs`` into a fresh generation with one large writer."""
        writer = index.writer(
            heap_size=self._rebuild_heap, num_threads=max(1, min(4, os.cpu_count() or 1))
        )
        loaded = 0
        try:
            for doc in docs:
                if not isinstance(doc, IndexedDocument):
                    raise InvalidRequest(
                        f"rebuild expects IndexedDocument, got {type(doc).__name__}"
                    )
                # A source that yields a version twice must still leave one entry.
                writer.delete_documents_by_term("doc_key", doc.doc_key)
                writer.add_document(_to_tantivy(doc))
                loaded += 1
                if progress is not None and loaded % _PROGRESS_EVERY == 0:
                    progress(loaded)
            writer.commit()
        except BaseException:
            with contextlib.suppress(BaseException):
                writer.rollback()
            raise
        finally:
            with contextlib.suppress(BaseException):
                writer.wait_merging_threads()
        index.reload()
        return loaded

    def _abandon(self, new_name: str | None) -> None:
        """After a failed rebuild: stop journaling and drop the half-built generation."""
        with contextlib.suppress(SearchError, OSError), self._write_lock():
            (self._root / _REBUILD_STATE).unlink(missing_ok=True)
            (self._root / _JOURNAL).unlink(missing_ok=True)
            if new_name and self._current_target() != new_name:
                shutil.rmtree(self._root / new_name, ignore_errors=True)

    def _remove_stale_generations(self) -> None:
        """Delete generations left by crashed rebuilds (call with both locks held)."""
        live = self._current_target()
        for entry in self._root.iterdir():
            if entry.name != live and _GENERATION_RE.fullmatch(entry.name) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)

    # --- health --------------------------------------------------------------------------

    def check(self) -> None:
        """Open the live generation and run a trivial query; SearchUnavailable if broken."""
        self._read(lambda index: index.searcher().search(tantivy.Query.all_query(), 1))

    def generations(self) -> list[str]:
        """Names of the generation directories on disk (for tests and operators)."""
        return sorted(
            entry.name
            for entry in self._root.iterdir()
            if _GENERATION_RE.fullmatch(entry.name) and entry.is_dir()
        )

    def close(self) -> None:
        """Drop the open index (its reader threads and file handles)."""
        with self._mutex:
            self._index = None
            self._generation = None
            self._closed = True
