"""Closing a case (Fallabschluss) and reopening it.

The responsible unit or the canton closes a case with a coded reason; from then on the
case is read-only (the policy answers 409 ``case_closed`` to every write). Only the canton
reopens it, with a reason. Each close/reopen is a dated period in ``case_closures``, so
the history stays and the indicators can ask whether a case was closed on a given day.
A case with an undecided cost-approval request cannot be closed: nobody could decide the
request on a read-only case, so the canton decides (or rejects) it first.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, aliased

from dossier_service.bodies.plan import CloseInput, ReopenInput
from dossier_service.dates import utcnow
from dossier_service.errors import Conflict
from dossier_service.identity import Identity
from dossier_service.models import Case, CaseClosure, CostApproval, User
from dossier_service.policy import Action, load_case
from dossier_service.services import audit
from dossier_service.services.cases import touch


def open_closure(session: Session, case_id: str) -> CaseClosure | None:
    """The closure in force (None while the case is open)."""
    return session.execute(
        select(CaseClosure).where(CaseClosure.case_id == case_id, CaseClosure.reopened_at.is_(None))
    ).scalar_one_or_none()


def closure_history(session: Session, identity: Identity, case_id: str) -> list[dict[str, Any]]:
    """The case's closures and reopenings with who did them, oldest first (read policy)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    closer = aliased(User)
    reopener = aliased(User)
    rows = session.execute(
        select(CaseClosure, closer.username, reopener.username)
        .join(closer, closer.id == CaseClosure.closed_by_id)
        .outerjoin(reopener, reopener.id == CaseClosure.reopened_by_id)
        .where(CaseClosure.case_id == case.id)
        .order_by(CaseClosure.closed_at, CaseClosure.id)
    ).all()
    return [
        {
            "closed_at": closure.closed_at,
            "reason": closure.reason,
            "note": closure.note,
            "closed_by": closed_by,
            "reopened_at": closure.reopened_at,
            "reopen_reason": closure.reopen_reason,
            "reopened_by": reopened_by,
        }
        for closure, closed_by, reopened_by in rows
    ]


def close_case(session: Session, identity: Identity, case_id: str, body: CloseInput) -> Case:
    """Close the case with a reason and an optional note; 409 if closed already."""
    case = load_case(session, identity, case_id, Action.CASE_CLOSE)
    reason = body.reason
    pending = session.execute(
        select(func.count()).where(
            CostApproval.case_id == case.id, CostApproval.status == "requested"
        )
    ).scalar_one()
    if pending:
        raise Conflict(
            f"{pending} cost-approval request(s) of this case are undecided; "
            "the canton decides them before the case is closed.",
            code="cost_approvals_pending",
        )
    now = utcnow()
    session.add(
        CaseClosure(
            case_id=case.id,
            closed_at=now,
            reason=reason,
            note=body.note,
            closed_by_id=identity.user_id,
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict("The case was closed at the same time.", code="case_closed") from None
    case.status = "closed"
    touch(case)
    audit.record(session, identity, "case.close", case_id=case.id, detail={"reason": reason})
    return case


def reopen_case(session: Session, identity: Identity, case_id: str, body: ReopenInput) -> Case:
    """Reopen a closed case (canton only) with a reason; 409 if it is open."""
    case = load_case(session, identity, case_id, Action.CASE_REOPEN)
    closure = open_closure(session, case.id)
    if case.status != "closed" or closure is None:
        raise Conflict("The case is open.", code="case_not_closed")
    closure.reopened_at = utcnow()
    closure.reopen_reason = body.reason
    closure.reopened_by_id = identity.user_id
    case.status = "open"
    touch(case)
    audit.record(
        session,
        identity,
        "case.reopen",
        case_id=case.id,
        detail={"closed_for": closure.reason},
    )
    return case
