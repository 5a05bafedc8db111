"""Follow-ups (Wiedervorlagen): set on a case, listed with overdue ones marked, done once."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from dossier_service.api.health import OPENAPI_PATH
from dossier_service.dates import local_today
from dossier_service.models import FollowUp
from dossier_service.services import monitoring
from dossier_service.services.cases import horizon_date
from dossier_service.services.indicators import add_years
from tests.factories import API, fresh_person, held_by, new_case
from tests.openapi_schema import assert_matches

DOC = json.loads(OPENAPI_PATH.read_text("utf-8"))
TODAY = local_today()


def _set(client, world, user, case_id, **body):
    body = {"due_date": (TODAY + dt.timedelta(days=14)).isoformat(), "note": "Kursbericht?", **body}
    return client.post(f"{API}/cases/{case_id}/follow-ups", json=body, headers=world.auth(user))


def _list(client, world, user, case_id):
    return client.get(f"{API}/cases/{case_id}/follow-ups", headers=world.auth(user))


def _done(client, world, user, follow_up_id, **body):
    return client.post(f"{API}/follow-ups/{follow_up_id}/done", json=body, headers=world.auth(user))


def test_a_follow_up_is_set_listed_and_done_once(client, world):
    cid = held_by(client, world)
    measure = client.post(
        f"{API}/cases/{cid}/measures",
        json={"programme": "IKG2", "start": TODAY.isoformat()},
        headers=world.auth("aarau"),
    ).get_json()
    created = _set(client, world, "aarau", cid, measure=measure["id"])
    assert created.status_code == 201, created.get_json()
    assert_matches(DOC, "/cases/{case_id}/follow-ups", "post", 201, created.get_json())
    body = created.get_json()
    assert (body["unit"], body["measure"], body["done"], body["overdue"]) == (
        "aarau",
        measure["id"],
        False,
        False,
    )
    listed = _list(client, world, "canton", cid)
    assert_matches(DOC, "/cases/{case_id}/follow-ups", "get", 200, listed.get_json())
    assert [f["id"] for f in listed.get_json()["items"]] == [body["id"]]
    done = _done(client, world, "aarau", body["id"], note="Bericht erhalten.")
    assert done.status_code == 200, done.get_json()
    assert_matches(DOC, "/follow-ups/{follow_up_id}/done", "post", 200, done.get_json())
    assert (done.get_json()["done_by"], done.get_json()["done_note"]) == (
        "aarau",
        "Bericht erhalten.",
    )
    again = _done(client, world, "aarau", body["id"])
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "follow_up_done"


def test_open_follow_ups_come_first_by_due_day_and_overdue_ones_are_marked(
    client, world, container
):
    cid = held_by(client, world)
    later = _set(client, world, "aarau", cid, due_date=(TODAY + dt.timedelta(days=30)).isoformat())
    soon = _set(client, world, "aarau", cid, due_date=TODAY.isoformat())
    finished = _set(client, world, "aarau", cid, due_date=TODAY.isoformat())
    _done(client, world, "aarau", finished.get_json()["id"])
    # A day passes for the follow-up due today.
    with container.db.transaction() as session:
        row = session.get(FollowUp, soon.get_json()["id"])
        row.due_date = TODAY - dt.timedelta(days=1)
    items = _list(client, world, "aarau", cid).get_json()["items"]
    assert [(f["id"], f["overdue"]) for f in items] == [
        (soon.get_json()["id"], True),
        (later.get_json()["id"], False),
        (finished.get_json()["id"], False),
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"due_date": (TODAY - dt.timedelta(days=1)).isoformat()}, "due_date"),
        ({"due_date": add_years(TODAY, 9).isoformat()}, "due_date"),
        ({"due_date": "morgen"}, "due_date"),
        ({"note": " "}, "note"),
        ({"note": "x" * 2001}, "note"),
        ({"measure": "kein-id"}, "measure"),
        ({"cost_approval": "00000000-0000-4000-8000-000000000000"}, "cost_approval"),
        ({"snooze": True}, "snooze"),
    ],
)
def test_bad_follow_ups_are_refused_per_field(client, world, container, change, field):
    cid = held_by(client, world)
    refused = _set(client, world, "aarau", cid, **change)
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["error"]["field"] == field
    with container.db.transaction() as session:
        assert session.execute(select(FollowUp)).first() is None


def test_a_follow_up_names_only_a_measure_of_its_own_case(client, world):
    one = held_by(client, world)
    other = held_by(client, world)
    theirs = client.post(
        f"{API}/cases/{other}/measures",
        json={"programme": "IKG2", "start": TODAY.isoformat()},
        headers=world.auth("aarau"),
    ).get_json()
    refused = _set(client, world, "aarau", one, measure=theirs["id"])
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "unknown_measure"


def test_follow_ups_follow_the_case_when_it_moves(client, world):
    cid = held_by(client, world)
    set_by_aarau = _set(client, world, "aarau", cid).get_json()
    assert _set(client, world, "canton", cid).status_code == 403  # reads, does not work on it
    assert _done(client, world, "canton", set_by_aarau["id"]).status_code == 403
    assert _list(client, world, "baden", cid).status_code == 404
    hidden = _done(client, world, "baden", set_by_aarau["id"])
    assert hidden.status_code == 404
    assert hidden.get_json()["error"]["code"] == "follow_up_not_found"
    assert _done(client, world, "auditor", set_by_aarau["id"]).status_code == 403
    moved = client.post(
        f"{API}/cases/{cid}/transfers",
        json={"to_unit": "ag", "reason": "Rückgabe"},
        headers=world.auth("aarau"),
    )
    assert moved.status_code == 201
    assert _done(client, world, "aarau", set_by_aarau["id"]).status_code == 404
    # The canton, responsible again, finishes what Aarau left open.
    assert _done(client, world, "canton", set_by_aarau["id"]).status_code == 200


def test_the_horizon_sets_one_follow_up_for_the_responsible_unit(client, world, container):
    entry = add_years(TODAY, -7) + dt.timedelta(days=100)
    case = client.post(
        f"{API}/cases",
        json={"person": fresh_person(ahv_number=None), "entry_date": entry.isoformat()},
        headers=world.auth("canton"),
    ).get_json()
    young = new_case(client, world)
    monitoring.monitor_run(container, TODAY)
    monitoring.monitor_run(container, TODAY + dt.timedelta(days=1))
    items = _list(client, world, "canton", case["id"]).get_json()["items"]
    assert [(f["source"], f["unit"], f["due_date"], f["created_by"]) for f in items] == [
        ("horizon", "ag", TODAY.isoformat(), None)
    ]
    assert f"{horizon_date(entry):%d.%m.%Y}" in items[0]["note"]
    assert _list(client, world, "canton", young["id"]).get_json()["items"] == []
    assert _done(client, world, "canton", items[0]["id"]).status_code == 200
