"""A canton caseworker corrects the person's data in a real browser and sees the history."""

from __future__ import annotations

import datetime as dt

from playwright.sync_api import Page, expect

from dossier_service.dates import local_today
from tests.browser.data import register_case
from tests.browser.pages import LiveServer, login


def test_canton_corrects_name_and_status_and_sees_the_history(page: Page, live_server: LiveServer):
    case_id = register_case(live_server.container, "Tesfamariam", "Luwam", residence_status="N")
    decided = local_today() - dt.timedelta(days=30)  # the case entered 500 days ago
    login(page, "canton")
    page.goto(f"/cases/{case_id}")
    expect(
        page.get_by_text("Die Personendaten wurden seit der Registrierung nicht geändert.")
    ).to_be_visible()
    page.get_by_role("link", name="Personendaten korrigieren").click()
    expect(page.get_by_role("heading", name="Personendaten korrigieren")).to_be_visible()

    # N → F without the date of the decision: refused at the field, in German, as typed.
    page.get_by_label("Name", exact=True).fill("Tesfamariam Ghebre")
    page.get_by_label("Aufenthaltsstatus").select_option("F")
    page.get_by_label("Grund der Korrektur").fill("Entscheid SEM, Schreibweise laut Ausweis F")
    page.get_by_role("button", name="Korrektur speichern").click()
    expect(page.get_by_text("braucht es das Datum des Entscheids")).to_be_visible()
    expect(page.get_by_label("Name", exact=True)).to_have_value("Tesfamariam Ghebre")
    expect(page.get_by_label("Datum des Entscheids (Regelung)")).to_have_attribute(
        "aria-invalid", "true"
    )

    # With the date (after the entry, not in the future) it is saved, and the case page
    # shows both changes in the history.
    page.get_by_label("Datum des Entscheids (Regelung)").fill(decided.isoformat())
    page.get_by_role("button", name="Korrektur speichern").click()
    expect(page.get_by_text("Die Personendaten wurden korrigiert.")).to_be_visible()
    expect(page).to_have_url(f"{live_server.url}/cases/{case_id}")
    history = page.locator("#person-history")
    expect(history.get_by_role("heading", name="Geschichte der Personendaten")).to_be_visible()
    expect(history).to_contain_text("Tesfamariam → Tesfamariam Ghebre")
    expect(history).to_contain_text("N – Asylsuchende/r → F – vorläufig aufgenommen")
    expect(history).to_contain_text(f"Entscheid vom {decided:%d.%m.%Y}")
    expect(history).to_contain_text("Entscheid SEM, Schreibweise laut Ausweis F")
    expect(
        page.get_by_text("Die Personendaten wurden seit der Registrierung nicht geändert.")
    ).to_have_count(0)
    assert page.script_errors == []  # type: ignore[attr-defined]
