"""Document page forms: correct the facts, withdraw, move to another case, purge.

Each form posts to the same services as the API (``services.document_corrections`` and
``services.withdrawal``), so the policy, the history and the audit log are the same; a
refused form is shown again on the document page with a German message and what was typed.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from pydantic import ValidationError

from dossier_service.bodies.documents import DocumentUpdate, MoveInput
from dossier_service.bodies.parse import refusal
from dossier_service.errors import DossierError, Forbidden, NotFound, Unprocessable
from dossier_service.http.context import audit_context
from dossier_service.policy import Action
from dossier_service.services import document_corrections, withdrawal
from dossier_service.services.documents import load_document
from dossier_service.web.context import identity, session
from dossier_service.web.errors import message_for


def _form() -> dict[str, str]:
    return {key: request.form.get(key, "") for key in request.form if key != "csrf_token"}


def _again(document_id: str, exc: DossierError, form: str, *, withdrawn: bool = False) -> Any:
    """The document page again, with the message beside the refused form."""
    if isinstance(exc, Forbidden | NotFound):
        raise exc
    session().rollback()
    from dossier_service.web.documents import document_page

    return document_page(
        document_id,
        status=exc.status,
        form_errors={form: message_for(exc)},
        form_values={form: _form()},
        withdrawn=withdrawn,
    )


def _confirmed() -> None:
    if request.form.get("confirm") != "yes":
        raise Unprocessable("confirm", code="confirmation_required", field="confirm")


def correct(document_id: str) -> ResponseReturnValue:
    """POST /documents/<id>/correct: title, type, document date and tags, with a reason."""
    audit_context("document.correct", document_id=document_id)
    raw: dict[str, Any] = {
        "title": request.form.get("title", ""),
        "type": request.form.get("type", ""),
        # An emptied date field clears the date.
        "document_date": request.form.get("document_date", "").strip() or None,
        "tags": [t for t in request.form.get("tags", "").split(",") if t.strip()],
        "reason": request.form.get("reason", ""),
    }
    try:
        try:
            update = DocumentUpdate.model_validate(raw)
        except ValidationError as exc:
            raise refusal(exc.errors()) from None
        document_corrections.correct_document(session(), identity(), document_id, update)
    except DossierError as exc:
        return _again(document_id, exc, "correct")
    flash(_("Die Angaben wurden geändert."), "success")
    return redirect(url_for("web.document_page", document_id=document_id), code=303)


def withdraw(document_id: str) -> ResponseReturnValue:
    """POST /documents/<id>/withdraw: after a confirmation, with a reason."""
    audit_context("document.withdraw", document_id=document_id)
    try:
        _confirmed()
        document = withdrawal.withdraw(
            session(), identity(), document_id, request.form.get("reason", "")
        )
    except DossierError as exc:
        return _again(document_id, exc, "withdraw")
    flash(_("Das Dokument «%(title)s» wurde zurückgezogen.", title=document.title), "success")
    return redirect(url_for("web.case_page", case_id=document.case_id), code=303)


def move(document_id: str) -> ResponseReturnValue:
    """POST /documents/<id>/move: to the case with the given reference (canton)."""
    audit_context("document.move", document_id=document_id)
    db = session()
    reference = request.form.get("to_reference", "").strip()
    try:
        # The right to move first: the reference is looked up only for those who may.
        load_document(db, identity(), document_id, Action.DOCUMENT_MOVE)
        target = document_corrections.case_by_reference(db, reference) if reference else None
        if target is None:
            raise Unprocessable("to_case", code="target_not_found", field="to_case")
        try:
            body = MoveInput.model_validate(
                {"to_case": target.id, "reason": request.form.get("reason", "")}
            )
        except ValidationError as exc:
            raise refusal(exc.errors()) from None
        document_corrections.move_document(db, identity(), document_id, body)
    except DossierError as exc:
        return _again(document_id, exc, "move")
    flash(
        _("Das Dokument wurde in den Fall %(reference)s verschoben.", reference=target.reference),
        "success",
    )
    return redirect(url_for("web.document_page", document_id=document_id), code=303)


def purge(document_id: str) -> ResponseReturnValue:
    """POST /documents/<id>/purge: a withdrawn document, for good (canton, confirmed)."""
    audit_context("document.purge", document_id=document_id)
    try:
        _confirmed()
        tombstone = withdrawal.purge(
            session(), identity(), document_id, request.form.get("reason", "")
        )
    except DossierError as exc:
        return _again(document_id, exc, "purge", withdrawn=True)
    flash(_("Das Dokument wurde endgültig gelöscht."), "success")
    return redirect(url_for("web.case_page", case_id=tombstone.case_id), code=303)


def register(bp: Blueprint) -> None:
    """Add the correction routes."""
    bp.add_url_rule(
        "/documents/<document_id>/correct", "correct_document", correct, methods=["POST"]
    )
    bp.add_url_rule(
        "/documents/<document_id>/withdraw", "withdraw_document", withdraw, methods=["POST"]
    )
    bp.add_url_rule("/documents/<document_id>/move", "move_document", move, methods=["POST"])
    bp.add_url_rule("/documents/<document_id>/purge", "purge_document", purge, methods=["POST"])
