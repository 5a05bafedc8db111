"""The case page's merge form (canton): German, confirmed, with a reason; the merged case's page."""

from __future__ import annotations

from flask import Flask
from markupsafe import escape

from tests.factories import held_by, login, new_case, post, set_passwords


def _web_client(app: Flask, container, user: str):
    set_passwords(container, user)
    client = app.test_client()
    assert login(client, user).status_code == 302
    return client


def test_the_canton_merges_through_the_form_and_the_merged_page_points_on(
    app, client, world, container
):
    survivor = held_by(client, world, ahv_number=None)
    duplicate = new_case(client, world, ahv_number=None)
    web = _web_client(app, container, "canton")
    page = web.get(f"/cases/{survivor}").get_data(as_text=True)
    assert "Fall zusammenführen" in page and 'name="from_reference"' in page
    url = f"/cases/{survivor}/merge"
    form = {"from_reference": duplicate["reference"], "reason": "Doppelt erfasst"}
    # Without the confirmation nothing happens; what was typed is shown again.
    unconfirmed = post(web, url, form)
    assert unconfirmed.status_code == 422
    text = unconfirmed.get_data(as_text=True)
    assert "Bitte bestätigen Sie" in text and str(escape("Doppelt erfasst")) in text
    missing = post(web, url, {**form, "from_reference": "IAS-1999-999999", "confirm": "yes"})
    assert missing.status_code == 422
    assert "Einen Fall mit dieser Fallnummer gibt es nicht." in missing.get_data(as_text=True)
    own = client.get(f"/api/v1/cases/{survivor}", headers=world.auth("canton")).get_json()
    itself = post(web, url, {**form, "from_reference": own["reference"], "confirm": "yes"})
    assert itself.status_code == 422
    assert "nicht mit sich selbst" in itself.get_data(as_text=True)
    no_reason = post(web, url, {**form, "reason": " ", "confirm": "yes"})
    assert no_reason.status_code == 422
    assert web.get(f"/cases/{duplicate['id']}").status_code == 200  # still on its own

    done = post(web, url, {**form, "confirm": "yes"})
    assert done.status_code == 303, done.get_data(as_text=True)
    page = web.get(f"/cases/{survivor}").get_data(as_text=True)
    assert f"Zusammengeführt aus {duplicate['reference']}" in page
    merged = web.get(f"/cases/{duplicate['id']}")
    assert merged.status_code == 410
    text = merged.get_data(as_text=True)
    assert "Fall zusammengeführt" in text and f'href="/cases/{survivor}"' in text
    again = post(web, url, {**form, "confirm": "yes"})
    assert again.status_code == 409
    assert "bereits mit einem anderen zusammengeführt" in again.get_data(as_text=True)


def test_the_form_is_the_cantons_only(app, client, world, container):
    survivor = held_by(client, world, ahv_number=None)
    duplicate = new_case(client, world, ahv_number=None)
    web = _web_client(app, container, "aarau")
    page = web.get(f"/cases/{survivor}").get_data(as_text=True)
    assert "Fall zusammenführen" not in page
    form = {"from_reference": duplicate["reference"], "reason": "Doppelt", "confirm": "yes"}
    assert post(web, f"/cases/{survivor}/merge", form).status_code == 403
    assert (
        client.get(f"/api/v1/cases/{duplicate['id']}", headers=world.auth("canton")).status_code
        == 200
    )
