"""Haushalt on the case page: link another case of the family by its reference, or unlink."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from dossier_service.bodies.households import HouseholdInput
from dossier_service.bodies.parse import parse
from dossier_service.errors import Unprocessable
from dossier_service.http.context import audit_context
from dossier_service.identity import Identity
from dossier_service.policy import Action, allowed, load_case
from dossier_service.services import households
from dossier_service.services.document_corrections import case_by_reference
from dossier_service.web.plan_forms import _form, _submit


def link(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/household: link the case with the typed reference."""
    audit_context("household.link", case_id=case_id)
    values = _form("reference", "relation")

    def change(db: Session, who: Identity) -> str:
        load_case(db, who, case_id, Action.CASE_WRITE)  # 404/403 end on the error page
        other = case_by_reference(db, values["reference"]) if values["reference"] else None
        # A case the caller may not read is answered like one that does not exist.
        if other is None or not allowed(db, who, Action.CASE_READ, other.id):
            raise Unprocessable(
                "No readable case has this reference.",
                code="unknown_case_reference",
                field="reference",
            )
        body = parse(HouseholdInput, {"case_id": other.id, "relation": values["relation"] or None})
        households.link(db, who, case_id, body.case_id, body.relation)
        name = other.family_name + ", " + other.given_names
        return _("%(name)s ist jetzt mit diesem Fall verknüpft.", name=name)

    return _submit(case_id, "household", values, change)


def unlink(case_id: str, other_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/household/<other_id>/remove: remove the link."""
    audit_context("household.unlink", case_id=case_id)

    def change(db: Session, who: Identity) -> str:
        households.unlink(db, who, case_id, other_id)
        return _("Die Verknüpfung wurde entfernt.")

    return _submit(case_id, "household", {}, change)


def register(bp: Blueprint) -> None:
    """Add the household forms to the web blueprint."""
    bp.add_url_rule("/cases/<case_id>/household", "link_household", link, methods=["POST"])
    bp.add_url_rule(
        "/cases/<case_id>/household/<other_id>/remove",
        "unlink_household",
        unlink,
        methods=["POST"],
    )
