"""Cost approvals (Kostengutsprachen): requested by the responsible unit, decided by the canton.

Amounts are exact: JSON strings like "4800.00" parsed with ``decimal.Decimal`` into
``Numeric(12, 2)`` columns and written back as strings; JSON numbers are refused, since a
float cannot be trusted to the cent.

Deciding, and why it is never half done:
1. policy (canton caseworker) and the decision's values are checked, and the request must
   still be open (a fast 409 in the common case);
2. the decision letter (PDF) is rendered and spooled; the read transaction ends, so no
   lock is held while storing;
3. ``documents.create_document`` inspects the letter and writes it to object storage;
   nothing is in the database yet, so a storage failure leaves the request undecided
   (503, try again);
4. one transaction re-checks the policy (locking the case row), inserts the letter's
   document and version, then flips the request with a conditional
   ``UPDATE … WHERE status = 'requested'``, records the audit entries and the requester's
   notification; the caller's transaction commits them. If the UPDATE finds the request
   decided meanwhile (two canton caseworkers at once), it raises 409 and everything rolls
   back, the stored letter object included. So the decision and its letter commit together
   or not at all; a crash between 3 and 4 leaves only an unreferenced object that
   ``dossier fsck`` reports as an orphan.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.orm import Session

from dossier_service import labels
from dossier_service.bodies.cost_approvals import CostApprovalInput, DecisionInput
from dossier_service.dates import local_date, local_today, swiss_date, utcnow
from dossier_service.errors import Conflict, NotFound, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import (
    Case,
    CostApproval,
    CostApprovalDocument,
    Document,
    Measure,
    Unit,
    User,
)
from dossier_service.models.process import PROGRAMMES
from dossier_service.policy import Action, load_case, require, unit_reads_every_case
from dossier_service.services import audit, documents, letters, notifications
from dossier_service.services.cases import touch
from dossier_service.uploads import spool_bytes

if TYPE_CHECKING:
    from dossier_service.container import Container


def money(amount: Decimal | None) -> str | None:
    """An amount as the API writes it: a string with two decimals."""
    return None if amount is None else f"{Decimal(amount).quantize(Decimal('0.01')):.2f}"


def cost_approval_json(approval: CostApproval) -> dict[str, Any]:
    """The API shape of a request and its decision."""
    return {
        "id": approval.id,
        "case_id": approval.case_id,
        "measure_id": approval.measure_id,
        "programme": approval.programme,
        "programme_label": labels.PROGRAMME[approval.programme],
        "amount_chf": money(approval.amount_chf),
        "period_from": approval.period_from.isoformat(),
        "period_to": approval.period_to.isoformat(),
        "justification": approval.justification,
        "document_ids": [a.document_id for a in approval.attachments],
        "status": approval.status,
        "requested_at": approval.requested_at.isoformat(),
        "requested_by": approval.requested_by.username,
        "requested_by_unit": approval.requested_by_unit.code,
        "decided_at": approval.decided_at.isoformat() if approval.decided_at else None,
        "decided_by": approval.decided_by.username if approval.decided_by else None,
        "approved_amount_chf": money(approval.approved_amount_chf),
        "decision_reason": approval.decision_reason,
        "decision_document_id": approval.decision_document_id,
    }


def _attachments(session: Session, case_id: str, ids: list[str] | None) -> list[str]:
    """The ids of documents of this case to attach (unknown or foreign ids answer 422)."""
    if not ids:
        return []
    found = set(
        session.execute(
            # A withdrawn document is gone for every reader: it cannot be attached either.
            select(Document.id).where(
                Document.id.in_(ids),
                Document.case_id == case_id,
                Document.withdrawn_at.is_(None),
            )
        ).scalars()
    )
    missing = [i for i in ids if i not in found]
    if missing:
        # The same answer for a missing id and one of another case: nothing leaks.
        raise Unprocessable(
            "These documents are not in this case's dossier: " + ", ".join(missing[:5]) + ".",
            code="unknown_document",
            field="document_ids",
        )
    return ids


def request_cost_approval(
    session: Session, identity: Identity, case_id: str, body: CostApprovalInput
) -> CostApproval:
    """File a request; the canton is notified."""
    case = load_case(session, identity, case_id, Action.COST_APPROVAL_REQUEST)
    measure: Measure | None = None
    if body.measure_id is not None:
        measure = session.get(Measure, body.measure_id)
        if measure is None or measure.case_id != case.id:
            raise Unprocessable(
                "The measure is not part of this case's plan.",
                code="unknown_measure",
                field="measure_id",
            )
    if body.programme is None and measure is not None:
        programme = measure.programme
    elif body.programme is None:
        allowed = ", ".join(sorted(PROGRAMMES))
        raise Unprocessable(f"'programme' must be one of: {allowed}.", field="programme")
    else:
        programme = body.programme
        if measure is not None and measure.programme != programme:
            raise Unprocessable(
                "'programme' differs from the programme of the measure.", field="programme"
            )
    amount = body.amount_chf
    if amount == 0:
        raise Unprocessable("'amount_chf' must be more than 0.00.", field="amount_chf")
    period_from, period_to = body.period_from, body.period_to
    if period_to < period_from:
        raise Unprocessable("'period_to' lies before 'period_from'.", field="period_to")
    if period_from.year < 1990 or period_to.year > local_today().year + 10:
        raise Unprocessable("The period is implausible.", field="period_from")
    document_ids = _attachments(session, case.id, body.document_ids)
    approval = CostApproval(
        id=str(uuid.uuid4()),
        case_id=case.id,
        measure_id=measure.id if measure else None,
        programme=programme,
        amount_chf=amount,
        period_from=period_from,
        period_to=period_to,
        justification=body.justification,
        status="requested",
        requested_at=utcnow(),
        requested_by_id=identity.user_id,
        requested_by_unit_id=identity.unit_id,
    )
    session.add(approval)
    session.flush()
    for document_id in document_ids:
        session.add(CostApprovalDocument(cost_approval_id=approval.id, document_id=document_id))
    touch(case)
    session.flush()
    audit.record(
        session,
        identity,
        "cost_approval.request",
        case_id=case.id,
        detail={
            "cost_approval_id": approval.id,
            "programme": programme,
            "amount_chf": money(amount),
            "documents": len(document_ids),
        },
    )
    canton = notifications.canton_unit_id(session, case.id)
    if canton is not None:
        notifications.notify(session, [canton], "cost_approval.requested", case.id, approval.id)
    session.expire(approval)  # reload the attachments just added
    return approval


def load_cost_approval(
    session: Session, identity: Identity, approval_id: str, action: Action
) -> tuple[CostApproval, Case]:
    """The request and its case if the caller may act on the case (else 404 like the case)."""
    require(identity, Action.CASE_READ)
    require(identity, action)
    case_id = session.execute(
        select(CostApproval.case_id).where(CostApproval.id == approval_id)
    ).scalar_one_or_none()
    if case_id is None:
        raise NotFound("No such cost approval.", code="cost_approval_not_found")
    try:
        case = load_case(session, identity, case_id, action)
    except NotFound:
        raise NotFound("No such cost approval.", code="cost_approval_not_found") from None
    approval = session.get(CostApproval, approval_id)
    assert approval is not None
    return approval, case


def _check_decision(body: DecisionInput, requested: Decimal) -> tuple[str, Decimal, str]:
    """(decision, approved amount, reason) checked against the requested amount."""
    decision, approved, reason = body.decision, body.approved_amount_chf, body.reason
    if decision != "approved" and not reason:
        raise Unprocessable("'reason' is required.", field="reason")
    if decision == "approved":
        if approved is not None and approved != requested:
            raise Unprocessable(
                f"An approval grants the requested {money(requested)}; for less, decide "
                "'partially_approved'.",
                field="approved_amount_chf",
            )
        return decision, requested, reason
    if decision == "partially_approved":
        if approved is None:
            raise Unprocessable(
                "A partial approval needs 'approved_amount_chf'.", field="approved_amount_chf"
            )
        if not Decimal("0") < approved < requested:
            raise Unprocessable(
                f"A partial approval grants more than 0.00 and less than {money(requested)}.",
                field="approved_amount_chf",
            )
        return decision, approved, reason
    if approved is not None and approved != 0:
        raise Unprocessable(
            "A rejection grants nothing; leave out 'approved_amount_chf'.",
            field="approved_amount_chf",
        )
    return "rejected", Decimal("0.00"), reason


def _letter_facts(
    session: Session,
    identity: Identity,
    approval: CostApproval,
    case: Case,
    decision: str,
    approved: Decimal,
    reason: str,
) -> letters.DecisionFacts:
    measure = session.get(Measure, approval.measure_id) if approval.measure_id else None
    signer = session.get(User, identity.user_id)
    addressee = session.get(Unit, approval.requested_by_unit_id)
    assert signer is not None and addressee is not None
    return letters.DecisionFacts(
        reference=case.reference,
        person_name=f"{case.given_names} {case.family_name}",
        birth_date=case.birth_date,
        addressee=addressee.name,
        programme=labels.PROGRAMME[approval.programme],
        provider=measure.provider if measure else "",
        period_from=approval.period_from,
        period_to=approval.period_to,
        requested_on=local_date(approval.requested_at),
        amount=approval.amount_chf,
        approved_amount=approved,
        decision=decision,
        reason=reason,
        decided_on=local_today(),
        signed_by=signer.display_name or signer.username,
    )


def decide_cost_approval(
    container: Container,
    session: Session,
    identity: Identity,
    approval_id: str,
    body: DecisionInput,
) -> CostApproval:
    """Decide a request, file the decision letter and notify the requester."""
    approval, case = load_cost_approval(session, identity, approval_id, Action.COST_APPROVAL_DECIDE)
    if approval.status != "requested":
        raise Conflict("This request has been decided already.", code="already_decided")
    decision, approved, reason = _check_decision(body, approval.amount_chf)
    facts = _letter_facts(session, identity, approval, case, decision, approved, reason)
    case_id, requester_unit = case.id, approval.requested_by_unit_id
    requester_reads_every_case = unit_reads_every_case(approval.requested_by_unit.kind)
    session.rollback()  # no lock is held while the letter is inspected and stored
    pdf = letters.decision_letter(facts)
    upload = spool_bytes(
        container.settings.spool_dir,
        pdf,
        "application/pdf",
        f"Kostengutsprache_{facts.reference}_{facts.decided_on.isoformat()}.pdf",
    )

    def also_write(tx: Session, document: Document) -> None:
        now = utcnow()
        flipped = cast(
            CursorResult[Any],
            tx.execute(
                update(CostApproval)
                .where(CostApproval.id == approval_id, CostApproval.status == "requested")
                .values(
                    status=decision,
                    decided_at=now,
                    decided_by_id=identity.user_id,
                    approved_amount_chf=approved,
                    decision_reason=reason,
                    decision_document_id=document.id,
                )
                .execution_options(synchronize_session=False)
            ),
        ).rowcount
        if flipped != 1:
            raise Conflict(
                "This request was decided by someone else at the same time.",
                code="already_decided",
            )
        audit.record(
            tx,
            identity,
            "cost_approval.decide",
            case_id=case_id,
            document_id=document.id,
            detail={
                "cost_approval_id": approval_id,
                "decision": decision,
                "approved_amount_chf": money(approved),
            },
        )
        # The requester, while it can still open the case; and whoever holds the case now,
        # who acts on the decision if the case moved since the request.
        responsible = notifications.responsible_unit_id(tx, case_id)
        recipients = [responsible]
        if requester_reads_every_case or requester_unit == responsible:
            recipients.insert(0, requester_unit)
        notifications.notify(tx, recipients, "cost_approval.decided", case_id, approval_id)

    try:
        documents.create_document(
            container,
            session,
            identity,
            case_id,
            upload,
            {
                "type": "cost_approval_decision",
                "title": f"Kostengutsprache {approval.programme}: Entscheid vom "
                f"{swiss_date(facts.decided_on)}",
            },
            action=Action.COST_APPROVAL_DECIDE,
            also_write=also_write,
        )
    finally:
        upload.discard()
    session.expire_all()
    result = session.get(CostApproval, approval_id)
    assert result is not None
    return result


def read_cost_approval(session: Session, identity: Identity, approval_id: str) -> CostApproval:
    """One request with its decision (audited as cost_approval.read)."""
    approval, case = load_cost_approval(session, identity, approval_id, Action.CASE_READ)
    audit.record(
        session,
        identity,
        "cost_approval.read",
        case_id=case.id,
        detail={"cost_approval_id": approval.id},
    )
    return approval


def list_cost_approvals(
    session: Session, identity: Identity, case_id: str
) -> tuple[list[CostApproval], dict[str, str | None]]:
    """The case's requests, newest first, with the approved and the pending totals."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    items = list(
        session.execute(
            select(CostApproval)
            .where(CostApproval.case_id == case.id)
            .order_by(CostApproval.requested_at.desc(), CostApproval.id)
        ).scalars()
    )
    # Summed in Python from exact Decimals: SQLite has no decimal arithmetic.
    approved = sum(
        (a.approved_amount_chf or Decimal("0") for a in items if a.status != "requested"),
        Decimal("0"),
    )
    pending = sum((a.amount_chf for a in items if a.status == "requested"), Decimal("0"))
    audit.record(
        session, identity, "cost_approval.list", case_id=case.id, detail={"count": len(items)}
    )
    return items, {"approved_total_chf": money(approved), "requested_open_chf": money(pending)}
