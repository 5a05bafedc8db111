"""The issue's end-to-end scenario through the API, on every database backend."""

from __future__ import annotations

import io

from dossier_service.samples import make_docx, make_pdf
from tests.factories import file_handover_note, new_case, upload

PDF = make_pdf("Kurzassessment", ["Deutschkenntnisse A1. Ziel: Vorlehre Integration."])
DOCX = make_docx(
    "Integrationsplan", ["IKG1 ab Februar."], [["Massnahme", "Beginn"], ["IKG1", "01.02.2026"]]
)
END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde Aarau."])


def test_case_moves_and_access_follows(client, world):
    case = new_case(client, world, ahv_number="756.9217.0769.85")
    cid = case["id"]
    assert case["reference"].startswith("IAS-")
    assert case["responsible_unit"]["code"] == "ag"
    assert case["person"]["ahv_number"] == "756.9217.0769.85"

    pdf = upload(
        client, world, "canton", cid, PDF, doc_type="short_assessment", filename="kurz.pdf"
    )
    assert pdf.status_code == 201, pdf.get_json()
    docx = upload(
        client, world, "canton", cid, DOCX, doc_type="integration_plan", filename="plan.docx"
    )
    assert docx.status_code == 201, docx.get_json()
    assert docx.get_json()["versions"][0]["media_type"].endswith("wordprocessingml.document")
    # Eager tasks: the fixity check already ran.
    assert (
        client.get(
            f"/api/v1/documents/{pdf.get_json()['id']}", headers=world.auth("canton")
        ).get_json()["versions"][0]["processing"]
        == "ready"
    )

    # A municipality cannot see the case: 404, not 403.
    assert client.get(f"/api/v1/cases/{cid}", headers=world.auth("aarau")).status_code == 404
    assert client.get("/api/v1/cases", headers=world.auth("aarau")).get_json()["total"] == 0

    # Transfer without end report is refused.
    refused = client.post(
        f"/api/v1/cases/{cid}/transfers",
        json={"to_unit": "aarau", "reason": "Umzug"},
        headers=world.auth("canton"),
    )
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "end_report_required"

    assert (
        upload(client, world, "canton", cid, END_REPORT, doc_type="end_report").status_code == 201
    )
    moved = client.post(
        f"/api/v1/cases/{cid}/transfers",
        json={"to_unit": "aarau", "reason": "Wohnsitz Aarau"},
        headers=world.auth("canton"),
    )
    assert moved.status_code == 201, moved.get_json()
    assert moved.get_json()["responsible_unit"]["code"] == "aarau"

    # Aarau sees it now and downloads byte-identical content.
    assert client.get(f"/api/v1/cases/{cid}", headers=world.auth("aarau")).status_code == 200
    doc_id = pdf.get_json()["id"]
    content = client.get(f"/api/v1/documents/{doc_id}/content", headers=world.auth("aarau"))
    assert content.status_code == 200
    assert content.data == PDF
    assert content.headers["ETag"] == f'"{pdf.get_json()["versions"][0]["sha256"]}"'

    # The canton still reads, but may no longer change the case.
    assert client.get(f"/api/v1/cases/{cid}", headers=world.auth("canton")).status_code == 200
    assert upload(client, world, "canton", cid, PDF).status_code == 403

    # Version 2 by Aarau; version 1 stays readable.
    v2_bytes = make_pdf("Kurzassessment", ["Deutschkenntnisse A2."])
    v2 = client.post(
        f"/api/v1/documents/{doc_id}/versions",
        data={"file": (io.BytesIO(v2_bytes), "kurz-v2.pdf")},
        headers=world.auth("aarau"),
        content_type="multipart/form-data",
    )
    assert v2.status_code == 201, v2.get_json()
    assert v2.get_json()["current_version"] == 2
    assert (
        client.get(
            f"/api/v1/documents/{doc_id}/versions/1/content", headers=world.auth("aarau")
        ).data
        == PDF
    )
    assert (
        client.get(f"/api/v1/documents/{doc_id}/content", headers=world.auth("aarau")).data
        == v2_bytes
    )

    # Delegation to an organisation.
    delegated = client.post(
        f"/api/v1/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=world.auth("aarau")
    )
    assert delegated.status_code == 201, delegated.get_json()
    assert client.get(f"/api/v1/cases/{cid}", headers=world.auth("caritas")).status_code == 200

    # The person moves to Baden: Aarau files its hand-over note, then Aarau and Caritas lose
    # access at once; Baden sees all versions.
    file_handover_note(client, world, "aarau", cid)
    moved = client.post(
        f"/api/v1/cases/{cid}/transfers",
        json={"to_unit": "baden", "reason": "Umzug nach Baden"},
        headers=world.auth("aarau"),
    )
    assert moved.status_code == 201, moved.get_json()
    assert moved.get_json()["delegations"] == []
    for former in ("aarau", "caritas"):
        assert client.get(f"/api/v1/cases/{cid}", headers=world.auth(former)).status_code == 404
        assert (
            client.get(
                f"/api/v1/documents/{doc_id}/content", headers=world.auth(former)
            ).status_code
            == 404
        )
        assert client.get("/api/v1/cases", headers=world.auth(former)).get_json()["total"] == 0
    assert (
        client.get(
            f"/api/v1/documents/{doc_id}/versions/1/content", headers=world.auth("baden")
        ).data
        == PDF
    )
    assert (
        client.get(
            f"/api/v1/documents/{doc_id}/versions/2/content", headers=world.auth("baden")
        ).data
        == v2_bytes
    )

    history = client.get(
        f"/api/v1/cases/{cid}/responsibilities", headers=world.auth("baden")
    ).get_json()["items"]
    assert [h["unit"]["code"] for h in history] == ["ag", "aarau", "baden"]
    assert history[0]["to"] is not None and history[-1]["to"] is None
    assert history[1]["reason"] == "Wohnsitz Aarau"

    # The auditor sees who read what, including the denied attempts.
    log = client.get(f"/api/v1/audit?case_id={cid}", headers=world.auth("auditor")).get_json()[
        "items"
    ]
    reads = {(e["actor"], e["action"], e["outcome"]) for e in log}
    assert ("aarau", "content.read", "ok") in reads
    assert ("aarau", "case.read", "denied") in reads
    assert ("caritas", "content.read", "denied") in reads
    assert ("canton", "transfer.create", "ok") in reads
