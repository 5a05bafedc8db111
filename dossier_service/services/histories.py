"""The record's histories in words: one German line per change, for the SIP and the disclosure.

Three histories: corrections of the person (``person.person_history``), changes of the
residence status with the date of the decision (``person.status_history``), and each
document's corrections, moves and withdrawal (``snapshot.ChangeFacts``). Each line names
the field, the old and the new value, the reason, who and when; the caller chooses how a
moment is written (ISO in the SIP, Swiss in the disclosure's page).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

from dossier_service import labels
from dossier_service.services.person import PersonHistoryEntry, StatusHistoryEntry
from dossier_service.services.snapshot import ChangeFacts

#: How an absent value is written.
EMPTY = "(leer)"


def person_value(field: str, value: str | None) -> str:
    """A person field's recorded value in words (the sex by its word, codes kept)."""
    if value is None or value == "":
        return EMPTY
    if field == "sex":
        return f"{labels.label('sex', value)} ({value})"
    if field == "residence_status":
        return labels.label("residence_status", value)
    return value


def document_value(field: str, value: Any) -> str:
    """A document history value in words (the type by its word, tags joined)."""
    if value is None or value == [] or value == "":
        return EMPTY
    if field == "type":
        return f"{labels.label('document_type', str(value))} ({value})"
    if field == "tags" and isinstance(value, list):
        return ", ".join(str(tag) for tag in value)
    return str(value)


def _by(reason: str, by: str, at: dt.datetime, moment: Callable[[dt.datetime], str]) -> str:
    return f"Grund: {reason}; durch {by} am {moment(at)}"


def person_line(entry: PersonHistoryEntry, moment: Callable[[dt.datetime], str]) -> str:
    """'Name (family_name): «Hale» → «Haile»; Grund: …; durch … am …'."""
    field = f"{labels.label('person_field', entry.field)} ({entry.field})"
    old = person_value(entry.field, entry.old_value)
    new = person_value(entry.field, entry.new_value)
    return f"{field}: «{old}» → «{new}»; {_by(entry.reason, entry.by, entry.at, moment)}"


def status_line(entry: StatusHistoryEntry, moment: Callable[[dt.datetime], str]) -> str:
    """'Aufenthaltsstatus: «N – …» → «F – …»; Datum des Entscheids …; Grund: …; durch … am …'."""
    old = person_value("residence_status", entry.old_status)
    new = person_value("residence_status", entry.new_status)
    decided = entry.regulation_date.isoformat() if entry.regulation_date else "keines"
    return (
        f"Aufenthaltsstatus: «{old}» → «{new}»; Datum des Entscheids (Regelung): {decided}; "
        f"{_by(entry.reason, entry.by, entry.at, moment)}"
    )


def document_line(change: ChangeFacts, moment: Callable[[dt.datetime], str]) -> str:
    """'Titel (title): «alt» → «neu»; Grund: …; durch … am …' (a move names both cases)."""
    field = f"{labels.label('document_field', change.field)} ({change.field})"
    old = document_value(change.field, change.old)
    new = document_value(change.field, change.new)
    return f"{field}: «{old}» → «{new}»; {_by(change.reason, change.by, change.at, moment)}"
