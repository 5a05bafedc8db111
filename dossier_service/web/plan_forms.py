"""The forms of the plan and closing sections: target group, measures, milestones, close, reopen.

Each view turns the form into the request model the JSON API parses
(``dossier_service.bodies``, so a form is validated like a body) and calls the same service
(``services.plan``, ``services.closing``), which checks the policy and the case's state and
audits. On success the browser is sent back to the case page (post/redirect/get) with a
message; a refused form shows the case page again with the German reason beside the form
and every value as it was typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from dossier_service.bodies.parse import parse
from dossier_service.bodies.plan import (
    CaseUpdate,
    CloseInput,
    MeasureInput,
    MeasureUpdate,
    MilestoneInput,
    ReopenInput,
)
from dossier_service.dates import swiss_date, swiss_partial_date
from dossier_service.errors import DossierError, Forbidden, NotFound
from dossier_service.http.context import audit_context
from dossier_service.identity import Identity
from dossier_service.policy import Action
from dossier_service.services import closing, plan
from dossier_service.web.cases import case_page
from dossier_service.web.context import identity, session
from dossier_service.web.errors import message_for
from dossier_service.web.plan import (
    CLOSE_REASON_LABELS,
    MILESTONE_KIND_LABELS,
    MILESTONE_VALUE_LABELS,
    PROGRAMME_LABELS,
    TARGET_GROUP_LABELS,
    PlanForm,
)

#: What a refused field needs, per form; the services' own rules in words (else message_for).
_HINTS: dict[tuple[str, str], Any] = {
    ("target_group", "target_group"): _l("Bitte wählen Sie eine Zielgruppe aus der Liste."),
    ("target_group", "reason"): _l(
        "Die Begründung ist freiwillig und höchstens 2000 Zeichen lang."
    ),
    ("measure", "programme"): _l("Bitte wählen Sie ein Programm aus der Liste."),
    ("measure", "provider"): _l("Der Anbieter ist höchstens 200 Zeichen lang."),
    ("measure", "start"): _l(
        "Bitte geben Sie den Beginn als Datum an: frühestens 01.01.1990, höchstens zehn "
        "Jahre in der Zukunft."
    ),
    ("measure", "end"): _l(
        "Das Ende bleibt leer oder ist ein Datum, das nicht vor dem Beginn und höchstens "
        "zehn Jahre in der Zukunft liegt."
    ),
    ("measure", "status"): _l("Bitte wählen Sie einen Status aus der Liste."),
    ("measure", "note"): _l("Die Notiz ist höchstens 4000 Zeichen lang."),
    ("milestone", "milestone"): _l("Bitte wählen Sie einen Meilenstein aus der Liste."),
    ("milestone", "date"): _l(
        "Bitte geben Sie das Datum an, an dem der Meilenstein erreicht wurde: "
        "frühestens 01.01.1990, spätestens heute."
    ),
    ("milestone", "note"): _l("Die Notiz ist höchstens 2000 Zeichen lang."),
    ("close", "reason"): _l("Bitte wählen Sie den Grund des Abschlusses aus der Liste."),
    ("close", "note"): _l("Die Notiz ist höchstens 4000 Zeichen lang."),
    ("reopen", "reason"): _l(
        "Bitte geben Sie an, warum der Fall wieder eröffnet wird (höchstens 2000 Zeichen)."
    ),
    ("follow_up", "due_date"): _l(
        "Bitte geben Sie den Tag als Datum an: frühestens heute, höchstens acht Jahre voraus."
    ),
    ("follow_up", "note"): _l("Bitte schreiben Sie, was zu tun ist (höchstens 2000 Zeichen)."),
    ("follow_up", "measure"): _l("Bitte wählen Sie eine Massnahme dieses Falls oder keine."),
    ("follow_up_done", "note"): _l("Die Notiz ist höchstens 2000 Zeichen lang."),
    ("household", "reference"): _l(
        "Es gibt keinen Fall mit dieser Fallnummer, den Sie lesen dürfen (z. B. IAS-2026-000123)."
    ),
    ("household", "relation"): _l("Bitte wählen Sie die Beziehung aus der Liste."),
    ("journal", "kind"): _l("Bitte wählen Sie die Art des Eintrags aus der Liste."),
    ("journal", "occurred_on"): _l(
        "Bitte geben Sie den Tag als Datum an: frühestens 01.01.1990, spätestens heute "
        "(leer lassen für heute)."
    ),
    ("journal", "text"): _l("Bitte schreiben Sie den Eintrag (höchstens 20 000 Zeichen)."),
    ("journal", "participants"): _l(
        "Höchstens 30 Beteiligte, mit Komma getrennt, je höchstens 200 Zeichen."
    ),
    ("journal", "corrects"): _l(
        "Bitte wählen Sie einen Eintrag dieses Journals, der noch nicht korrigiert wurde."
    ),
}

#: Service field names that one form field stands for (kind and value share one list).
_FORM_FIELDS = {"kind": "milestone", "value": "milestone"}

#: A date typed by hand the Swiss way; the date picker sends YYYY-MM-DD.
_SWISS_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


def _iso_date(raw: str) -> str | None:
    """A date as sent: ISO from the date picker, or dd.mm.yyyy typed by hand; None if empty."""
    text = raw.strip()
    if not text:
        return None
    match = _SWISS_DATE.fullmatch(text)
    if match:
        day, month, year = match.groups()
        return f"{year}-{int(month):02d}-{int(day):02d}"
    return text  # the service refuses it with a field error, and the page keeps it


def _form(*names: str) -> dict[str, str]:
    """The named fields of the posted form, as typed (trimmed)."""
    return {name: request.form.get(name, "").strip() for name in names}


def _implausible_age(exc: DossierError) -> str:
    """The German sentence for a target group or programme the person's age contradicts."""
    d = exc.details
    youngest, oldest = d["youngest"], d["oldest"]
    age = str(youngest) if youngest == oldest else _("%(a)s oder %(b)s", a=youngest, b=oldest)
    minimum, maximum = d["minimum"], d["maximum"]
    if minimum is not None and maximum is not None:
        rule = _("ein Alter von %(min)s bis %(max)s Jahren", min=minimum, max=maximum)
    elif minimum is not None:
        rule = _("ein Alter von mindestens %(min)s Jahren", min=minimum)
    else:
        rule = _("ein Alter von höchstens %(max)s Jahren", max=maximum)
    person = _(
        "Die Person ist am %(on)s %(age)s Jahre alt (geboren %(born)s).",
        on=swiss_date(d["on"]),
        age=age,
        born=swiss_partial_date(d["birth_date"]),
    )
    if d["field"] == "target_group":
        need = _(
            "Die Zielgruppe «%(label)s» setzt %(rule)s voraus.",
            label=TARGET_GROUP_LABELS[d["subject"]],
            rule=rule,
        )
    else:
        need = _(
            "Das Programm «%(label)s» setzt %(rule)s voraus.",
            label=PROGRAMME_LABELS[d["subject"]],
            rule=rule,
        )
    return f"{person} {need}"


def _refusal(form: str, exc: DossierError) -> tuple[str, str | None]:
    """The sentence and the form field for a refused form."""
    if exc.code == "implausible_age":
        return _implausible_age(exc), str(exc.details["field"])
    raw = str(exc.details.get("field") or "").split(".")[-1]
    name = _FORM_FIELDS.get(raw, raw) or None
    kind = "measure" if form.startswith("measure") else form
    hint = _HINTS.get((kind, name or "")) if exc.status == 422 else None
    return (str(hint) if hint is not None else message_for(exc)), name


def _submit(
    case_id: str,
    form: str,
    values: dict[str, str],
    change: Callable[[Session, Identity], str],
) -> ResponseReturnValue:
    """Run a change; redirect with its message, or show the case page with the refusal.

    A case the caller may not see (404) or not change (403) ends on the error page like
    every refusal of the pages; anything else is explained beside the form.
    """
    db = session()
    try:
        message = change(db, identity())
    except DossierError as exc:
        db.rollback()
        if isinstance(exc, Forbidden | NotFound):
            raise
        text, name = _refusal(form, exc)
        return case_page(case_id, status=exc.status, plan_form=PlanForm(form, values, text, name))
    flash(message, "success")
    return redirect(url_for("web.case_page", case_id=case_id), code=303)


def _stopped(status: str) -> str:
    """The sentence added when a measure stops (the service has notified both sides)."""
    if status in {"interrupted", "aborted"}:
        return " " + _("Die zuständige Stelle und der Kanton wurden benachrichtigt.")
    return ""


# --- The forms ----------------------------------------------------------------------------


def set_target_group(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/target-group: triage into a target group (a new dated period)."""
    audit_context("case.update", case_id=case_id)
    values = _form("target_group", "reason")

    def change(db: Session, who: Identity) -> str:
        payload = {"target_group": values["target_group"] or None, "reason": values["reason"]}
        plan.update_case(db, who, case_id, parse(CaseUpdate, payload))
        label = TARGET_GROUP_LABELS[values["target_group"]]
        return _("Die Zielgruppe ist jetzt «%(group)s».", group=label)

    return _submit(case_id, "target_group", values, change)


def add_measure(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/measures: add a measure to the plan."""
    audit_context("measure.create", case_id=case_id)
    values = _form("programme", "provider", "start", "end", "status", "note")

    def change(db: Session, who: Identity) -> str:
        payload = {
            "programme": values["programme"] or None,
            "provider": values["provider"],
            "start": _iso_date(values["start"]),
            "end": _iso_date(values["end"]),
            "status": values["status"] or None,
            "note": values["note"],
        }
        measure = plan.create_measure(db, who, case_id, parse(MeasureInput, payload))
        label = PROGRAMME_LABELS[measure.programme]
        message = _("Die Massnahme «%(programme)s» wurde in den Plan aufgenommen.", programme=label)
        return message + _stopped(measure.status)

    return _submit(case_id, "measure", values, change)


def change_measure(measure_id: str) -> ResponseReturnValue:
    """POST /measures/<id>: change a measure's status or end (e.g. completed, interrupted)."""
    audit_context("measure.update")
    values = _form("status", "end")
    who = identity()
    db = session()
    # Reading first names the case for the answer; a measure the caller may not see is 404.
    measure, case = plan.load_measure(db, who, measure_id, Action.CASE_READ)
    case_id = case.id
    audit_context("measure.update", case_id=case_id)
    # Only what differs is sent, so the audit entry names real changes and an unchanged
    # form does not count as activity on the case (monitoring follows stalled cases).
    payload: dict[str, Any] = {}
    if values["status"] != measure.status:
        payload["status"] = values["status"] or None
    end = _iso_date(values["end"])
    if end != (measure.end_date.isoformat() if measure.end_date else None):
        payload["end"] = end
    label = PROGRAMME_LABELS[measure.programme]

    def change(db: Session, who: Identity) -> str:
        if not payload:
            # Nothing to change, but the same refusals as a change (403, 404, 409).
            plan.load_measure(db, who, measure_id, Action.CASE_WRITE)
            return _("Die Massnahme «%(programme)s» ist unverändert.", programme=label)
        updated = plan.update_measure(db, who, measure_id, parse(MeasureUpdate, payload))
        message = _("Die Massnahme «%(programme)s» wurde geändert.", programme=label)
        return message + (_stopped(updated.status) if "status" in payload else "")

    return _submit(case_id, f"measure:{measure_id}", values, change)


def add_milestone(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/milestones: record a dated language, education or employment fact."""
    audit_context("milestone.create", case_id=case_id)
    values = _form("milestone", "date", "note")

    def change(db: Session, who: Identity) -> str:
        # One list offers kind and value together ("language_level:A1").
        kind, _sep, value = values["milestone"].partition(":")
        payload = {
            "kind": kind or None,
            "value": value or None,
            "date": _iso_date(values["date"]),
            "note": values["note"],
        }
        milestone = plan.create_milestone(db, who, case_id, parse(MilestoneInput, payload))
        label = MILESTONE_VALUE_LABELS[milestone.kind][milestone.value]
        return _(
            "Der Meilenstein «%(kind)s: %(value)s» wurde erfasst.",
            kind=MILESTONE_KIND_LABELS[milestone.kind],
            value=label,
        )

    return _submit(case_id, "milestone", values, change)


def close_case(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/close: close the case with a reason (read-only from then on)."""
    audit_context("case.close", case_id=case_id)
    values = _form("reason", "note")

    def change(db: Session, who: Identity) -> str:
        payload = {"reason": values["reason"] or None, "note": values["note"]}
        closing.close_case(db, who, case_id, parse(CloseInput, payload))
        return _(
            "Der Fall wurde abgeschlossen (%(reason)s). Er kann nur noch gelesen werden; "
            "der Kanton kann ihn wieder eröffnen.",
            reason=CLOSE_REASON_LABELS[values["reason"]],
        )

    return _submit(case_id, "close", values, change)


def reopen_case(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/reopen: the canton reopens a closed case with a reason."""
    audit_context("case.reopen", case_id=case_id)
    values = _form("reason")

    def change(db: Session, who: Identity) -> str:
        closing.reopen_case(db, who, case_id, parse(ReopenInput, {"reason": values["reason"]}))
        return _("Der Fall wurde wieder eröffnet und kann wieder bearbeitet werden.")

    return _submit(case_id, "reopen", values, change)


def register(bp: Blueprint) -> None:
    """Add the plan and closing routes."""
    bp.add_url_rule(
        "/cases/<case_id>/target-group", "set_target_group", set_target_group, methods=["POST"]
    )
    bp.add_url_rule("/cases/<case_id>/measures", "add_measure", add_measure, methods=["POST"])
    bp.add_url_rule("/measures/<measure_id>", "change_measure", change_measure, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/milestones", "add_milestone", add_milestone, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/close", "close_case", close_case, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/reopen", "reopen_case", reopen_case, methods=["POST"])
