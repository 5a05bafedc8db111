"""The German form "Personendaten korrigieren" and the person history on the case page."""

from __future__ import annotations

from markupsafe import escape

from tests.factories import END_REPORT, held_by, login, new_case, post, set_passwords, upload

#: The numbers the form below sends unchanged: the case is registered with them.
FORM_NUMBERS = {"zemis_number": "12345678.9", "ahv_number": "756.9217.0769.85"}

def _text(response):
    return response.get_data(as_text=True)


def _api_person(client, world, cid):
    return client.get(f"/api/v1/cases/{cid}", headers=world.auth("canton")).get_json()["person"]


def _form(client, cid, **changes):
    """The form as shown, with the changes typed in (what a browser posts)."""
    fields = {
        "family_name": "Haile",
        "given_names": "Semhar",
        "birth_date": "2006-03",
        "sex": "female",
        "nationality": "ER",
        "zemis_number": "12345678.9",
        "ahv_number": "756.9217.0769.85",
        "residence_status": "F",
        "regulation_date": "",
        "reason": "",
    }
    return post(client, f"/cases/{cid}/person", {**fields, **changes})


def test_responsible_municipality_corrects_and_sees_the_history(client, world, container):
    """Aarau follows the link, corrects the name with a reason, and the case page shows the
    change with old and new value, reason and who."""
    set_passwords(container, "aarau")
    cid = held_by(client, world)
    login(client, "aarau")
    page = _text(client.get(f"/cases/{cid}"))
    assert f'href="/cases/{cid}/person"' in page and "Personendaten korrigieren" in page
    assert "Die Personendaten wurden seit der Registrierung nicht geändert." in page
    form = _text(client.get(f"/cases/{cid}/person"))
    assert 'value="Haile"' in form and 'name="csrf_token"' in form
    done = _form(client, cid, family_name="Haile Tesfay", reason="Schreibweise laut Pass")
    assert done.status_code == 302 and done.headers["Location"].endswith(f"/cases/{cid}")
    assert _api_person(client, world, cid)["family_name"] == "Haile Tesfay"
    page = _text(client.get(f"/cases/{cid}"))
    assert "Die Personendaten wurden korrigiert." in page
    assert "Geschichte der Personendaten" in page
    assert "Haile → Haile Tesfay" in page and "Schreibweise laut Pass" in page
    assert "aarau" in page


def test_status_change_needs_the_decision_date_with_a_german_message(client, world, container):
    """N → F without the date stays on the form (422) with a German sentence; with the date
    the status history shows the decision."""
    set_passwords(container, "canton")
    cid = new_case(client, world, residence_status="N")["id"]
    login(client, "canton")
    refused = _form(client, cid, residence_status="F", reason="Entscheid SEM")
    assert refused.status_code == 422
    text = _text(refused)
    assert str(escape("braucht es das Datum des Entscheids")) in text
    assert 'aria-invalid="true" aria-describedby="regulation_date-error"' in text
    assert _api_person(client, world, cid)["residence_status"] == "N"
    done = _form(
        client, cid, residence_status="F", regulation_date="2025-06-15", reason="Entscheid SEM"
    )
    assert done.status_code == 302
    page = _text(client.get(f"/cases/{cid}"))
    assert "N – Asylsuchende/r → F – vorläufig aufgenommen" in page
    assert "Entscheid vom 15.06.2025" in page


def test_invalid_values_and_a_missing_reason_are_named_in_german(client, world, container):
    """A wrong AHV check digit and a missing reason are each shown at their field; nothing
    changes."""
    set_passwords(container, "canton")
    cid = new_case(client, world, **FORM_NUMBERS)["id"]
    login(client, "canton")
    no_reason = _form(client, cid, family_name="Hailé")
    assert no_reason.status_code == 422
    assert "Bitte geben Sie einen Grund für die Korrektur an" in _text(no_reason)
    bad_ahv = _form(client, cid, ahv_number="756.9217.0769.84", reason="AHV nachgereicht")
    assert bad_ahv.status_code == 422
    assert "Die AHV-Nummer ist ungültig" in _text(bad_ahv)
    unchanged = _form(client, cid, reason="nichts")
    assert unchanged.status_code == 422
    assert "Sie haben nichts geändert" in _text(unchanged)
    assert _api_person(client, world, cid)["family_name"] == "Haile"


def test_the_form_refuses_a_post_without_csrf_token(client, world, container):
    """Like every form: without the session's token the post is refused and changes nothing."""
    set_passwords(container, "canton")
    cid = new_case(client, world, **FORM_NUMBERS)["id"]
    login(client, "canton")
    response = client.post(
        f"/cases/{cid}/person", data={"family_name": "X", "reason": "ohne Token"}
    )
    assert response.status_code == 400
    assert _api_person(client, world, cid)["family_name"] == "Haile"


def test_units_that_may_not_correct_see_no_link_and_get_no_form(client, world, container):
    """The delegated organisation reads the case but gets neither link nor form (403); the
    canton gets both on a case a municipality holds."""
    set_passwords(container, "caritas", "canton")
    cid = held_by(client, world)
    delegated = client.post(
        f"/api/v1/cases/{cid}/delegations",
        json={"to_unit": "caritas"},
        headers=world.auth("aarau"),
    )
    assert delegated.status_code == 201
    login(client, "caritas")
    assert "Personendaten korrigieren" not in _text(client.get(f"/cases/{cid}"))
    assert client.get(f"/cases/{cid}/person").status_code == 403
    post(client, "/logout")
    login(client, "canton")
    assert "Personendaten korrigieren" in _text(client.get(f"/cases/{cid}"))
    assert client.get(f"/cases/{cid}/person").status_code == 200


def test_a_correction_with_the_ahv_field_emptied_removes_it(client, world, container):
    """An emptied AHV field removes the number; the history keeps the old one."""
    set_passwords(container, "canton")
    cid = new_case(client, world, **FORM_NUMBERS)["id"]
    upload(client, world, "canton", cid, END_REPORT, doc_type="end_report")
    login(client, "canton")
    done = _form(client, cid, ahv_number="", reason="Nummer gehört einer anderen Person")
    assert done.status_code == 302
    assert _api_person(client, world, cid)["ahv_number"] is None
    assert "756.9217.0769.85 → –" in _text(client.get(f"/cases/{cid}"))
