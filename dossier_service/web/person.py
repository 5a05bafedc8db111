"""Personendaten korrigieren: the form of the responsible unit, with a reason for the history."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l

from dossier_service import identifiers
from dossier_service.bodies.cases import PersonCorrection
from dossier_service.bodies.parse import parse
from dossier_service.errors import DossierError, Forbidden
from dossier_service.http.context import audit_context
from dossier_service.labels import PERSON_FIELD, RESIDENCE_STATUS, SEX
from dossier_service.models import Case
from dossier_service.policy import Action, allowed
from dossier_service.services import cases, person
from dossier_service.web.context import identity, render, session
from dossier_service.web.errors import message_for

#: The form's fields besides the reason, in the order the form shows them.
FORM_FIELDS = person.PERSON_FIELDS
#: What to say about a refused value, by error code, then by field.
CODE_MESSAGES: dict[str, Any] = {
    "regulation_date_required": _l(
        "Bei einem Wechsel zu Status F oder B braucht es das Datum des Entscheids."
    ),
    "regulation_date_in_future": _l("Das Datum des Entscheids darf nicht in der Zukunft liegen."),
    "regulation_date_before_entry": _l(
        "Das Datum des Entscheids darf nicht vor der Einreise in den Kanton liegen."
    ),
    "regulation_date_not_allowed": _l(
        "Ein Datum des Entscheids gibt es nur bei Status F oder B; bei Status N bitte leer lassen."
    ),
}
FIELD_MESSAGES: dict[str, Any] = {
    "family_name": _l("Bitte geben Sie den Namen an (höchstens 200 Zeichen)."),
    "given_names": _l("Bitte geben Sie die Vornamen an (höchstens 200 Zeichen)."),
    "birth_date": _l(
        "Bitte geben Sie das Geburtsdatum als JJJJ, JJJJ-MM oder JJJJ-MM-TT an "
        "(z. B. 1998-03 oder 1998-03-14)."
    ),
    "sex": _l("Bitte wählen Sie das Geschlecht aus der Liste."),
    "nationality": _l("Bitte geben Sie die Staatsangehörigkeit an."),
    "zemis_number": _l(
        "Die ZEMIS-Nummer ist ungültig: erlaubt sind Ziffern und Buchstaben, "
        "getrennt durch Punkt, Schrägstrich, Bindestrich oder Leerzeichen."
    ),
    "ahv_number": _l(
        "Die AHV-Nummer ist ungültig: 13 Ziffern, beginnend mit 756, mit gültiger "
        "Prüfziffer (z. B. 756.9217.0769.85). Leer lassen, wenn sie unbekannt ist."
    ),
    "residence_status": _l("Bitte wählen Sie den Aufenthaltsstatus aus der Liste."),
    "regulation_date": _l("Bitte geben Sie das Datum des Entscheids als Datum an."),
    "reason": _l(
        "Bitte geben Sie einen Grund für die Korrektur an (höchstens 2000 Zeichen), "
        "z. B. «Schreibweise laut Pass»."
    ),
}


def current_values(case: Case) -> dict[str, str]:
    """The person's fields as the form shows them (empty text where a value is missing)."""
    return {
        "family_name": case.family_name,
        "given_names": case.given_names,
        "birth_date": case.birth_date,
        "sex": case.sex,
        "nationality": case.nationality,
        "zemis_number": case.zemis_number,
        "ahv_number": identifiers.format_ahv(case.ahv_number) if case.ahv_number else "",
        "residence_status": case.residence_status,
        "regulation_date": case.regulation_date.isoformat() if case.regulation_date else "",
    }


def correction_body(before: dict[str, str], form: dict[str, str], reason: str) -> dict[str, Any]:
    """The PATCH body of the form: only the fields the person changed, and the reason.

    An emptied AHV number removes it; an emptied decision date is left out when the status
    leaves F and B (the date goes with it) and refused otherwise.
    """
    body: dict[str, Any] = {"reason": reason}
    for field in FORM_FIELDS:
        if form[field] == before[field]:
            continue
        if form[field] == "" and field == "regulation_date":
            if form["residence_status"] not in person.REGULATED_STATUSES:
                continue
        body[field] = form[field] if form[field] != "" or field != "ahv_number" else None
    return body


def _error_for(exc: DossierError) -> tuple[str, str]:
    """(field, German sentence) of a refused correction; field "" for the whole form."""
    field = str(exc.details.get("field") or "").split(".")[-1]
    if exc.code in CODE_MESSAGES:
        return field, str(CODE_MESSAGES[exc.code])
    if exc.code == "no_change":
        return "", _("Sie haben nichts geändert: alle Angaben entsprechen den bisherigen.")
    if exc.status == 422 and field in FIELD_MESSAGES:
        return field, str(FIELD_MESSAGES[field])
    return "", message_for(exc)


def person_form(case_id: str) -> ResponseReturnValue:
    """GET/POST /cases/<id>/person: correct the person's data (the policy decides who)."""
    # Showing the form reads the person (like the transfer page); sending it corrects.
    action = "case.read" if request.method == "GET" else str(Action.PERSON_CORRECT)
    audit_context(action, case_id=case_id)
    who = identity()
    db = session()
    case = cases.get_case(db, who, case_id)
    if not allowed(db, who, Action.PERSON_CORRECT, case.id):
        raise Forbidden("not allowed", code="case_not_writable")
    before = current_values(case)
    form = {f: (request.form.get(f, before[f]) or "").strip() for f in FORM_FIELDS}
    reason = (request.form.get("reason") or "").strip()
    errors: dict[str, str] = {}
    error: str | None = None
    status = 200
    if request.method == "POST":
        try:
            body = parse(PersonCorrection, correction_body(before, form, reason))
            person.correct_person(db, who, case.id, body)
        except DossierError as exc:
            db.rollback()
            field, message = _error_for(exc)
            if field in FORM_FIELDS or field == "reason":
                errors[field] = message
            else:
                error = message
            status = exc.status
        else:
            flash(_("Die Personendaten wurden korrigiert."), "success")
            return redirect(url_for("web.case_page", case_id=case.id))
    return render(
        "cases/person.html",
        status=status,
        case=case,
        form=form,
        reason=reason,
        errors=errors,
        error=error,
        field_labels=PERSON_FIELD,
        sexes=SEX,
        statuses=RESIDENCE_STATUS,
    )


def register(bp: Blueprint) -> None:
    """Add the correction form."""
    bp.add_url_rule("/cases/<case_id>/person", "person_form", person_form, methods=["GET", "POST"])
