"""metadata.xml of a SIP: the arelda v4 ``paketSIP`` with table of contents, delivery and dossiers.

Domain facts that eCH-0160 has no element for (person, responsibility periods, delegations,
target groups, document types, the uploading units) go into ``zusatzDaten/merkmal``.

The record's histories go there too, one ``merkmal`` per change, numbered from the oldest,
each naming the field, old and new value, reason, user and time (``services.histories``):
on the ``dossier``, ``Personenkorrektur N`` (a corrected person field) and ``Statusänderung
N`` (the residence status with the date of its decision); on each ``dokument``, ``Änderung
N`` (title, type, document date or tags corrected, or the document moved in from another
case). eCH-0160 has no element for a correction history, and ``zusatzDaten`` is where the
standard puts a system's own metadata: an archivist finds the history beside the facts it
changed, in the same validated metadata.xml, without a second file to keep in step. A
``bemerkung`` (which eCH-0160 defines for a document's "allfällige Veränderungen") on the
dossier and on each changed dokument says that (and how many) changes
are recorded there, so the history is seen by anyone reading the descriptive elements only.
Withdrawn documents are not delivered at all (exports.py), so their history is not either.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from lxml import etree

from dossier_service import labels
from dossier_service.dates import local_date, local_iso
from dossier_service.models.journal import JOURNAL_KINDS
from dossier_service.models.process import CLOSE_REASONS, TARGET_GROUPS
from dossier_service.services import histories
from dossier_service.services.sip.facts import CaseFacts, JournalFact, PackageFacts
from dossier_service.services.sip.pdfa import PdfaConverter
from dossier_service.services.sip.schema import NAMESPACE, SCHEMA_VERSION, XSI
from dossier_service.services.snapshot import DocumentFacts, UnitPeriod

SYSTEM_NAME = "IAS-Dossierdienst"
# XML 1.0 allows tab, newline, carriage return and everything from U+0020 except surrogates
# and U+FFFE/U+FFFF; lxml refuses the rest, so text from the database is cleaned first.
_XML_INVALID = re.compile("[^\t\n\r\u0020-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


@dataclass
class FileEntry:
    """One file written into the package, as the table of contents lists it."""

    id: str
    path: str
    sha256: str
    size: int
    original_name: str | None = None
    properties: list[tuple[str, str]] = field(default_factory=list)


def _day(moment: dt.datetime) -> str:
    """The Zurich calendar day of a timestamp, ISO-formatted."""
    return local_date(moment).isoformat()


def _clean(text: object, limit: int | None = None) -> str:
    """Text fit for XML 1.0, cut to the schema's length limit."""
    value = _XML_INVALID.sub("\ufffd", str(text))
    return value[:limit] if limit is not None else value


def _el(parent: etree._Element, tag: str, text: object = None, **attrib: str) -> etree._Element:
    element = etree.SubElement(parent, f"{{{NAMESPACE}}}{tag}", attrib)
    if text is not None:
        element.text = _clean(text)
    return element


def _period(parent: etree._Element, tag: str, start: str, end: str) -> None:
    span = _el(parent, tag)
    _el(_el(span, "von"), "datum", start)
    _el(_el(span, "bis"), "datum", end)


def _moment(parent: etree._Element, tag: str, day: str) -> None:
    _el(_el(parent, tag), "datum", day)


def _features(parent: etree._Element, pairs: list[tuple[str, str]]) -> None:
    if not pairs:
        return
    block = _el(parent, "zusatzDaten")
    for name, value in pairs:
        _el(block, "merkmal", value, name=_clean(name))


def _unit_label(period: UnitPeriod) -> str:
    kind = labels.label("unit_kind", period.unit_kind)
    return f"{period.unit_name} ({period.unit_code}, {kind})"


def _span(start: dt.datetime, end: dt.datetime | None) -> str:
    until = local_iso(end) if end else "offen"
    return f"von {local_iso(start)} bis {until}"


def _case_features(case: CaseFacts) -> list[tuple[str, str]]:
    person = case.person
    pairs: list[tuple[str, str]] = [
        ("Person: Familienname", person.get("family_name") or ""),
        ("Person: Vornamen", person.get("given_names") or ""),
        ("Person: Geburtsdatum (eCH-0044)", person.get("birth_date") or ""),
        ("Person: Geschlecht", labels.label("sex", person.get("sex"))),
        ("Person: Staatsangehörigkeit (ISO 3166)", person.get("nationality") or ""),
        ("Person: ZEMIS-Nummer", person.get("zemis_number") or ""),
    ]
    if person.get("ahv_number"):
        pairs.append(("Person: AHV-Nummer", person["ahv_number"] or ""))
    status = person.get("residence_status") or ""
    pairs += [
        ("Person: Aufenthaltsstatus", labels.label("residence_status", status)),
        ("Einreisedatum", case.entry_date.isoformat()),
        (
            "Abschlussgrund",
            f"{CLOSE_REASONS.get(case.close_reason, case.close_reason)} ({case.close_reason})",
        ),
    ]
    if case.target_groups:
        last = case.target_groups[-1]
        pairs.append(("Zielgruppe", f"{TARGET_GROUPS.get(last.group, last.group)} ({last.group})"))
    for number, group in enumerate(case.target_groups, start=1):
        label = TARGET_GROUPS.get(group.group, group.group)
        pairs.append(
            (f"Zielgruppe {number}", f"{label} ({group.group}) {_span(group.start, group.end)}")
        )
    for number, period in enumerate(case.responsibilities, start=1):
        reason = f"; Grund: {period.reason}" if period.reason else ""
        pairs.append(
            (
                f"Zuständigkeit {number}",
                f"{_unit_label(period)} {_span(period.start, period.end)}{reason}",
            )
        )
    for number, period in enumerate(case.delegations, start=1):
        by = f" im Auftrag von {period.granted_by.label()}" if period.granted_by else ""
        pairs.append(
            (f"Delegation {number}", f"{_unit_label(period)}{by} {_span(period.start, period.end)}")
        )
    for number, change in enumerate(case.person_history, start=1):
        pairs.append((f"Personenkorrektur {number}", histories.person_line(change, local_iso)))
    for number, decision in enumerate(case.status_history, start=1):
        pairs.append((f"Statusänderung {number}", histories.status_line(decision, local_iso)))
    for entry in case.journal:
        pairs.append((f"Journal {entry.number}", _journal_line(entry)))
    return pairs


def _journal_line(entry: JournalFact) -> str:
    """One journal entry as the archive keeps it: day, kind, unit, participants, text."""
    kind = JOURNAL_KINDS.get(entry.kind, entry.kind)
    who = f"; Beteiligte: {', '.join(entry.participants)}" if entry.participants else ""
    fix = f"; korrigiert Journal {entry.corrects}" if entry.corrects else ""
    return (
        f"{entry.occurred_on.isoformat()} {kind} ({entry.unit_name}{who}{fix}; erfasst "
        f"{local_iso(entry.written_at)}): {entry.text}"
    )


def _case_remark(case: CaseFacts) -> str | None:
    """The dossier's bemerkung pointing at its recorded histories (None: nothing changed)."""
    if not case.person_history and not case.status_history:
        return None
    return (
        f"Personendaten nachträglich korrigiert: {len(case.person_history)} Korrektur(en) "
        f"(zusatzDaten 'Personenkorrektur N'), {len(case.status_history)} Änderung(en) des "
        "Aufenthaltsstatus (zusatzDaten 'Statusänderung N'); jeweils alter und neuer Wert, "
        "Grund, Benutzer und Zeitpunkt. Die übrigen Personenangaben zeigen den Stand bei "
        "Abschluss."
    )


def _document_remark(document: DocumentFacts) -> str | None:
    """A dokument's bemerkung pointing at its recorded changes (None: never changed)."""
    if not document.changes:
        return None
    return (
        f"Angaben nachträglich geändert: {len(document.changes)} Änderung(en) (zusatzDaten "
        "'Änderung N'); jeweils alter und neuer Wert, Grund, Benutzer und Zeitpunkt. Titel, "
        "Dokumenttyp und Datum zeigen den Stand bei Abschluss."
    )


def _document_features(document: DocumentFacts) -> list[tuple[str, str]]:
    pairs = [("Dokumenttyp (Code)", document.type)]
    for version in document.versions:
        pairs.append(
            (
                f"Version {version.number}",
                f"erfasst {local_iso(version.created_at)} durch "
                f"{version.created_by} ({version.created_by_unit}); Datei {version.filename}; "
                f"{version.media_type}; {version.size} Bytes; SHA-256 {version.sha256}",
            )
        )
    if document.document_date is not None:
        pairs.append(("Datum des Dokuments", document.document_date.isoformat()))
    if document.tags:
        pairs.append(("Stichwörter", ", ".join(document.tags)))
    for number, change in enumerate(document.changes, start=1):
        pairs.append((f"Änderung {number}", histories.document_line(change, local_iso)))
    return pairs


def _toc(parent: etree._Element, files: list[FileEntry]) -> None:
    """The inhaltsverzeichnis: nested ordner elements mirroring the paths, then datei."""
    tree: dict[str, Any] = {}
    for entry in files:
        *folders, _name = entry.path.split("/")
        node = tree
        for folder in folders:
            node = node.setdefault(folder, {})
        node.setdefault("", []).append(entry)

    def emit(element: etree._Element, node: dict[str, Any]) -> None:
        # Schema order inside an ordner: name, originalName, ordner*, datei*.
        for name in sorted(k for k in node if k):
            folder = _el(element, "ordner")
            _el(folder, "name", name)
            _el(folder, "originalName", name)
            emit(folder, node[name])
        for entry in node.get("", []):
            datei = _el(element, "datei", id=entry.id)
            _el(datei, "name", entry.path.rsplit("/", 1)[1])
            _el(datei, "originalName", entry.original_name or entry.path.rsplit("/", 1)[1])
            _el(datei, "pruefalgorithmus", "SHA-256")
            _el(datei, "pruefsumme", entry.sha256)
            for name, value in entry.properties:
                _el(datei, "eigenschaft", value, name=_clean(name))

    emit(parent, tree)


def build_metadata(
    facts: PackageFacts,
    files: list[FileEntry],
    file_ids: dict[str, dict[str, list[str]]],
    converter: PdfaConverter | None = None,
) -> bytes:
    """metadata.xml of the package (UTF-8), in the element order the arelda v4 schema wants."""
    nsmap = {None: NAMESPACE, "xsi": XSI}
    root = etree.Element(f"{{{NAMESPACE}}}paket", nsmap=nsmap)
    root.set(f"{{{XSI}}}schemaLocation", f"{NAMESPACE} xsd/arelda.xsd")
    root.set(f"{{{XSI}}}type", "paketSIP")
    root.set("schemaVersion", SCHEMA_VERSION)
    _el(root, "paketTyp", "SIP")
    _toc(_el(root, "inhaltsverzeichnis"), files)

    delivery = _el(root, "ablieferung")
    delivery.set(f"{{{XSI}}}type", "ablieferungGeverSIP")
    _el(delivery, "ablieferungstyp", "GEVER")
    _el(delivery, "ablieferndeStelle", _clean(facts.delivering_unit, 200))
    starts = [c.entry_date.isoformat() for c in facts.cases]
    ends = [_day(c.closed_at) for c in facts.cases]
    _period(delivery, "entstehungszeitraum", min(starts), max(ends))
    rendition = converter.describe() if converter else "keine (Ghostscript nicht installiert)"
    _el(
        delivery,
        "bemerkung",
        f"Erstellt am {local_iso(facts.created_at)} durch "
        f"{facts.created_by}. Prüfsummen SHA-256. Jede Version jedes Dokuments ist enthalten; "
        f"PDF/A-2b-Renditionen von PDF-Versionen, wo die Konvertierung gelang: {rendition}.",
    )
    _el(delivery, "ablieferungsnummer", _clean(facts.export_id, 100))

    units: dict[str, str] = {}
    for case in facts.cases:
        for period in (*case.responsibilities, *case.delegations):
            units.setdefault(period.unit_code, _unit_label(period))
    provenance = _el(delivery, "provenienz")
    _el(provenance, "aktenbildnerName", _clean(facts.delivering_unit, 200))
    _el(provenance, "systemName", SYSTEM_NAME)
    _el(
        provenance,
        "systemBeschreibung",
        "Elektronische Falldossiers der durchgehenden Fallführung der Integrationsagenda "
        "Schweiz (IAS): Kanton, Gemeinden und beauftragte Organisationen führen ein Dossier "
        "je Person; jede Zuständigkeit ist datiert (siehe zusatzDaten der Dossiers).",
    )
    _el(
        provenance,
        "bemerkung",
        "Zuständige oder beauftragte Stellen in dieser Ablieferung: " + "; ".join(units.values()),
    )
    _el(provenance, "registratur", "IAS-Fallführung")

    system = _el(delivery, "ordnungssystem")
    _el(system, "name", _clean(f"Ordnungssystem {SYSTEM_NAME}", 200))
    position = _el(system, "ordnungssystemposition", id="p_ias")
    _el(position, "nummer", "1")
    _el(position, "titel", "Durchgehende Fallführung Integrationsagenda (VA/FL)")
    for case in facts.cases:
        _dossier(position, case, file_ids.get(case.id, {}))
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _dossier(parent: etree._Element, case: CaseFacts, file_ids: dict[str, list[str]]) -> None:
    dossier = _el(parent, "dossier", id=f"d_{case.id}")
    person = case.person
    _el(
        dossier,
        "titel",
        f"Fallführung {case.reference}: {person.get('family_name')}, {person.get('given_names')}",
    )
    _el(dossier, "erscheinungsform", "digital")
    if case.responsibilities:
        _el(
            dossier,
            "federfuehrendeOrganisationseinheit",
            _clean(case.responsibilities[-1].unit_name, 200),
        )
    _period(dossier, "entstehungszeitraum", case.entry_date.isoformat(), _day(case.closed_at))
    _el(dossier, "datenschutz", "true")
    _el(dossier, "oeffentlichkeitsstatus", "nicht öffentlich")
    remark = _case_remark(case)
    if remark is not None:
        _el(dossier, "bemerkung", remark)
    _features(dossier, _case_features(case))
    _el(dossier, "aktenzeichen", _clean(case.reference, 200))
    _moment(dossier, "eroeffnungsdatum", case.entry_date.isoformat())
    _moment(dossier, "abschlussdatum", _day(case.closed_at))
    for document in case.documents:
        item = _el(dossier, "dokument", id=f"k_{document.id}")
        _el(item, "titel", document.title)
        authors = dict.fromkeys(v.created_by_unit for v in document.versions)
        for author in authors:
            _el(item, "autor", author)
        _el(item, "erscheinungsform", "digital")
        _el(item, "dokumenttyp", _clean(labels.label("document_type", document.type), 1000))
        _moment(item, "registrierdatum", _day(document.created_at))
        if document.versions:
            _period(
                item,
                "entstehungszeitraum",
                _day(document.versions[0].created_at),
                _day(document.versions[-1].created_at),
            )
        _el(item, "datenschutz", "true")
        _el(item, "oeffentlichkeitsstatus", "nicht öffentlich")
        remark = _document_remark(document)
        if remark is not None:
            _el(item, "bemerkung", remark)
        _features(item, _document_features(document))
        for file_id in file_ids.get(document.id, []):
            _el(item, "dateiRef", file_id)
