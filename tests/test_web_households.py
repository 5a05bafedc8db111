"""Haushalt on the German case page: link by reference, refusals beside the form, unlink."""

from __future__ import annotations

from tests.factories import API, held_by, login, new_case, post, set_passwords


def _text(response):
    return response.get_data(as_text=True)


def _members(client, world, cid):
    response = client.get(f"{API}/cases/{cid}/household", headers=world.auth("canton"))
    items = response.get_json()
    assert response.status_code == 200, items
    return [(m["case_id"], m["relation"]) for m in items["items"]]


def test_the_responsible_unit_links_a_child_by_reference_and_unlinks_it(client, world, container):
    set_passwords(container, "aarau")
    mother = held_by(client, world, family_name="Haile", given_names="Semhar")
    child = held_by(client, world, family_name="Haile", given_names="Luwam", birth_date="2019")
    reference = client.get(f"{API}/cases/{child}", headers=world.auth("canton")).get_json()[
        "reference"
    ]
    login(client, "aarau")
    page = _text(client.get(f"/cases/{mother}"))
    assert "Fall der Familie verknüpfen" in page and "Keine verknüpften Fälle." in page
    done = post(
        client, f"/cases/{mother}/household", {"reference": reference.lower(), "relation": "child"}
    )
    assert done.status_code == 303, _text(done)[:300]
    assert _members(client, world, mother) == [(child, "child")]
    assert _members(client, world, child) == [(mother, "parent")]
    page = _text(client.get(f"/cases/{mother}"))
    assert "Haile, Luwam ist jetzt mit diesem Fall verknüpft." in page
    assert "Kind: <a" in page and "Verknüpfung entfernen" in page
    gone = post(client, f"/cases/{mother}/household/{child}/remove", {})
    assert gone.status_code == 303
    assert _members(client, world, mother) == []
    assert "Die Verknüpfung wurde entfernt." in _text(client.get(f"/cases/{mother}"))


def test_an_unknown_or_unreadable_reference_is_refused_alike(client, world, container):
    set_passwords(container, "aarau")
    mother = held_by(client, world)
    elsewhere = held_by(client, world, "baden")  # Aarau may not read it
    hidden_ref = client.get(f"{API}/cases/{elsewhere}", headers=world.auth("canton")).get_json()[
        "reference"
    ]
    login(client, "aarau")
    for reference in ("IAS-1999-999999", hidden_ref):
        refused = post(
            client, f"/cases/{mother}/household", {"reference": reference, "relation": "child"}
        )
        assert refused.status_code == 422
        page = _text(refused)
        assert "Es gibt keinen Fall mit dieser Fallnummer, den Sie lesen dürfen" in page
        assert f'value="{reference}"' in page
    assert _members(client, world, mother) == []


def test_readers_who_do_not_work_on_the_case_get_no_household_form(client, world, container):
    set_passwords(container, "canton")
    mother = held_by(client, world)
    other = new_case(client, world)["id"]
    login(client, "canton")
    page = _text(client.get(f"/cases/{mother}"))
    assert "Fall der Familie verknüpfen" not in page
    refused = post(client, f"/cases/{mother}/household", {"reference": "x", "relation": "child"})
    assert refused.status_code == 403
    assert _members(client, world, other) == []
