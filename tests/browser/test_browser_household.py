"""The canton links a child's case to its mother's in a real browser, and unlinks it."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from dossier_service.models import Case
from tests.browser.data import register_case
from tests.browser.pages import LiveServer, login


def test_canton_links_and_unlinks_a_child_case(page: Page, live_server: LiveServer):
    mother = register_case(live_server.container, "Kidane", "Saba")
    child = register_case(live_server.container, "Kidane", "Meron", birth_date="2020-05")
    with live_server.container.db.transaction() as session:
        found = session.get(Case, child)
        assert found is not None
        reference = found.reference
    login(page, "canton")
    page.goto(f"/cases/{mother}")
    expect(page.get_by_text("Keine verknüpften Fälle.")).to_be_visible()
    page.get_by_text("Fall der Familie verknüpfen").click()
    page.get_by_label("Fallnummer des anderen Falls").fill("IAS-1999-000001")
    page.get_by_label("Diese Person ist für die Person dieses Falls").select_option("child")
    page.get_by_role("button", name="Verknüpfen", exact=True).click()
    expect(page.get_by_text("Es gibt keinen Fall mit dieser Fallnummer")).to_be_visible()
    expect(page.get_by_label("Fallnummer des anderen Falls")).to_have_attribute(
        "aria-invalid", "true"
    )

    page.get_by_label("Fallnummer des anderen Falls").fill(reference)
    page.get_by_role("button", name="Verknüpfen", exact=True).click()
    expect(page.get_by_text("Kidane, Meron ist jetzt mit diesem Fall verknüpft.")).to_be_visible()
    household = page.locator("ul.household")
    expect(household).to_contain_text("Kind: Kidane, Meron")
    # From the child's page the mother is a parent.
    household.get_by_role("link", name="Kidane, Meron").click()
    expect(page.locator("ul.household")).to_contain_text("Elternteil: Kidane, Saba")
    page.go_back()
    page.get_by_role("button", name="Verknüpfung entfernen").click()
    expect(page.get_by_text("Die Verknüpfung wurde entfernt.")).to_be_visible()
    expect(page.get_by_text("Keine verknüpften Fälle.")).to_be_visible()
    assert page.script_errors == []  # type: ignore[attr-defined]
