"""The canton merges a second registration of a person in a real browser."""

from __future__ import annotations

from playwright.sync_api import Page, expect

from dossier_service.models import Case
from tests.browser.data import register_case
from tests.browser.pages import LiveServer, login


def _reference(live_server: LiveServer, case_id: str) -> str:
    with live_server.container.db.transaction() as session:
        case = session.get(Case, case_id)
        assert case is not None
        return case.reference


def test_canton_merges_a_second_registration_and_the_old_one_points_to_it(
    page: Page, live_server: LiveServer
):
    survivor = register_case(live_server.container, "Ghebremariam", "Selam")
    # Registered again without the AHV number (two different numbers would refuse the merge).
    duplicate = register_case(live_server.container, "Gebremariam", "Selam", ahv_number=None)
    survivor_ref = _reference(live_server, survivor)
    duplicate_ref = _reference(live_server, duplicate)
    login(page, "canton")
    page.goto(f"/cases/{survivor}")
    merge = page.locator("#merge")
    expect(merge.get_by_role("heading", name="Fall zusammenführen")).to_be_visible()

    # Its own reference is refused beside the form, and nothing is merged.
    merge.get_by_label("Zusammenzuführender Fall (Fallnummer)").fill(survivor_ref)
    merge.get_by_label("Begründung").fill("Doppelt erfasst")
    merge.get_by_role("checkbox").check()
    merge.get_by_role("button", name="Fall zusammenführen").click()
    expect(
        page.get_by_text("Ein Fall kann nicht mit sich selbst zusammengeführt werden.")
    ).to_be_visible()

    page.locator("#merge").get_by_label("Zusammenzuführender Fall (Fallnummer)").fill(duplicate_ref)
    page.locator("#merge").get_by_label("Begründung").fill(
        "Doppelt erfasst, Schreibweise laut Ausweis"
    )
    page.locator("#merge").get_by_role("checkbox").check()
    page.locator("#merge").get_by_role("button", name="Fall zusammenführen").click()
    expect(page).to_have_url(f"{live_server.url}/cases/{survivor}")
    expect(page.get_by_text(f"Zusammengeführt aus {duplicate_ref}")).to_be_visible()

    # The merged case's page names the surviving case and leads there.
    page.goto(f"/cases/{duplicate}")
    expect(page.get_by_role("heading", name="Fall zusammengeführt")).to_be_visible()
    page.get_by_role("link", name=f"Zum Fall {survivor_ref}").click()
    expect(page).to_have_url(f"{live_server.url}/cases/{survivor}")
    assert page.script_errors == []  # type: ignore[attr-defined]
