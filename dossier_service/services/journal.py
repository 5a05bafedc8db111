"""The case journal: append-only dated entries, readable like the case, written by its workers."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.bodies.journal import JournalInput
from dossier_service.dates import local_today, utcnow
from dossier_service.errors import Conflict, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import JournalEntry
from dossier_service.policy import Action, load_case
from dossier_service.services import audit
from dossier_service.services.cases import touch
from dossier_service.services.plan import EARLIEST_DATE


def add_entry(
    session: Session, identity: Identity, case_id: str, body: JournalInput
) -> JournalEntry:
    """Write a journal entry on a case the caller works on (audited as journal.create).

    Entries are never changed: a correction is a new entry naming the one it corrects,
    and an entry is corrected at most once (correct the correction to change it again).
    """
    case = load_case(session, identity, case_id, Action.CASE_WRITE)
    today = local_today()
    occurred = body.occurred_on or today
    if not EARLIEST_DATE <= occurred <= today:
        raise Unprocessable(
            f"'occurred_on' must lie between {EARLIEST_DATE.isoformat()} and today "
            f"({today.isoformat()}).",
            field="occurred_on",
        )
    if body.corrects is not None:
        corrected = session.get(JournalEntry, body.corrects)
        if corrected is None or corrected.case_id != case.id:
            raise Unprocessable(
                "'corrects' must name an entry of this case's journal.",
                code="unknown_journal_entry",
                field="corrects",
            )
        already = session.execute(
            select(JournalEntry.id).where(JournalEntry.corrects_id == corrected.id)
        ).scalar_one_or_none()
        if already is not None:
            raise Conflict(
                f"This entry was corrected already (by entry {already}); correct that one.",
                code="journal_entry_corrected",
                corrected_by=already,
            )
    entry = JournalEntry(
        id=str(uuid.uuid4()),
        case_id=case.id,
        kind=body.kind,
        occurred_on=occurred,
        text=body.text,
        participants=list(body.participants),
        corrects_id=body.corrects,
        created_at=utcnow(),
        created_by_id=identity.user_id,
        unit_id=identity.unit_id,
    )
    session.add(entry)
    session.flush()
    touch(case)
    audit.record(
        session,
        identity,
        "journal.create",
        case_id=case.id,
        detail={"entry_id": entry.id, "kind": entry.kind, "corrects": entry.corrects_id},
    )
    return entry


def entries_of(session: Session, case_id: str) -> list[JournalEntry]:
    """A case's entries, latest occurrence first (not audited: for pages that read the case)."""
    return list(
        session.execute(
            select(JournalEntry)
            .where(JournalEntry.case_id == case_id)
            .order_by(
                JournalEntry.occurred_on.desc(),
                JournalEntry.created_at.desc(),
                JournalEntry.id,
            )
        ).scalars()
    )


def list_entries(session: Session, identity: Identity, case_id: str) -> list[JournalEntry]:
    """The journal of a case the caller may read (audited as journal.list)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    items = entries_of(session, case.id)
    audit.record(session, identity, "journal.list", case_id=case.id, detail={"count": len(items)})
    return items


def corrected_by(entries: list[JournalEntry]) -> dict[str, str]:
    """For each corrected entry, the id of the entry that corrects it."""
    return {e.corrects_id: e.id for e in entries if e.corrects_id is not None}


def entry_json(entry: JournalEntry, corrections: dict[str, str]) -> dict[str, Any]:
    """The API shape of a journal entry (``corrections`` from ``corrected_by``)."""
    return {
        "id": entry.id,
        "case_id": entry.case_id,
        "kind": entry.kind,
        "occurred_on": entry.occurred_on.isoformat(),
        "text": entry.text,
        "participants": list(entry.participants),
        "corrects": entry.corrects_id,
        "corrected_by": corrections.get(entry.id),
        "created_at": entry.created_at.isoformat(),
        "created_by": entry.created_by.username,
        "unit": entry.unit.code,
    }
