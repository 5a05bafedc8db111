"""Keeps the derived search index in step with the database and storage.

The index holds the CURRENT version of every processed document. It is derived data: it
can be rebuilt from database + extracted-text objects at any time (``dossier reindex``) and
checked for drift (``dossier index verify``). It never decides who may see a document: the
search service filters by the cases the caller may read, computed from the database at
query time, so a transfer needs no reindex for access to follow it at once.

Each entry also records the unit responsible when it was written, for the unit facet
only. A transfer queues ``dossier.sync_case_unit`` (through the outbox) to rewrite that
field and then marks the responsibility period synced; until then the search service
corrects the facet from the database for that case, and ``sync_pending`` (periodic)
resends relabellings that did not finish.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.models import Case, Document, DocumentVersion, Responsibility, Unit
from search import IndexedDocument
from storage import ObjectNotFound

if TYPE_CHECKING:
    from dossier_service.container import Container

log = logging.getLogger(__name__)


def text_key(version_id: str) -> str:
    """Key of a version's extracted text: derived from the version id, beside the original."""
    return f"derived/{version_id[:2]}/{version_id}/text.txt"


def read_text(container: Container, key: str | None) -> str:
    """The stored extracted text ("" if there is none)."""
    if not key:
        return ""
    try:
        return b"".join(container.store.open(key)).decode("utf-8", "replace")
    except ObjectNotFound:
        log.warning("extracted text %s is missing; indexing metadata only", key)
        return ""


def _current_numbers(session: Session, document_ids: list[str]) -> dict[str, int]:
    rows = session.execute(
        select(DocumentVersion.document_id, func.max(DocumentVersion.number))
        .where(DocumentVersion.document_id.in_(document_ids))
        .group_by(DocumentVersion.document_id)
    ).all()
    return {doc_id: number for doc_id, number in rows}


def responsible_units(session: Session, case_ids: set[str] | list[str]) -> dict[str, str]:
    """{case_id: code of the unit responsible now} for the given cases."""
    if not case_ids:
        return {}
    rows = session.execute(
        select(Responsibility.case_id, Unit.code)
        .join(Unit, Unit.id == Responsibility.unit_id)
        .where(Responsibility.case_id.in_(case_ids), Responsibility.ended_at.is_(None))
    ).all()
    return {case_id: code for case_id, code in rows}


def build_entry(
    version: DocumentVersion, document: Document, case: Case, text: str, unit: str
) -> IndexedDocument:
    """The index entry of one (current) version."""
    return IndexedDocument(
        document_id=document.id,
        version=version.number,
        case_id=case.id,
        case_reference=case.reference,
        type=document.type,
        title=document.title,
        text=text,
        person_names=f"{case.given_names} {case.family_name}",
        zemis=case.zemis_normalized,
        ahv=case.ahv_number or "",
        created_at=version.created_at,
        is_current=True,
        unit=unit,
        tags=tuple(document.tags or ()),
    )


def index_version(container: Container, version_id: str) -> bool:
    """Index a version if it is its document's current one; drop older versions' entries.

    Returns False when the version is not current (a newer one will be indexed instead).
    """
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is None:
            return False
        document = version.document
        if document.withdrawn_at is not None:
            return False  # withdrawn while it was processed: it stays out of the index
        case = session.get(Case, document.case_id)
        assert case is not None
        current = _current_numbers(session, [document.id]).get(document.id)
        if current != version.number:
            return False
        unit = responsible_units(session, [case.id]).get(case.id, "")
        entry = build_entry(version, document, case, read_text(container, version.text_key), unit)
        stale = [f"{document.id}:{n}" for n in range(1, version.number)]
    index = container.search
    index.upsert([entry])
    if stale:
        index.delete(stale)
    # A transfer may have committed (and its unit sync run) while this entry was being
    # built: look again, so the entry never keeps the previous unit for good.
    with container.db.transaction() as session:
        now_unit = responsible_units(session, [entry.case_id]).get(entry.case_id, "")
    if now_unit != unit:
        index.set_case_unit(entry.case_id, now_unit)
    index.refresh()
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is not None:
            version.indexed_at = utcnow()
    return True


def index_document(container: Container, document_id: str, versions: int) -> bool:
    """Rewrite a document's entry after a correction or move; remove it if withdrawn or gone.

    ``versions`` is the highest version number when the task was queued: every entry up to
    it is removed for a withdrawn or purged document. Returns True if an entry was written.
    """
    with container.db.transaction() as session:
        document = session.get(Document, document_id)
        entry: IndexedDocument | None = None
        version_id: str | None = None
        last = versions
        if document is not None and document.versions:
            last = max(last, document.versions[-1].number)
        if document is not None and document.withdrawn_at is None and document.versions:
            version = document.versions[-1]
            if version.processing == "ready":
                case = session.get(Case, document.case_id)
                assert case is not None
                unit = responsible_units(session, [case.id]).get(case.id, "")
                entry = build_entry(
                    version, document, case, read_text(container, version.text_key), unit
                )
                version_id = version.id
    index = container.search
    if entry is None:
        index.delete([f"{document_id}:{n}" for n in range(1, last + 1)])
        index.refresh()
        return False
    index.upsert([entry])
    stale = [f"{document_id}:{n}" for n in range(1, entry.version)]
    if stale:
        index.delete(stale)
    index.refresh()
    with container.db.transaction() as session:
        row = session.get(DocumentVersion, version_id)
        if row is not None:
            row.indexed_at = utcnow()
    return True


def iter_entries(container: Container, batch: int = 500) -> Iterator[IndexedDocument]:
    """Every current, processed version as an index entry (for a rebuild)."""
    last_id = ""
    while True:
        with container.db.transaction() as session:
            documents = list(
                session.execute(
                    select(Document).where(Document.id > last_id).order_by(Document.id).limit(batch)
                ).scalars()
            )
            if not documents:
                return
            cases = {
                c.id: c
                for c in session.execute(
                    select(Case).where(Case.id.in_({d.case_id for d in documents}))
                ).scalars()
            }
            units = responsible_units(session, set(cases))
            pending = []
            for document in documents:
                if document.withdrawn_at is not None or not document.versions:
                    continue  # withdrawn documents are never searchable
                version = document.versions[-1]
                if version.processing == "ready":
                    case = cases[document.case_id]
                    pending.append(
                        (version, document, case, version.text_key, units.get(case.id, ""))
                    )
            last_id = documents[-1].id
        for version, document, case, key, unit in pending:
            yield build_entry(version, document, case, read_text(container, key), unit)


def expected_keys(container: Container) -> set[str]:
    """The doc_keys the index should hold according to the database."""
    keys: set[str] = set()
    with container.db.transaction() as session:
        rows = session.execute(
            select(DocumentVersion.document_id, DocumentVersion.number, DocumentVersion.processing)
            .join(
                Document,
                (Document.id == DocumentVersion.document_id) & Document.withdrawn_at.is_(None),
            )
            .join(
                (
                    current := select(
                        DocumentVersion.document_id.label("doc_id"),
                        func.max(DocumentVersion.number).label("number"),
                    )
                    .group_by(DocumentVersion.document_id)
                    .subquery()
                ),
                (current.c.doc_id == DocumentVersion.document_id)
                & (current.c.number == DocumentVersion.number),
            )
        ).all()
    for document_id, number, processing in rows:
        if processing == "ready":
            keys.add(f"{document_id}:{number}")
    return keys


def _open_period(session: Session, case_id: str) -> tuple[int, str] | None:
    """(id, unit code) of the case's open responsibility period, None if the case is gone."""
    row = session.execute(
        select(Responsibility.id, Unit.code)
        .join(Unit, Unit.id == Responsibility.unit_id)
        .where(Responsibility.case_id == case_id, Responsibility.ended_at.is_(None))
    ).first()
    return (row[0], row[1]) if row is not None else None


def sync_case_unit(container: Container, case_id: str) -> int:
    """Record the case's responsible unit on its index entries (task after a transfer).

    Marks the period synced only if it is still the open one after writing: a transfer
    that committed meanwhile is relabelled in the next round, so a slow task can never
    leave the labels of an earlier unit behind a period marked synced.
    """
    written = 0
    for _ in range(5):
        with container.db.transaction() as session:
            period = _open_period(session, case_id)
        if period is None:
            return written  # the case is gone (deleted by retention): nothing to label
        period_id, unit = period
        written = container.search.set_case_unit(case_id, unit)
        with container.db.transaction() as session:
            row = session.get(Responsibility, period_id)
            if row is not None and row.ended_at is None:
                row.index_synced_at = utcnow()
                break
    # Handed on five times while relabelling: the newest transfer's own task finishes.
    container.search.refresh()
    return written


def reindex_case(container: Container, case_id: str) -> int:
    """Rewrite the index entries of a case's documents (task after a person correction).

    The entries carry the person's names and identifiers; each current version already
    indexed is indexed again from the database, so the entries follow the corrected person.
    """
    with container.db.transaction() as session:
        version_ids = list(
            session.execute(
                select(DocumentVersion.id)
                .join(Document, Document.id == DocumentVersion.document_id)
                .where(Document.case_id == case_id, DocumentVersion.indexed_at.is_not(None))
            ).scalars()
        )
    # index_version skips versions that are no longer current (a newer one is indexed).
    return sum(1 for version_id in version_ids if index_version(container, version_id))


def sync_pending(container: Container, older_than: dt.timedelta = dt.timedelta(minutes=1)) -> int:
    """Relabel every case whose transfer's relabelling has not finished (periodic task)."""
    cutoff = utcnow() - older_than
    with container.db.transaction() as session:
        case_ids = list(
            session.execute(
                select(Responsibility.case_id).where(
                    Responsibility.ended_at.is_(None),
                    Responsibility.index_synced_at.is_(None),
                    Responsibility.started_at < cutoff,
                )
            ).scalars()
        )
    for case_id in case_ids:
        sync_case_unit(container, case_id)
    return len(case_ids)


@dataclass
class Drift:
    """Differences between the index and the database."""

    missing: list[str] = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    #: Cases whose entries carry another unit than the responsible one: (case, indexed, now).
    wrong_unit: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when index and database agree."""
        return not self.missing and not self.extra and not self.wrong_unit


def verify(container: Container) -> Drift:
    """Compare the index's doc_keys and units with what the database says it should hold."""
    expected = expected_keys(container)
    indexed = set(container.search.doc_keys())
    indexed_units = container.search.case_units()
    with container.db.transaction() as session:
        now = responsible_units(session, set(indexed_units))
    wrong = sorted(
        (case_id, unit, now[case_id])
        for case_id, units in indexed_units.items()
        if case_id in now
        for unit in units
        if unit != now[case_id]
    )
    return Drift(
        missing=sorted(expected - indexed), extra=sorted(indexed - expected), wrong_unit=wrong
    )


def rebuild(container: Container, progress: Callable[[int], None] | None = None) -> int:
    """Rebuild the whole index beside the live one and swap atomically."""
    started = utcnow()
    count = container.search.rebuild(iter_entries(container), progress)
    with container.db.transaction() as session:
        session.execute(
            DocumentVersion.__table__.update()  # type: ignore[attr-defined]
            .where(DocumentVersion.processing == "ready")
            .values(indexed_at=utcnow())
        )
        # The rebuild labelled every entry with the unit responsible when it read the
        # case; periods opened before it started are therefore synced now.
        session.execute(
            Responsibility.__table__.update()  # type: ignore[attr-defined]
            .where(
                Responsibility.ended_at.is_(None),
                Responsibility.index_synced_at.is_(None),
                Responsibility.started_at < started,
            )
            .values(index_synced_at=utcnow())
        )
        moved_during = list(
            session.execute(
                select(Responsibility.case_id).where(
                    Responsibility.ended_at.is_(None), Responsibility.started_at >= started
                )
            ).scalars()
        )
    # Transfers during the rebuild may have missed entries not yet loaded (Elasticsearch
    # keeps no journal of them): relabel those cases once more.
    for case_id in moved_during:
        sync_case_unit(container, case_id)
    return count
