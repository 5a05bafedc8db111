"""Cases, responsibilities, transfers and delegations."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from dossier_service.api.context import json_body
from dossier_service.bodies.cases import (
    CaseInput,
    DelegationInput,
    MergeInput,
    PersonCorrection,
    TransferInput,
)
from dossier_service.bodies.parse import parse
from dossier_service.http.context import audit_context, identity, session
from dossier_service.services import cases, duplicates, merges, person, transfers
from dossier_service.validation import int_param


def create_case() -> tuple[Response, int]:
    """POST /cases: register a case."""
    audit_context("case.create")
    db = session()
    who = identity()
    case = cases.create_case(db, who, parse(CaseInput, json_body()))
    body = cases.case_json(db, case)
    # Same names and birth date is allowed (namesakes exist) but said, so it can be checked.
    body["warnings"] = duplicates.warnings_for(db, who, case)
    return jsonify(body), 201


def list_cases() -> Response:
    """GET /cases: the visible cases, paginated."""
    audit_context("case.list")
    page = int_param(request.args.get("page"), "page", default=1, minimum=1, maximum=100_000)
    per_page = int_param(
        request.args.get("per_page"), "per_page", default=50, minimum=1, maximum=200
    )
    status = request.args.get("status") or None
    if status not in (None, "open", "closed"):
        from dossier_service.errors import BadRequest

        raise BadRequest("'status' must be open or closed.", code="invalid_parameter")
    db = session()
    items, total = cases.list_cases(
        db,
        identity(),
        page=page,
        per_page=per_page,
        status=status,
        unit_code=request.args.get("unit") or None,
        text=(request.args.get("q") or "").strip()[:100] or None,
    )
    body = {
        "items": [cases.case_json(db, c) for c in items],
        "total": total,
        "page": page,
        "per_page": per_page,
    }
    return jsonify(body)


def get_case(case_id: str) -> Response:
    """GET /cases/{id}."""
    audit_context("case.read", case_id=case_id)
    db = session()
    case = cases.get_case(db, identity(), case_id)
    body = cases.case_json(db, case)
    merged_from = merges.merges_into(db, case.id)
    if merged_from:
        body["merged_from"] = [merges.merge_json(m, c) for m, c in merged_from]
    return jsonify(body)


def correct_person(case_id: str) -> Response:
    """PATCH /cases/{id}/person: correct the person's data, with a reason."""
    audit_context("person.correct", case_id=case_id)
    db = session()
    case = person.correct_person(db, identity(), case_id, parse(PersonCorrection, json_body()))
    return jsonify(cases.case_json(db, case))


def get_person_history(case_id: str) -> Response:
    """GET /cases/{id}/person/history: corrections of the person and status changes."""
    audit_context("case.read", case_id=case_id)
    return jsonify(person.history_json(session(), identity(), case_id))


def get_responsibilities(case_id: str) -> Response:
    """GET /cases/{id}/responsibilities: who was responsible when."""
    audit_context("case.read", case_id=case_id)
    db = session()
    items = cases.responsibilities_json(db, identity(), case_id)
    return jsonify({"items": items})


def create_transfer(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/transfers: hand the case to another unit."""
    audit_context("transfer.create", case_id=case_id)
    db = session()
    case = transfers.transfer_case(db, identity(), case_id, parse(TransferInput, json_body()))
    return jsonify(cases.case_json(db, case)), 201


def create_delegation(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/delegations: delegate support to an organisation."""
    audit_context("delegation.create", case_id=case_id)
    db = session()
    case = transfers.delegate_case(db, identity(), case_id, parse(DelegationInput, json_body()))
    return jsonify(cases.case_json(db, case)), 201


def end_delegation(case_id: str, unit_code: str) -> Response:
    """DELETE /cases/{id}/delegations/{unit_code}: end a delegation."""
    audit_context("delegation.end", case_id=case_id)
    db = session()
    case = transfers.end_delegation(db, identity(), case_id, unit_code)
    return jsonify(cases.case_json(db, case))


def merge_case(case_id: str) -> Response:
    """POST /cases/{id}/merge: merge another case of the same person into this one."""
    audit_context("case.merge", case_id=case_id)
    db = session()
    case = merges.merge_cases(db, identity(), case_id, parse(MergeInput, json_body()))
    merge, merged = merges.merges_into(db, case.id)[-1]
    return jsonify({"case": cases.case_json(db, case), "merge": merges.merge_json(merge, merged)})


def register(bp: Blueprint) -> None:
    """Add the case routes to the API blueprint."""
    bp.add_url_rule("/cases", view_func=create_case, methods=["POST"])
    bp.add_url_rule("/cases", view_func=list_cases, methods=["GET"])
    bp.add_url_rule("/cases/<case_id>", view_func=get_case, methods=["GET"])
    bp.add_url_rule("/cases/<case_id>/person", view_func=correct_person, methods=["PATCH"])
    bp.add_url_rule(
        "/cases/<case_id>/person/history", view_func=get_person_history, methods=["GET"]
    )
    bp.add_url_rule(
        "/cases/<case_id>/responsibilities", view_func=get_responsibilities, methods=["GET"]
    )
    bp.add_url_rule("/cases/<case_id>/transfers", view_func=create_transfer, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/merge", view_func=merge_case, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/delegations", view_func=create_delegation, methods=["POST"])
    bp.add_url_rule(
        "/cases/<case_id>/delegations/<unit_code>", view_func=end_delegation, methods=["DELETE"]
    )
