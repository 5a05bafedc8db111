"""Notifications (Meldungen) of the caller's unit."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from dossier_service.errors import BadRequest
from dossier_service.http.context import audit_context, identity, session
from dossier_service.services import notifications
from dossier_service.validation import int_param


def list_notifications() -> Response:
    """GET /notifications?unread=true&page=&per_page=: the unit's notifications."""
    audit_context("notification.list")
    unread = request.args.get("unread", "false").lower()
    if unread not in {"true", "false"}:
        raise BadRequest("'unread' must be true or false.", code="invalid_parameter")
    page = int_param(request.args.get("page"), "page", default=1, minimum=1, maximum=100_000)
    per_page = int_param(
        request.args.get("per_page"), "per_page", default=50, minimum=1, maximum=200
    )
    db = session()
    items, total, unread_count = notifications.list_notifications(
        db, identity(), unread_only=unread == "true", page=page, per_page=per_page
    )
    named = notifications.subjects(db, items)
    body = {
        "items": [notifications.notification_json(n, named[n.id]) for n in items],
        "total": total,
        "unread": unread_count,
        "page": page,
        "per_page": per_page,
    }
    return jsonify(body)


def mark_read(notification_id: int) -> Response:
    """POST /notifications/{id}/read: mark one of the unit's notifications read."""
    audit_context("notification.read")
    db = session()
    notification = notifications.mark_read(db, identity(), notification_id)
    subject = notifications.subjects(db, [notification])[notification.id]
    body = notifications.notification_json(notification, subject)
    return jsonify(body)


def mark_all_read() -> Response:
    """POST /notifications/read-all: mark every unread notification of the unit read."""
    audit_context("notification.read_all")
    marked = notifications.mark_all_read(session(), identity())
    return jsonify({"marked": marked, "unread": 0})


def register(bp: Blueprint) -> None:
    """Add the notification routes to the API blueprint."""
    bp.add_url_rule("/notifications", view_func=list_notifications, methods=["GET"])
    bp.add_url_rule("/notifications/read-all", view_func=mark_all_read, methods=["POST"])
    bp.add_url_rule(
        "/notifications/<int:notification_id>/read", view_func=mark_read, methods=["POST"]
    )
