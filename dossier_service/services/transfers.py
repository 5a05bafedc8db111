"""Handing a case to another unit (Übergabe) and delegating it to an organisation."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import exists, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dossier_service.bodies.cases import DelegationInput, TransferInput
from dossier_service.dates import utcnow
from dossier_service.errors import Conflict, NotFound, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import (
    Case,
    Delegation,
    Document,
    DocumentVersion,
    Responsibility,
    Unit,
)
from dossier_service.policy import Action, load_case, unit_reads_every_case
from dossier_service.services import audit, notifications, outbox
from dossier_service.services.cases import touch

#: Kinds of unit that hold cases: a case is handed over only to one of them.
RESPONSIBLE_KINDS = ("canton", "municipality")
#: Kinds of unit a case is delegated to.
DELEGATE_KINDS = ("organisation",)
#: Celery task that relabels a moved case's index entries (workers.tasks.sync_case_unit).
SYNC_UNIT_TASK = "dossier.sync_case_unit"


def _target_unit(session: Session, code: str) -> Unit:
    unit = session.execute(select(Unit).where(Unit.code == code)).scalar_one_or_none()
    if unit is None:
        raise Unprocessable(f"There is no unit with the code {code!r}.", code="unknown_unit")
    return unit


def _lock_open_period(session: Session, case: Case) -> Responsibility:
    """The open responsibility period, locked so concurrent transfers serialise."""
    return session.execute(
        select(Responsibility)
        .where(Responsibility.case_id == case.id, Responsibility.ended_at.is_(None))
        .with_for_update(of=Responsibility)
    ).scalar_one()


#: What a hand-over needs in the dossier, by (kind losing the case, kind taking it): the
#: document types that count, the error code and message when none was filed during the
#: period that ends. Canton → municipality: the end report (Schlussbericht) the concept
#: asks for; municipality → municipality (a move): a hand-over note or an end report, so
#: the next municipality inherits a summary written by the one that knew the case last.
@dataclass(frozen=True)
class HandoverRule:
    """A document the leaving unit must have filed during its current period."""

    types: tuple[str, ...]
    code: str
    message: str


HANDOVER_RULES: dict[tuple[str, str], HandoverRule] = {
    ("canton", "municipality"): HandoverRule(
        types=("end_report",),
        code="end_report_required",
        message=(
            "The canton hands a case to a municipality only with an end report "
            "(Schlussbericht) uploaded during its current responsibility for the case."
        ),
    ),
    ("municipality", "municipality"): HandoverRule(
        types=("handover_note", "end_report"),
        code="handover_note_required",
        message=(
            "A municipality hands a case to another municipality only with a hand-over note "
            "(Übergabenotiz) or an end report uploaded during its current responsibility "
            "for the case."
        ),
    ),
}


def handover_rule(current: Unit, target: Unit) -> HandoverRule | None:
    """The document this hand-over needs, or None if it needs none."""
    return HANDOVER_RULES.get((current.kind, target.kind))


def _filed_during(
    session: Session, case_id: str, types: tuple[str, ...], since: dt.datetime
) -> bool:
    """True if a document of these types got a version uploaded since the period began.

    A version counts, not only a new document: the leaving unit may update the report an
    earlier period left behind. A report from an earlier period alone no longer counts.
    """
    return bool(
        session.execute(
            select(
                exists().where(
                    Document.case_id == case_id,
                    Document.type.in_(types),
                    # A withdrawn report was filed in error: it hands nothing over.
                    Document.withdrawn_at.is_(None),
                    DocumentVersion.document_id == Document.id,
                    DocumentVersion.created_at >= since,
                )
            )
        ).scalar()
    )


def _missing_document(
    session: Session, case_id: str, period: Responsibility, target: Unit
) -> HandoverRule | None:
    """The rule this hand-over breaks (its document is missing), or None."""
    rule = handover_rule(period.unit, target)
    if rule is None or _filed_during(session, case_id, rule.types, period.started_at):
        return None
    return rule


def _open_period(session: Session, case_id: str) -> Responsibility:
    return session.execute(
        select(Responsibility).where(
            Responsibility.case_id == case_id, Responsibility.ended_at.is_(None)
        )
    ).scalar_one()


@dataclass(frozen=True)
class TransferPreview:
    """What handing a case to a unit would require and produce, before it is confirmed."""

    #: The code of the document the hand-over still needs (end_report_required,
    #: handover_note_required), or None if nothing is missing.
    missing: str | None
    #: The unit responsible now still reads the case afterwards (the canton reads every case).
    former_unit_keeps_read: bool


def preview_transfer(
    session: Session, identity: Identity, case_id: str, target: Unit
) -> TransferPreview:
    """What ``transfer_case`` to this unit would require, and what the unit losing it keeps.

    Needs only read access (the dialog shows it before the hand-over, which checks the
    transfer policy itself).
    """
    case = load_case(session, identity, case_id, Action.CASE_READ)
    period = _open_period(session, case.id)
    rule = _missing_document(session, case.id, period, target)
    return TransferPreview(
        missing=rule.code if rule else None,
        former_unit_keeps_read=unit_reads_every_case(period.unit.kind),
    )


def transfer_case(session: Session, identity: Identity, case_id: str, body: TransferInput) -> Case:
    """Make another canton or municipality unit responsible for the case.

    The previous unit loses access in the same transaction, and so do the organisations
    it had delegated the case to. The hand-over needs the document ``HANDOVER_RULES``
    names, filed during the leaving unit's current period; the new unit and the canton
    are notified.
    """
    case = load_case(session, identity, case_id, Action.CASE_TRANSFER)
    target = _target_unit(session, body.to_unit)
    reason = body.reason
    if target.kind not in RESPONSIBLE_KINDS:
        raise Unprocessable(
            "A case can only be handed to the canton or a municipality.", code="invalid_target"
        )
    current = _lock_open_period(session, case)
    if current.unit_id == target.id:
        raise Conflict(
            f"{target.name} is already responsible for this case.", code="already_responsible"
        )
    missing = _missing_document(session, case.id, current, target)
    if missing is not None:
        raise Conflict(missing.message, code=missing.code)
    now = utcnow()
    current.ended_at = now
    ended = 0
    for delegation in session.execute(
        select(Delegation).where(Delegation.case_id == case.id, Delegation.ended_at.is_(None))
    ).scalars():
        delegation.ended_at = now
        delegation.end_reason = "Fall an andere Stelle übergeben"
        ended += 1
    session.flush()
    period = Responsibility(
        case_id=case.id,
        unit_id=target.id,
        started_at=now,
        reason=reason,
        created_by_id=identity.user_id,
    )
    session.add(period)
    touch(case)
    try:
        session.flush()
    except IntegrityError:
        # The partial unique index saw a concurrent transfer win the race.
        raise Conflict(
            "The case was handed over at the same time by someone else.", code="concurrent_transfer"
        ) from None
    audit.record(
        session,
        identity,
        "transfer.create",
        case_id=case.id,
        detail={
            "from": current.unit.code,
            "to": target.code,
            "reason": reason,
            "delegations_ended": ended,
        },
    )
    notifications.notify(session, [target.id], "case.transferred_to_you", case.id, str(period.id))
    # The canton follows every change of responsibility, including moves between
    # municipalities it is not part of (its oversight of continuous case management); a
    # case handed to the canton itself is told by the notice above.
    canton = notifications.canton_unit_id(session, case.id)
    if canton is not None and canton != target.id:
        notifications.notify(
            session, [canton], notifications.RESPONSIBILITY_CHANGED, case.id, str(period.id)
        )
    # Access follows at once (the search filter comes from the database); this only
    # relabels the index entries for the unit facet.
    outbox.enqueue(session, SYNC_UNIT_TASK, case_id=case.id)
    return case


def delegate_case(
    session: Session, identity: Identity, case_id: str, body: DelegationInput
) -> Case:
    """Delegate day-to-day support to an organisation; responsibility stays put."""
    case = load_case(session, identity, case_id, Action.CASE_DELEGATE)
    target = _target_unit(session, body.to_unit)
    reason = body.reason
    if target.kind not in DELEGATE_KINDS:
        raise Unprocessable(
            "A case can only be delegated to an organisation.", code="invalid_target"
        )
    current = _lock_open_period(session, case)
    already = session.execute(
        select(Delegation.id).where(
            Delegation.case_id == case.id,
            Delegation.unit_id == target.id,
            Delegation.ended_at.is_(None),
        )
    ).first()
    if already:
        raise Conflict(f"The case is already delegated to {target.name}.", code="already_delegated")
    session.add(
        Delegation(
            case_id=case.id,
            unit_id=target.id,
            granted_by_unit_id=current.unit_id,
            started_at=utcnow(),
            reason=reason,
            created_by_id=identity.user_id,
        )
    )
    try:
        session.flush()
    except IntegrityError:
        raise Conflict(
            f"The case is already delegated to {target.name}.", code="already_delegated"
        ) from None
    touch(case)
    audit.record(
        session,
        identity,
        "delegation.create",
        case_id=case.id,
        detail={"to": target.code, "reason": reason},
    )
    return case


def end_delegation(session: Session, identity: Identity, case_id: str, unit_code: str) -> Case:
    """End the case's delegation to the organisation with this code."""
    case = load_case(session, identity, case_id, Action.CASE_DELEGATE)
    delegation = session.execute(
        select(Delegation)
        .join(Unit, Unit.id == Delegation.unit_id)
        .where(Delegation.case_id == case.id, Unit.code == unit_code, Delegation.ended_at.is_(None))
        .with_for_update(of=Delegation)
    ).scalar_one_or_none()
    if delegation is None:
        raise NotFound("The case is not delegated to this unit.", code="delegation_not_found")
    delegation.ended_at = utcnow()
    delegation.end_reason = "Delegation beendet"
    touch(case)
    audit.record(session, identity, "delegation.end", case_id=case.id, detail={"unit": unit_code})
    return case
