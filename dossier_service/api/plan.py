"""The case's plan (target group, measures, milestones), and closing and reopening a case."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dossier_service.api.context import json_body
from dossier_service.bodies.parse import parse
from dossier_service.bodies.plan import (
    CaseUpdate,
    CloseInput,
    MeasureInput,
    MeasureUpdate,
    MilestoneInput,
    ReopenInput,
)
from dossier_service.http.context import audit_context, identity, session
from dossier_service.services import cases, closing, plan


def update_case(case_id: str) -> Response:
    """PATCH /cases/{id}: set the target group (a new dated period)."""
    audit_context("case.update", case_id=case_id)
    db = session()
    case = plan.update_case(db, identity(), case_id, parse(CaseUpdate, json_body()))
    return jsonify(cases.case_json(db, case))


def target_groups(case_id: str) -> Response:
    """GET /cases/{id}/target-groups: the target-group history."""
    audit_context("case.read", case_id=case_id)
    db = session()
    items = plan.target_group_history(db, identity(), case_id)
    return jsonify({"items": items})


def create_measure(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/measures: add a measure to the plan."""
    audit_context("measure.create", case_id=case_id)
    db = session()
    measure = plan.create_measure(db, identity(), case_id, parse(MeasureInput, json_body()))
    body = plan.measure_json(measure)
    return jsonify(body), 201


def list_measures(case_id: str) -> Response:
    """GET /cases/{id}/measures."""
    audit_context("measure.list", case_id=case_id)
    db = session()
    items = [plan.measure_json(m) for m in plan.list_measures(db, identity(), case_id)]
    return jsonify({"items": items})


def update_measure(measure_id: str) -> Response:
    """PATCH /measures/{id}: change dates, provider, note or status."""
    audit_context("measure.update")
    db = session()
    measure = plan.update_measure(db, identity(), measure_id, parse(MeasureUpdate, json_body()))
    body = plan.measure_json(measure)
    return jsonify(body)


def create_milestone(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/milestones: record a dated language, education or employment fact."""
    audit_context("milestone.create", case_id=case_id)
    db = session()
    milestone = plan.create_milestone(db, identity(), case_id, parse(MilestoneInput, json_body()))
    body = plan.milestone_json(milestone)
    return jsonify(body), 201


def list_milestones(case_id: str) -> Response:
    """GET /cases/{id}/milestones."""
    audit_context("milestone.list", case_id=case_id)
    db = session()
    items = [plan.milestone_json(m) for m in plan.list_milestones(db, identity(), case_id)]
    return jsonify({"items": items})


def close_case(case_id: str) -> Response:
    """POST /cases/{id}/close: close the case with a reason."""
    audit_context("case.close", case_id=case_id)
    db = session()
    case = closing.close_case(db, identity(), case_id, parse(CloseInput, json_body()))
    return jsonify(cases.case_json(db, case))


def reopen_case(case_id: str) -> Response:
    """POST /cases/{id}/reopen: reopen a closed case (canton)."""
    audit_context("case.reopen", case_id=case_id)
    db = session()
    case = closing.reopen_case(db, identity(), case_id, parse(ReopenInput, json_body()))
    return jsonify(cases.case_json(db, case))


def register(bp: Blueprint) -> None:
    """Add the plan and closing routes to the API blueprint."""
    bp.add_url_rule(
        "/cases/<case_id>", endpoint="update_case", view_func=update_case, methods=["PATCH"]
    )
    bp.add_url_rule("/cases/<case_id>/target-groups", view_func=target_groups, methods=["GET"])
    bp.add_url_rule("/cases/<case_id>/measures", view_func=create_measure, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/measures", view_func=list_measures, methods=["GET"])
    bp.add_url_rule("/measures/<measure_id>", view_func=update_measure, methods=["PATCH"])
    bp.add_url_rule("/cases/<case_id>/milestones", view_func=create_milestone, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/milestones", view_func=list_milestones, methods=["GET"])
    bp.add_url_rule("/cases/<case_id>/close", view_func=close_case, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/reopen", view_func=reopen_case, methods=["POST"])
