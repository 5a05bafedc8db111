"""Correcting a case's person through the API: who may, what is validated, the history kept.

Runs on every database backend. The matrix tests cover every user × state for the two
routes; here each rule of the correction is proved on its own.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from dossier_service.models import OutboxMessage
from dossier_service.services.person import REINDEX_CASE_TASK
from tests.factories import World, held_by, move, new_case

API = "/api/v1"


def _patch(client: FlaskClient, world: World, user: str, cid: str, body: Any) -> Any:
    return client.patch(f"{API}/cases/{cid}/person", json=body, headers=world.auth(user))


def _error(response: Any) -> tuple[int, str, str | None]:
    error = response.get_json()["error"]
    return response.status_code, error["code"], error.get("field")


def _history(client: FlaskClient, world: World, user: str, cid: str) -> Any:
    response = client.get(f"{API}/cases/{cid}/person/history", headers=world.auth(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_canton_corrects_a_misspelt_name_and_a_later_ahv_number(client, world):
    """200 with the case as GET shows it; each field is one history entry with old and new."""
    cid = new_case(client, world, family_name="Hale", ahv_number=None)["id"]
    response = _patch(
        client,
        world,
        "canton",
        cid,
        {"family_name": "Haile", "ahv_number": "756.9217.0769.85", "reason": "Tippfehler"},
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body == client.get(f"{API}/cases/{cid}", headers=world.auth("canton")).get_json()
    assert body["person"]["family_name"] == "Haile"
    assert body["person"]["ahv_number"] == "756.9217.0769.85"
    items = _history(client, world, "canton", cid)["items"]
    assert [(i["field"], i["old_value"], i["new_value"]) for i in items] == [
        ("family_name", "Hale", "Haile"),
        ("ahv_number", None, "756.9217.0769.85"),
    ]
    assert {(i["reason"], i["by"]) for i in items} == {("Tippfehler", "canton")}


def test_responsible_municipality_corrects_its_case(client, world):
    """Aarau, responsible now, corrects the given names; the history names Aarau's user."""
    cid = held_by(client, world)
    response = _patch(client, world, "aarau", cid, {"given_names": "Semhar T.", "reason": "Pass"})
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["person"]["given_names"] == "Semhar T."
    assert _history(client, world, "canton", cid)["items"][0]["by"] == "aarau"


@pytest.mark.parametrize(
    ("user", "status", "code"),
    [
        ("baden", 404, "case_not_found"),  # another municipality does not read the case
        ("caritas", 403, "forbidden"),  # the delegated organisation reads but never corrects
        ("ors", 403, "forbidden"),
        ("auditor", 403, "forbidden"),
        ("archivist", 403, "forbidden"),
    ],
)
def test_others_may_not_correct(client, world, user, status, code):
    """Other municipalities get 404, organisations and other roles 403; nothing changes."""
    cid = held_by(client, world)
    aarau = world.auth("aarau")
    delegated = client.post(
        f"{API}/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=aarau
    )
    assert delegated.status_code == 201
    response = _patch(client, world, user, cid, {"family_name": "X", "reason": "Test"})
    assert _error(response)[:2] == (status, code)
    assert _history(client, world, "canton", cid)["items"] == []


def test_former_municipality_is_refused_after_a_move(client, world):
    """Once Aarau hands the case to Baden, Aarau no longer reads it (404); Baden corrects."""
    cid = held_by(client, world)
    moved = move(client, world, cid, "aarau", "baden")
    assert moved.status_code == 201, moved.get_json()
    assert _error(_patch(client, world, "aarau", cid, {"sex": "male", "reason": "x"}))[:2] == (
        404,
        "case_not_found",
    )
    assert _patch(client, world, "baden", cid, {"sex": "male", "reason": "x"}).status_code == 200


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"family_name": "Haile"}, "reason"),
        ({"family_name": "Haile", "reason": "  "}, "reason"),
        ({"nickname": "Sem", "reason": "x"}, "nickname"),
        ({"ahv_number": "756.9217.0769.84", "reason": "x"}, "ahv_number"),
        ({"zemis_number": "12#45", "reason": "x"}, "zemis_number"),
        ({"birth_date": "1998-13", "reason": "x"}, "birth_date"),
        ({"birth_date": "1998-02-30", "reason": "x"}, "birth_date"),
        ({"sex": "x", "reason": "x"}, "sex"),
        ({"family_name": None, "reason": "x"}, "family_name"),
        ({"family_name": "", "reason": "x"}, "family_name"),
        ({"residence_status": "C", "reason": "x"}, "residence_status"),
        ({"regulation_date": "2025-13-01", "reason": "x"}, "regulation_date"),
    ],
)
def test_validation_as_at_registration(client, world, body, field):
    """Missing reason, empty change, unknown fields and invalid values answer 422 naming it."""
    cid = new_case(client, world)["id"]
    status, code, named = _error(_patch(client, world, "canton", cid, body))
    assert (status, code, named) == (422, "validation_failed", field)
    assert _history(client, world, "canton", cid)["items"] == []


@pytest.mark.parametrize(
    "body", [{"reason": "nichts"}, {"family_name": "Haile", "sex": "female", "reason": "x"}]
)
def test_an_empty_change_is_refused(client, world, body):
    """Only a reason, or only the current values, is 422 no_change and leaves no history."""
    cid = new_case(client, world)["id"]
    assert _error(_patch(client, world, "canton", cid, body))[:2] == (422, "no_change")
    assert _history(client, world, "canton", cid)["items"] == []


def test_ahv_number_may_be_removed(client, world):
    """null removes a wrongly recorded AHV number; the history keeps the old one."""
    cid = new_case(client, world, ahv_number="756.9217.0769.85")["id"]
    response = _patch(
        client, world, "canton", cid, {"ahv_number": None, "reason": "falsche Person"}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["person"]["ahv_number"] is None
    item = _history(client, world, "canton", cid)["items"][0]
    assert (item["field"], item["old_value"], item["new_value"]) == (
        "ahv_number",
        "756.9217.0769.85",
        None,
    )


def test_status_change_to_f_requires_the_regulation_date(client, world):
    """N → F without regulation_date is 422; with it the case shows the date and the status
    history records the decision."""
    cid = new_case(client, world, residence_status="N")["id"]
    missing = _patch(client, world, "canton", cid, {"residence_status": "F", "reason": "Entscheid"})
    assert _error(missing) == (422, "regulation_date_required", "regulation_date")
    done = _patch(
        client,
        world,
        "canton",
        cid,
        {"residence_status": "F", "regulation_date": "2025-06-15", "reason": "Entscheid SEM"},
    )
    assert done.status_code == 200, done.get_json()
    person = done.get_json()["person"]
    assert (person["residence_status"], person["regulation_date"]) == ("F", "2025-06-15")
    history = _history(client, world, "canton", cid)
    assert history["items"] == []
    [change] = history["status_history"]
    assert (change["old_status"], change["new_status"], change["regulation_date"]) == (
        "N",
        "F",
        "2025-06-15",
    )
    assert (change["reason"], change["by"]) == ("Entscheid SEM", "canton")


@pytest.mark.parametrize(
    ("regulation_date", "why"),
    [("2099-01-01", "regulation_date_in_future"), ("2025-02-28", "regulation_date_before_entry")],
)
def test_regulation_date_in_the_future_or_before_entry_is_refused(
    client, world, regulation_date, why
):
    """The decision's date lies between the entry (2025-03-01) and today."""
    cid = new_case(client, world, residence_status="N")["id"]
    response = _patch(
        client,
        world,
        "canton",
        cid,
        {"residence_status": "B", "regulation_date": regulation_date, "reason": "Entscheid"},
    )
    assert _error(response) == (422, why, "regulation_date")


def test_regulation_date_with_status_n_is_refused_and_return_to_n_clears_it(client, world):
    """N carries no regulation date; a change back to N drops it from the case."""
    cid = new_case(client, world, residence_status="F", regulation_date="2025-05-01")["id"]
    back = _patch(client, world, "canton", cid, {"residence_status": "N", "reason": "Irrtum"})
    assert back.status_code == 200, back.get_json()
    assert back.get_json()["person"]["regulation_date"] is None
    refused = _patch(client, world, "canton", cid, {"regulation_date": "2025-05-01", "reason": "x"})
    assert _error(refused) == (422, "regulation_date_not_allowed", "regulation_date")
    [change] = _history(client, world, "canton", cid)["status_history"]
    assert (change["old_status"], change["new_status"], change["regulation_date"]) == (
        "F",
        "N",
        None,
    )


def test_correcting_the_regulation_date_alone_is_person_history(client, world):
    """With the status unchanged, a corrected decision date is a person change."""
    cid = new_case(client, world, residence_status="B", regulation_date="2025-05-01")["id"]
    response = _patch(
        client, world, "canton", cid, {"regulation_date": "2025-04-01", "reason": "Verfügung"}
    )
    assert response.status_code == 200, response.get_json()
    history = _history(client, world, "canton", cid)
    assert [(i["field"], i["old_value"], i["new_value"]) for i in history["items"]] == [
        ("regulation_date", "2025-05-01", "2025-04-01")
    ]
    assert history["status_history"] == []


def test_registration_checks_the_regulation_date(client, world):
    """POST /cases accepts a regulation date with F or B and refuses it with N or in the future."""
    created = new_case(client, world, residence_status="F", regulation_date="2025-04-02")
    assert created["person"]["regulation_date"] == "2025-04-02"
    for person, code in (
        ({"residence_status": "N", "regulation_date": "2025-04-02"}, "regulation_date_not_allowed"),
        ({"residence_status": "F", "regulation_date": "2099-04-02"}, "regulation_date_in_future"),
    ):
        from tests.factories import PERSON

        response = client.post(
            f"{API}/cases",
            json={"person": {**PERSON, **person}, "entry_date": "2025-03-01"},
            headers=world.auth("canton"),
        )
        assert _error(response) == (422, code, "regulation_date"), person


def test_correction_is_audited_with_the_fields_only(client, world):
    """The audit entry names the corrected fields, never their values."""
    cid = new_case(client, world)["id"]
    assert (
        _patch(
            client, world, "canton", cid, {"family_name": "Haile-Tesfay", "reason": "Heirat"}
        ).status_code
        == 200
    )
    entry = client.get(
        f"{API}/audit?actor=canton&action=person.correct", headers=world.auth("auditor")
    ).get_json()["items"][0]
    assert (entry["case_id"], entry["outcome"]) == (cid, "ok")
    assert entry["detail"]["fields"] == ["family_name"]
    assert "Haile-Tesfay" not in str(entry)


def test_a_closed_case_is_not_corrected(client, world):
    """A closed case answers 409 case_closed; the canton reopens it first."""
    cid = held_by(client, world)
    shut = client.post(
        f"{API}/cases/{cid}/close", json={"reason": "other"}, headers=world.auth("aarau")
    )
    assert shut.status_code == 200, shut.get_json()
    response = _patch(client, world, "canton", cid, {"family_name": "X", "reason": "x"})
    assert _error(response)[:2] == (409, "case_closed")


def test_name_and_identifier_changes_queue_a_reindex(client, world, container):
    """Names and identifiers are in the index entries: their change queues the reindex task;
    a change of sex does not."""
    cid = new_case(client, world)["id"]

    def queued() -> int:
        with container.db.transaction() as session:
            return sum(
                1
                for m in session.query(OutboxMessage).filter(
                    OutboxMessage.task == REINDEX_CASE_TASK
                )
                if m.payload == {"case_id": cid}
            )

    assert (
        _patch(client, world, "canton", cid, {"sex": "unknown", "reason": "x"}).status_code == 200
    )
    assert queued() == 0
    assert (
        _patch(
            client, world, "canton", cid, {"zemis_number": "87654321.0", "reason": "x"}
        ).status_code
        == 200
    )
    assert queued() == 1


def test_search_finds_the_documents_under_the_corrected_name(client, world):
    """The reindex task rewrites the entries: the new family name finds the case's document,
    the misspelt one no longer does."""
    from dossier_service.samples import make_pdf
    from tests.factories import upload

    cid = new_case(client, world, family_name="Hailemariamm")["id"]
    note = make_pdf("Gesprächsnotiz", ["Standortgespräch im März."])
    assert upload(client, world, "canton", cid, note, doc_type="meeting_record").status_code == 201

    def found(name: str) -> set[str]:
        body = client.get(
            f"{API}/search", query_string={"q": name}, headers=world.auth("canton")
        ).get_json()
        return {item["case_id"] for item in body["items"]}

    assert found("Hailemariamm") == {cid}
    corrected = _patch(
        client, world, "canton", cid, {"family_name": "Tsegay", "reason": "Pass vorgelegt"}
    )
    assert corrected.status_code == 200, corrected.get_json()
    assert found("Tsegay") == {cid}
    assert found("Hailemariamm") == set()
