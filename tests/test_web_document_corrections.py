"""The document page's forms: correct, withdraw, move and purge, in German, with history."""

from __future__ import annotations

import io

from flask import Flask
from markupsafe import escape

from dossier_service.samples import make_pdf
from tests.factories import (
    API,
    PDF_V1,
    PDF_V2,
    csrf,
    held_by,
    login,
    new_case,
    post,
    set_passwords,
    upload,
)

REPORT = make_pdf("Bericht", ["Sprachstand A2."])


def _web_client(app: Flask, container, user: str):
    set_passwords(container, user)
    client = app.test_client()
    assert login(client, user).status_code == 302
    return client


def _doc(client, world, case_id: str, data: bytes = REPORT) -> str:
    response = upload(client, world, "aarau", case_id, data, title="Bericht Frühling")
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_the_page_offers_the_forms_and_a_correction_shows_in_the_history(
    app, client, world, container
):
    cid = held_by(client, world)
    doc = _doc(client, world, cid)
    web = _web_client(app, container, "aarau")
    page = web.get(f"/documents/{doc}").get_data(as_text=True)
    assert "Angaben ändern" in page and "Zurückziehen" in page
    assert "Noch keine Änderungen." in page
    assert "Verschieben" not in page  # the canton's form only
    assert 'name="reason"' in page  # the new version's reason
    saved = post(
        web,
        f"/documents/{doc}/correct",
        {
            "title": "Bericht Sommer",
            "type": "programme_report",
            "document_date": "2026-06-30",
            "tags": "Sprache, Schule",
            "reason": "Titel und Datum korrigiert",
        },
    )
    assert saved.status_code == 303
    page = web.get(f"/documents/{doc}").get_data(as_text=True)
    assert "Die Angaben wurden geändert." in page
    assert "Bericht Sommer" in page and "30.06.2026" in page
    assert "Titel und Datum korrigiert" in page
    assert "schule, sprache" in page  # the tags in the history, normalised


def test_a_refused_correction_is_shown_in_german_with_what_was_typed(app, client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, cid)
    web = _web_client(app, container, "aarau")
    no_reason = post(
        web, f"/documents/{doc}/correct", {"title": "Neu getippt", "type": "other", "reason": ""}
    )
    assert no_reason.status_code == 422
    page = no_reason.get_data(as_text=True)
    assert str(escape("Bitte prüfen Sie das Feld «Begründung».")) in page
    assert 'value="Neu getippt"' in page
    future = post(
        web,
        f"/documents/{doc}/correct",
        {"title": "X", "type": "other", "document_date": "2999-01-01", "reason": "r"},
    )
    assert future.status_code == 422
    assert "Das Datum des Dokuments darf nicht in der Zukunft liegen." in future.get_data(
        as_text=True
    )


def test_withdraw_needs_a_confirmation_and_then_hides_the_document(app, client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, cid)
    web = _web_client(app, container, "aarau")
    unconfirmed = post(web, f"/documents/{doc}/withdraw", {"reason": "Falsche Person"})
    assert unconfirmed.status_code == 422
    assert "Bitte bestätigen Sie den Schritt mit dem Häkchen." in unconfirmed.get_data(as_text=True)
    done = post(web, f"/documents/{doc}/withdraw", {"reason": "Falsche Person", "confirm": "yes"})
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/cases/{cid}")
    assert web.get(f"/documents/{doc}").status_code == 404
    assert "Bericht Frühling" not in web.get(f"/cases/{cid}").get_data(as_text=True)


def test_the_canton_sees_a_withdrawn_document_and_purges_it(app, client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, cid)
    client.post(
        f"{API}/documents/{doc}/withdraw",
        json={"reason": "Falsche Person"},
        headers=world.auth("aarau"),
    )
    web = _web_client(app, container, "canton")
    page = web.get(f"/documents/{doc}?withdrawn=true")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert "zurückgezogen" in text and "Endgültig löschen" in text
    assert web.get(f"/documents/{doc}/versions/1/download?withdrawn=true").data == REPORT
    purged = post(web, f"/documents/{doc}/purge", {"reason": "Datenschutz", "confirm": "yes"})
    assert purged.status_code == 303
    assert web.get(f"/documents/{doc}?withdrawn=true").status_code == 404


def test_the_canton_moves_a_document_by_case_reference(app, client, world, container):
    wrong = held_by(client, world)
    right = new_case(
        client, world, family_name="Krasniqi", zemis_number="87654321.0", ahv_number=None
    )
    doc = _doc(client, world, wrong)
    web = _web_client(app, container, "canton")
    assert "Verschieben" in web.get(f"/documents/{doc}").get_data(as_text=True)
    unknown = post(
        web, f"/documents/{doc}/move", {"to_reference": "IAS-1999-999999", "reason": "x"}
    )
    assert unknown.status_code == 422
    assert "Einen Fall mit dieser Fallnummer gibt es nicht." in unknown.get_data(as_text=True)
    moved = post(
        web,
        f"/documents/{doc}/move",
        {"to_reference": right["reference"], "reason": "Falsche Person"},
    )
    assert moved.status_code == 303
    page = web.get(f"/documents/{doc}").get_data(as_text=True)
    assert right["reference"] in page
    assert client.get(f"{API}/documents/{doc}", headers=world.auth("aarau")).status_code == 404


def test_a_new_version_with_a_reason_and_identical_bytes_refused(app, client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, cid, PDF_V1)
    web = _web_client(app, container, "aarau")
    same = web.post(
        f"/documents/{doc}/versions",
        data={"csrf_token": csrf(web), "reason": "nochmals", "file": (io.BytesIO(PDF_V1), "a.pdf")},
        content_type="multipart/form-data",
    )
    assert same.status_code == 409
    assert "identisch mit der aktuellen Version" in same.get_data(as_text=True)
    added = web.post(
        f"/documents/{doc}/versions",
        data={
            "csrf_token": csrf(web),
            "reason": "Unterschrift ergänzt",
            "file": (io.BytesIO(PDF_V2), "b.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert added.status_code == 303
    assert "Unterschrift ergänzt" in web.get(f"/documents/{doc}").get_data(as_text=True)


def test_the_canton_lists_withdrawn_documents_on_the_case_page_when_it_asks(
    app, client, world, container
):
    cid = held_by(client, world)
    doc = _doc(client, world, cid)
    client.post(
        f"{API}/documents/{doc}/withdraw",
        json={"reason": "Falsche Person"},
        headers=world.auth("aarau"),
    )
    web = _web_client(app, container, "canton")
    page = web.get(f"/cases/{cid}").get_data(as_text=True)
    assert "Zurückgezogene Dokumente anzeigen" in page and "Bericht Frühling" not in page
    listed = web.get(f"/cases/{cid}?withdrawn=true").get_data(as_text=True)
    assert "Bericht Frühling" in listed and "Falsche Person" in listed
    assert f"{doc}?withdrawn=true" in listed
    aarau = _web_client(app, container, "aarau")
    assert "Zurückgezogene Dokumente anzeigen" not in aarau.get(f"/cases/{cid}").get_data(
        as_text=True
    )
    assert aarau.get(f"/cases/{cid}?withdrawn=true").status_code == 403
