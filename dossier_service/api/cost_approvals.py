"""Cost approvals (Kostengutsprachen): requests by the responsible unit, the canton's decision."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dossier_service.api.context import json_body
from dossier_service.bodies.cost_approvals import CostApprovalInput, DecisionInput
from dossier_service.bodies.parse import parse
from dossier_service.http.context import audit_context, container, identity, session
from dossier_service.services import cost_approvals


def request_approval(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/cost-approvals: request a cost approval from the canton."""
    audit_context("cost_approval.request", case_id=case_id)
    db = session()
    approval = cost_approvals.request_cost_approval(
        db, identity(), case_id, parse(CostApprovalInput, json_body())
    )
    body = cost_approvals.cost_approval_json(approval)
    return jsonify(body), 201


def list_approvals(case_id: str) -> Response:
    """GET /cases/{id}/cost-approvals: requests, decisions and the approved total."""
    audit_context("cost_approval.list", case_id=case_id)
    db = session()
    items, totals = cost_approvals.list_cost_approvals(db, identity(), case_id)
    body = {"items": [cost_approvals.cost_approval_json(a) for a in items], **totals}
    return jsonify(body)


def get_approval(approval_id: str) -> Response:
    """GET /cost-approvals/{id}."""
    audit_context("cost_approval.read")
    db = session()
    body = cost_approvals.cost_approval_json(
        cost_approvals.read_cost_approval(db, identity(), approval_id)
    )
    return jsonify(body)


def decide(approval_id: str) -> Response:
    """POST /cost-approvals/{id}/decision: the canton decides; the letter is filed."""
    audit_context("cost_approval.decide")
    db = session()
    decision = parse(DecisionInput, json_body())
    # The service commits the decision with its letter (and sends the e-mail tasks).
    approval = cost_approvals.decide_cost_approval(
        container(), db, identity(), approval_id, decision
    )
    body = cost_approvals.cost_approval_json(approval)
    return jsonify(body)


def register(bp: Blueprint) -> None:
    """Add the cost-approval routes to the API blueprint."""
    bp.add_url_rule("/cases/<case_id>/cost-approvals", view_func=request_approval, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/cost-approvals", view_func=list_approvals, methods=["GET"])
    bp.add_url_rule("/cost-approvals/<approval_id>", view_func=get_approval, methods=["GET"])
    bp.add_url_rule("/cost-approvals/<approval_id>/decision", view_func=decide, methods=["POST"])
