"""The case's integration plan: target group (with history), measures and dated milestones.

Target group triage (Triage in eine Zielgruppe) is kept as dated periods like
responsibility, so the indicators can ask which group a case was in on any day. Measures
(Massnahmen) carry a status; setting one to ``interrupted`` or ``aborted`` notifies the
responsible unit and the canton at once, and monitoring follows up if nothing happens.
Milestones are the coded, dated facts the IAS indicators are computed from.
Every write needs the right to work on the case (responsible unit or delegated
organisation), the target group the right to set it (the responsible unit only), and is
audited; every read is audited. A target group or programme the person's age contradicts
is refused (services/plausibility.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dossier_service import labels
from dossier_service.bodies.plan import CaseUpdate, MeasureInput, MeasureUpdate, MilestoneInput
from dossier_service.dates import local_today, utcnow
from dossier_service.errors import Conflict, NotFound, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import Case, Measure, Milestone, TargetGroupAssignment
from dossier_service.models.process import TARGET_GROUPS
from dossier_service.policy import Action, load_case, require
from dossier_service.services import audit, notifications, plausibility
from dossier_service.services.cases import touch

#: Dates of plan facts must lie in this window (typos like 0202-01-01 are refused).
EARLIEST_DATE = dt.date(1990, 1, 1)
#: Planned measures may lie this far ahead; milestones never lie in the future.
PLANNING_HORIZON = dt.timedelta(days=10 * 366)

_INTERRUPTIONS = {"interrupted": "measure.interrupted", "aborted": "measure.aborted"}


def _plausible(value: dt.date, name: str, latest: dt.date) -> dt.date:
    if not EARLIEST_DATE <= value <= latest:
        raise Unprocessable(
            f"'{name}' must lie between {EARLIEST_DATE.isoformat()} and {latest.isoformat()}.",
            field=name,
        )
    return value


# --- Target group -------------------------------------------------------------------------


def update_case(session: Session, identity: Identity, case_id: str, body: CaseUpdate) -> Case:
    """PATCH a case: today only its target group, which starts a new dated period."""
    case = load_case(session, identity, case_id, Action.TARGET_GROUP_SET)
    group = body.target_group
    current = session.execute(
        select(TargetGroupAssignment).where(
            TargetGroupAssignment.case_id == case.id, TargetGroupAssignment.ended_at.is_(None)
        )
    ).scalar_one_or_none()
    if current is not None and current.target_group == group:
        audit.record(session, identity, "case.update", case_id=case.id, detail={"unchanged": True})
        return case
    plausibility.check_target_group(case.birth_date, group, local_today())
    now = utcnow()
    if current is not None:
        current.ended_at = now
        session.flush()
    session.add(
        TargetGroupAssignment(
            case_id=case.id,
            target_group=group,
            started_at=now,
            reason=body.reason,
            set_by_id=identity.user_id,
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            "The target group was changed at the same time; reload and try again.",
            code="concurrent_update",
        ) from None
    touch(case)
    audit.record(
        session,
        identity,
        "case.update",
        case_id=case.id,
        detail={"target_group": {"from": current.target_group if current else None, "to": group}},
    )
    return case


def target_group_history(
    session: Session, identity: Identity, case_id: str
) -> list[dict[str, Any]]:
    """The dated target-group periods of a case (audited as case.read)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    rows = session.execute(
        select(TargetGroupAssignment)
        .where(TargetGroupAssignment.case_id == case.id)
        .order_by(TargetGroupAssignment.started_at, TargetGroupAssignment.id)
    ).scalars()
    items = [
        {
            "target_group": row.target_group,
            "label": TARGET_GROUPS[row.target_group],
            "from": row.started_at.isoformat(),
            "to": row.ended_at.isoformat() if row.ended_at else None,
            "reason": row.reason,
            "set_by": row.set_by.username,
        }
        for row in rows
    ]
    audit.record(session, identity, "case.read", case_id=case.id, detail={"part": "target_groups"})
    return items


# --- Measures -----------------------------------------------------------------------------


def measure_json(measure: Measure) -> dict[str, Any]:
    """The API shape of a measure."""
    return {
        "id": measure.id,
        "case_id": measure.case_id,
        "programme": measure.programme,
        "programme_label": labels.PROGRAMME[measure.programme],
        "provider": measure.provider,
        "start": measure.start_date.isoformat(),
        "end": measure.end_date.isoformat() if measure.end_date else None,
        "status": measure.status,
        "status_changed_at": measure.status_changed_at.isoformat(),
        "note": measure.note,
        "created_at": measure.created_at.isoformat(),
        "created_by": measure.created_by.username,
        "updated_at": measure.updated_at.isoformat(),
    }


def _notify_interruption(session: Session, measure: Measure) -> None:
    """Tell the responsible unit and the canton that a measure stopped (once per stop)."""
    kind = _INTERRUPTIONS.get(measure.status)
    if kind is None:
        return
    occurrence = f"{measure.id}@{measure.status_changed_at.astimezone(dt.UTC).isoformat()}"
    notifications.notify(
        session,
        notifications.case_parties(session, measure.case_id),
        kind,
        measure.case_id,
        occurrence,
    )


def _check_period(start: dt.date, end: dt.date | None) -> None:
    if end is not None and end < start:
        raise Unprocessable("'end' lies before 'start'.", field="end")


def create_measure(
    session: Session, identity: Identity, case_id: str, body: MeasureInput
) -> Measure:
    """Add a measure to the case's plan."""
    case = load_case(session, identity, case_id, Action.CASE_WRITE)
    latest = local_today() + PLANNING_HORIZON
    programme = body.programme
    start = _plausible(body.start, "start", latest)
    end = _plausible(body.end, "end", latest) if body.end else None
    _check_period(start, end)
    plausibility.check_programme(case.birth_date, programme, start)
    status = body.status or "planned"
    now = utcnow()
    measure = Measure(
        id=str(uuid.uuid4()),
        case_id=case.id,
        programme=programme,
        provider=body.provider,
        start_date=start,
        end_date=end,
        status=status,
        status_changed_at=now,
        note=body.note,
        created_at=now,
        created_by_id=identity.user_id,
        updated_at=now,
    )
    session.add(measure)
    session.flush()
    touch(case)
    audit.record(
        session,
        identity,
        "measure.create",
        case_id=case.id,
        detail={"measure_id": measure.id, "programme": programme, "status": status},
    )
    _notify_interruption(session, measure)
    return measure


def load_measure(
    session: Session, identity: Identity, measure_id: str, action: Action
) -> tuple[Measure, Case]:
    """The measure and its case, if the caller may act on the case (else 404 like the case)."""
    require(identity, Action.CASE_READ)
    require(identity, action)
    case_id = session.execute(
        select(Measure.case_id).where(Measure.id == measure_id)
    ).scalar_one_or_none()
    if case_id is None:
        raise NotFound("No such measure.", code="measure_not_found")
    try:
        case = load_case(session, identity, case_id, action)
    except NotFound:
        raise NotFound("No such measure.", code="measure_not_found") from None
    measure = session.get(Measure, measure_id)
    assert measure is not None
    return measure, case


def update_measure(
    session: Session, identity: Identity, measure_id: str, body: MeasureUpdate
) -> Measure:
    """Change a measure's provider, dates, status or note; a stop notifies both sides."""
    measure, case = load_measure(session, identity, measure_id, Action.CASE_WRITE)
    sent = body.model_fields_set
    if not sent:
        raise Unprocessable("Send at least one field to change.", field="status")
    latest = local_today() + PLANNING_HORIZON
    changed: list[str] = []
    if "provider" in sent:
        measure.provider = body.provider
        changed.append("provider")
    if body.start is not None:  # the model refuses an explicit null
        measure.start_date = _plausible(body.start, "start", latest)
        changed.append("start")
    if "end" in sent:
        measure.end_date = _plausible(body.end, "end", latest) if body.end else None
        changed.append("end")
    if "note" in sent:
        measure.note = body.note
        changed.append("note")
    _check_period(measure.start_date, measure.end_date)
    if "start" in changed:
        plausibility.check_programme(case.birth_date, measure.programme, measure.start_date)
    previous = measure.status
    now = utcnow()
    if body.status is not None:  # the model refuses an explicit null
        status = body.status
        if status != previous:
            measure.status = status
            measure.status_changed_at = now
            changed.append("status")
    measure.updated_at = now
    touch(case)
    session.flush()
    detail: dict[str, Any] = {"measure_id": measure.id, "changed": changed}
    if "status" in changed:
        detail["status"] = {"from": previous, "to": measure.status}
    # Field names only: a note may hold details that do not belong in the log.
    audit.record(session, identity, "measure.update", case_id=case.id, detail=detail)
    if "status" in changed:
        _notify_interruption(session, measure)
    return measure


def list_measures(session: Session, identity: Identity, case_id: str) -> list[Measure]:
    """The measures of a case in plan order (audited as measure.list)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    items = list(
        session.execute(
            select(Measure)
            .where(Measure.case_id == case.id)
            .order_by(Measure.start_date, Measure.created_at, Measure.id)
        ).scalars()
    )
    audit.record(session, identity, "measure.list", case_id=case.id, detail={"count": len(items)})
    return items


# --- Milestones ---------------------------------------------------------------------------


def milestone_json(milestone: Milestone) -> dict[str, Any]:
    """The API shape of a milestone."""
    return {
        "id": milestone.id,
        "case_id": milestone.case_id,
        "kind": milestone.kind,
        "value": milestone.value,
        "date": milestone.date.isoformat(),
        "note": milestone.note,
        "created_at": milestone.created_at.isoformat(),
        "created_by": milestone.created_by.username,
    }


def create_milestone(
    session: Session, identity: Identity, case_id: str, body: MilestoneInput
) -> Milestone:
    """Record a dated fact: a language level, an education or an employment status."""
    case = load_case(session, identity, case_id, Action.CASE_WRITE)
    kind, value = body.kind, body.value
    date = _plausible(body.date, "date", local_today())
    milestone = Milestone(
        case_id=case.id,
        kind=kind,
        value=value,
        date=date,
        note=body.note,
        created_at=utcnow(),
        created_by_id=identity.user_id,
    )
    session.add(milestone)
    session.flush()
    touch(case)
    audit.record(
        session,
        identity,
        "milestone.create",
        case_id=case.id,
        detail={"milestone_id": milestone.id, "kind": kind, "value": value},
    )
    return milestone


def list_milestones(session: Session, identity: Identity, case_id: str) -> list[Milestone]:
    """The milestones of a case by date (audited as milestone.list)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    items = list(
        session.execute(
            select(Milestone)
            .where(Milestone.case_id == case.id)
            .order_by(Milestone.date, Milestone.id)
        ).scalars()
    )
    audit.record(session, identity, "milestone.list", case_id=case.id, detail={"count": len(items)})
    return items
