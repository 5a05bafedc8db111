"""Integrationsplan and Fallabschluss on the case page: the plan, its forms, close, reopen.

The plan section shows the target group with its history, the measures and the
milestones; closing and reopening sit at the end of the page. The forms post here; each
view turns the form into the payload the JSON API would send and calls the same service
(``services.plan``, ``services.closing``), which checks the policy, validates and audits.
On success the browser is sent back to the case page (post/redirect/get) with a message;
a refused form shows the case page again with the German reason beside the form and
every value as it was typed.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, flash, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from dossier_service import labels
from dossier_service.api.context import audit_context
from dossier_service.dates import local_today
from dossier_service.errors import DossierError, Forbidden, NotFound
from dossier_service.identity import Identity
from dossier_service.models import Case, CaseClosure, User
from dossier_service.policy import Action
from dossier_service.services import closing, plan
from dossier_service.web.context import identity, session
from dossier_service.web.errors import message_for

#: Target groups as the pages name them (the German wording of models.process.TARGET_GROUPS).
TARGET_GROUP_LABELS: dict[str, Any] = {
    "education": _l("Ausbildungsfähige (16–25)"),
    "labour_market": _l("Arbeitsmarktfähige"),
    "social_integration": _l("Soziale Integration"),
}

#: Programmes of a measure, translated from labels.PROGRAMME.
PROGRAMME_LABELS: dict[str, Any] = {code: _l(text) for code, text in labels.PROGRAMME.items()}

#: Status of a measure (the German wording of models.process.MEASURE_STATUSES).
MEASURE_STATUS_LABELS: dict[str, Any] = {
    "planned": _l("geplant"),
    "running": _l("laufend"),
    "completed": _l("abgeschlossen"),
    "aborted": _l("abgebrochen"),
    "interrupted": _l("unterbrochen"),
}

#: Reasons for closing a case (the German wording of models.process.CLOSE_REASONS).
CLOSE_REASON_LABELS: dict[str, Any] = {
    "integrated_education": _l("nachhaltig in Ausbildung integriert"),
    "integrated_employment": _l("nachhaltig im Arbeitsmarkt integriert"),
    "seven_years": _l("7-Jahres-Horizont erreicht"),
    "moved_out_of_canton": _l("Wegzug aus dem Kanton"),
    "deceased": _l("verstorben"),
    "other": _l("anderer Grund"),
}

#: Kinds of milestone (the coded facts of the IAS indicators).
MILESTONE_KIND_LABELS: dict[str, Any] = {
    "language_level": _l("Sprachniveau"),
    "education": _l("Ausbildung"),
    "employment": _l("Erwerbstätigkeit"),
}

#: Values per kind of milestone, in the order of models.process.MILESTONE_VALUES.
MILESTONE_VALUE_LABELS: dict[str, dict[str, Any]] = {
    "language_level": {
        "pre_A1": _l("unter A1 (Alphabetisierung)"),
        # CEFR levels are written the same in every language.
        "A1": "A1",
        "A2": "A2",
        "B1": "B1",
        "B2": "B2",
        "C1": "C1",
        "C2": "C2",
    },
    "education": {
        "bridge_offer": _l("Brückenangebot"),
        "pre_apprenticeship": _l("Integrationsvorlehre"),
        "apprenticeship_eba": _l("Berufliche Grundbildung mit Attest (EBA)"),
        "apprenticeship_efz": _l("Berufliche Grundbildung mit Fähigkeitszeugnis (EFZ)"),
        "upper_secondary_school": _l("Mittelschule"),
        "tertiary": _l("Tertiärstufe (Hochschule, höhere Berufsbildung)"),
        "completed_upper_secondary": _l("Abschluss Sekundarstufe II"),
        "none": _l("keine Ausbildung"),
    },
    "employment": {
        "first_labour_market_full_time": _l("Erster Arbeitsmarkt, Vollzeit"),
        "first_labour_market_part_time": _l("Erster Arbeitsmarkt, Teilzeit"),
        "second_labour_market": _l("Zweiter Arbeitsmarkt (Beschäftigungsprogramm, Teillohn)"),
        "none": _l("nicht erwerbstätig"),
    },
}

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
}

#: Service field names that one form field stands for (kind and value share one list).
_FORM_FIELDS = {"kind": "milestone", "value": "milestone"}

#: A date typed by hand the Swiss way; the date picker sends YYYY-MM-DD.
_SWISS_DATE = re.compile(r"(\d{1,2})\.(\d{1,2})\.(\d{4})")


@dataclass(frozen=True)
class PlanForm:
    """A plan or closing form the service refused: what was typed and why it was refused."""

    #: target_group, measure, measure:<id>, milestone, close or reopen.
    name: str
    values: dict[str, str]
    message: str
    #: The form field to mark invalid (None: the refusal concerns the whole form).
    field: str | None = None

    @property
    def section(self) -> str:
        """The part of the case page the form belongs to: plan or closing."""
        return "closing" if self.name in {"close", "reopen"} else "plan"


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


def _refusal(form: str, exc: DossierError) -> tuple[str, str | None]:
    """The sentence and the form field for a refused form."""
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
        # Imported here: the case page imports this module for its plan section.
        from dossier_service.web.cases import case_page

        return case_page(case_id, status=exc.status, plan_form=PlanForm(form, values, text, name))
    db.commit()
    flash(message, "success")
    return redirect(url_for("web.case_page", case_id=case_id), code=303)


def _stopped(status: str) -> str:
    """The sentence added when a measure stops (the service has notified both sides)."""
    if status in {"interrupted", "aborted"}:
        return " " + _("Die zuständige Stelle und der Kanton wurden benachrichtigt.")
    return ""


# --- The plan section of the case page ----------------------------------------------------


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def _closures(db: Session, case: Case) -> list[dict[str, Any]]:
    """The case's closures and reopenings, oldest first.

    The caller has read the case through ``cases.get_case`` (policy-checked and audited)
    just before; no service lists the closure history, so it is read here, like the
    delegations of the timeline.
    """
    closer = aliased(User)
    reopener = aliased(User)
    rows = db.execute(
        select(CaseClosure, closer.username, reopener.username)
        .join(closer, closer.id == CaseClosure.closed_by_id)
        .outerjoin(reopener, reopener.id == CaseClosure.reopened_by_id)
        .where(CaseClosure.case_id == case.id)
        .order_by(CaseClosure.closed_at, CaseClosure.id)
    ).all()
    return [
        {
            "closed_at": closure.closed_at,
            "reason": closure.reason,
            "note": closure.note,
            "closed_by": closed_by,
            "reopened_at": closure.reopened_at,
            "reopen_reason": closure.reopen_reason,
            "reopened_by": reopened_by,
        }
        for closure, closed_by, reopened_by in rows
    ]


def plan_context(db: Session, who: Identity, case: Case) -> dict[str, Any]:
    """What the plan and closing sections of the case page show (reads audited by plan)."""
    history = [
        {**entry, "from": _moment(entry["from"]), "to": _moment(entry["to"])}
        for entry in plan.target_group_history(db, who, case.id)
    ]
    return {
        "target_group_history": history,
        "measures": plan.list_measures(db, who, case.id),
        "milestones": plan.list_milestones(db, who, case.id),
        "closures": _closures(db, case),
        "programmes": PROGRAMME_LABELS,
        "measure_statuses": MEASURE_STATUS_LABELS,
        "milestone_kinds": MILESTONE_KIND_LABELS,
        "milestone_values": MILESTONE_VALUE_LABELS,
        "today": local_today(),
    }


# --- The forms ----------------------------------------------------------------------------


def set_target_group(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/target-group: triage into a target group (a new dated period)."""
    audit_context("case.update", case_id=case_id)
    values = _form("target_group", "reason")

    def change(db: Session, who: Identity) -> str:
        payload = {"target_group": values["target_group"] or None, "reason": values["reason"]}
        plan.update_case(db, who, case_id, payload)
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
        measure = plan.create_measure(db, who, case_id, payload)
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
        updated = plan.update_measure(db, who, measure_id, payload)
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
        milestone = plan.create_milestone(db, who, case_id, payload)
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
        closing.close_case(db, who, case_id, payload)
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
        closing.reopen_case(db, who, case_id, {"reason": values["reason"]})
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
