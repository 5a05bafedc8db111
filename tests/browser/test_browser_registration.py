"""The canton registers a case in a real browser: refusals, the namesake check, the saved case."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from tests.browser.data import register_case
from tests.browser.pages import LiveServer, login


def _fill(page: Page, family_name: str, zemis: str) -> None:
    page.get_by_label("Familienname").fill(family_name)
    page.get_by_label("Vornamen").fill("Semhar")
    page.get_by_label("Geburtsdatum").fill("1998-03")
    page.get_by_label("Geschlecht").select_option("female")
    page.get_by_label("Staatsangehörigkeit").fill("ER")
    page.get_by_label("Aufenthaltsstatus").select_option("F")
    page.get_by_label("ZEMIS-Nummer").fill(zemis)
    page.get_by_label("Einreise in den Kanton").fill("2025-03-01")


def test_canton_registers_a_case_after_checking_a_namesake(page: Page, live_server: LiveServer):
    # Born as the form below types it: the namesake check compares names and birth date.
    register_case(live_server.container, "Gebremariam", "Semhar", birth_date="1998-03")
    login(page, "canton")
    page.goto("/cases")
    page.get_by_role("link", name="Fall erfassen").click()
    expect(page.get_by_role("heading", name="Fall erfassen")).to_be_visible()

    # Nothing filled in: every missing field says so, in German.
    page.get_by_role("button", name="Fall erfassen").click()
    expect(page.get_by_text("Bitte geben Sie den Familiennamen an")).to_be_visible()
    expect(page.get_by_text("Bitte wählen Sie das Geschlecht.")).to_be_visible()

    # Same names and birth date as a registered case (spelt without the umlaut rule in play).
    _fill(page, "Gebremariam", "70707070.7")
    page.get_by_role("button", name="Fall erfassen").click()
    expect(page.get_by_role("heading", name="Möglicherweise schon erfasst")).to_be_visible()
    page.get_by_role("button", name="Trotzdem erfassen").click()

    expect(page.get_by_text("wurde erfasst")).to_be_visible()
    expect(page.get_by_text("70707070.7")).to_be_visible()
