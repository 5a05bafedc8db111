"""TantivyIndex: the embedded SearchBackend, composed of schema, compiler, highlighter, store."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import tantivy

from search.base import (
    MAX_FACET_SIZE,
    Hit,
    IndexedDocument,
    InvalidRequest,
    ProgressCallback,
    SearchError,
    SearchFilter,
    SearchRequest,
    SearchResult,
    SearchUnavailable,
)
from search.query import ParsedQuery, parse_query
from search.tantivy_index.compiler import Compiler
from search.tantivy_index.highlight import Highlighter
from search.tantivy_index.schema import HIT_FIELDS, build_schema, from_stored, to_tantivy
from search.tantivy_index.store import GenerationStore, is_tantivy_failure

__all__ = ["TantivyIndex"]

_UPSERT_CHUNK = 500
_PROGRESS_EVERY = 1000


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
    return [from_stored(searcher.doc(address).to_dict()) for _, address in hits]


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
        self._schema = build_schema()
        self._compiler = Compiler(self._schema)
        self._store = GenerationStore(self._root, self._schema, lock_timeout=lock_timeout)
        self._writer_heap = writer_heap_bytes
        self._rebuild_heap = rebuild_heap_bytes

    def describe(self) -> str:
        """Human-readable location for logs."""
        return f"tantivy:{self._root}"

    def __repr__(self) -> str:
        """Show the location."""
        return f"TantivyIndex({str(self._root)!r})"

    # --- writing -----------------------------------------------------------------------

    def _apply(self, index: tantivy.Index, ops: list[dict[str, Any]]) -> None:
        """Apply write operations to ``index`` in order, then commit and reload."""
        with _writing(index, index.writer(heap_size=self._writer_heap, num_threads=1)) as writer:
            for op in ops:
                kind = op["op"]
                if kind == "upsert":
                    for doc in op["docs"]:
                        # Delete-then-add in one writer: the delete only hits older copies.
                        writer.delete_documents_by_term("doc_key", doc.doc_key)
                        writer.add_document(to_tantivy(doc))
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
                            writer.add_document(to_tantivy(moved))
                elif kind == "mark_not_current":
                    # Needs the committed state (earlier ops of this batch included).
                    writer.commit()
                    index.reload()
                    for doc in self._stale_versions(index, op):
                        writer.delete_documents_by_term("doc_key", doc.doc_key)
                        writer.add_document(to_tantivy(dataclasses.replace(doc, is_current=False)))
                else:  # pragma: no cover - ops are built in this module
                    raise ValueError(f"unknown operation {kind!r}")

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
        with self._store.write_lock():
            _, index = self._store.live(locked=True)
            try:
                if self._store.rebuild_running():
                    self._store.append_journal(ops)
                self._apply(index, ops)
            except SearchError:
                raise
            except BaseException as exc:
                if not is_tantivy_failure(exc):
                    raise
                raise SearchUnavailable(f"search index write failed: {exc}") from None

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
            self._store.read(
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

        return dict(self._store.read(run))

    def refresh(self) -> None:
        """Make all committed writes visible (every write commits; this reloads readers)."""
        self._store.read(lambda index: index.reload(), force_reload=True)

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a query; the filter is part of the engine query (totals/facets respect it)."""
        if not isinstance(request, SearchRequest):
            raise InvalidRequest("search expects a SearchRequest")
        parsed = parse_query(request.query)
        query = self._compiler.compile(parsed, request.filter)
        highlighter = Highlighter(parsed) if request.highlight else None

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

        return self._store.read(run)

    @staticmethod
    def _hit(doc: tantivy.Document, score: float, highlighter: Highlighter | None) -> Hit:
        """Build a Hit from a stored document."""
        stored: dict[str, Any] = {name: doc.get_first(name) for name in HIT_FIELDS}
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
            "tags": {"terms": {"field": "tags", "size": size}},
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
        return int(self._store.read(lambda index: _count(index.searcher().search(query, 1))))

    def doc_keys(self) -> Iterator[str]:
        """Yield every indexed doc_key in ascending order (for drift checks)."""

        def run(index: tantivy.Index) -> list[tuple[str, int]]:
            # The filter makes tantivy count live documents only: deleted ones drop out.
            return index.searcher().terms_with_prefix(
                "doc_key", "", filter_query=tantivy.Query.all_query()
            )

        terms = self._store.read(run)
        return iter(sorted(term for term, count in terms if count > 0))

    # --- rebuild -----------------------------------------------------------------------

    def rebuild(
        self, docs: Iterable[IndexedDocument], progress: ProgressCallback | None = None
    ) -> int:
        """Build a new generation from ``docs`` beside the live one and swap atomically."""
        store = self._store
        with store.rebuild_lock():
            new_name: str | None = None
            try:
                with store.write_lock():
                    new_name, new_index = store.begin_rebuild()
                loaded = self._load(new_index, docs, progress)
                with store.write_lock():
                    old_name = store.current_target()
                    self._apply(new_index, store.read_journal())
                    store.swap_to(new_name)
                store.adopt(new_name, new_index, old_name)
            except BaseException as exc:
                store.abandon(new_name)
                if isinstance(exc, SearchError) or not is_tantivy_failure(exc):
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
        with _writing(index, writer):
            for doc in docs:
                if not isinstance(doc, IndexedDocument):
                    raise InvalidRequest(
                        f"rebuild expects IndexedDocument, got {type(doc).__name__}"
                    )
                # A source that yields a version twice must still leave one entry.
                writer.delete_documents_by_term("doc_key", doc.doc_key)
                writer.add_document(to_tantivy(doc))
                loaded += 1
                if progress is not None and loaded % _PROGRESS_EVERY == 0:
                    progress(loaded)
        return loaded

    # --- health --------------------------------------------------------------------------

    def check(self) -> None:
        """Open the live generation and run a trivial query; SearchUnavailable if broken."""
        self._store.read(lambda index: index.searcher().search(tantivy.Query.all_query(), 1))

    def generations(self) -> list[str]:
        """Names of the generation directories on disk (for tests and operators)."""
        return self._store.generations()

    def close(self) -> None:
        """Drop the open index (its reader threads and file handles)."""
        self._store.close()


@contextlib.contextmanager
def _writing(index: tantivy.Index, writer: Any) -> Iterator[Any]:
    """Yield the writer; commit and reload after the block, roll back if it fails.

    The merging threads are always waited for, so no writer outlives its batch.
    """
    try:
        yield writer
        writer.commit()
    except BaseException:
        with contextlib.suppress(BaseException):
            writer.rollback()
        raise
    finally:
        with contextlib.suppress(BaseException):
            writer.wait_merging_threads()
    index.reload()
