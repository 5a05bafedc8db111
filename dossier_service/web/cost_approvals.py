"""Kostengutsprachen of a case: the requests and decisions, a new request, the decision.

Requests go through ``services.cost_approvals`` (the responsible unit requests, only the
canton decides, a decided request answers 409); the forms keep every value on an error.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from dossier_service.bodies.cost_approvals import CostApprovalInput, DecisionInput
from dossier_service.bodies.parse import parse
from dossier_service.errors import DossierError, Forbidden, NotFound
from dossier_service.http.context import audit_context
from dossier_service.models.process import PROGRAMMES
from dossier_service.policy import Action, rights
from dossier_service.services import cases, cost_approvals, documents
from dossier_service.web.context import container, identity, render, session
from dossier_service.web.errors import message_for

REQUEST_FIELDS = ("programme", "amount_chf", "period_from", "period_to", "justification")
DECISION_FIELDS = ("decision", "approved_amount_chf", "reason")


def _amount(raw: str) -> str:
    """An amount as a person types it (4'800.00, 4800, 4800,50) in the service's form."""
    return raw.strip().replace("'", "").replace("’", "").replace(" ", "").replace(",", ".")


def cost_approval_page(
    case_id: str,
    *,
    form: dict[str, Any] | None = None,
    decision_form: dict[str, Any] | None = None,
    error: str | None = None,
    error_field: str | None = None,
    decide_id: str | None = None,
    status: int = 200,
) -> ResponseReturnValue:
    """GET /cases/<id>/cost-approvals: requests, decisions, totals and the forms."""
    audit_context("cost_approval.list", case_id=case_id)
    who = identity()
    db = session()
    case = cases.get_case(db, who, case_id)
    items, totals = cost_approvals.list_cost_approvals(db, who, case.id)
    docs = documents.list_documents(db, who, case.id)
    granted = rights(db, who, case)
    return render(
        "cost_approvals.html",
        status=status,
        case=case,
        items=items,
        totals=totals,
        docs=docs,
        programmes=PROGRAMMES,
        may_request=Action.COST_APPROVAL_REQUEST in granted,
        may_decide=Action.COST_APPROVAL_DECIDE in granted,
        form=form or {},
        decision_form=decision_form or {},
        error=error,
        error_field=error_field,
        decide_id=decide_id,
    )


def request_approval(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/cost-approvals: file a request (the canton is notified)."""
    audit_context("cost_approval.request", case_id=case_id)
    form: dict[str, Any] = {k: request.form.get(k, "").strip() for k in REQUEST_FIELDS}
    form["document_ids"] = request.form.getlist("document_ids")
    payload: dict[str, Any] = {**form, "amount_chf": _amount(form["amount_chf"])}
    for key in ("period_from", "period_to", "programme"):
        if not payload[key]:
            payload[key] = None
    db = session()
    try:
        cost_approvals.request_cost_approval(
            db, identity(), case_id, parse(CostApprovalInput, payload)
        )
    except DossierError as exc:
        db.rollback()
        if isinstance(exc, Forbidden | NotFound):
            raise
        return cost_approval_page(
            case_id,
            form=form,
            error=message_for(exc),
            error_field=str(exc.details.get("field") or "") or None,
            status=exc.status,
        )
    flash(_("Das Gesuch wurde eingereicht; der Kanton ist benachrichtigt."), "success")
    return redirect(url_for("web.cost_approval_page", case_id=case_id), code=303)


def decide(approval_id: str) -> ResponseReturnValue:
    """POST /cost-approvals/<id>/decision: the canton decides; the letter is filed."""
    audit_context("cost_approval.decide")
    form = {k: request.form.get(k, "").strip() for k in DECISION_FIELDS}
    payload = {**form, "approved_amount_chf": _amount(form["approved_amount_chf"]) or None}
    db = session()
    who = identity()
    _approval, case = cost_approvals.load_cost_approval(db, who, approval_id, Action.CASE_READ)
    case_id = case.id
    try:
        cost_approvals.decide_cost_approval(
            container(), db, who, approval_id, parse(DecisionInput, payload)
        )
    except DossierError as exc:
        db.rollback()
        if isinstance(exc, NotFound):
            raise
        return cost_approval_page(
            case_id,
            decision_form=form,
            error=message_for(exc),
            error_field=str(exc.details.get("field") or "") or None,
            decide_id=approval_id,
            status=exc.status,
        )
    flash(_("Der Entscheid wurde gespeichert und als Dokument abgelegt."), "success")
    return redirect(url_for("web.cost_approval_page", case_id=case_id), code=303)


def register(bp: Blueprint) -> None:
    """Add the cost-approval routes."""
    bp.add_url_rule("/cases/<case_id>/cost-approvals", "cost_approval_page", cost_approval_page)
    bp.add_url_rule(
        "/cases/<case_id>/cost-approvals", "request_approval", request_approval, methods=["POST"]
    )
    bp.add_url_rule("/cost-approvals/<approval_id>/decision", "decide", decide, methods=["POST"])
