"""Correcting a case's person, and the dated histories of the person and the residence status.

Every corrected field is kept as a row of ``person_changes`` (old value, new value, reason,
who, when); a change of the residence status is a row of ``residence_status_changes`` with
the date of the decision (``regulation_date``), which the case shows and the IAS indicators
count from. Validation is the registration's (bodies.cases), plus the rules that need the
case: a change to F or B carries its regulation date, not in the future, not before entry.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service import identifiers
from dossier_service.bodies.cases import PersonCorrection
from dossier_service.dates import local_today, utcnow
from dossier_service.errors import Unprocessable
from dossier_service.folding import name_key
from dossier_service.identity import Identity
from dossier_service.models import Case, PersonChange, ResidenceStatusChange, User
from dossier_service.policy import Action, load_case
from dossier_service.services import audit, duplicates, outbox

#: Celery task that rewrites the person's names and identifiers on the case's index entries.
REINDEX_CASE_TASK = "dossier.reindex_case"
#: Person fields a correction may change, in the order the case shows them.
PERSON_FIELDS = (
    "family_name",
    "given_names",
    "birth_date",
    "sex",
    "nationality",
    "zemis_number",
    "ahv_number",
    "residence_status",
    "regulation_date",
)
#: Fields the search index holds about the person: changing one rewrites the entries.
INDEXED_FIELDS = frozenset({"family_name", "given_names", "zemis_number", "ahv_number"})
#: Statuses granted by a decision (Regelung) whose date the case must carry.
REGULATED_STATUSES = frozenset({"F", "B"})


def check_regulation_date(
    status: str, regulation_date: dt.date | None, entry_date: dt.date, *, required: bool
) -> None:
    """Refuse a regulation date that does not fit the status and the entry (422)."""
    if status not in REGULATED_STATUSES:
        if regulation_date is not None:
            raise Unprocessable(
                "'regulation_date' belongs only to status F or B.",
                code="regulation_date_not_allowed",
                field="regulation_date",
            )
        return
    if regulation_date is None:
        if required:
            raise Unprocessable(
                "A change of 'residence_status' to F or B requires 'regulation_date', "
                "the date of the decision.",
                code="regulation_date_required",
                field="regulation_date",
            )
        return
    if regulation_date > local_today():
        raise Unprocessable(
            "'regulation_date' lies in the future.",
            code="regulation_date_in_future",
            field="regulation_date",
        )
    if regulation_date < entry_date:
        raise Unprocessable(
            "'regulation_date' lies before the entry into the canton.",
            code="regulation_date_before_entry",
            field="regulation_date",
        )


def _stored(field: str, value: Any) -> str | None:
    """A field's value as the history records it (AHV number written the usual way)."""
    if value is None:
        return None
    if field == "ahv_number":
        return identifiers.format_ahv(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _changes(case: Case, body: PersonCorrection) -> dict[str, Any]:
    """{field: new value} of the fields sent that differ from what the case holds."""
    sent = {f: getattr(body, f) for f in PERSON_FIELDS if f in body.model_fields_set}
    if not sent:
        raise Unprocessable(
            "Name at least one person field to correct besides 'reason'.",
            code="no_change",
            field="body",
        )
    changed = {f: v for f, v in sent.items() if getattr(case, f) != v}
    if "residence_status" in changed and "regulation_date" in sent:
        # A new decision carries its date even when it falls on the previous one's day.
        changed["regulation_date"] = sent["regulation_date"]
    if not changed:
        raise Unprocessable(
            "The correction changes nothing: every value sent is the current one.",
            code="no_change",
        )
    return changed


def check_identifiers(
    session: Session, identity: Identity, case: Case, changes: dict[str, Any]
) -> None:
    """409 duplicate_person if a corrected ZEMIS or AHV number is another case's.

    A correction must not create the duplicate that registration refuses.
    """
    if not {"zemis_number", "ahv_number"} & changes.keys():
        return
    zemis = changes.get("zemis_number", case.zemis_number)
    ahv = changes.get("ahv_number", case.ahv_number)
    duplicates.ensure_unique_for(
        session, identity, case.id, identifiers.normalize_zemis(zemis), ahv
    )


@dataclass(frozen=True)
class _StatusChange:
    old: str
    new: str
    regulation_date: dt.date | None


def _status_change(case: Case, changes: dict[str, Any]) -> _StatusChange | None:
    """The residence status change of this correction (None if the status stays)."""
    new_status = changes.get("residence_status", case.residence_status)
    regulation_date = changes.get("regulation_date", case.regulation_date)
    status_changes = "residence_status" in changes
    if status_changes and new_status not in REGULATED_STATUSES:
        # Back to N (or a wrong F/B undone): the regulation date goes with the status.
        if "regulation_date" in changes:
            check_regulation_date(
                new_status, changes["regulation_date"], case.entry_date, required=False
            )
        regulation_date = None
    else:
        # A new F or B is a new decision: its date is required, not the previous one.
        sent_date = changes.get("regulation_date") if status_changes else regulation_date
        check_regulation_date(new_status, sent_date, case.entry_date, required=status_changes)
    if status_changes:
        return _StatusChange(case.residence_status, new_status, regulation_date)
    return None


def correct_person(
    session: Session, identity: Identity, case_id: str, body: PersonCorrection
) -> Case:
    """Correct the person's fields sent in the body; each change becomes dated history."""
    case = load_case(session, identity, case_id, Action.PERSON_CORRECT)
    changes = _changes(case, body)
    status = _status_change(case, changes)
    check_identifiers(session, identity, case, changes)
    now = utcnow()
    if status is not None:
        session.add(
            ResidenceStatusChange(
                case_id=case.id,
                old_status=status.old,
                new_status=status.new,
                regulation_date=status.regulation_date,
                reason=body.reason,
                changed_by_id=identity.user_id,
                changed_at=now,
            )
        )
        case.residence_status = status.new
        case.regulation_date = status.regulation_date
        changes.pop("residence_status")
        changes.pop("regulation_date", None)
    for field, value in changes.items():
        session.add(
            PersonChange(
                case_id=case.id,
                field=field,
                old_value=_stored(field, getattr(case, field)),
                new_value=_stored(field, value),
                reason=body.reason,
                changed_by_id=identity.user_id,
                changed_at=now,
            )
        )
        setattr(case, field, value)
    if "zemis_number" in changes:
        case.zemis_normalized = identifiers.normalize_zemis(case.zemis_number)
    if {"family_name", "given_names"} & changes.keys():
        # The folded key that case search and the namesake check compare.
        case.name_key = name_key(case.family_name, case.given_names)
    case.updated_at = now
    # A concurrent correction or registration with the same numbers loses on the indexes.
    with duplicates.unique_person(
        session, identity, case.id, case.zemis_normalized, case.ahv_number
    ):
        session.flush()
    if INDEXED_FIELDS & changes.keys():
        # The index entries carry the names and identifiers: rewrite them after commit.
        outbox.enqueue(session, REINDEX_CASE_TASK, case_id=case.id)
    fields = sorted(changes) + (["residence_status"] if status else [])
    audit.record(session, identity, "person.correct", case_id=case.id, detail={"fields": fields})
    return case


@dataclass(frozen=True)
class PersonHistoryEntry:
    """One corrected field, as the case page, the SIP and the disclosure show it."""

    field: str
    old_value: str | None
    new_value: str | None
    reason: str
    by: str
    at: dt.datetime


@dataclass(frozen=True)
class StatusHistoryEntry:
    """One change of the residence status and the date of its decision."""

    old_status: str
    new_status: str
    regulation_date: dt.date | None
    reason: str
    by: str
    at: dt.datetime


def person_history(session: Session, case_id: str) -> list[PersonHistoryEntry]:
    """The corrections of the case's person, oldest first (no access check: callers do it)."""
    rows = session.execute(
        select(PersonChange, User.username)
        .join(User, User.id == PersonChange.changed_by_id)
        .where(PersonChange.case_id == case_id)
        .order_by(PersonChange.changed_at, PersonChange.id)
    ).all()
    return [
        PersonHistoryEntry(c.field, c.old_value, c.new_value, c.reason, by, c.changed_at)
        for c, by in rows
    ]


def status_history(session: Session, case_id: str) -> list[StatusHistoryEntry]:
    """The residence status changes of the case, oldest first (callers check access)."""
    rows = session.execute(
        select(ResidenceStatusChange, User.username)
        .join(User, User.id == ResidenceStatusChange.changed_by_id)
        .where(ResidenceStatusChange.case_id == case_id)
        .order_by(ResidenceStatusChange.changed_at, ResidenceStatusChange.id)
    ).all()
    return [
        StatusHistoryEntry(
            c.old_status, c.new_status, c.regulation_date, c.reason, by, c.changed_at
        )
        for c, by in rows
    ]


def history_json(session: Session, identity: Identity, case_id: str) -> dict[str, Any]:
    """GET /cases/{id}/person/history: both histories (audited as case.read)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    audit.record(session, identity, "case.read", case_id=case.id, detail={"part": "person"})
    return {
        "items": [
            {
                "field": e.field,
                "old_value": e.old_value,
                "new_value": e.new_value,
                "reason": e.reason,
                "by": e.by,
                "at": e.at.isoformat(),
            }
            for e in person_history(session, case.id)
        ],
        "status_history": [
            {
                "old_status": e.old_status,
                "new_status": e.new_status,
                "regulation_date": e.regulation_date.isoformat() if e.regulation_date else None,
                "reason": e.reason,
                "by": e.by,
                "at": e.at.isoformat(),
            }
            for e in status_history(session, case.id)
        ],
    }
