"""The record's histories in the archive package (SIP) and in the person's disclosure.

One closed case whose person was corrected (name; status N → F with the date of the
decision), one of whose documents was retitled, one moved in from another case and one
withdrawn: both outputs show each change with old and new value, reason, who and when; the
SIP still validates and still leaves the withdrawn document out. Runs on every backend.
"""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from typing import Any

from flask.testing import FlaskClient
from lxml import etree

from dossier_service.services import sip
from tests.factories import (
    API,
    PDF_V1,
    ClosedCase,
    World,
    closed_case,
    export_and_download,
    held_by,
    small_closed_case,
    upload,
)

NS = {"a": sip.NAMESPACE}


@dataclass
class Corrected:
    """The closed case and the ids of the documents whose history the outputs must show."""

    case: ClosedCase
    other_reference: str
    moved_id: str
    withdrawn_id: str


def _ok(response: Any) -> Any:
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def corrected_case(client: FlaskClient, world: World) -> Corrected:
    """A closed case with every kind of history recorded before it was closed."""
    other = held_by(
        client, world, "aarau", family_name="Berisha", zemis_number="87650001.0", ahv_number=None
    )
    other_reference = _ok(client.get(f"{API}/cases/{other}", headers=world.auth("canton")))[
        "reference"
    ]
    stray = upload(client, world, "aarau", other, PDF_V1, title="Standortbericht Juli")
    moved_id = _ok(stray)["id"]
    found: dict[str, str] = {}

    def correct(cid: str) -> None:
        aarau, canton = world.auth("aarau"), world.auth("canton")
        _ok(
            client.patch(
                f"{API}/cases/{cid}/person",
                json={"family_name": "Haile", "reason": "Tippfehler bei der Erfassung"},
                headers=aarau,
            )
        )
        _ok(
            client.patch(
                f"{API}/cases/{cid}/person",
                json={
                    "residence_status": "F",
                    "regulation_date": "2025-06-15",
                    "reason": "Entscheid SEM",
                },
                headers=canton,
            )
        )
        items = _ok(client.get(f"{API}/cases/{cid}/documents", headers=canton))["items"]
        by_title = {i["title"]: i["id"] for i in items}
        _ok(
            client.patch(
                f"{API}/documents/{by_title['Kurzassessment']}",
                json={"title": "Kurzassessment Juni 2025", "reason": "Titel präzisiert"},
                headers=aarau,
            )
        )
        _ok(
            client.post(
                f"{API}/documents/{moved_id}/move",
                json={"to_case": cid, "reason": "Falsche Person"},
                headers=canton,
            )
        )
        found["withdrawn"] = by_title["Integrationsplan"]
        _ok(
            client.post(
                f"{API}/documents/{found['withdrawn']}/withdraw",
                json={"reason": "Anderer Fall"},
                headers=canton,
            )
        )

    case = closed_case(
        client, world, before_close=correct, family_name="Hale", residence_status="N"
    )
    return Corrected(case, other_reference, moved_id, found["withdrawn"])


def _merkmale(element: etree._Element) -> dict[str, str]:
    return {m.get("name"): m.text or "" for m in element.findall("a:zusatzDaten/a:merkmal", NS)}


def test_the_sip_records_the_person_status_and_document_histories(client, world, tmp_path):
    record = corrected_case(client, world)
    case = record.case
    _export_id, data = export_and_download(client, world, [case.id])
    path = tmp_path / "sip.zip"
    path.write_bytes(data)
    assert sip.validate_sip(path) == []
    metadata = zipfile.ZipFile(io.BytesIO(data)).read("header/metadata.xml")
    root = etree.fromstring(metadata)
    schema = etree.XMLSchema(etree.parse(str(sip.XSD_DIR / "arelda.xsd")))
    assert schema.validate(root.getroottree()), schema.error_log

    [dossier] = root.findall(".//a:dossier", NS)
    facts = _merkmale(dossier)
    assert facts["Person: Familienname"] == "Haile"
    name = facts["Personenkorrektur 1"]
    assert name.startswith("Name (family_name): «Hale» → «Haile»; Grund: Tippfehler bei der ")
    assert "; durch aarau am 20" in name
    assert "Personenkorrektur 2" not in facts
    status = facts["Statusänderung 1"]
    assert status.startswith(
        "Aufenthaltsstatus: «N – Asylsuchende/r» → «F – vorläufig aufgenommen»; "
        "Datum des Entscheids (Regelung): 2025-06-15; Grund: Entscheid SEM; durch canton am 20"
    )
    remark = dossier.findtext("a:bemerkung", namespaces=NS)
    assert "1 Korrektur(en)" in remark and "1 Änderung(en) des Aufenthaltsstatus" in remark

    documents = {d.get("id"): d for d in dossier.findall("a:dokument", NS)}
    # Withdrawn: neither the document nor its history is delivered.
    assert set(documents) == {
        f"k_{case.pdf_id}",
        f"k_{case.end_report_id}",
        f"k_{record.moved_id}",
    }
    assert record.withdrawn_id.encode() not in metadata and b"Anderer Fall" not in metadata
    retitled = documents[f"k_{case.pdf_id}"]
    assert retitled.findtext("a:titel", namespaces=NS) == "Kurzassessment Juni 2025"
    change = _merkmale(retitled)["Änderung 1"]
    assert change.startswith(
        "Titel (title): «Kurzassessment» → «Kurzassessment Juni 2025»; "
        "Grund: Titel präzisiert; durch aarau am 20"
    )
    assert "1 Änderung(en)" in retitled.findtext("a:bemerkung", namespaces=NS)
    moved = _merkmale(documents[f"k_{record.moved_id}"])["Änderung 1"]
    assert moved.startswith(
        f"Fall (verschoben) (case): «{record.other_reference}» → «{case.reference}»; "
        "Grund: Falsche Person; durch canton am 20"
    )
    untouched = documents[f"k_{case.end_report_id}"]
    assert untouched.find("a:bemerkung", NS) is None
    assert not any(k.startswith("Änderung") for k in _merkmale(untouched))


def test_the_disclosure_shows_the_person_status_and_document_histories(client, world):
    record = corrected_case(client, world)
    case = record.case
    response = client.get(f"{API}/cases/{case.id}/disclosure", headers=world.auth("canton"))
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    data = json.loads(archive.read("person.json"))

    [name] = data["person_history"]
    assert {k: name[k] for k in ("field", "old", "new", "reason", "by")} == {
        "field": "family_name",
        "old": "Hale",
        "new": "Haile",
        "reason": "Tippfehler bei der Erfassung",
        "by": "aarau",
    }
    assert name["at"].startswith("20")
    [status] = data["status_history"]
    assert {k: status[k] for k in ("old_status", "new_status", "regulation_date", "reason")} == {
        "old_status": "N",
        "new_status": "F",
        "regulation_date": "2025-06-15",
        "reason": "Entscheid SEM",
    }
    assert status["by"] == "canton" and status["at"].startswith("20")

    documents = {d["id"]: d for d in data["documents"]}
    [retitled] = documents[case.pdf_id]["history"]
    assert (retitled["field"], retitled["old"], retitled["new"]) == (
        "title",
        "Kurzassessment",
        "Kurzassessment Juni 2025",
    )
    assert (retitled["reason"], retitled["by"]) == ("Titel präzisiert", "aarau")
    [moved] = documents[record.moved_id]["history"]
    assert (moved["field"], moved["old"], moved["new"]) == (
        "case",
        record.other_reference,
        case.reference,
    )
    # The withdrawn document is disclosed, marked, with its withdrawal.
    withdrawn = documents[record.withdrawn_id]
    assert withdrawn["withdrawn"] is True
    assert [(h["field"], h["reason"]) for h in withdrawn["history"]] == [
        ("withdrawn", "Anderer Fall")
    ]

    # The page shows the same, in German, with Swiss dates.
    page = archive.read("index.html").decode("utf-8")
    assert "Korrekturen der Personendaten" in page
    assert (
        "<tr><td>Name</td><td>Hale</td><td>Haile</td><td>Tippfehler bei der Erfassung</td>"
        "<td>aarau</td>" in page
    )
    assert "Änderungen des Aufenthaltsstatus" in page
    assert (
        "<tr><td>N – Asylsuchende/r</td><td>F – vorläufig aufgenommen</td><td>15.06.2025</td>"
        "<td>Entscheid SEM</td><td>canton</td>" in page
    )
    assert "<td>Datum des Entscheids (Regelung)</td><td>15.06.2025</td>" in page
    assert "Änderungen an Dokumenten" in page
    assert (
        "<tr><td>Kurzassessment Juni 2025</td><td>Titel</td><td>Kurzassessment</td>"
        "<td>Kurzassessment Juni 2025</td><td>Titel präzisiert</td><td>aarau</td>" in page
    )
    assert (
        f"<td>Fall (verschoben)</td><td>{record.other_reference}</td><td>{case.reference}</td>"
        in page
    )
    assert "<td>Integrationsplan (zurückgezogen)</td><td>Zurückgezogen</td><td>(leer)</td>" in page


def test_an_uncorrected_case_has_empty_histories_in_both(client, world):
    case = small_closed_case(client, world)
    _export_id, data = export_and_download(client, world, [case.id])
    root = etree.fromstring(zipfile.ZipFile(io.BytesIO(data)).read("header/metadata.xml"))
    [dossier] = root.findall(".//a:dossier", NS)
    assert dossier.find("a:bemerkung", NS) is None
    assert not any(
        k.startswith(("Personenkorrektur", "Statusänderung")) for k in _merkmale(dossier)
    )
    response = client.get(f"{API}/cases/{case.id}/disclosure", headers=world.auth("canton"))
    person = json.loads(zipfile.ZipFile(io.BytesIO(response.data)).read("person.json"))
    assert person["person_history"] == [] and person["status_history"] == []


def test_the_sip_keeps_the_journal_oldest_first_with_its_corrections(client, world, tmp_path):
    def write_journal(cid: str) -> None:
        aarau = world.auth("aarau")
        first = _ok(
            client.post(
                f"{API}/cases/{cid}/journal",
                json={
                    "kind": "meeting",
                    "text": "Standortgespräch <Kurs> & Praktikum.",
                    "participants": ["Semhar Haile", "Coach"],
                    "occurred_on": "2026-10-01",
                },
                headers=aarau,
            )
        )
        _ok(
            client.post(
                f"{API}/cases/{cid}/journal",
                json={
                    "kind": "phone",
                    "text": "Praktikum beginnt im Mai.",
                    "corrects": first["id"],
                },
                headers=aarau,
            )
        )

    case = closed_case(client, world, before_close=write_journal)
    _export_id, data = export_and_download(client, world, [case.id])
    path = tmp_path / "sip.zip"
    path.write_bytes(data)
    assert sip.validate_sip(path) == []
    root = etree.fromstring(zipfile.ZipFile(io.BytesIO(data)).read("header/metadata.xml"))
    [dossier] = root.findall(".//a:dossier", NS)
    facts = _merkmale(dossier)
    assert facts["Journal 1"].startswith(
        "2026-10-01 Sitzung (Gemeinde Aarau; Beteiligte: Semhar Haile, Coach; erfasst 20"
    )
    assert facts["Journal 1"].endswith("): Standortgespräch <Kurs> & Praktikum.")
    assert "Telefonat (Gemeinde Aarau; korrigiert Journal 1; erfasst" in facts["Journal 2"]
    assert facts["Journal 2"].endswith("): Praktikum beginnt im Mai.")
    assert "Journal 3" not in facts
