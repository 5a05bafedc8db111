"""The case journal: append-only entries, corrections by new entries, access like the case."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import select

from dossier_service.api.health import OPENAPI_PATH
from dossier_service.dates import local_today
from dossier_service.models import AuditEntry, JournalEntry
from dossier_service.services import retention
from tests.factories import API, held_by, new_case, small_closed_case
from tests.openapi_schema import assert_matches

DOC = json.loads(OPENAPI_PATH.read_text("utf-8"))
PATH = "/cases/{case_id}/journal"
CALL = {
    "kind": "phone",
    "text": "Frau Haile meldet, dass der Deutschkurs ab März am Abend stattfindet.",
    "participants": ["Semhar Haile", "Dolmetscherin Tigrinya"],
    "occurred_on": "2026-11-30",
}


def _write(client, world, user, case_id, body):
    return client.post(f"{API}/cases/{case_id}/journal", json=body, headers=world.auth(user))


def _read(client, world, user, case_id):
    return client.get(f"{API}/cases/{case_id}/journal", headers=world.auth(user))


def test_an_entry_is_written_listed_and_audited(client, world, container):
    case = new_case(client, world)
    written = _write(client, world, "canton", case["id"], CALL)
    assert written.status_code == 201, written.get_json()
    entry = written.get_json()
    assert_matches(DOC, PATH, "post", 201, entry)
    assert (entry["kind"], entry["occurred_on"], entry["participants"]) == (
        "phone",
        "2026-11-30",
        ["Semhar Haile", "Dolmetscherin Tigrinya"],
    )
    assert (entry["created_by"], entry["unit"], entry["corrects"]) == ("canton", "ag", None)
    listed = _read(client, world, "canton", case["id"])
    assert listed.status_code == 200
    assert_matches(DOC, PATH, "get", 200, listed.get_json())
    assert [e["id"] for e in listed.get_json()["items"]] == [entry["id"]]
    with container.db.transaction() as session:
        actions = list(
            session.execute(
                select(AuditEntry.action).where(AuditEntry.case_id == case["id"])
            ).scalars()
        )
    assert "journal.create" in actions and "journal.list" in actions


def test_the_day_defaults_to_today_and_the_latest_day_comes_first(client, world):
    case = new_case(client, world)
    today = _write(client, world, "canton", case["id"], {"kind": "note", "text": "Heute."})
    assert today.get_json()["occurred_on"] == local_today().isoformat()
    earlier = {**CALL, "occurred_on": "2026-01-05"}
    assert _write(client, world, "canton", case["id"], earlier).status_code == 201
    days = [
        e["occurred_on"] for e in _read(client, world, "canton", case["id"]).get_json()["items"]
    ]
    assert days == [local_today().isoformat(), "2026-01-05"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"kind": "gossip"}, "kind"),
        ({"text": "   "}, "text"),
        ({"text": "x" * 20001}, "text"),
        ({"participants": [""]}, "participants"),
        ({"participants": ["p"] * 31}, "participants"),
        ({"occurred_on": "30.11.2026"}, "occurred_on"),
        ({"occurred_on": None}, "occurred_on"),
        ({"corrects": "not-an-id"}, "corrects"),
        ({"edited": True}, "edited"),
    ],
)
def test_bad_entries_are_refused_per_field_and_nothing_is_written(
    client, world, container, change, field
):
    case = new_case(client, world)
    refused = _write(client, world, "canton", case["id"], {**CALL, **change})
    assert refused.status_code == 422, refused.get_json()
    assert refused.get_json()["error"]["field"] == field
    with container.db.transaction() as session:
        assert session.execute(select(JournalEntry)).first() is None


def test_a_day_in_the_future_is_refused(client, world):
    case = new_case(client, world)
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()
    refused = _write(client, world, "canton", case["id"], {**CALL, "occurred_on": tomorrow})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["field"] == "occurred_on"


def test_a_correction_is_a_new_entry_and_the_old_text_stays(client, world):
    case = new_case(client, world)
    first = _write(client, world, "canton", case["id"], CALL).get_json()
    fixed = _write(
        client,
        world,
        "canton",
        case["id"],
        {**CALL, "text": "Korrektur: der Kurs findet am Vormittag statt.", "corrects": first["id"]},
    )
    assert fixed.status_code == 201, fixed.get_json()
    assert fixed.get_json()["corrects"] == first["id"]
    items = {e["id"]: e for e in _read(client, world, "canton", case["id"]).get_json()["items"]}
    assert items[first["id"]]["text"] == CALL["text"]
    assert items[first["id"]]["corrected_by"] == fixed.get_json()["id"]
    again = _write(client, world, "canton", case["id"], {**CALL, "corrects": first["id"]})
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "journal_entry_corrected"


def test_an_entry_corrects_only_an_entry_of_its_own_case(client, world):
    one = new_case(client, world)
    other = new_case(client, world)
    theirs = _write(client, world, "canton", other["id"], CALL).get_json()
    refused = _write(client, world, "canton", one["id"], {**CALL, "corrects": theirs["id"]})
    assert refused.status_code == 422
    assert refused.get_json()["error"]["code"] == "unknown_journal_entry"


def test_entries_cannot_be_changed_or_deleted(client, world):
    case = new_case(client, world)
    entry = _write(client, world, "canton", case["id"], CALL).get_json()
    url = f"{API}/cases/{case['id']}/journal"
    for method in (client.put, client.patch, client.delete):
        assert method(url, json={"text": "anders"}, headers=world.auth("canton")).status_code == 405
    assert client.patch(f"{url}/{entry['id']}", headers=world.auth("canton")).status_code == 404


def test_a_closed_case_keeps_its_journal_readable_but_closed(client, world):
    closed = small_closed_case(client, world)
    refused = _write(client, world, "canton", closed.id, CALL)
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "case_closed"
    assert _read(client, world, "canton", closed.id).status_code == 200


def test_the_journal_follows_the_case_when_it_moves(client, world):
    cid = held_by(client, world, "aarau")
    assert _write(client, world, "aarau", cid, CALL).status_code == 201
    # The canton reads every case but works only on its own: it may read, not write here.
    assert _read(client, world, "canton", cid).status_code == 200
    held = _write(client, world, "canton", cid, CALL)
    assert held.status_code == 403
    assert held.get_json()["error"]["code"] == "case_not_writable"
    hidden = _read(client, world, "baden", cid)
    assert hidden.status_code == 404
    assert hidden.get_json()["error"]["code"] == "case_not_found"
    moved = client.post(
        f"{API}/cases/{cid}/transfers",
        json={"to_unit": "ag", "reason": "Rückgabe"},
        headers=world.auth("aarau"),
    )
    assert moved.status_code == 201, moved.get_json()
    assert _read(client, world, "aarau", cid).status_code == 404
    items = _read(client, world, "canton", cid).get_json()["items"]
    assert [(e["unit"], e["created_by"]) for e in items] == [("aarau", "aarau")]


def test_deleting_a_case_at_the_end_of_retention_takes_its_journal_with_it(
    client, world, container
):
    case = new_case(client, world)
    first = _write(client, world, "canton", case["id"], CALL).get_json()
    _write(client, world, "canton", case["id"], {**CALL, "corrects": first["id"]})
    other = new_case(client, world)
    kept = _write(client, world, "canton", other["id"], CALL).get_json()
    with container.db.transaction() as session:
        counts = retention.delete_case_rows(session, case["id"])
    assert counts["journal_entries"] == 2
    with container.db.transaction() as session:
        left = session.execute(select(JournalEntry.id)).scalars().all()
    assert left == [kept["id"]]
