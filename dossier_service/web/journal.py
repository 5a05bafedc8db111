"""Journal (Fallnotizen): the form that writes an entry or a correction on the case page."""

from __future__ import annotations

from flask import Blueprint
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from sqlalchemy.orm import Session

from dossier_service.bodies.journal import JournalInput
from dossier_service.bodies.parse import parse
from dossier_service.http.context import audit_context
from dossier_service.identity import Identity
from dossier_service.services import journal
from dossier_service.web.plan import JOURNAL_KIND_LABELS
from dossier_service.web.plan_forms import _form, _iso_date, _submit


def participants_of(raw: str) -> list[str]:
    """The participants typed one per line or separated by commas (blanks dropped)."""
    names = (part.strip() for line in raw.splitlines() for part in line.split(","))
    return [name for name in names if name]


def add_entry(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/journal: write a journal entry (or a correction of one)."""
    audit_context("journal.create", case_id=case_id)
    values = _form("kind", "occurred_on", "text", "participants", "corrects")

    def change(db: Session, who: Identity) -> str:
        payload = {
            "kind": values["kind"] or None,
            "occurred_on": _iso_date(values["occurred_on"]),
            "text": values["text"],
            "participants": participants_of(values["participants"]),
            "corrects": values["corrects"] or None,
        }
        if payload["occurred_on"] is None:
            del payload["occurred_on"]  # left empty: today
        entry = journal.add_entry(db, who, case_id, parse(JournalInput, payload))
        if entry.corrects_id:
            return _("Die Korrektur wurde ins Journal eingetragen.")
        return _("«%(kind)s» wurde ins Journal eingetragen.", kind=JOURNAL_KIND_LABELS[entry.kind])

    return _submit(case_id, "journal", values, change)


def register(bp: Blueprint) -> None:
    """Add the journal form to the web blueprint."""
    bp.add_url_rule("/cases/<case_id>/journal", "add_journal_entry", add_entry, methods=["POST"])
