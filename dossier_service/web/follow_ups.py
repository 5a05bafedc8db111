"""Wiedervorlagen on the case page: the forms that set a follow-up and mark one done."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.bodies.follow_ups import FollowUpDone, FollowUpInput
from dossier_service.bodies.parse import parse
from dossier_service.errors import NotFound
from dossier_service.http.context import audit_context
from dossier_service.identity import Identity
from dossier_service.models import FollowUp
from dossier_service.services import follow_ups
from dossier_service.web.context import session
from dossier_service.web.plan_forms import _form, _iso_date, _submit


def add_follow_up(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/follow-ups: set a follow-up, optionally about a measure."""
    audit_context("follow_up.create", case_id=case_id)
    values = _form("due_date", "note", "measure")

    def change(db: Session, who: Identity) -> str:
        payload = {
            "due_date": _iso_date(values["due_date"]),
            "note": values["note"],
            "measure": values["measure"] or None,
        }
        follow_up = follow_ups.create(db, who, case_id, parse(FollowUpInput, payload))
        day = follow_up.due_date.strftime("%d.%m.%Y")
        return _("Die Wiedervorlage auf den %(day)s wurde gesetzt.", day=day)

    return _submit(case_id, "follow_up", values, change)


def follow_up_done(follow_up_id: str) -> ResponseReturnValue:
    """POST /follow-ups/<id>/done: mark a follow-up done, back to its case."""
    audit_context("follow_up.done")
    case_id = (
        session()
        .execute(select(FollowUp.case_id).where(FollowUp.id == follow_up_id))
        .scalar_one_or_none()
    )
    if case_id is None:
        raise NotFound("No such follow-up.", code="follow_up_not_found")
    values = _form("note")

    def change(db: Session, who: Identity) -> str:
        follow_ups.mark_done(db, who, follow_up_id, parse(FollowUpDone, values))
        return _("Die Wiedervorlage ist erledigt.")

    return _submit(case_id, "follow_up_done", values, change)


def register(bp: Blueprint) -> None:
    """Add the follow-up forms to the web blueprint."""
    bp.add_url_rule("/cases/<case_id>/follow-ups", "add_follow_up", add_follow_up, methods=["POST"])
    bp.add_url_rule(
        "/follow-ups/<follow_up_id>/done", "follow_up_done", follow_up_done, methods=["POST"]
    )
