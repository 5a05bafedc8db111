"""Registering a case in the pages (canton): the person form, its checks and duplicates."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from dossier_service import identifiers, labels
from dossier_service.bodies.cases import CaseInput
from dossier_service.bodies.parse import parse
from dossier_service.errors import DossierError
from dossier_service.folding import name_key
from dossier_service.http.context import audit_context
from dossier_service.identity import Identity
from dossier_service.policy import Action, require
from dossier_service.services import cases, duplicates
from dossier_service.web.context import identity, render, session
from dossier_service.web.errors import message_for

#: The person's fields in the order of the form (entry_date belongs to the case).
PERSON_FIELDS = (
    "family_name",
    "given_names",
    "birth_date",
    "sex",
    "nationality",
    "residence_status",
    "zemis_number",
    "ahv_number",
)
#: What each field's refusal says, in the words of the form.
FIELD_MESSAGES: dict[str, Any] = {
    "family_name": _l("Bitte geben Sie den Familiennamen an (höchstens 200 Zeichen)."),
    "given_names": _l("Bitte geben Sie die Vornamen an (höchstens 200 Zeichen)."),
    "birth_date": _l(
        "Bitte geben Sie das Geburtsdatum als JJJJ, JJJJ-MM oder JJJJ-MM-TT an (Jahr 1900–2100)."
    ),
    "sex": _l("Bitte wählen Sie das Geschlecht."),
    "nationality": _l("Bitte geben Sie die Staatsangehörigkeit an (z. B. ER)."),
    "residence_status": _l("Bitte wählen Sie den Aufenthaltsstatus."),
    "zemis_number": _l(
        "Bitte geben Sie die ZEMIS-Nummer an (Ziffern, Buchstaben und . - / erlaubt)."
    ),
    "ahv_number": _l(
        "Die AHV-Nummer ist ungültig: 13 Ziffern, beginnend mit 756, mit gültiger "
        "Prüfziffer (756.XXXX.XXXX.XX). Leer lassen, wenn sie noch fehlt."
    ),
    "entry_date": _l("Bitte geben Sie das Einreisedatum an: nicht in der Zukunft, nicht vor 1990."),
}


def _form() -> dict[str, str]:
    """The submitted values, trimmed (empty on the first visit)."""
    names = (*PERSON_FIELDS, "entry_date")
    return {name: (request.form.get(name) or "").strip() for name in names}


def _errors(form: dict[str, str]) -> dict[str, str]:
    """Every field the form cannot accept, with its German sentence (all at once, not the first)."""
    errors: dict[str, str] = {}
    for name in ("family_name", "given_names", "nationality", "zemis_number", "entry_date"):
        if not form[name]:
            errors[name] = str(FIELD_MESSAGES[name])
    if form["sex"] not in identifiers.SEX_CODES:
        errors["sex"] = str(FIELD_MESSAGES["sex"])
    if form["residence_status"] not in identifiers.RESIDENCE_STATUSES:
        errors["residence_status"] = str(FIELD_MESSAGES["residence_status"])
    try:
        identifiers.parse_partial_date(form["birth_date"])
    except ValueError:
        errors["birth_date"] = str(FIELD_MESSAGES["birth_date"])
    if form["zemis_number"]:
        try:
            identifiers.normalize_zemis(form["zemis_number"])
        except ValueError:
            errors["zemis_number"] = str(FIELD_MESSAGES["zemis_number"])
    if form["ahv_number"]:
        try:
            identifiers.normalize_ahv(form["ahv_number"])
        except ValueError:
            errors["ahv_number"] = str(FIELD_MESSAGES["ahv_number"])
    return errors


def _body(form: dict[str, str]) -> dict[str, Any]:
    """The API body of the form (the same model checks both)."""
    person: dict[str, Any] = {name: form[name] for name in PERSON_FIELDS}
    person["ahv_number"] = form["ahv_number"] or None
    return {"person": person, "entry_date": form["entry_date"]}


def register_case() -> ResponseReturnValue:
    """GET/POST /cases/new: the canton registers a case; namesakes are shown before saving."""
    audit_context("case.create")
    who = identity()
    require(who, Action.CASE_CREATE)
    db = session()
    form = _form()
    errors: dict[str, str] = {}
    error: str | None = None
    existing: dict[str, str] | None = None
    if request.method == "POST":
        errors = _errors(form)
        body = None
        if not errors:
            try:
                body = parse(CaseInput, _body(form))
            except DossierError as exc:
                field = str(exc.details.get("field") or "").split(".")[-1]
                errors[field if field in FIELD_MESSAGES else "form"] = (
                    str(FIELD_MESSAGES[field]) if field in FIELD_MESSAGES else message_for(exc)
                )
        if body is not None:
            try:
                return _save(db, who, body, form)
            except DossierError as exc:
                db.rollback()
                if exc.code == "duplicate_person":
                    reference = exc.details.get("case_reference")
                    existing = (
                        {"id": str(exc.details["case_id"]), "reference": str(reference)}
                        if reference
                        else None
                    )
                    error = _("Für diese Person besteht bereits ein Fall.")
                elif exc.details.get("field") == "entry_date":
                    errors["entry_date"] = str(FIELD_MESSAGES["entry_date"])
                else:
                    error = message_for(exc)
    status = 422 if errors else (409 if error else 200)
    return _page(form, errors, error, existing, [], "", status=status)


def _save(db: Session, who: Identity, body: CaseInput, form: dict[str, str]) -> ResponseReturnValue:
    """Register the case, unless namesakes are still to be confirmed (then the form again)."""
    person = body.person
    # A refused duplicate comes first: confirming a namesake that cannot be saved helps nobody.
    duplicates.ensure_unique_for(
        db, who, None, identifiers.normalize_zemis(person.zemis_number), person.ahv_number
    )
    key = name_key(person.family_name, person.given_names)
    others = duplicates.possible_duplicates(db, None, key, person.birth_date)
    namesakes = duplicates.readable_references(db, who, others)
    # The confirmation holds for the names and birth date it was given for: changed names
    # are checked afresh.
    confirmed = f"{key}|{person.birth_date}"
    if namesakes and request.form.get("confirm_duplicate") != confirmed:
        return _page(form, {}, None, None, namesakes, confirmed, status=200)
    case = cases.create_case(db, who, body)
    flash(_("Der Fall %(reference)s wurde erfasst.", reference=case.reference), "success")
    return redirect(url_for("web.case_page", case_id=case.id))


def _page(
    form: dict[str, str],
    errors: dict[str, str],
    error: str | None,
    existing: dict[str, str] | None,
    namesakes: list[dict[str, Any]],
    confirmed: str,
    *,
    status: int,
) -> ResponseReturnValue:
    """The registration form with its values, refusals and namesakes."""
    return render(
        "cases/new.html",
        status=status,
        form=form,
        errors=errors,
        error=error,
        existing=existing,
        namesakes=namesakes,
        confirmed=confirmed,
        sexes=labels.SEX,
        residence_statuses=labels.RESIDENCE_STATUS,
    )


def register(bp: Blueprint) -> None:
    """Add the registration route."""
    bp.add_url_rule("/cases/new", "case_new", register_case, methods=["GET", "POST"])
