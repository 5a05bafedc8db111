"""Integrationsplan and Fallabschluss on the case page: what the two sections show.

The plan section shows the target group with its history, the measures and the
milestones; closing and reopening sit at the end of the page. This module holds their
German labels, the record of a refused form the page shows again, and the facts the
sections show; the forms themselves post to ``web.plan_forms``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from flask_babel import lazy_gettext as _l
from sqlalchemy.orm import Session

from dossier_service import labels
from dossier_service.dates import local_today
from dossier_service.identity import Identity
from dossier_service.models import Case
from dossier_service.services import closing, plan

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
    "school_language": _l("Verständigung in der Ortssprache beim Schuleintritt"),
    "social_life": _l("Vertraut mit dem Leben in der Schweiz, Kontakte zur Bevölkerung"),
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
    "school_language": {
        "achieved": _l("kann sich in der Ortssprache verständigen"),
        "not_achieved": _l("kann sich noch nicht in der Ortssprache verständigen"),
    },
    "social_life": {
        "achieved": _l("erreicht"),
        "not_achieved": _l("noch nicht erreicht"),
    },
}


#: The kinds of journal entries as the case page names them.
JOURNAL_KIND_LABELS: dict[str, Any] = {
    "note": _l("Notiz"),
    "conversation": _l("Gespräch"),
    "phone": _l("Telefonat"),
    "meeting": _l("Sitzung"),
}


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


# --- The plan section of the case page ----------------------------------------------------


def _moment(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


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
        "closures": closing.closure_history(db, who, case.id),
        "programmes": PROGRAMME_LABELS,
        "measure_statuses": MEASURE_STATUS_LABELS,
        "milestone_kinds": MILESTONE_KIND_LABELS,
        "milestone_values": MILESTONE_VALUE_LABELS,
        "today": local_today(),
    }
