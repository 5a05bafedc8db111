"""Meldungen: the notifications of my unit, newest first, and marking them read."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext

from dossier_service.http.context import audit_context
from dossier_service.services import notifications
from dossier_service.web.context import Pager, identity, page_arg, render, session

PER_PAGE = 30
#: The kinds as the page names them (the service's German labels, translatable here).
KIND_LABELS = {
    "case.transferred_to_you": _l("Ein Fall wurde Ihrer Stelle übergeben"),
    "case.responsibility_changed": _l("Die Zuständigkeit für einen Fall hat gewechselt"),
    "cost_approval.requested": _l("Neues Gesuch um Kostengutsprache"),
    "cost_approval.decided": _l("Über ein Gesuch um Kostengutsprache wurde entschieden"),
    "measure.interrupted": _l("Eine Massnahme wurde unterbrochen"),
    "measure.aborted": _l("Eine Massnahme wurde abgebrochen"),
    "measure.follow_up_missing": _l("Unterbrochene Massnahme ohne Anschlusslösung"),
    "case.stalled": _l("Fall ohne Aktivität"),
    "case.horizon_approaching": _l("Der 7-Jahres-Horizont des Falls naht"),
    "case.merged": _l("Zwei Fälle einer Person wurden zusammengeführt"),
}


def notification_list() -> ResponseReturnValue:
    """GET /notifications?unread=1&page=."""
    audit_context("notification.list")
    unread_only = request.args.get("unread") == "1"
    page = page_arg()
    db = session()
    items, total, unread = notifications.list_notifications(
        db, identity(), unread_only=unread_only, page=page, per_page=PER_PAGE
    )
    return render(
        "notifications.html",
        items=items,
        unread=unread,
        unread_only=unread_only,
        pager=Pager(page, PER_PAGE, total),
        kind_labels=KIND_LABELS,
        subjects=notifications.subjects(db, items),
    )


def mark_read(notification_id: int) -> ResponseReturnValue:
    """POST /notifications/<id>/read: mark read, then open the case or go back to the list."""
    audit_context("notification.read")
    db = session()
    notification = notifications.mark_read(db, identity(), notification_id)
    case_id = notification.case_id
    if request.form.get("open") == "1":
        return redirect(url_for("web.case_page", case_id=case_id), code=303)
    return redirect(url_for("web.notification_list"), code=303)


def mark_all_read() -> ResponseReturnValue:
    """POST /notifications/read-all: mark every unread notification read, back to the list."""
    audit_context("notification.read_all")
    marked = notifications.mark_all_read(session(), identity())
    flash(
        ngettext(
            "%(num)d Meldung als gelesen markiert.",
            "%(num)d Meldungen als gelesen markiert.",
            marked,
        ),
        "success",
    )
    return redirect(url_for("web.notification_list"), code=303)


def register(bp: Blueprint) -> None:
    """Add the notification routes."""
    bp.add_url_rule("/notifications", "notification_list", notification_list)
    bp.add_url_rule("/notifications/read-all", "mark_all_read", mark_all_read, methods=["POST"])
    bp.add_url_rule(
        "/notifications/<int:notification_id>/read", "mark_read", mark_read, methods=["POST"]
    )
