"""Search contract: exceptions, documents, filters, requests, results and the backend protocol."""

# Exception tree (every backend raises only these, never tantivy/elasticsearch errors):
#
#   SearchError                       base class; "something went wrong in search"
#   ├── SearchUnavailable             backend unreachable, down, timing out, misconfigured,
#   │                                 index missing/outdated: retrying later (or ops) may
#   │                                 help; callers typically map it to HTTP 503
#   ├── QuerySyntaxError (+ValueError) the user's query cannot be run; ``str(exc)`` is a
#   │                                 friendly English message for the user, ``code`` a
#   │                                 stable key for translations; map to HTTP 400/422
#   ├── InvalidRequest (+ValueError)  a caller bug: page/per_page out of range, bad filter,
#   │                                 malformed IndexedDocument
#   └── RebuildInProgress             another rebuild holds the lock; try again later
#
# The index is DERIVED data: it holds no permissions. Callers pass the set of case ids the
# user may see in every request (SearchFilter.case_ids) and backends apply it inside the
# engine query, so totals, facets and pages only ever count what the user may see, and a
# transfer of a case takes effect on the very next request without touching the index.

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = [
    "FACET_NAMES",
    "FIELD_BOOSTS",
    "HIGHLIGHT_FRAGMENT_CHARS",
    "HIGHLIGHT_MAX_ANALYZED_CHARS",
    "MAX_CASE_IDS",
    "MAX_FACET_SIZE",
    "MAX_PER_PAGE",
    "MAX_RESULT_WINDOW",
    "MAX_TEXT_CHARS",
    "TIMEZONE_NAME",
    "Hit",
    "IndexedDocument",
    "InvalidRequest",
    "ProgressCallback",
    "QuerySyntaxError",
    "RebuildInProgress",
    "SearchBackend",
    "SearchError",
    "SearchFilter",
    "SearchRequest",
    "SearchResult",
    "SearchUnavailable",
    "canton_timezone",
    "date_bounds_utc",
    "local_year",
]

#: Extracted text beyond this many characters is not indexed (a 2 MB cap per version:
#: enough for several hundred pages; protects memory and the index from OCR garbage).
MAX_TEXT_CHARS = 2_000_000

#: Largest page a caller may ask for.
MAX_PER_PAGE = 100

#: Deepest result a caller may page to (Elasticsearch's default index.max_result_window).
MAX_RESULT_WINDOW = 10_000

#: Most case ids one filter may carry (Elasticsearch's default index.max_terms_count).
MAX_CASE_IDS = 65_536

#: Most buckets one facet may return.
MAX_FACET_SIZE = 10_000

#: The facets every search with ``facets=True`` returns, each as {key: count}. ``unit`` is
#: the unit recorded in the index (responsible when the entry was last written): the
#: search service corrects it from the database for cases that moved recently (see
#: ``SearchRequest.unit_check_cases``), so the facet it shows is the responsible unit NOW.
FACET_NAMES = ("type", "year", "unit", "tags")

#: Boost of a match per searched text field, for every backend: a match in the title or
#: the person's name says more about a document than one somewhere in fifty pages of text.
FIELD_BOOSTS: Mapping[str, float] = MappingProxyType(
    {"title": 2.0, "text": 1.0, "person_names": 2.0}
)

#: Length of the highlight snippet (and of the lead-in shown when nothing matched).
HIGHLIGHT_FRAGMENT_CHARS = 200

#: Highlighting looks for matches in at most this many leading characters of a text.
HIGHLIGHT_MAX_ANALYZED_CHARS = 500_000

#: Calendar of the canton: date filters and the ``year`` facet use local days and years.
TIMEZONE_NAME = "Europe/Zurich"


class SearchError(Exception):
    """Base class of all search errors."""


class SearchUnavailable(SearchError):
    """The backend cannot be used right now (unreachable, down, timeout, index outdated)."""


class IndexOutdated(SearchUnavailable):
    """The index was written in an older format or analysis: rebuild it (``dossier init``)."""


class QuerySyntaxError(SearchError, ValueError):
    """The user's query cannot be run; the message is meant for the user."""

    def __init__(self, message: str, code: str = "invalid_query") -> None:
        """Keep a user-facing ``message`` and a stable ``code`` (e.g. "query_too_long")."""
        super().__init__(message)
        self.message = message
        self.code = code


class InvalidRequest(SearchError, ValueError):
    """The caller passed invalid arguments (a bug in the caller, not the user's fault)."""


class RebuildInProgress(SearchError):
    """Another rebuild of the same index is running."""


def canton_timezone() -> ZoneInfo:
    """Return the canton's time zone; SearchUnavailable if the tz database is missing."""
    try:
        return ZoneInfo(TIMEZONE_NAME)
    except ZoneInfoNotFoundError:
        raise SearchUnavailable(
            f"time zone {TIMEZONE_NAME} not found: install the tzdata system package"
        ) from None


def local_year(moment: dt.datetime) -> int:
    """Calendar year of an aware datetime in the canton's time zone (the ``year`` facet)."""
    return moment.astimezone(canton_timezone()).year


def date_bounds_utc(
    created_from: dt.date | None, created_to: dt.date | None
) -> tuple[dt.datetime | None, dt.datetime | None]:
    """Turn inclusive local calendar days into a UTC half-open range [start, end)."""
    tz = canton_timezone()
    start = end = None
    if created_from is not None:
        start = dt.datetime.combine(created_from, dt.time(), tz).astimezone(dt.UTC)
    if created_to is not None:
        next_day = created_to + dt.timedelta(days=1)
        end = dt.datetime.combine(next_day, dt.time(), tz).astimezone(dt.UTC)
    return start, end


_AHV_DIGITS = re.compile(r"756[0-9]{10}")
_SEPARATORS = re.compile(r"[^0-9A-Za-z]+")


def _require_str(name: str, value: object, *, empty_ok: bool = True) -> str:
    """Return ``value`` if it is a str (non-empty unless ``empty_ok``), else InvalidRequest."""
    if not isinstance(value, str):
        raise InvalidRequest(f"IndexedDocument.{name} must be a str, not {type(value).__name__}")
    if not empty_ok and not value.strip():
        raise InvalidRequest(f"IndexedDocument.{name} must not be empty")
    return value


@dataclass(frozen=True)
class IndexedDocument:
    """What the index holds for ONE document version (the caller decides which versions).

    ``doc_key`` is ``"<document_id>:<version>"``; pass it or leave it empty to have it
    derived. Identifiers are normalised on construction (``ahv``: 13 digits or "";
    ``zemis``: separators removed, upper case; ``case_reference``: upper case) and ``text``
    is cut at MAX_TEXT_CHARS. ``created_at`` must be timezone-aware; it is kept in UTC.
    """

    document_id: str
    version: int
    case_id: str
    case_reference: str
    type: str
    title: str
    text: str
    person_names: str
    zemis: str
    ahv: str
    created_at: dt.datetime
    is_current: bool
    doc_key: str = ""
    #: Code of the unit responsible for the case when this entry was written (facet only;
    #: never used to decide who may see the entry).
    unit: str = ""
    #: The document's keywords (already normalised by the caller): searched like the
    #: title, and counted in the ``tags`` facet.
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        """Validate and normalise the fields (InvalidRequest on caller bugs)."""
        document_id = _require_str("document_id", self.document_id, empty_ok=False)
        if ":" in document_id:
            raise InvalidRequest("IndexedDocument.document_id must not contain ':'")
        if isinstance(self.version, bool) or not isinstance(self.version, int):
            raise InvalidRequest("IndexedDocument.version must be an int")
        if self.version < 1:
            raise InvalidRequest("IndexedDocument.version must be >= 1")
        expected_key = f"{document_id}:{self.version}"
        if self.doc_key and self.doc_key != expected_key:
            raise InvalidRequest(f"IndexedDocument.doc_key {self.doc_key!r} != {expected_key!r}")
        _require_str("case_id", self.case_id, empty_ok=False)
        _require_str("type", self.type, empty_ok=False)
        for name in ("case_reference", "title", "text", "person_names", "zemis", "ahv", "unit"):
            _require_str(name, getattr(self, name))
        if isinstance(self.tags, str) or not all(isinstance(t, str) for t in self.tags):
            raise InvalidRequest("IndexedDocument.tags must be a sequence of str")
        if not isinstance(self.is_current, bool):
            raise InvalidRequest("IndexedDocument.is_current must be a bool")
        if not isinstance(self.created_at, dt.datetime) or self.created_at.tzinfo is None:
            raise InvalidRequest("IndexedDocument.created_at must be a timezone-aware datetime")
        ahv = _SEPARATORS.sub("", self.ahv)
        if ahv and _AHV_DIGITS.fullmatch(ahv) is None:
            raise InvalidRequest("IndexedDocument.ahv must be 13 digits starting 756, or ''")
        set_ = object.__setattr__  # frozen dataclass: normalise once, here
        set_(self, "doc_key", expected_key)
        set_(self, "tags", tuple(t for t in self.tags if t.strip()))
        set_(self, "ahv", ahv)
        set_(self, "zemis", _SEPARATORS.sub("", self.zemis).upper())
        set_(self, "case_reference", self.case_reference.strip().upper())
        set_(self, "created_at", self.created_at.astimezone(dt.UTC))
        if len(self.text) > MAX_TEXT_CHARS:
            set_(self, "text", self.text[:MAX_TEXT_CHARS])


def _frozen_ids(name: str, value: object) -> frozenset[str] | None:
    """Coerce an iterable of ids to a frozenset of str (None stays None)."""
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidRequest(f"SearchFilter.{name} must be a set of str or None")
    ids = frozenset(value)
    if not all(isinstance(item, str) for item in ids):
        raise InvalidRequest(f"SearchFilter.{name} must contain only str")
    return ids


@dataclass(frozen=True)
class SearchFilter:
    """What a caller may and wants to see; applied INSIDE the engine query.

    ``case_ids`` has no default on purpose: None (every case, e.g. the canton) must be
    said explicitly; an empty set matches nothing. ``types`` None means all types.
    ``created_from``/``created_to`` are inclusive local (Europe/Zurich) calendar days.
    ``current_only`` restricts to current versions.
    """

    case_ids: frozenset[str] | None
    types: frozenset[str] | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None
    current_only: bool = True

    def __post_init__(self) -> None:
        """Coerce id collections to frozensets and validate the rest."""
        case_ids = _frozen_ids("case_ids", self.case_ids)
        if case_ids is not None and len(case_ids) > MAX_CASE_IDS:
            raise InvalidRequest(f"SearchFilter.case_ids holds more than {MAX_CASE_IDS} ids")
        object.__setattr__(self, "case_ids", case_ids)
        object.__setattr__(self, "types", _frozen_ids("types", self.types))
        for name in ("created_from", "created_to"):
            value = getattr(self, name)
            # datetime is a date subclass; a datetime here would silently lose its time.
            if value is not None and (
                not isinstance(value, dt.date) or isinstance(value, dt.datetime)
            ):
                raise InvalidRequest(f"SearchFilter.{name} must be a date or None")
        if not isinstance(self.current_only, bool):
            raise InvalidRequest("SearchFilter.current_only must be a bool")

    @property
    def matches_nothing(self) -> bool:
        """True when the filter excludes every document whatever the index holds."""
        return (self.case_ids is not None and not self.case_ids) or (
            self.types is not None and not self.types
        )


@dataclass(frozen=True)
class SearchRequest:
    """One search: the caseworker's query text, the caller's filter and the page wanted."""

    query: str
    filter: SearchFilter
    page: int = 1
    per_page: int = 20
    facets: bool = False
    highlight: bool = True
    facet_size: int = 1000
    #: With ``facets``: cases whose hits are also counted per case and indexed unit in
    #: ``SearchResult.case_units`` (cases that moved recently, whose entries may still
    #: carry the previous unit).
    unit_check_cases: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        """Reject out-of-range paging (caller bugs); the query is checked by the parser."""
        if not isinstance(self.query, str):
            raise InvalidRequest("SearchRequest.query must be a str")
        if not isinstance(self.filter, SearchFilter):
            raise InvalidRequest("SearchRequest.filter must be a SearchFilter")
        checked = _frozen_ids("unit_check_cases", self.unit_check_cases) or frozenset()
        if len(checked) > MAX_CASE_IDS:
            raise InvalidRequest(f"SearchRequest.unit_check_cases holds more than {MAX_CASE_IDS}")
        object.__setattr__(self, "unit_check_cases", checked)
        for name, low, high in (
            ("page", 1, MAX_RESULT_WINDOW),
            ("per_page", 1, MAX_PER_PAGE),
            ("facet_size", 1, MAX_FACET_SIZE),
        ):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise InvalidRequest(f"SearchRequest.{name} must be an int in [{low}, {high}]")
        if self.page * self.per_page > MAX_RESULT_WINDOW:
            raise InvalidRequest(
                f"SearchRequest pages beyond the first {MAX_RESULT_WINDOW} results are not served"
            )

    @property
    def offset(self) -> int:
        """Index of the first hit of the requested page."""
        return (self.page - 1) * self.per_page


@dataclass(frozen=True)
class Hit:
    """One result row. ``highlight`` is HTML-SAFE (escaped text, matches in <mark>)."""

    doc_key: str
    document_id: str
    version: int
    case_id: str
    case_reference: str
    title: str
    type: str
    created_at: dt.datetime
    is_current: bool
    score: float
    highlight: str = ""


@dataclass(frozen=True)
class SearchResult:
    """A page of hits plus the total and facets over ALL hits the filter allows."""

    total: int
    hits: list[Hit]
    facets: dict[str, dict[str, int]] = field(default_factory=dict)
    #: For each requested ``unit_check_cases`` case with hits: {indexed unit: hits}.
    case_units: dict[str, dict[str, int]] = field(default_factory=dict)


#: Called during a rebuild with the number of documents loaded so far.
ProgressCallback = Callable[[int], None]


@runtime_checkable
class SearchBackend(Protocol):
    """A full-text index of document versions (tantivy embedded, Elasticsearch production)."""

    def upsert(self, docs: Iterable[IndexedDocument]) -> int:
        """Add or replace (by doc_key) the given versions; return how many were written."""
        ...

    def delete(self, doc_keys: Iterable[str]) -> None:
        """Remove the given versions; unknown keys are ignored."""
        ...

    def delete_document(self, document_id: str) -> None:
        """Remove every version of a document."""
        ...

    def delete_case(self, case_id: str) -> None:
        """Remove every version of every document of a case."""
        ...

    def mark_not_current(self, document_id: str, except_version: int) -> None:
        """Flag every version of ``document_id`` other than ``except_version`` not current."""
        ...

    def set_case_unit(self, case_id: str, unit: str) -> int:
        """Record ``unit`` on every entry of a case (after a transfer); return how many."""
        ...

    def case_units(self) -> dict[str, dict[str, int]]:
        """{case_id: {indexed unit: entries}} over the whole index (for drift checks)."""
        ...

    def search(self, request: SearchRequest) -> SearchResult:
        """Run a query; the filter is part of the engine query (totals/facets respect it)."""
        ...

    def count(self, filter: SearchFilter) -> int:
        """Number of indexed versions the filter allows."""
        ...

    def doc_keys(self) -> Iterator[str]:
        """Yield every indexed doc_key in ascending order (for drift checks)."""
        ...

    def refresh(self) -> None:
        """Make all completed writes visible to searches."""
        ...

    def rebuild(
        self, docs: Iterable[IndexedDocument], progress: ProgressCallback | None = None
    ) -> int:
        """Build a new index from ``docs`` beside the live one and swap atomically.

        Searches keep using the complete old index until the swap; writes made during the
        rebuild reach the new index too. Raises RebuildInProgress if another rebuild runs.
        Returns the number of documents loaded.
        """
        ...

    def check(self) -> None:
        """Cheap health probe; raises SearchUnavailable if the index cannot be used."""
        ...

    def describe(self) -> str:
        """Human-readable location for logs (never contains credentials)."""
        ...

    def close(self) -> None:
        """Release files, threads and connections."""
        ...
