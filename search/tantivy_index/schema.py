"""The tantivy schema of the embedded index and the mapping of documents to and from it."""

# Text is analysed in Python (search.analysis) and handed to tantivy as strings of terms
# split on whitespace: the German chain needs ae/oe/ue folding and additive decompounding,
# which tantivy's built-in filters do not offer (its SplitCompoundWords replaces a word by
# its parts, and only when the parts cover it fully); the stemmer itself is tantivy's Rust
# Snowball German. Compound parts go to their own field "parts" (words, not phrases). The
# original strings are stored as bytes; highlights are computed from them in Python with
# the same analysis, and HTML-escaped.
#
# FORMAT_VERSION 3 (3: tags). Tags are searched as part of the title (their terms follow
# the title's) and counted in the ``tags`` facet (a raw, multi-valued fast field).
# Searchable: title, text, person_names (terms, positions), parts,
# prefix (normalised surface words of title, text and names plus compound parts, doc ids
# only: prefix* queries expand in ONE field instead of four), doc_key, document_id,
# case_id, case_reference, type, zemis, ahv, version, created_at, year (Zurich calendar
# year), is_current, unit. ``unit`` (responsible unit when the entry was written) only
# feeds the unit facet, which the search service corrects from the database for cases
# that moved recently; who may see an entry is never decided from the index.

from __future__ import annotations

from typing import Any

import tantivy

from search.analysis import analyze, analyze_names
from search.base import IndexedDocument, local_year

__all__ = [
    "FORMAT_VERSION",
    "HIT_FIELDS",
    "SOURCE_FIELDS",
    "build_schema",
    "from_stored",
    "to_tantivy",
]

#: Version of the schema below; a generation written with another one must be rebuilt.
FORMAT_VERSION = 3

#: Original strings are stored in these bytes fields (the searchable fields hold terms).
SOURCE_FIELDS = {"title": "title_src", "text": "text_src", "person_names": "names_src"}

#: Stored fields a search hit is built from.
HIT_FIELDS = (
    "doc_key",
    "document_id",
    "version",
    "case_id",
    "case_reference",
    "type",
    "created_at",
    "is_current",
)


def build_schema() -> tantivy.Schema:
    """The index schema: keyword fields raw, text fields as analysed term strings."""
    sb = tantivy.SchemaBuilder()
    for name in ("doc_key", "document_id", "case_reference", "zemis", "ahv"):
        sb.add_text_field(name, stored=True, tokenizer_name="raw")
    for name in ("case_id", "type", "unit", "tags"):
        # fast: the facets are terms aggregations over these columns (tags: one per tag).
        sb.add_text_field(name, stored=True, tokenizer_name="raw", fast=True)
    for name in ("title", "text", "person_names"):
        # Terms produced by search.analysis, split on whitespace; positions for phrases.
        sb.add_text_field(name, stored=False, tokenizer_name="whitespace")
    # Domain parts of compounds in title or text: matched as words, never in phrases.
    sb.add_text_field("parts", stored=False, tokenizer_name="whitespace", index_option="freq")
    # Every distinct word once, doc ids only: what prefix* expands against.
    sb.add_text_field("prefix", stored=False, tokenizer_name="whitespace", index_option="basic")
    for name in SOURCE_FIELDS.values():
        # The original strings, for hits, highlights and re-indexing (not searchable).
        sb.add_bytes_field(name, stored=True, indexed=False)
    sb.add_integer_field("version", stored=True, indexed=True)
    sb.add_date_field("created_at", stored=True, indexed=True, fast=True)
    sb.add_integer_field("year", stored=False, indexed=True, fast=True)
    sb.add_boolean_field("is_current", stored=True, indexed=True, fast=True)
    return sb.build()


def to_tantivy(doc: IndexedDocument) -> tantivy.Document:
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
    for tag in doc.tags:
        out.add_text("tags", tag)
    # Tags are searched like words of the title; highlights still show the title only.
    title, text = analyze(" ".join((doc.title, *doc.tags))), analyze(doc.text)
    out.add_text("title", title.terms)
    out.add_text("text", text.terms)
    out.add_text("parts", f"{title.parts} {text.parts}")
    names = analyze_names(doc.person_names)
    out.add_text("person_names", names)
    # Compound parts go in stemmed ("gutsprach"): unstemmed parts as well cost a third of
    # the indexing rate and a slower p95 for prefix queries in bench/search.py.
    out.add_text("prefix", f"{title.words} {text.words} {names} {title.parts} {text.parts}")
    for field, source in SOURCE_FIELDS.items():
        out.add_bytes(source, getattr(doc, field).encode("utf-8"))
    out.add_integer("version", doc.version)
    out.add_date("created_at", doc.created_at)
    out.add_integer("year", local_year(doc.created_at))
    out.add_boolean("is_current", doc.is_current)
    return out


def from_stored(stored: dict[str, list[Any]]) -> IndexedDocument:
    """Rebuild an IndexedDocument from a stored tantivy document."""

    def first(name: str, default: Any = "") -> Any:
        values = stored.get(name) or [default]
        return values[0]

    def source(field: str) -> str:
        return bytes(first(SOURCE_FIELDS[field], b"")).decode("utf-8")

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
        tags=tuple(str(t) for t in stored.get("tags") or ()),
    )
