"""Correcting and withdrawing a document in a real browser: the forms, the history, the list."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from dossier_service.samples import make_pdf
from tests.browser.data import add_document, register_case, transfer
from tests.browser.pages import LiveServer, login

END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde Aarau."])
MISFILED = make_pdf("Arztzeugnis", ["Zeugnis einer anderen Person."])


def test_caseworker_corrects_then_withdraws_a_misfiled_document(
    page: Page, live_server: LiveServer
) -> None:
    container = live_server.container
    case_id = register_case(container, "Korrekturtest", "Amanuel")
    add_document(
        container, "canton", case_id, END_REPORT, doc_type="end_report",
        filename="schlussbericht.pdf", title="Schlussbericht Kanton",
    )  # fmt: skip
    transfer(container, "canton", case_id, "aarau")
    doc_id = add_document(
        container, "aarau", case_id, MISFILED, doc_type="other",
        filename="zeugnis.pdf", title="Zeugnis",
    )  # fmt: skip
    login(page, "aarau")
    page.goto(f"/documents/{doc_id}")

    form = page.locator("#correct")
    form.get_by_label("Titel").fill("Arztzeugnis (falsche Person)")
    form.get_by_label("Stichwörter").fill("Gesundheit, Prüfen")
    form.get_by_label("Begründung").fill("Titel präzisiert")
    form.get_by_role("button", name="Angaben speichern").click()
    expect(page.get_by_text("Die Angaben wurden geändert.")).to_be_visible()
    expect(page.get_by_role("heading", level=1)).to_have_text("Arztzeugnis (falsche Person)")
    history = page.locator("#history")
    expect(history.get_by_text("Titel präzisiert").first).to_be_visible()
    expect(history.get_by_text("gesundheit, prüfen")).to_be_visible()

    withdraw = page.locator("#withdraw")
    withdraw.get_by_label("Begründung").fill("Gehört in ein anderes Dossier")
    withdraw.get_by_label("Ich bestätige, dass dieses Dokument zurückgezogen werden soll.").check()
    withdraw.get_by_role("button", name="Zurückziehen").click()
    expect(page.get_by_text("wurde zurückgezogen")).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/cases/{case_id}")
    expect(page.get_by_text("Arztzeugnis (falsche Person)", exact=True)).to_have_count(0)
    assert page.goto(f"/documents/{doc_id}").status == 404
