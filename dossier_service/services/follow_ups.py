"""Follow-ups (Wiedervorlagen): reminders on a case, set and done by whoever works on it."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.bodies.follow_ups import FollowUpDone, FollowUpInput
from dossier_service.dates import local_today, utcnow
from dossier_service.errors import Conflict, NotFound, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import Case, CostApproval, FollowUp, Measure
from dossier_service.policy import Action, load_case, require
from dossier_service.services import audit
from dossier_service.services.cases import touch
from dossier_service.services.indicators import add_years

#: A follow-up is due at most this many years ahead (the case itself lasts at most 7).
MAX_YEARS_AHEAD = 8


def _belongs(session: Session, model: Any, object_id: str | None, case: Case, field: str) -> None:
    """Refuse a measure or cost approval that is not the case's own (422, named field)."""
    if object_id is None:
        return
    owner = session.execute(select(model.case_id).where(model.id == object_id)).scalar()
    if owner != case.id:
        raise Unprocessable(
            f"'{field}' must name a {field.replace('_', ' ')} of this case.",
            code=f"unknown_{field}",
            field=field,
        )


def create(session: Session, identity: Identity, case_id: str, body: FollowUpInput) -> FollowUp:
    """Set a follow-up on a case the caller works on (audited as follow_up.create)."""
    case = load_case(session, identity, case_id, Action.CASE_WRITE)
    today = local_today()
    latest = add_years(today, MAX_YEARS_AHEAD)
    if not today <= body.due_date <= latest:
        raise Unprocessable(
            f"'due_date' must lie between today ({today.isoformat()}) and {latest.isoformat()}.",
            field="due_date",
        )
    _belongs(session, Measure, body.measure, case, "measure")
    _belongs(session, CostApproval, body.cost_approval, case, "cost_approval")
    follow_up = FollowUp(
        id=str(uuid.uuid4()),
        case_id=case.id,
        unit_id=identity.unit_id,
        due_date=body.due_date,
        note=body.note,
        measure_id=body.measure,
        cost_approval_id=body.cost_approval,
        source="manual",
        created_at=utcnow(),
        created_by_id=identity.user_id,
        done_note="",
    )
    session.add(follow_up)
    session.flush()
    touch(case)
    audit.record(
        session,
        identity,
        "follow_up.create",
        case_id=case.id,
        detail={"follow_up_id": follow_up.id, "due_date": follow_up.due_date.isoformat()},
    )
    return follow_up


def of_case(session: Session, case_id: str) -> list[FollowUp]:
    """A case's follow-ups: open ones by due day, then done ones (not audited: for pages)."""
    items = session.execute(
        select(FollowUp).where(FollowUp.case_id == case_id).order_by(FollowUp.due_date, FollowUp.id)
    ).scalars()
    return sorted(items, key=lambda f: f.done_at is not None)


def list_for_case(session: Session, identity: Identity, case_id: str) -> list[FollowUp]:
    """The follow-ups of a case the caller may read (audited as follow_up.list)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    items = of_case(session, case.id)
    audit.record(session, identity, "follow_up.list", case_id=case.id, detail={"count": len(items)})
    return items


def mark_done(
    session: Session, identity: Identity, follow_up_id: str, body: FollowUpDone
) -> FollowUp:
    """Mark a follow-up done (once), by whoever may work on its case now."""
    require(identity, Action.CASE_WRITE)
    follow_up = session.get(FollowUp, follow_up_id)
    if follow_up is None:
        raise NotFound("No such follow-up.", code="follow_up_not_found")
    try:
        case = load_case(session, identity, follow_up.case_id, Action.CASE_WRITE)
    except NotFound:
        raise NotFound("No such follow-up.", code="follow_up_not_found") from None
    if follow_up.done_at is not None:
        raise Conflict("This follow-up is done already.", code="follow_up_done")
    follow_up.done_at = utcnow()
    follow_up.done_by_id = identity.user_id
    follow_up.done_note = body.note
    session.flush()
    session.refresh(follow_up, ["done_by"])
    touch(case)
    audit.record(
        session,
        identity,
        "follow_up.done",
        case_id=case.id,
        detail={"follow_up_id": follow_up.id},
    )
    return follow_up


def set_horizon_follow_up(
    session: Session, case: Case, unit_id: int, due: dt.date, end: dt.date
) -> bool:
    """The monitoring's follow-up at 6.5 years (once per case); True if it was set now."""
    exists = session.execute(
        select(FollowUp.id).where(FollowUp.case_id == case.id, FollowUp.source == "horizon")
    ).first()
    if exists is not None:
        return False
    session.add(
        FollowUp(
            id=str(uuid.uuid4()),
            case_id=case.id,
            unit_id=unit_id,
            due_date=due,
            # Written for the caseworkers who read it, in the language of the pages.
            note=f"Der 7-Jahres-Horizont endet am {end:%d.%m.%Y}: Abschluss und Übergabe planen.",
            source="horizon",
            created_at=utcnow(),
            created_by_id=None,
            done_note="",
        )
    )
    session.flush()
    return True


def follow_up_json(follow_up: FollowUp, today: dt.date | None = None) -> dict[str, Any]:
    """The API shape of a follow-up; ``overdue`` against today (Zurich)."""
    today = today or local_today()
    return {
        "id": follow_up.id,
        "case_id": follow_up.case_id,
        "unit": follow_up.unit.code,
        "due_date": follow_up.due_date.isoformat(),
        "note": follow_up.note,
        "measure": follow_up.measure_id,
        "cost_approval": follow_up.cost_approval_id,
        "source": follow_up.source,
        "created_at": follow_up.created_at.isoformat(),
        "created_by": follow_up.created_by.username if follow_up.created_by else None,
        "done": follow_up.done_at is not None,
        "done_at": follow_up.done_at.isoformat() if follow_up.done_at else None,
        "done_by": follow_up.done_by.username if follow_up.done_by else None,
        "done_note": follow_up.done_note,
        "overdue": follow_up.done_at is None and follow_up.due_date < today,
    }
