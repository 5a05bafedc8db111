"""The German (de-CH) words for coded values: one table per kind of code, for every output.

Pages, letters, the archive package (SIP), reports and the disclosure all name a code with
these words. German is the source language: texts marked ``N_`` are msgids of the web
interface's catalogues, and the pages show them translated (``web.i18n.label``); letters,
the SIP and the disclosure are German documents and use them as they stand.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType


def N_(text: str) -> str:
    """Mark a text for the catalogues without translating it here."""
    return text


#: Sex (eCH-0044 codes; "unknown" is needed for asylum cases).
SEX: Mapping[str, str] = MappingProxyType(
    {"female": N_("weiblich"), "male": N_("männlich"), "unknown": N_("unbekannt")}
)

#: Residence status: the permit letter and what it means for one person ("F": the person is
#: provisionally admitted, AIG Art. 83).
RESIDENCE_STATUS: Mapping[str, str] = MappingProxyType(
    {
        "N": N_("N – Asylsuchende/r"),
        "F": N_("F – vorläufig aufgenommen"),
        "B": N_("B – anerkannte/r Flüchtling"),
    }
)

#: Kinds of unit.
UNIT_KIND: Mapping[str, str] = MappingProxyType(
    {"canton": "Kanton", "municipality": "Gemeinde", "organisation": "Organisation"}
)

#: Document types with the term a caseworker recognises (the pages show them in German).
DOCUMENT_TYPE: Mapping[str, str] = MappingProxyType(
    {
        "short_assessment": "Kurzassessment",
        "meeting_record": "Gesprächsprotokoll",
        "agreement": "Vereinbarung über Rechte und Pflichten",
        "integration_plan": "Integrationsplan",
        "end_report": "Schlussbericht",
        # What a municipality leaves the next one when the person moves (transfers.py).
        "handover_note": "Übergabenotiz",
        "cost_approval_request": "Gesuch um Kostengutsprache",
        "cost_approval_decision": "Kostengutsprache (Entscheid)",
        "programme_report": "Programmanmeldung / -bericht",
        "certificate": "Kursbestätigung / Zertifikat",
        "potential_assessment": "Potenzialabklärung",
        "correspondence": "Korrespondenz",
        "other": "Anderes",
    }
)

#: Programmes a measure or a cost approval refers to.
PROGRAMME: Mapping[str, str] = MappingProxyType(
    {
        "language_course": N_("Sprachkurs"),
        "early_language_support": N_("Frühe Sprachförderung"),
        "IKG1": N_("Integrationskurs Grundkompetenzen 1 (IKG1)"),
        "IKG2": N_("Integrationskurs Grundkompetenzen 2 (IKG2)"),
        "BAI": N_("Brückenangebot Integration (BAI)"),
        "INVOL": N_("Integrationsvorlehre (INVOL)"),
        "AMIplus": N_("Arbeitsmarktintegration AMIplus (RAV)"),
        "potential_assessment": N_("Potenzialabklärung"),
        "employment_programme": N_("Beschäftigungsprogramm"),
        "childcare": N_("Kinderbetreuung"),
        "other": N_("Andere Massnahme"),
    }
)

#: Fields of the person, as the correction form and the person history name them.
PERSON_FIELD: Mapping[str, str] = MappingProxyType(
    {
        "family_name": N_("Name"),
        "given_names": N_("Vornamen"),
        "birth_date": N_("Geburtsdatum"),
        "sex": N_("Geschlecht"),
        "nationality": N_("Staatsangehörigkeit"),
        "zemis_number": N_("ZEMIS-Nummer"),
        "ahv_number": N_("AHV-Nummer"),
        "residence_status": N_("Aufenthaltsstatus"),
        "regulation_date": N_("Datum des Entscheids (Regelung)"),
    }
)

#: Fields of a document's history (corrections, moves, withdrawal), as the SIP and the
#: disclosure name them (German documents: not in the web catalogues).
DOCUMENT_FIELD: Mapping[str, str] = MappingProxyType(
    {
        "title": "Titel",
        "type": "Dokumenttyp",
        "document_date": "Datum des Dokuments",
        "tags": "Stichwörter",
        "case": "Fall (verschoben)",
        "withdrawn": "Zurückgezogen",
    }
)

#: What each case-bound right of the policy (policy.Action values) lets a unit do, as the
#: delegation dialog lists what an organisation gains and what the municipality keeps.
CASE_RIGHT: Mapping[str, str] = MappingProxyType(
    {
        "case.read": N_("Lesezugriff auf das ganze Dossier, solange Ihre Gemeinde zuständig ist"),
        "case.write": N_(
            "das Recht, Dokumente hochzuladen und neue Versionen abzulegen sowie Massnahmen, "
            "Meilensteine und Notizen im Integrationsplan zu erfassen"
        ),
        "transfer.create": N_("das Recht, den Fall an eine andere Stelle weiterzugeben"),
        "delegation.create": N_(
            "das Recht, die Begleitung zu delegieren und Delegationen zu beenden"
        ),
        "cost_approval.request": N_("das Recht, Kostengutsprachen zu beantragen"),
        "cost_approval.decide": N_("das Recht, über Kostengutsprachen zu entscheiden"),
        "case.close": N_("das Recht, den Fall abzuschliessen"),
        "case.reopen": N_("das Recht, den Fall wieder zu eröffnen"),
        "legal_hold.set": N_("das Recht, eine Aufbewahrungssperre zu setzen"),
        "disclosure.create": N_("das Recht, der Person Auskunft über ihre Daten zu erteilen"),
        "document.withdraw": N_("das Recht, Dokumente zurückzuziehen"),
        "document.read_withdrawn": N_("das Recht, zurückgezogene Dokumente zu lesen"),
        "document.purge": N_("das Recht, zurückgezogene Dokumente endgültig zu löschen"),
        "document.move": N_("das Recht, Dokumente in einen anderen Fall zu verschieben"),
        "person.correct": N_("das Recht, die Personendaten zu berichtigen"),
        "target_group.set": N_("das Recht, die Zielgruppe festzulegen"),
        "case.merge": N_("das Recht, zwei Fälle einer Person zusammenzuführen"),
    }
)

#: Every table by the name templates use: ``label('sex', case.sex)``.
TABLES: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "sex": SEX,
        "residence_status": RESIDENCE_STATUS,
        "unit_kind": UNIT_KIND,
        "document_type": DOCUMENT_TYPE,
        "programme": PROGRAMME,
        "person_field": PERSON_FIELD,
        "document_field": DOCUMENT_FIELD,
        "case_right": CASE_RIGHT,
    }
)


def label(kind: str, code: str | None) -> str:
    """The German word for a code of a kind (the code itself if the table lacks it)."""
    if code is None:
        return ""
    return TABLES[kind].get(code, code)
