"""Continuity monitoring (durchgehende Fallführung): stalled cases, stopped measures, horizon.

``monitor_run`` runs daily (Celery beat) and on demand (``dossier monitor run --as-of``).
It looks at open cases only and notifies the responsible unit and the canton, once per
occurrence (see ``notifications``: a second run adds nothing):

``case.stalled``
    no activity (``cases.updated_at``: any change to the case, its dossier or its plan)
    for ``DOSSIER_STALL_DAYS`` days: the last activity fell on or before the day
    as_of − stall_days (Zurich calendar days). The occurrence is that last activity: a
    case that becomes active and then stalls again is reported again.
``measure.follow_up_missing``
    a measure ``interrupted`` or ``aborted`` on or before the day as_of − ``FOLLOW_UP_DAYS``
    without a follow-up. A follow-up is another measure of the case created after the interruption
    or starting on or after its day, a ``meeting_record`` document (Gesprächsprotokoll)
    filed after it, or a conversation, call or meeting written in the case journal after
    it. The occurrence is the interruption (measure and time of the change).
``case.horizon_approaching``
    the case passed 6.5 years since entry (the 7-year horizon is half a year away); once
    per case.

Notifications never touch ``updated_at``: being reminded is not activity.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, select
from sqlalchemy.orm import Session, aliased

from dossier_service.dates import day_start, local_date
from dossier_service.identity import Identity
from dossier_service.models import Case, Document, JournalEntry, Measure, Responsibility, Unit
from dossier_service.policy import Action, require
from dossier_service.services import audit, follow_ups, notifications
from dossier_service.services.cases import horizon_date
from dossier_service.services.indicators import add_months

if TYPE_CHECKING:
    from dossier_service.container import Container

#: Days an interrupted or aborted measure may wait for its follow-up before the reminder.
FOLLOW_UP_DAYS = 30
#: Journal entries that count as a follow-up of a stopped measure (a plain note does not:
#: nobody spoke with the person).
FOLLOW_UP_JOURNAL_KINDS = ("conversation", "phone", "meeting")
#: 6.5 years: half a year before the horizon the units plan the case's end.
HORIZON_WARNING_MONTHS = 78


@dataclass(frozen=True)
class MonitorResult:
    """What one run found and how many notifications it added."""

    as_of: dt.date
    stalled_cases: int
    measures_without_follow_up: int
    horizon_cases: int
    notifications_created: int

    def as_dict(self) -> dict[str, Any]:
        """JSON-friendly form (for the CLI, the task result and the audit entry)."""
        return {**asdict(self), "as_of": self.as_of.isoformat()}


def _days_before_end(as_of: dt.date, days: int) -> dt.datetime:
    """The first moment after the day as_of − days: earlier timestamps are ≥ days old."""
    return day_start(as_of - dt.timedelta(days=days - 1))


def stalled_condition(as_of: dt.date, stall_days: int) -> Any:
    """SQL condition on Case: open, last activity on or before the day as_of − stall_days."""
    cutoff = _days_before_end(as_of, stall_days)
    return and_(Case.status == "open", Case.merged_into_id.is_(None), Case.updated_at < cutoff)


def _measures_without_follow_up(session: Session, as_of: dt.date) -> list[Measure]:
    """Stopped measures of open cases, older than FOLLOW_UP_DAYS, with nothing after them."""
    cutoff = _days_before_end(as_of, FOLLOW_UP_DAYS)
    later = aliased(Measure)
    candidates = list(
        session.execute(
            select(Measure)
            .join(Case, Case.id == Measure.case_id)
            .where(
                Case.status == "open",
                Case.merged_into_id.is_(None),
                Measure.status.in_(("interrupted", "aborted")),
                Measure.status_changed_at < cutoff,
                ~exists(
                    select(later.id).where(
                        later.case_id == Measure.case_id,
                        later.id != Measure.id,
                        later.created_at > Measure.status_changed_at,
                    )
                ),
                ~exists(
                    select(Document.id).where(
                        Document.case_id == Measure.case_id,
                        Document.type == "meeting_record",
                        Document.created_at > Measure.status_changed_at,
                    )
                ),
                # A conversation, call or meeting noted in the journal after it.
                ~exists(
                    select(JournalEntry.id).where(
                        JournalEntry.case_id == Measure.case_id,
                        JournalEntry.kind.in_(FOLLOW_UP_JOURNAL_KINDS),
                        JournalEntry.created_at > Measure.status_changed_at,
                    )
                ),
            )
        ).scalars()
    )
    # A measure planned earlier that starts on or after the interruption's day is a
    # follow-up too; the day is the Zurich day, which SQL cannot compute portably.
    result = []
    for measure in candidates:
        stopped_on = local_date(measure.status_changed_at)
        successor = session.execute(
            select(
                exists().where(
                    Measure.case_id == measure.case_id,
                    Measure.id != measure.id,
                    Measure.start_date >= stopped_on,
                )
            )
        ).scalar()
        if not successor:
            result.append(measure)
    return result


def monitor_run(container: Container, as_of: dt.date) -> MonitorResult:
    """Check every open case as of the day, notify once per occurrence, and commit."""
    stall_days = container.settings.stall_days
    created: list[int] = []
    with container.db.transaction() as session:
        stalled = session.execute(
            select(Case.id, Case.updated_at).where(stalled_condition(as_of, stall_days))
        ).all()
        for case_id, updated_at in stalled:
            created += notifications.notify(
                session,
                notifications.case_parties(session, case_id),
                "case.stalled",
                case_id,
                updated_at.astimezone(dt.UTC).isoformat(),
            )
        stopped = _measures_without_follow_up(session, as_of)
        for measure in stopped:
            occurrence = f"{measure.id}@{measure.status_changed_at.astimezone(dt.UTC).isoformat()}"
            created += notifications.notify(
                session,
                notifications.case_parties(session, measure.case_id),
                "measure.follow_up_missing",
                measure.case_id,
                occurrence,
            )
        horizon = (
            session.execute(
                select(Case).where(
                    Case.status == "open",
                    Case.merged_into_id.is_(None),
                    Case.entry_date <= add_months(as_of, -HORIZON_WARNING_MONTHS),
                )
            )
            .scalars()
            .all()
        )
        for case in horizon:
            created += notifications.notify(
                session,
                notifications.case_parties(session, case.id),
                "case.horizon_approaching",
                case.id,
                "6.5y",
            )
            # And a follow-up of the responsible unit, due now, so planning the case's end
            # stays on its list until somebody marks it done.
            follow_ups.set_horizon_follow_up(
                session,
                case,
                notifications.responsible_unit_id(session, case.id),
                due=as_of,
                end=horizon_date(case.entry_date),
            )
        result = MonitorResult(
            as_of=as_of,
            stalled_cases=len(stalled),
            measures_without_follow_up=len(stopped),
            horizon_cases=len(horizon),
            notifications_created=len(created),
        )
        audit.record(session, None, "monitor.run", detail=result.as_dict())
    # The e-mail tasks go to the broker only once that transaction committed (see Container).
    return result


def stalled_report(
    session: Session, identity: Identity, as_of: dt.date, stall_days: int
) -> dict[str, Any]:
    """The canton's dashboard: per responsible unit, open and stalled cases (audited)."""
    require(identity, Action.REPORT_READ)
    responsible = and_(Responsibility.case_id == Case.id, Responsibility.ended_at.is_(None))
    open_counts = {
        code: count
        for code, count in session.execute(
            select(Unit.code, func.count(Case.id))
            .join(Responsibility, responsible)
            .join(Unit, Unit.id == Responsibility.unit_id)
            .where(Case.status == "open", Case.merged_into_id.is_(None))
            .group_by(Unit.code)
        ).all()
    }
    rows = session.execute(
        select(Case.id, Case.reference, Case.updated_at, Unit.code, Unit.name, Unit.kind)
        .join(Responsibility, responsible)
        .join(Unit, Unit.id == Responsibility.unit_id)
        .where(stalled_condition(as_of, stall_days))
        .order_by(Unit.code, Case.updated_at, Case.id)
    ).all()
    units: dict[str, dict[str, Any]] = {}
    for row in rows:
        entry = units.setdefault(
            row.code,
            {
                "unit": {"code": row.code, "name": row.name, "kind": row.kind},
                "open_cases": open_counts.get(row.code, 0),
                "stalled_cases": 0,
                "cases": [],
            },
        )
        entry["stalled_cases"] += 1
        entry["cases"].append(
            {
                "case_id": row.id,
                "reference": row.reference,
                "last_activity": row.updated_at.isoformat(),
                "idle_days": (as_of - local_date(row.updated_at)).days,
            }
        )
    items = sorted(units.values(), key=lambda u: (-u["stalled_cases"], u["unit"]["code"]))
    audit.record(
        session,
        identity,
        "report.read",
        detail={"report": "stalled", "as_of": as_of.isoformat(), "stalled": len(rows)},
    )
    return {
        "as_of": as_of.isoformat(),
        "stall_days": stall_days,
        "total_stalled": len(rows),
        "items": items,
    }
