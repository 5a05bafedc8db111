"""Retention: delete archived cases once their retention period after closing has passed.

A case is deleted when all of this holds (checked again, under a row lock, right before
the deletion, so a reopen or a legal hold that lands meanwhile wins):

- it is closed, and the closure in force was made at least ``DOSSIER_RETENTION_DAYS`` days
  before the run's day (a case closed on day D goes on day D + N, in Zurich's calendar);
- an export holding it under that same closure is done and acknowledged by the archive
  (nothing is destroyed before it was offered to the archive; a reopened and re-closed
  case needs a new export);
- no legal hold is in force.

Deletion, per case:
1. one transaction removes the personal data from the database: the case row and every
   row that references it, directly or through its documents, measures or cost approvals,
   found by walking the foreign keys of the models (so tables added later are covered),
   and leaves a tombstone (reference, entry and closing dates, SIP export and archive
   reference, who and when) listing the storage keys still to delete; the stored SIPs that
   hold the case are marked purged. The audit entry ``case.delete`` commits with it.
2. then the bytes go: every version object, the derived objects (``derived/…``, extracted
   text) and those SIPs, and the case's entries in the search index. The tombstone is then
   marked purged. If storage or index fail, the tombstone keeps the list and the next run
   finishes the job; no database row points at the leftover objects meanwhile.

Audit entries that name the case stay: they are the log, hold ids and no content.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Table, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dossier_service.bodies.archive import LegalHoldInput, LegalHoldRelease
from dossier_service.dates import day_start, local_date, utcnow
from dossier_service.db import Base
from dossier_service.errors import Conflict
from dossier_service.identity import Anonymous, Identity
from dossier_service.models import (
    Case,
    CaseClosure,
    CaseTombstone,
    Document,
    DocumentVersion,
    Export,
    ExportCase,
    LegalHold,
)
from dossier_service.policy import Action, load_case
from dossier_service.services import audit
from search import SearchError
from storage import StorageError

if TYPE_CHECKING:
    from dossier_service.container import Container

log = logging.getLogger(__name__)

#: Who deletes, in tombstones and the audit log, when the scheduler runs retention.
SCHEDULER = "system:retention"


@dataclass(frozen=True)
class Candidate:
    """A case the run deletes (or, in a dry run, would delete)."""

    case_id: str
    reference: str
    entry_date: dt.date
    closed_at: dt.datetime
    export_id: str
    archive_reference: str
    documents: int
    versions: int
    bytes: int


@dataclass(frozen=True)
class Skipped:
    """A case past its retention period that stays, and why."""

    case_id: str
    reference: str
    reason: str


@dataclass
class Plan:
    """What a run on ``as_of`` deletes, and what it keeps although the period has passed."""

    as_of: dt.date
    retention_days: int
    cutoff: dt.datetime
    deletable: list[Candidate] = field(default_factory=list)
    held: list[Skipped] = field(default_factory=list)
    not_archived: list[Skipped] = field(default_factory=list)
    #: Tombstones whose bytes or index entries are still to delete (an earlier run failed).
    unfinished: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """The outcome of a (real) run."""

    plan: Plan
    deleted: list[Candidate] = field(default_factory=list)
    purge_failures: list[str] = field(default_factory=list)


def cutoff_for(as_of: dt.date, retention_days: int) -> dt.datetime:
    """Cases closed before this instant are due on ``as_of`` (local midnight of the day after
    the last closing day that is due)."""
    last_due_day = as_of - dt.timedelta(days=retention_days)
    return day_start(last_due_day + dt.timedelta(days=1))


def _due(cutoff: dt.datetime) -> list[ColumnElement[bool]]:
    return [
        Case.status == "closed",
        CaseClosure.case_id == Case.id,
        CaseClosure.reopened_at.is_(None),
        CaseClosure.closed_at < cutoff,
    ]


def _archive_record(
    session: Session, case_id: str, closed_at: dt.datetime
) -> tuple[str, str] | None:
    """(export id, archive reference) of the newest acknowledged export of the closure."""
    row = session.execute(
        select(Export.id, Export.archive_reference)
        .join(ExportCase, ExportCase.export_id == Export.id)
        .where(
            ExportCase.case_id == case_id,
            ExportCase.closed_at == closed_at,
            Export.status == "done",
            Export.acknowledged_at.is_not(None),
        )
        .order_by(Export.acknowledged_at.desc())
        .limit(1)
    ).first()
    # An acknowledged export always has its reference (a CHECK constraint says so).
    return (row[0], row[1] or "") if row else None


def _open_hold(session: Session, case_id: str) -> LegalHold | None:
    return session.execute(
        select(LegalHold).where(LegalHold.case_id == case_id, LegalHold.released_at.is_(None))
    ).scalar_one_or_none()


def _evaluate(session: Session, case: Case, closed_at: dt.datetime) -> Candidate | Skipped:
    """Decide for one due case: delete it, or keep it and say why."""
    hold = _open_hold(session, case.id)
    if hold is not None:
        since = local_date(hold.set_at).isoformat()
        return Skipped(case.id, case.reference, f"legal hold since {since}")
    record = _archive_record(session, case.id, closed_at)
    if record is None:
        return Skipped(
            case.id,
            case.reference,
            "not archived: no acknowledged SIP of its current closure",
        )
    documents, versions, size = session.execute(
        select(
            func.count(func.distinct(Document.id)),
            func.count(DocumentVersion.id),
            func.coalesce(func.sum(DocumentVersion.size), 0),
        )
        .select_from(Document)
        .outerjoin(DocumentVersion, DocumentVersion.document_id == Document.id)
        .where(Document.case_id == case.id)
    ).one()
    return Candidate(
        case_id=case.id,
        reference=case.reference,
        entry_date=case.entry_date,
        closed_at=closed_at,
        export_id=record[0],
        archive_reference=record[1],
        documents=int(documents),
        versions=int(versions),
        bytes=int(size),
    )


def plan(session: Session, as_of: dt.date, retention_days: int) -> Plan:
    """What a run on ``as_of`` would do; the dry run prints exactly this."""
    cutoff = cutoff_for(as_of, retention_days)
    result = Plan(as_of=as_of, retention_days=retention_days, cutoff=cutoff)
    rows = session.execute(
        select(Case, CaseClosure.closed_at)
        .where(*_due(cutoff))
        .order_by(CaseClosure.closed_at, Case.id)
    ).all()
    for case, closed_at in rows:
        outcome = _evaluate(session, case, closed_at)
        if isinstance(outcome, Candidate):
            result.deletable.append(outcome)
        elif outcome.reason.startswith("legal hold"):
            result.held.append(outcome)
        else:
            result.not_archived.append(outcome)
    result.unfinished = list(
        session.execute(
            select(CaseTombstone.case_id)
            .where(CaseTombstone.purged_at.is_(None))
            .order_by(CaseTombstone.deleted_at)
        ).scalars()
    )
    return result


# --- Legal holds ----------------------------------------------------------------------------------


def set_legal_hold(
    session: Session, identity: Identity, case_id: str, body: LegalHoldInput
) -> LegalHold:
    """Put a case under legal hold with a reason (canton); 409 if one is in force already."""
    case = load_case(session, identity, case_id, Action.LEGAL_HOLD)
    reason = body.reason
    if _open_hold(session, case.id) is not None:
        raise Conflict("The case is under legal hold already.", code="legal_hold_exists")
    hold = LegalHold(case_id=case.id, reason=reason, set_at=utcnow(), set_by_id=identity.user_id)
    session.add(hold)
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            "The case was put under legal hold at the same time.", code="legal_hold_exists"
        ) from None
    # The reason stays in the hold row; the log holds ids, not free text about the person.
    audit.record(session, identity, "legal_hold.set", case_id=case.id, detail={"hold": hold.id})
    return hold


def release_legal_hold(
    session: Session, identity: Identity, case_id: str, body: LegalHoldRelease
) -> LegalHold:
    """Release the legal hold in force (canton), with an optional reason; 409 if none."""
    case = load_case(session, identity, case_id, Action.LEGAL_HOLD)
    reason = body.reason
    hold = _open_hold(session, case.id)
    if hold is None:
        raise Conflict("The case is not under legal hold.", code="no_legal_hold")
    hold.released_at = utcnow()
    hold.released_by_id = identity.user_id
    hold.release_reason = reason
    session.flush()
    session.refresh(hold)  # load released_by for the answer
    audit.record(session, identity, "legal_hold.release", case_id=case.id, detail={"hold": hold.id})
    return hold


def legal_hold_json(hold: LegalHold) -> dict[str, Any]:
    """The API shape of a legal hold."""
    return {
        "case_id": hold.case_id,
        "reason": hold.reason,
        "set_at": hold.set_at.isoformat(),
        "set_by": hold.set_by.username,
        "released_at": hold.released_at.isoformat() if hold.released_at else None,
        "released_by": hold.released_by.username if hold.released_by else None,
        "release_reason": hold.release_reason,
    }


# --- Removing the rows --------------------------------------------------------------------------


def _case_row_plan(case_id: str) -> tuple[list[tuple[Table, Any]], list[tuple[Table, str, Any]]]:
    """Every table holding rows of the case, children first, with the rows' condition; and
    the SET NULL references into them that must be cleared first.

    Found from the models' foreign keys: a table joins when one of its keys points at rows
    that go (a cost approval through its case, a version through its document, ...).
    References declared ``ON DELETE SET NULL`` only point at such rows; they are cleared,
    the rows holding them stay unless another key takes them along.
    """
    cases = Base.metadata.tables["cases"]
    selectors: dict[Table, list[Any]] = {cases: [cases.c.id == case_id]}
    order: list[Table] = [cases]
    nulls: list[tuple[Table, str, Any]] = []
    # sorted_tables lists every referenced table before the tables that reference it.
    for table in Base.metadata.sorted_tables:
        if table is cases:
            continue
        conditions = []
        for fk in table.foreign_keys:
            parent = fk.column.table
            if parent not in selectors:
                continue
            rows_of_parent = select(fk.column).where(or_(*selectors[parent]))
            if (fk.ondelete or "").upper() == "SET NULL":
                nulls.append((table, fk.parent.name, fk.parent.in_(rows_of_parent)))
            else:
                conditions.append(fk.parent.in_(rows_of_parent))
        if conditions:
            selectors[table] = conditions
            order.append(table)
    return [(t, or_(*selectors[t])) for t in reversed(order)], nulls


def delete_case_rows(session: Session, case_id: str) -> dict[str, int]:
    """Delete the case and every row that references it; return the row count per table."""
    deletions, nulls = _case_row_plan(case_id)
    for table, column, condition in nulls:
        session.execute(update(table).where(condition).values({column: None}))
    counts: dict[str, int] = {}
    for table, condition in deletions:
        result = session.execute(delete(table).where(condition))
        if result.rowcount:  # type: ignore[attr-defined]
            counts[table.name] = int(result.rowcount)  # type: ignore[attr-defined]
    session.expire_all()  # the ORM must not believe deleted rows still exist
    return counts


def _pending_objects(session: Session, case_id: str) -> list[str]:
    """Storage keys of the case's versions and their derived objects ('…/' = a prefix)."""
    items: list[str] = []
    rows = session.execute(
        select(DocumentVersion.id, DocumentVersion.storage_key, DocumentVersion.text_key)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.case_id == case_id)
        .order_by(DocumentVersion.id)
    ).all()
    for version_id, storage_key, text_key in rows:
        items.append(storage_key)
        if text_key:
            items.append(text_key)
        # Everything derived from a version lives below this prefix (see indexing.text_key).
        items.append(f"derived/{version_id[:2]}/{version_id}/")
    return items


def _purge_sips(session: Session, case_id: str, now: dt.datetime) -> list[str]:
    """Mark every stored SIP holding the case purged; return their keys (to delete)."""
    exports = session.execute(
        select(Export)
        .join(ExportCase, ExportCase.export_id == Export.id)
        .where(
            ExportCase.case_id == case_id,
            Export.storage_key.is_not(None),
            Export.purged_at.is_(None),
        )
        .with_for_update(of=Export)
    ).scalars()
    keys = []
    for export in exports:
        # The archive has the package; our copy must not outlive the case's data.
        export.purged_at = now
        assert export.storage_key is not None
        keys.append(export.storage_key)
    return keys


def delete_case(container: Container, case_id: str, as_of: dt.date, actor: str) -> Candidate | None:
    """Delete one case if it is (still) due; None if it is not. Purges its bytes after."""
    cutoff = cutoff_for(as_of, container.settings.retention_days)
    now = utcnow()
    with container.db.transaction() as session:
        case = session.execute(
            select(Case).where(Case.id == case_id).with_for_update()
        ).scalar_one_or_none()
        if case is None:
            return None
        closed_at = session.execute(
            select(CaseClosure.closed_at).where(Case.id == case_id, *_due(cutoff))
        ).scalar_one_or_none()
        if closed_at is None:
            return None
        outcome = _evaluate(session, case, closed_at)
        if not isinstance(outcome, Candidate):
            return None
        pending = _pending_objects(session, case_id) + _purge_sips(session, case_id, now)
        session.add(
            CaseTombstone(
                case_id=case.id,
                reference=case.reference,
                entry_date=case.entry_date,
                closed_at=closed_at,
                export_id=outcome.export_id,
                archive_reference=outcome.archive_reference,
                deleted_at=now,
                deleted_by=actor[:64],
                documents=outcome.documents,
                versions=outcome.versions,
                bytes=outcome.bytes,
                pending_objects=pending,
            )
        )
        session.flush()
        rows = delete_case_rows(session, case_id)
        audit.record(
            session,
            Anonymous(username=actor[:64]),
            "case.delete",
            case_id=case_id,
            detail={
                "reference": outcome.reference,
                "export_id": outcome.export_id,
                "archive_reference": outcome.archive_reference,
                "documents": outcome.documents,
                "versions": outcome.versions,
                "bytes": outcome.bytes,
                "rows": rows,
            },
        )
    return outcome


def purge(container: Container, case_id: str) -> bool:
    """Delete a tombstone's pending objects and index entries; False if something failed."""
    with container.db.transaction() as session:
        tombstone = session.get(CaseTombstone, case_id)
        if tombstone is None or tombstone.purged_at is not None:
            return True
        items = list(tombstone.pending_objects or [])
    store = container.store
    try:
        for item in items:
            if item.endswith("/"):
                for key in list(store.iter_keys(item)):
                    store.delete(key)
            else:
                store.delete(item)
        container.search.delete_case(case_id)
        container.search.refresh()
    except (StorageError, SearchError) as exc:
        log.error("retention: purging case %s is unfinished, retried next run: %s", case_id, exc)
        return False
    with container.db.transaction() as session:
        tombstone = session.get(CaseTombstone, case_id)
        if tombstone is not None:
            tombstone.pending_objects = []
            tombstone.purged_at = utcnow()
    return True


def run(
    container: Container, as_of: dt.date, *, dry_run: bool = False, actor: str = SCHEDULER
) -> RunResult:
    """Plan, and unless ``dry_run`` delete every due case and finish unfinished purges."""
    with container.db.transaction() as session:
        result = RunResult(plan(session, as_of, container.settings.retention_days))
    if dry_run:
        return result
    for case_id in result.plan.unfinished:
        if not purge(container, case_id):
            result.purge_failures.append(case_id)
    for candidate in result.plan.deletable:
        deleted = delete_case(container, candidate.case_id, as_of, actor)
        if deleted is None:
            log.info("retention: case %s is no longer due; kept", candidate.reference)
            continue
        result.deleted.append(deleted)
        if not purge(container, candidate.case_id):
            result.purge_failures.append(candidate.case_id)
    return result
