"""The caseworker's day in a real browser: log in, open a case, upload, version, search,
hand over; escaping, CSRF and keyboard-only use. Screenshots go to docs/screenshots/."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from dossier_service.samples import make_pdf
from tests.browser.data import add_document, padded_pdf, register_case, transfer
from tests.browser.pages import LiveServer, login, screenshot

END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde Aarau nach Wohnsitznahme."])


def _case_at_aarau(live_server: LiveServer, family_name: str) -> str:
    """A case the canton registered, documented and handed to Aarau."""
    container = live_server.container
    case_id = register_case(container, family_name, "Semhar")
    add_document(
        container,
        "canton",
        case_id,
        END_REPORT,
        doc_type="end_report",
        filename="schlussbericht.pdf",
        title="Schlussbericht Kanton",
    )
    transfer(container, "canton", case_id, "aarau")
    return case_id


def _watch_progress(page: Page) -> None:
    """Record every value the upload's <progress> bar shows, in sessionStorage (the page
    navigates to the new document when the upload is done)."""
    page.evaluate(
        """() => {
            sessionStorage.setItem('progress', '[]');
            const bar = document.querySelector('form[data-upload] [data-progress]');
            new MutationObserver(() => {
                if (bar.hidden) { return; }
                const seen = JSON.parse(sessionStorage.getItem('progress'));
                seen.push(Number(bar.value));
                sessionStorage.setItem('progress', JSON.stringify(seen));
            }).observe(bar, {attributes: true});
        }"""
    )


def _slow_upload(page: Page) -> None:
    """Throttle the page's uploads (~400 kB/s) so the progress bar moves visibly."""
    cdp = page.context.new_cdp_session(page)
    cdp.send("Network.enable")
    cdp.send(
        "Network.emulateNetworkConditions",
        {"offline": False, "latency": 0, "downloadThroughput": -1, "uploadThroughput": 400_000},
    )


def test_caseworker_uploads_versions_finds_and_hands_over(
    page: Page, live_server: LiveServer, browser
) -> None:
    case_id = _case_at_aarau(live_server, "Haile")

    # Log in and find the case in "Meine Fälle".
    page.goto("/login")
    screenshot(page, "01-anmelden")
    login(page, "aarau")
    expect(page.get_by_role("heading", name="Meine Fälle")).to_be_visible()
    row = page.get_by_role("row").filter(has_text="Haile")
    expect(row).to_contain_text("Gemeinde Aarau")
    screenshot(page, "02-meine-faelle")

    # Open the case: person, horizon, timeline.
    row.get_by_role("link", name=re.compile("Haile")).click()
    expect(page.get_by_role("heading", name="Haile, Semhar")).to_be_visible()
    expect(page.get_by_text("Status und 7-Jahres-Horizont")).to_be_visible()
    expect(page.locator(".timeline")).to_contain_text("Kanton Aargau KSD")
    expect(page.locator(".timeline")).to_contain_text("Gemeinde Aarau")

    # Upload a PDF by the drop zone's file input; the progress bar moves to 100 %.
    pdf = padded_pdf(
        "Standortgespräch",
        ["Die Klientin besucht den Deutschkurs regelmässig. Stichwort Velokurier."],
        900_000,
    )
    _watch_progress(page)
    _slow_upload(page)
    page.get_by_label("Dokumenttyp").select_option("meeting_record")
    page.get_by_label("Titel").fill("Standortgespräch März")
    page.locator("#upload-file").set_input_files(
        files=[{"name": "gespraech.pdf", "mimeType": "application/pdf", "buffer": pdf}]
    )
    expect(page.get_by_text("Gewählte Datei: gespraech.pdf")).to_be_visible()
    page.get_by_role("button", name="Hochladen").click()
    page.wait_for_url(re.compile(r"/documents/[0-9a-f-]+$"))
    progress = page.evaluate("JSON.parse(sessionStorage.getItem('progress') || '[]')")
    # The bar was shown, moved through values between 0 and 100, and ended full.
    assert progress and progress[-1] == 100, progress
    assert any(0 < value < 100 for value in progress), progress
    expect(page.get_by_role("heading", name="Standortgespräch März")).to_be_visible()
    expect(page.locator("[data-version-state]").first).to_have_text("bereit")
    expect(page.locator("iframe.preview-frame")).to_be_visible()
    page.wait_for_timeout(1500)  # let the PDF viewer draw the page before the screenshot
    screenshot(page, "04-dokument-vorschau")

    # Add a version (again with the file chooser); version 1 stays listed.
    v2 = make_pdf(
        "Standortgespräch",
        ["Korrigierte Fassung: Deutschkurs A2 bestanden. Arbeit als Velokurier geplant."],
    )
    page.locator("#version-file").set_input_files(
        files=[{"name": "gespraech-v2.pdf", "mimeType": "application/pdf", "buffer": v2}]
    )
    page.get_by_role("button", name="Neue Version hochladen").click()
    expect(page.get_by_text("Version 2 wurde gespeichert.")).to_be_visible()
    table = page.locator("table.versions-table")
    expect(table).to_contain_text("gespraech-v2.pdf")
    expect(table).to_contain_text("gespraech.pdf")

    # Find it by a word in it; the match is highlighted.
    page.get_by_label("In allen Dossiers suchen").fill("Velokurier")
    page.get_by_label("In allen Dossiers suchen").press("Enter")
    expect(page.get_by_role("heading", name="1 Treffer")).to_be_visible()
    expect(page.locator(".snippet mark")).to_have_text(re.compile("Velokurier", re.I))
    screenshot(page, "05-suche")

    # Before the move, Aarau files its hand-over note (Übergabenotiz) for Baden.
    page.goto(f"/cases/{case_id}")
    page.get_by_label("Dokumenttyp").select_option("handover_note")
    page.get_by_label("Titel").fill("Übergabenotiz an Baden")
    note = padded_pdf("Übergabenotiz", ["Stand der Begleitung: Deutschkurs A2 bestanden."], 20_000)
    page.locator("#upload-file").set_input_files(
        files=[{"name": "uebergabe.pdf", "mimeType": "application/pdf", "buffer": note}]
    )
    page.get_by_role("button", name="Hochladen").click()
    page.wait_for_url(re.compile(r"/documents/[0-9a-f-]+$"))
    expect(page.get_by_role("heading", name="Übergabenotiz an Baden")).to_be_visible()

    # Hand the case to Baden: review, see what is gained and lost, confirm.
    page.goto(f"/cases/{case_id}")
    screenshot(page, "03-fall")
    page.get_by_role("link", name="Fall übergeben").click()
    page.get_by_label("Neu zuständige Stelle").select_option("baden")
    page.get_by_label("Grund der Übergabe").fill("Umzug nach Baden")
    page.get_by_role("button", name="Weiter zur Bestätigung").click()
    expect(page.get_by_role("heading", name="Stadt Baden erhält")).to_be_visible()
    expect(page.get_by_role("heading", name="Gemeinde Aarau verliert")).to_be_visible()
    expect(page.get_by_text("jeden Zugriff auf den Fall")).to_be_visible()
    screenshot(page, "06-uebergabe-bestaetigen")
    page.get_by_role("button", name="Ja, Fall an Stadt Baden übergeben").click()
    expect(page.get_by_text("Ihre Stelle hat keinen Zugriff mehr darauf")).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="Haile")).to_have_count(0)

    # Logged in afresh as the old unit: the case is gone from the list, search and address.
    other = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    try:
        again = other.new_page()
        login(again, "aarau")
        expect(again.get_by_role("heading", name="Meine Fälle")).to_be_visible()
        expect(again.get_by_role("row").filter(has_text="Haile")).to_have_count(0)
        again.goto("/search?q=Velokurier")
        expect(again.get_by_role("heading", name="0 Treffer")).to_be_visible()
        response = again.goto(f"/cases/{case_id}")
        assert response is not None and response.status == 404
        expect(again.get_by_role("alert")).to_contain_text("keinen Zugriff")
    finally:
        other.close()
    assert page.script_errors == []  # type: ignore[attr-defined]
