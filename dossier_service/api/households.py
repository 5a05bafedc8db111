"""Household links of a case: who belongs to the person's family."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dossier_service.api.context import json_body
from dossier_service.bodies.households import HouseholdInput
from dossier_service.bodies.parse import parse
from dossier_service.http.context import audit_context, identity, session
from dossier_service.services import households


def get_household(case_id: str) -> Response:
    """GET /cases/{id}/household: the linked cases the caller may read."""
    audit_context("case.read", case_id=case_id)
    members = households.household(session(), identity(), case_id)
    return jsonify({"items": [households.member_json(m) for m in members]})


def link_household(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/household: link another case (parent, child, partner)."""
    audit_context("household.link", case_id=case_id)
    body = parse(HouseholdInput, json_body())
    members = households.link(session(), identity(), case_id, body.case_id, body.relation)
    return jsonify({"items": [households.member_json(m) for m in members]}), 201


def unlink_household(case_id: str, other_id: str) -> Response:
    """DELETE /cases/{id}/household/{other_id}: remove the link; the household that remains."""
    audit_context("household.unlink", case_id=case_id)
    members = households.unlink(session(), identity(), case_id, other_id)
    return jsonify({"items": [households.member_json(m) for m in members]})


def register(bp: Blueprint) -> None:
    """Add the household routes to the API blueprint."""
    bp.add_url_rule("/cases/<case_id>/household", view_func=get_household, methods=["GET"])
    bp.add_url_rule("/cases/<case_id>/household", view_func=link_household, methods=["POST"])
    bp.add_url_rule(
        "/cases/<case_id>/household/<other_id>", view_func=unlink_household, methods=["DELETE"]
    )
