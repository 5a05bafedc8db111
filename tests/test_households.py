"""Household links: parent, child and partner cases, shown only where both cases are readable."""

from __future__ import annotations

from sqlalchemy import select

from dossier_service.models import AuditEntry
from tests.factories import API, held_by, login, new_case, set_passwords


def _household(client, world, user, case_id):
    response = client.get(f"{API}/cases/{case_id}/household", headers=world.auth(user))
    return response


def _link(client, world, user, case_id, other_id, relation):
    return client.post(
        f"{API}/cases/{case_id}/household",
        json={"case_id": other_id, "relation": relation},
        headers=world.auth(user),
    )


def test_a_link_shows_on_both_cases_with_the_inverse_relation(client, world, container):
    mother = new_case(client, world, family_name="Haile", given_names="Semhar")
    child = new_case(client, world, family_name="Haile", given_names="Luwam", birth_date="2019")
    linked = _link(client, world, "canton", mother["id"], child["id"], "child")
    assert linked.status_code == 201, linked.get_json()
    assert [(m["case_id"], m["relation"]) for m in linked.get_json()["items"]] == [
        (child["id"], "child")
    ]
    from_child = _household(client, world, "canton", child["id"]).get_json()["items"]
    assert [(m["reference"], m["relation"]) for m in from_child] == [
        (mother["reference"], "parent")
    ]
    with container.db.transaction() as session:
        actions = session.execute(
            select(AuditEntry.action).where(AuditEntry.case_id == mother["id"])
        ).scalars()
        assert "household.link" in list(actions)


def test_partners_are_partners_from_both_sides(client, world):
    a = new_case(client, world, given_names="Abel")
    b = new_case(client, world, given_names="Bethlehem")
    assert _link(client, world, "canton", a["id"], b["id"], "partner").status_code == 201
    items = _household(client, world, "canton", b["id"]).get_json()["items"]
    assert [(m["case_id"], m["relation"]) for m in items] == [(a["id"], "partner")]


def test_a_pair_is_linked_once_and_never_to_itself(client, world):
    a = new_case(client, world)
    b = new_case(client, world)
    assert _link(client, world, "canton", a["id"], b["id"], "parent").status_code == 201
    again = _link(client, world, "canton", b["id"], a["id"], "child")
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "household_exists"
    itself = _link(client, world, "canton", a["id"], a["id"], "partner")
    assert itself.status_code == 409
    assert itself.get_json()["error"]["code"] == "household_self"
    bad = _link(client, world, "canton", a["id"], b["id"], "cousin")
    assert bad.status_code == 422
    assert bad.get_json()["error"]["field"] == "relation"


def test_a_linked_case_the_caller_cannot_read_is_not_named(client, world):
    """Aarau holds the parent; the child stays with Baden: Aarau sees no link at all."""
    parent = held_by(client, world, "aarau", given_names="Elsa")
    child = held_by(client, world, "baden", given_names="Noah")
    assert _link(client, world, "canton", child, parent, "parent").status_code == 403
    # The canton reads both but holds neither; Baden holds the child and reads only it.
    refused = _link(client, world, "baden", child, parent, "parent")
    assert refused.status_code == 404  # the parent's case is not Baden's to know
    canton_case = new_case(client, world, given_names="Kanton")
    assert _link(client, world, "canton", canton_case["id"], child, "child").status_code == 201
    assert _link(client, world, "canton", canton_case["id"], parent, "partner").status_code == 201
    assert _household(client, world, "aarau", parent).get_json()["items"] == []
    assert _household(client, world, "baden", child).get_json()["items"] == []
    both = _household(client, world, "canton", canton_case["id"]).get_json()["items"]
    assert {m["case_id"] for m in both} == {child, parent}


def test_only_who_may_change_the_case_links_or_unlinks(client, world):
    held = held_by(client, world, "aarau")
    other = new_case(client, world)
    assert _link(client, world, "canton", held, other["id"], "child").status_code == 403
    assert _link(client, world, "baden", held, other["id"], "child").status_code == 404
    assert _link(client, world, "aarau", held, other["id"], "child").status_code == 404
    own = held_by(client, world, "aarau")
    assert _link(client, world, "aarau", held, own, "child").status_code == 201
    gone = client.delete(f"{API}/cases/{held}/household/{own}", headers=world.auth("baden"))
    assert gone.status_code == 404
    gone = client.delete(f"{API}/cases/{own}/household/{held}", headers=world.auth("aarau"))
    assert gone.status_code == 200
    assert gone.get_json()["items"] == []
    assert _household(client, world, "aarau", held).get_json()["items"] == []
    again = client.delete(f"{API}/cases/{own}/household/{held}", headers=world.auth("aarau"))
    assert again.status_code == 404
    assert again.get_json()["error"]["code"] == "household_link_not_found"


def test_the_case_page_shows_the_household_with_links(client, world, container):
    mother = new_case(client, world, family_name="Haile", given_names="Semhar")
    child = new_case(client, world, family_name="Haile", given_names="Luwam", birth_date="2019")
    assert _link(client, world, "canton", mother["id"], child["id"], "child").status_code == 201
    set_passwords(container, "canton")
    login(client, "canton")
    page = client.get(f"/cases/{child['id']}").get_data(as_text=True)
    assert "Haushalt" in page
    assert f'Elternteil: <a href="/cases/{mother["id"]}">Haile, Semhar</a>' in page
    alone = new_case(client, world)
    assert "Keine verknüpften Fälle." in client.get(f"/cases/{alone['id']}").get_data(as_text=True)
