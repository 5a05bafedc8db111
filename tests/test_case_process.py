"""The IAS case process through the API: the issue's scenario, the plan, closing and reopening.

Runs on every database backend. Cost approvals, notifications, monitoring and indicators
have their own files; here they meet in the scenario of the issue's "How we will know".
"""

from __future__ import annotations

import datetime as dt
import io
import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from dossier_service.dates import local_today
from dossier_service.samples import make_pdf
from dossier_service.services.letters import letter_text
from tests.factories import World, held_by, kinds, monitor, new_case, notifications_of, upload

API = "/api/v1"
END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde Aarau."])
OFFER = make_pdf("Kursangebot IKG1", ["Kurskosten CHF 4'800.00 für das Semester."])
NOTE = make_pdf("Gesprächsnotiz", ["Standortgespräch."])


def test_issue_scenario(client, world, settings):
    cid = held_by(client, world)
    aarau, canton = world.auth("aarau"), world.auth("canton")
    assert kinds(notifications_of(client, world, "aarau"), cid) == ["case.transferred_to_you"]

    # Aarau plans a measure and requests a cost approval with the course offer attached.
    measure = client.post(
        f"{API}/cases/{cid}/measures",
        json={
            "programme": "IKG1",
            "provider": "ECAP Aarau",
            "start": "2026-02-01",
            "end": "2026-06-30",
            "status": "planned",
        },
        headers=aarau,
    )
    assert measure.status_code == 201, measure.get_json()
    offer = upload(client, world, "aarau", cid, OFFER, doc_type="programme_report")
    assert offer.status_code == 201
    requested = client.post(
        f"{API}/cases/{cid}/cost-approvals",
        json={
            "measure_id": measure.get_json()["id"],
            "programme": "IKG1",
            "amount_chf": "4800.00",
            "period_from": "2026-02-01",
            "period_to": "2026-06-30",
            "justification": "IKG1 gemäss Integrationsplan.",
            "document_ids": [offer.get_json()["id"]],
        },
        headers=aarau,
    )
    assert requested.status_code == 201, requested.get_json()
    approval = requested.get_json()
    assert approval["status"] == "requested"
    assert approval["amount_chf"] == "4800.00"
    assert approval["document_ids"] == [offer.get_json()["id"]]

    # The canton sees the notification (kind, case and link only) and approves part of it.
    seen = [
        n
        for n in notifications_of(client, world, "canton")
        if n["case_id"] == cid and n["kind"] != "case.responsibility_changed"
    ]
    assert [n["kind"] for n in seen] == ["cost_approval.requested"]
    assert seen[0]["link"] == f"/cases/{cid}" and seen[0]["read"] is False
    decided = client.post(
        f"{API}/cost-approvals/{approval['id']}/decision",
        json={
            "decision": "partially_approved",
            "approved_amount_chf": "3000.00",
            "reason": "Fahrkosten trägt die Gemeinde.",
        },
        headers=canton,
    )
    assert decided.status_code == 200, decided.get_json()
    decision = decided.get_json()
    assert decision["status"] == "partially_approved"
    assert decision["approved_amount_chf"] == "3000.00"
    assert decision["decided_by"] == "canton"

    # Aarau is notified and finds the decision letter as a new document of the case.
    assert "cost_approval.decided" in kinds(notifications_of(client, world, "aarau"), cid)
    docs = client.get(f"{API}/cases/{cid}/documents", headers=aarau).get_json()["items"]
    letter = [d for d in docs if d["type"] == "cost_approval_decision"]
    assert [d["id"] for d in letter] == [decision["decision_document_id"]]
    assert letter[0]["versions"][0]["media_type"] == "application/pdf"
    pdf = client.get(f"{API}/documents/{letter[0]['id']}/content", headers=aarau)
    assert pdf.status_code == 200
    text = letter_text(pdf.data)
    for expected in (
        "Verfügung über Kostengutsprache",
        "CHF 4'800.00",
        "CHF 3'000.00",
        "Semhar Haile",
        "Rechtsmittelbelehrung",
        "Fahrkosten trägt die Gemeinde.",
    ):
        assert expected in text

    # Deciding again is 409; a municipality deciding is 403.
    again = client.post(
        f"{API}/cost-approvals/{approval['id']}/decision",
        json={"decision": "approved"},
        headers=canton,
    )
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "already_decided")
    by_muni = client.post(
        f"{API}/cost-approvals/{approval['id']}/decision",
        json={"decision": "approved"},
        headers=aarau,
    )
    assert by_muni.status_code == 403

    # The measure is interrupted: both sides are notified.
    patched = client.patch(
        f"{API}/measures/{measure.get_json()['id']}", json={"status": "interrupted"}, headers=aarau
    )
    assert patched.status_code == 200, patched.get_json()
    assert "measure.interrupted" in kinds(notifications_of(client, world, "aarau"), cid)
    assert "measure.interrupted" in kinds(notifications_of(client, world, "canton"), cid)

    # 100 days later the idle case is flagged once; a second run adds no duplicate.
    later = local_today() + dt.timedelta(days=100)
    assert "1 stalled case(s)" in monitor(client.application.extensions["dossier"].settings, later)
    for user in ("aarau", "canton"):
        assert kinds(notifications_of(client, world, user), cid).count("case.stalled") == 1
    output = monitor(settings, later)
    assert "0 new notification(s)" in output
    for user in ("aarau", "canton"):
        assert kinds(notifications_of(client, world, user), cid).count("case.stalled") == 1

    # A closed case refuses uploads.
    closed = client.post(
        f"{API}/cases/{cid}/close", json={"reason": "moved_out_of_canton"}, headers=aarau
    )
    assert closed.status_code == 200, closed.get_json()
    refused = upload(client, world, "aarau", cid, NOTE, doc_type="meeting_record")
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (409, "case_closed")


# --- Target group -------------------------------------------------------------------------


def test_target_group_is_set_with_history(client, world):
    cid = new_case(client, world)["id"]
    assert (
        client.get(f"{API}/cases/{cid}", headers=world.auth("canton")).get_json()["target_group"]
        is None
    )
    for group in ("education", "education", "labour_market"):
        response = client.patch(
            f"{API}/cases/{cid}", json={"target_group": group}, headers=world.auth("canton")
        )
        assert response.status_code == 200, response.get_json()
        assert response.get_json()["target_group"] == group
    history = client.get(f"{API}/cases/{cid}/target-groups", headers=world.auth("canton"))
    items = history.get_json()["items"]
    # Setting the same group twice does not start a second period.
    assert [i["target_group"] for i in items] == ["education", "labour_market"]
    assert items[0]["to"] == items[1]["from"] and items[1]["to"] is None
    assert items[1]["set_by"] == "canton"


@pytest.mark.parametrize(
    "body",
    [
        {"target_group": "adults"},
        {},
        {"target_group": "education", "family_name": "X"},
        {"target_group": 3},
    ],
)
def test_target_group_is_validated(client, world, body):
    cid = new_case(client, world)["id"]
    response = client.patch(f"{API}/cases/{cid}", json=body, headers=world.auth("canton"))
    assert response.status_code == 422, response.get_json()


def test_target_group_follows_the_policy(client, world):
    cid = held_by(client, world)
    body = {"target_group": "social_integration"}
    assert (
        client.patch(f"{API}/cases/{cid}", json=body, headers=world.auth("canton")).status_code
        == 403
    )
    assert (
        client.patch(f"{API}/cases/{cid}", json=body, headers=world.auth("baden")).status_code
        == 404
    )
    assert (
        client.patch(f"{API}/cases/{cid}", json=body, headers=world.auth("auditor")).status_code
        == 403
    )
    assert (
        client.patch(f"{API}/cases/{cid}", json=body, headers=world.auth("aarau")).status_code
        == 200
    )


# --- Measures and milestones --------------------------------------------------------------


def _measure(client, world, cid, user="canton", **fields):
    body = {"programme": "IKG1", "provider": "ECAP", "start": "2026-02-01", **fields}
    return client.post(f"{API}/cases/{cid}/measures", json=body, headers=world.auth(user))


def test_measures_are_created_listed_and_changed(client, world):
    cid = new_case(client, world)["id"]
    first = _measure(client, world, cid, end="2026-06-30")
    assert first.status_code == 201, first.get_json()
    assert first.get_json()["status"] == "planned"
    assert first.get_json()["programme_label"].startswith("Integrationskurs")
    second = _measure(client, world, cid, programme="language_course", start="2026-01-05")
    assert second.status_code == 201
    listed = client.get(f"{API}/cases/{cid}/measures", headers=world.auth("canton")).get_json()
    assert [m["programme"] for m in listed["items"]] == ["language_course", "IKG1"]

    mid = first.get_json()["id"]
    changed = client.patch(
        f"{API}/measures/{mid}",
        json={"status": "running", "end": "2026-07-31"},
        headers=world.auth("canton"),
    )
    assert changed.status_code == 200, changed.get_json()
    assert (changed.get_json()["status"], changed.get_json()["end"]) == ("running", "2026-07-31")
    assert changed.get_json()["status_changed_at"] > first.get_json()["status_changed_at"]
    # Running is no stop: nobody was notified about this measure.
    assert notifications_of(client, world, "canton") == []


@pytest.mark.parametrize(
    "fields",
    [
        {"programme": "yoga"},
        {"start": "2026-02-30"},
        {"start": "1970-01-01"},
        {"end": "2026-01-01"},
        {"status": "paused"},
        {"start": None},
        {"colour": "red"},
    ],
)
def test_measure_is_validated(client, world, fields):
    cid = new_case(client, world)["id"]
    response = _measure(client, world, cid, **fields)
    assert response.status_code == 422, response.get_json()


def test_measure_patch_rules(client, world):
    cid = held_by(client, world)
    mid = _measure(client, world, cid, user="aarau").get_json()["id"]
    url = f"{API}/measures/{mid}"
    assert (
        client.patch(url, json={"end": "2025-01-01"}, headers=world.auth("aarau")).status_code
        == 422
    )
    assert client.patch(url, json={}, headers=world.auth("aarau")).status_code == 422
    # Another municipality learns nothing; the canton reads but may not change it.
    hidden = client.patch(url, json={"status": "running"}, headers=world.auth("baden"))
    assert (hidden.status_code, hidden.get_json()["error"]["code"]) == (404, "measure_not_found")
    assert (
        client.patch(url, json={"status": "running"}, headers=world.auth("canton")).status_code
        == 403
    )
    missing = client.patch(
        f"{API}/measures/nope", json={"status": "running"}, headers=world.auth("aarau")
    )
    assert missing.status_code == 404
    # The delegated organisation works on the plan.
    client.post(
        f"{API}/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=world.auth("aarau")
    )
    assert (
        client.patch(url, json={"status": "running"}, headers=world.auth("caritas")).status_code
        == 200
    )
    assert (
        client.get(f"{API}/cases/{cid}/measures", headers=world.auth("caritas")).status_code == 200
    )


def test_aborted_measure_notifies_both_sides_once(client, world):
    cid = held_by(client, world)
    mid = _measure(client, world, cid, user="aarau", status="running").get_json()["id"]
    for _ in range(2):  # the same status again is no new stop
        assert (
            client.patch(
                f"{API}/measures/{mid}", json={"status": "aborted"}, headers=world.auth("aarau")
            ).status_code
            == 200
        )
    for user in ("aarau", "canton"):
        assert kinds(notifications_of(client, world, user), cid).count("measure.aborted") == 1
    assert "measure.aborted" not in kinds(notifications_of(client, world, "baden"), cid)


def test_milestones_are_recorded_and_validated(client, world):
    cid = new_case(client, world)["id"]
    url = f"{API}/cases/{cid}/milestones"
    ok = client.post(
        url,
        json={"kind": "language_level", "value": "A1", "date": "2025-09-01"},
        headers=world.auth("canton"),
    )
    assert ok.status_code == 201, ok.get_json()
    assert ok.get_json()["created_by"] == "canton"
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()
    for bad in (
        {"kind": "language_level", "value": "apprenticeship_efz", "date": "2025-09-01"},
        {"kind": "income", "value": "A1", "date": "2025-09-01"},
        {"kind": "employment", "value": "first_labour_market_full_time", "date": tomorrow},
        {"kind": "education", "value": "apprenticeship_efz"},
    ):
        response = client.post(url, json=bad, headers=world.auth("canton"))
        assert response.status_code == 422, (bad, response.get_json())
    items = client.get(url, headers=world.auth("canton")).get_json()["items"]
    assert [(m["kind"], m["value"], m["date"]) for m in items] == [
        ("language_level", "A1", "2025-09-01")
    ]
    assert (
        client.post(
            url,
            json={"kind": "language_level", "value": "A2", "date": "2025-09-01"},
            headers=world.auth("baden"),
        ).status_code
        == 404
    )


# --- Closing and reopening ----------------------------------------------------------------


def _writes(client: FlaskClient, world: World, user: str, cid: str, doc_id: str, mid: str):
    """Every kind of write on a case, as (label, response)."""
    auth = world.auth(user)
    yield "upload", upload(client, world, user, cid, NOTE)
    yield (
        "version",
        client.post(
            f"{API}/documents/{doc_id}/versions",
            data={"file": (io.BytesIO(NOTE), "n.pdf")},
            headers=auth,
            content_type="multipart/form-data",
        ),
    )
    yield (
        "transfer",
        client.post(
            f"{API}/cases/{cid}/transfers",
            json={"to_unit": "baden", "reason": "Umzug"},
            headers=auth,
        ),
    )
    yield (
        "delegate",
        client.post(f"{API}/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=auth),
    )
    yield (
        "target_group",
        client.patch(f"{API}/cases/{cid}", json={"target_group": "education"}, headers=auth),
    )
    yield "measure", _measure(client, world, cid, user=user)
    yield (
        "measure_patch",
        client.patch(f"{API}/measures/{mid}", json={"status": "running"}, headers=auth),
    )
    yield (
        "milestone",
        client.post(
            f"{API}/cases/{cid}/milestones",
            json={"kind": "language_level", "value": "A1", "date": "2025-09-01"},
            headers=auth,
        ),
    )
    yield (
        "cost_approval",
        client.post(
            f"{API}/cases/{cid}/cost-approvals",
            json={
                "programme": "IKG1",
                "amount_chf": "100.00",
                "period_from": "2026-01-01",
                "period_to": "2026-02-01",
                "justification": "Kurs",
            },
            headers=auth,
        ),
    )
    yield "close", client.post(f"{API}/cases/{cid}/close", json={"reason": "other"}, headers=auth)


def test_closed_case_is_read_only_until_the_canton_reopens_it(client, world):
    cid = held_by(client, world)
    doc_id = upload(client, world, "aarau", cid, NOTE).get_json()["id"]
    mid = _measure(client, world, cid, user="aarau").get_json()["id"]
    closed = client.post(
        f"{API}/cases/{cid}/close",
        json={"reason": "integrated_employment", "note": "Festanstellung seit März."},
        headers=world.auth("aarau"),
    )
    assert closed.status_code == 200, closed.get_json()
    body = closed.get_json()
    assert body["status"] == "closed" and body["close_reason"] == "integrated_employment"
    assert body["closed_at"] is not None

    for label, response in _writes(client, world, "aarau", cid, doc_id, mid):
        assert (response.status_code, response.get_json()["error"]["code"]) == (
            409,
            "case_closed",
        ), label
    # Reads still work.
    for url in (
        f"/cases/{cid}",
        f"/cases/{cid}/documents",
        f"/cases/{cid}/measures",
        f"/documents/{doc_id}/content",
        f"/cases/{cid}/cost-approvals",
    ):
        assert client.get(API + url, headers=world.auth("aarau")).status_code == 200, url

    # Only the canton reopens, with a reason.
    reopen = f"{API}/cases/{cid}/reopen"
    assert (
        client.post(reopen, json={"reason": "Rückkehr"}, headers=world.auth("aarau")).status_code
        == 403
    )
    assert client.post(reopen, json={}, headers=world.auth("canton")).status_code == 422
    reopened = client.post(reopen, json={"reason": "Stelle verloren"}, headers=world.auth("canton"))
    assert reopened.status_code == 200, reopened.get_json()
    assert reopened.get_json()["status"] == "open"
    assert reopened.get_json()["closed_at"] is None
    again = client.post(reopen, json={"reason": "x"}, headers=world.auth("canton"))
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "case_not_closed")
    assert upload(client, world, "aarau", cid, NOTE).status_code == 201

    log = client.get(f"{API}/audit?case_id={cid}", headers=world.auth("auditor")).get_json()
    actions = [(e["actor"], e["action"], e["outcome"]) for e in log["items"]]
    assert ("aarau", "case.close", "ok") in actions
    assert ("canton", "case.reopen", "ok") in actions
    assert ("aarau", "case.reopen", "denied") in actions


def test_who_closes(client, world):
    cid = held_by(client, world)
    body = {"reason": "other"}
    client.post(
        f"{API}/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=world.auth("aarau")
    )
    assert (
        client.post(
            f"{API}/cases/{cid}/close", json=body, headers=world.auth("caritas")
        ).status_code
        == 403
    )
    assert (
        client.post(f"{API}/cases/{cid}/close", json=body, headers=world.auth("baden")).status_code
        == 404
    )
    assert (
        client.post(
            f"{API}/cases/{cid}/close", json={"reason": "bored"}, headers=world.auth("canton")
        ).status_code
        == 422
    )
    # The canton closes a case a municipality holds (continuity duty).
    assert (
        client.post(f"{API}/cases/{cid}/close", json=body, headers=world.auth("canton")).status_code
        == 200
    )
    assert (
        client.post(f"{API}/cases/{cid}/close", json=body, headers=world.auth("canton")).get_json()[
            "error"
        ]["code"]
        == "case_closed"
    )


def test_undecided_cost_approval_blocks_closing(client, world):
    cid = held_by(client, world)
    requested = client.post(
        f"{API}/cases/{cid}/cost-approvals",
        json={
            "programme": "INVOL",
            "amount_chf": "1200.50",
            "period_from": "2026-08-01",
            "period_to": "2027-07-31",
            "justification": "Vorlehre",
        },
        headers=world.auth("aarau"),
    )
    assert requested.status_code == 201
    refused = client.post(
        f"{API}/cases/{cid}/close", json={"reason": "other"}, headers=world.auth("aarau")
    )
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (
        409,
        "cost_approvals_pending",
    )
    client.post(
        f"{API}/cost-approvals/{requested.get_json()['id']}/decision",
        json={"decision": "rejected", "reason": "Kein Platz."},
        headers=world.auth("canton"),
    )
    assert (
        client.post(
            f"{API}/cases/{cid}/close", json={"reason": "other"}, headers=world.auth("aarau")
        ).status_code
        == 200
    )


# --- The OpenAPI document describes these responses ---------------------------------------


def test_process_responses_match_the_openapi_document(client, world):
    from dossier_service.api.health import OPENAPI_PATH
    from tests.openapi_schema import assert_matches

    doc = json.loads(OPENAPI_PATH.read_text("utf-8"))
    cid = held_by(client, world)
    aarau, canton = world.auth("aarau"), world.auth("canton")

    def check(path: str, method: str, status: int, response: Any) -> Any:
        assert response.status_code == status, response.get_json()
        assert_matches(doc, path, method, status, response.get_json())
        return response.get_json()

    check(
        "/cases/{case_id}",
        "patch",
        200,
        client.patch(f"{API}/cases/{cid}", json={"target_group": "education"}, headers=aarau),
    )
    check(
        "/cases/{case_id}/target-groups",
        "get",
        200,
        client.get(f"{API}/cases/{cid}/target-groups", headers=aarau),
    )
    measure = check(
        "/cases/{case_id}/measures",
        "post",
        201,
        _measure(client, world, cid, user="aarau", end="2026-05-31"),
    )
    check(
        "/cases/{case_id}/measures",
        "get",
        200,
        client.get(f"{API}/cases/{cid}/measures", headers=aarau),
    )
    check(
        "/measures/{measure_id}",
        "patch",
        200,
        client.patch(
            f"{API}/measures/{measure['id']}", json={"status": "interrupted"}, headers=aarau
        ),
    )
    check(
        "/cases/{case_id}/milestones",
        "post",
        201,
        client.post(
            f"{API}/cases/{cid}/milestones",
            json={"kind": "education", "value": "bridge_offer", "date": "2025-08-15"},
            headers=aarau,
        ),
    )
    check(
        "/cases/{case_id}/milestones",
        "get",
        200,
        client.get(f"{API}/cases/{cid}/milestones", headers=aarau),
    )
    approval = check(
        "/cases/{case_id}/cost-approvals",
        "post",
        201,
        client.post(
            f"{API}/cases/{cid}/cost-approvals",
            json={
                "measure_id": measure["id"],
                "amount_chf": "4800.00",
                "period_from": "2026-02-01",
                "period_to": "2026-05-31",
                "justification": "Kurs",
            },
            headers=aarau,
        ),
    )
    check(
        "/cost-approvals/{approval_id}",
        "get",
        200,
        client.get(f"{API}/cost-approvals/{approval['id']}", headers=aarau),
    )
    check(
        "/cost-approvals/{approval_id}/decision",
        "post",
        200,
        client.post(
            f"{API}/cost-approvals/{approval['id']}/decision",
            json={"decision": "rejected", "reason": "Kein Platz."},
            headers=canton,
        ),
    )
    check(
        "/cases/{case_id}/cost-approvals",
        "get",
        200,
        client.get(f"{API}/cases/{cid}/cost-approvals", headers=aarau),
    )
    listed = check("/notifications", "get", 200, client.get(f"{API}/notifications", headers=aarau))
    check(
        "/notifications/{notification_id}/read",
        "post",
        200,
        client.post(f"{API}/notifications/{listed['items'][0]['id']}/read", headers=aarau),
    )
    check("/reports/ias", "get", 200, client.get(f"{API}/reports/ias", headers=canton))
    later = (local_today() + dt.timedelta(days=100)).isoformat()
    stalled = check(
        "/reports/stalled",
        "get",
        200,
        client.get(f"{API}/reports/stalled?as_of={later}", headers=canton),
    )
    assert stalled["total_stalled"] == 1
    check(
        "/cases/{case_id}/close",
        "post",
        200,
        client.post(f"{API}/cases/{cid}/close", json={"reason": "other"}, headers=aarau),
    )
    conflict = client.post(f"{API}/cases/{cid}/close", json={"reason": "other"}, headers=aarau)
    check("/cases/{case_id}/close", "post", 409, conflict)
    reopened = check(
        "/cases/{case_id}/reopen",
        "post",
        200,
        client.post(f"{API}/cases/{cid}/reopen", json={"reason": "Rückkehr"}, headers=canton),
    )
    assert reopened["status"] == "open"
