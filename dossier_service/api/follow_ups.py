"""Follow-ups (Wiedervorlagen) of a case: set, list, mark done."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dossier_service.api.context import json_body
from dossier_service.bodies.follow_ups import FollowUpDone, FollowUpInput
from dossier_service.bodies.parse import parse
from dossier_service.http.context import audit_context, identity, session
from dossier_service.services import follow_ups


def list_follow_ups(case_id: str) -> Response:
    """GET /cases/{id}/follow-ups: open ones by due day, then done ones."""
    audit_context("follow_up.list", case_id=case_id)
    items = follow_ups.list_for_case(session(), identity(), case_id)
    return jsonify({"items": [follow_ups.follow_up_json(f) for f in items]})


def create_follow_up(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/follow-ups: set a follow-up."""
    audit_context("follow_up.create", case_id=case_id)
    body = parse(FollowUpInput, json_body())
    follow_up = follow_ups.create(session(), identity(), case_id, body)
    return jsonify(follow_ups.follow_up_json(follow_up)), 201


def mark_done(follow_up_id: str) -> Response:
    """POST /follow-ups/{id}/done: mark it done, with an optional note."""
    audit_context("follow_up.done")
    body = parse(FollowUpDone, json_body())
    follow_up = follow_ups.mark_done(session(), identity(), follow_up_id, body)
    return jsonify(follow_ups.follow_up_json(follow_up))


def register(bp: Blueprint) -> None:
    """Add the follow-up routes to the API blueprint."""
    bp.add_url_rule("/cases/<case_id>/follow-ups", view_func=list_follow_ups, methods=["GET"])
    bp.add_url_rule("/cases/<case_id>/follow-ups", view_func=create_follow_up, methods=["POST"])
    bp.add_url_rule("/follow-ups/<follow_up_id>/done", view_func=mark_done, methods=["POST"])
