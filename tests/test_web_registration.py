"""The canton registers a case in the pages: German refusals, namesakes shown before saving."""

from __future__ import annotations

import re

from markupsafe import escape

from tests.factories import API, fresh_person, login, new_case, post, set_passwords


def _form(**fields: str) -> dict[str, str]:
    person = fresh_person()
    form = {
        name: person[name] or ""
        for name in (
            "family_name",
            "given_names",
            "birth_date",
            "sex",
            "nationality",
            "residence_status",
            "zemis_number",
            "ahv_number",
        )
    }
    return {**form, "entry_date": "2025-03-01", **fields}


def _canton(client, container):
    set_passwords(container, "canton", "aarau")
    assert login(client, "canton").status_code == 302


def _text(response) -> str:
    return response.get_data(as_text=True)


def test_the_case_list_offers_registration_to_the_canton_only(client, world, container):
    set_passwords(container, "canton", "aarau")
    login(client, "canton")
    assert 'href="/cases/new"' in _text(client.get("/cases"))
    other = client.application.test_client()
    login(other, "aarau")
    assert 'href="/cases/new"' not in _text(other.get("/cases"))
    assert other.get("/cases/new").status_code == 403


def test_registering_a_case_opens_its_page(client, world, container):
    _canton(client, container)
    form = _form(family_name="Tesfay", given_names="Abel")
    response = post(client, "/cases/new", form)
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert page.status_code == 200
    assert "Tesfay, Abel" in _text(page)
    assert "wurde erfasst" in _text(page)
    found = client.get(
        f"{API}/cases", query_string={"q": "tesfay"}, headers=world.auth("canton")
    ).get_json()
    assert [c["person"]["zemis_number"] for c in found["items"]] == [form["zemis_number"]]


def test_refusals_name_every_wrong_field_in_german_and_keep_the_values(client, world, container):
    _canton(client, container)
    response = post(
        client,
        "/cases/new",
        _form(family_name="", birth_date="03.1998", ahv_number="756.1234.5678.90", sex=""),
    )
    assert response.status_code == 422
    text = _text(response)
    assert "Bitte geben Sie den Familiennamen an" in text
    assert "Bitte geben Sie das Geburtsdatum als JJJJ, JJJJ-MM oder JJJJ-MM-TT an" in text
    assert str(escape("Die AHV-Nummer ist ungültig")) in text
    assert "Bitte wählen Sie das Geschlecht." in text
    assert 'value="03.1998"' in text
    assert 'id="family_name-error"' in text


def test_an_entry_date_in_the_future_is_refused_on_the_field(client, world, container):
    _canton(client, container)
    response = post(client, "/cases/new", _form(entry_date="2999-01-01"))
    assert response.status_code == 422
    assert "nicht in der Zukunft" in _text(response)


def test_a_namesake_is_shown_before_saving_and_saved_only_when_confirmed(client, world, container):
    first = new_case(client, world, family_name="Müller", given_names="José", birth_date="1990-05")
    _canton(client, container)
    form = _form(family_name="Mueller", given_names="Jose", birth_date="1990-05")
    shown = post(client, "/cases/new", form)
    assert shown.status_code == 200
    text = _text(shown)
    assert "Möglicherweise schon erfasst" in text
    assert first["reference"] in text
    assert "Trotzdem erfassen" in text
    listed = client.get(
        f"{API}/cases", query_string={"q": "mueller jose"}, headers=world.auth("canton")
    )
    assert listed.get_json()["total"] == 1  # nothing saved yet
    confirmed = re.search(r'name="confirm_duplicate" value="([^"]+)"', text)
    assert confirmed is not None
    saved = post(client, "/cases/new", {**form, "confirm_duplicate": confirmed.group(1)})
    assert saved.status_code == 302
    listed = client.get(
        f"{API}/cases", query_string={"q": "mueller jose"}, headers=world.auth("canton")
    )
    assert listed.get_json()["total"] == 2


def test_a_confirmation_does_not_carry_over_to_other_names(client, world, container):
    new_case(client, world, family_name="Haile", given_names="Semhar", birth_date="1998-03")
    new_case(client, world, family_name="Haile", given_names="Selam", birth_date="1998-03")
    _canton(client, container)
    form = _form(family_name="Haile", given_names="Semhar", birth_date="1998-03")
    token = re.search(
        r'name="confirm_duplicate" value="([^"]+)"', _text(post(client, "/cases/new", form))
    )
    assert token is not None
    changed = post(
        client, "/cases/new", {**form, "given_names": "Selam", "confirm_duplicate": token.group(1)}
    )
    assert changed.status_code == 200
    assert "Möglicherweise schon erfasst" in _text(changed)


def test_a_duplicate_zemis_number_shows_the_existing_case(client, world, container):
    first = new_case(client, world, zemis_number="31415926.5")
    _canton(client, container)
    response = post(client, "/cases/new", _form(zemis_number="3141 5926 5"))
    assert response.status_code == 409
    text = _text(response)
    assert str(escape("Für diese Person besteht bereits ein Fall.")) in text
    assert f'href="/cases/{first["id"]}"' in text
    assert first["reference"] in text


def test_the_case_list_finds_by_folded_name_and_zemis_number(client, world, container):
    case = new_case(client, world, family_name="Öztürk", zemis_number="27182818.2")
    other = new_case(client, world, family_name="Haile")
    _canton(client, container)
    for query in ("oeztuerk", "2718 2818 2"):
        text = _text(client.get("/cases", query_string={"q_case": query}))
        assert case["reference"] in text
        assert other["reference"] not in text
