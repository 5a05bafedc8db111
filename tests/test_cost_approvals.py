"""Cost approvals: exact amounts, who requests and decides, the letter, atomicity, races."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from babel.numbers import get_group_symbol
from flask.testing import FlaskClient
from sqlalchemy import func, select, update

from dossier_service.dates import local_today, swiss_date, swiss_partial_date
from dossier_service.models import CostApproval, Document
from dossier_service.money import format_chf
from dossier_service.samples import make_pdf
from dossier_service.services import fsck, letters
from dossier_service.services.letters import letter_text
from storage import StorageUnavailable
from tests.factories import (
    REQUEST,
    World,
    file_handover_note,
    held_by,
    kinds,
    new_case,
    notifications_of,
    request_approval,
    upload,
)

API = "/api/v1"
OFFER = make_pdf("Kursangebot", ["Kurskosten CHF 4'800.00."])


def decide(
    client: FlaskClient, world: World, approval_id: str, user: str = "canton", **body: Any
) -> Any:
    """POST a decision and return the response."""
    return client.post(
        f"{API}/cost-approvals/{approval_id}/decision", json=body, headers=world.auth(user)
    )


def decision_documents(container: Any, cid: str) -> int:
    """How many decision letters the case's dossier holds."""
    with container.db.transaction() as session:
        return session.execute(
            select(func.count()).where(
                Document.case_id == cid, Document.type == "cost_approval_decision"
            )
        ).scalar_one()


# --- Amounts ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("amount", "code"),
    [
        (4800.0, "amount_not_string"),
        (4800, "amount_not_string"),
        (True, "amount_not_string"),
        ("-10.00", "validation_failed"),
        ("10.005", "validation_failed"),
        ("1000000.01", "validation_failed"),
        ("0.00", "validation_failed"),
        ("4'800.00", "validation_failed"),
        ("1e3", "validation_failed"),
        ("NaN", "validation_failed"),
        ("", "validation_failed"),
    ],
)
def test_amounts_are_exact_decimal_strings(client, world, amount, code):
    cid = held_by(client, world)
    response = request_approval(client, world, cid, amount_chf=amount)
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["code"] == code
    assert response.get_json()["error"]["field"] == "amount_chf"


@pytest.mark.parametrize(
    ("sent", "stored"), [("1000000.00", "1000000.00"), ("0.1", "0.10"), ("12345.67", "12345.67")]
)
def test_amounts_round_trip_to_the_cent(client, world, sent, stored):
    cid = held_by(client, world)
    response = request_approval(client, world, cid, amount_chf=sent)
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["amount_chf"] == stored
    listed = client.get(f"{API}/cases/{cid}/cost-approvals", headers=world.auth("aarau"))
    assert listed.get_json()["items"][0]["amount_chf"] == stored
    assert listed.get_json()["requested_open_chf"] == stored


def test_swiss_formats():
    group = get_group_symbol("de_CH")
    assert format_chf(Decimal("4800")) == f"4{group}800.00"
    assert format_chf(Decimal("1000000.00")) == f"1{group}000{group}000.00"
    assert format_chf(Decimal("999.5")) == "999.50"
    assert format_chf(Decimal("0.005")) == "0.01"
    assert format_chf(Decimal("0")) == "0.00"
    assert format_chf(Decimal("1234.5"), "fr_CH") == f"1{get_group_symbol('fr_CH')}234,50"
    assert swiss_partial_date("1998") == "1998"
    assert swiss_partial_date("1998-03") == "03.1998"
    assert swiss_partial_date("1987-11-02") == "02.11.1987"


# --- Requesting ---------------------------------------------------------------------------


def test_who_requests(client, world):
    cid = held_by(client, world)
    client.post(
        f"{API}/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=world.auth("aarau")
    )
    # Delegated organisation: legal responsibility and budget stay with the municipality.
    assert request_approval(client, world, cid, user="caritas").status_code == 403
    held = request_approval(client, world, cid, user="canton")
    assert (held.status_code, held.get_json()["error"]["code"]) == (403, "case_not_writable")
    assert request_approval(client, world, cid, user="baden").status_code == 404
    assert request_approval(client, world, cid, user="auditor").status_code == 403
    assert request_approval(client, world, cid, user="aarau").status_code == 201
    # While the canton holds a case it requests (and decides) itself.
    own = new_case(client, world)["id"]
    assert request_approval(client, world, own, user="canton").status_code == 201


def test_request_checks_documents_measure_and_period(client, world):
    cid = held_by(client, world)
    other = held_by(client, world, family_name="Tesfay")
    foreign_doc = upload(client, world, "aarau", other, OFFER).get_json()["id"]
    own_doc = upload(client, world, "aarau", cid, OFFER).get_json()["id"]
    refused = request_approval(client, world, cid, document_ids=[own_doc, foreign_doc])
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (422, "unknown_document")
    assert request_approval(client, world, cid, document_ids=own_doc).status_code == 422
    assert request_approval(client, world, cid, document_ids=["x\x00y"]).status_code == 422
    assert request_approval(client, world, cid, measure_id="IKG1").status_code == 422
    assert request_approval(client, world, cid, period_to="2026-01-01").status_code == 422
    assert request_approval(client, world, cid, justification="").status_code == 422
    assert request_approval(client, world, cid, programme="spa").status_code == 422

    measure = client.post(
        f"{API}/cases/{cid}/measures",
        json={"programme": "INVOL", "start": "2026-08-01"},
        headers=world.auth("aarau"),
    ).get_json()
    foreign_measure = client.post(
        f"{API}/cases/{other}/measures",
        json={"programme": "IKG1", "start": "2026-08-01"},
        headers=world.auth("aarau"),
    ).get_json()
    mismatch = request_approval(client, world, cid, measure_id=measure["id"])  # IKG1 ≠ INVOL
    assert mismatch.status_code == 422
    foreign = request_approval(client, world, cid, measure_id=foreign_measure["id"])
    assert (foreign.status_code, foreign.get_json()["error"]["code"]) == (422, "unknown_measure")
    body = {k: v for k, v in REQUEST.items() if k != "programme"}
    inherited = client.post(
        f"{API}/cases/{cid}/cost-approvals",
        json={**body, "measure_id": measure["id"], "document_ids": [own_doc, own_doc]},
        headers=world.auth("aarau"),
    )
    assert inherited.status_code == 201, inherited.get_json()
    assert inherited.get_json()["programme"] == "INVOL"
    assert inherited.get_json()["document_ids"] == [own_doc]


def test_request_notifies_only_the_canton(client, world):
    cid = held_by(client, world)
    assert request_approval(client, world, cid).status_code == 201
    # Besides the canton's notice of the hand-over to Aarau (held_by).
    assert kinds(notifications_of(client, world, "canton"), cid) == [
        "case.responsibility_changed",
        "cost_approval.requested",
    ]
    assert "cost_approval.requested" not in kinds(notifications_of(client, world, "aarau"), cid)


# --- Deciding -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        {"decision": "maybe"},
        {"decision": "approved", "approved_amount_chf": "4000.00"},
        {"decision": "partially_approved", "reason": "zu teuer"},
        {"decision": "partially_approved", "approved_amount_chf": "4800.00", "reason": "x"},
        {"decision": "partially_approved", "approved_amount_chf": "0.00", "reason": "x"},
        {"decision": "partially_approved", "approved_amount_chf": 3000, "reason": "x"},
        {"decision": "rejected"},
        {"decision": "rejected", "approved_amount_chf": "10.00", "reason": "x"},
    ],
)
def test_decision_is_validated(client, world, container, body):
    cid = held_by(client, world)
    approval = request_approval(client, world, cid).get_json()
    response = decide(client, world, approval["id"], **body)
    assert response.status_code == 422, response.get_json()
    assert decision_documents(container, cid) == 0


@pytest.mark.parametrize(
    ("body", "status", "granted", "sentence", "letter_amount"),
    [
        (
            {"decision": "approved"},
            "approved",
            "4800.00",
            "im beantragten Umfang erteilt",
            "CHF 4'800.00",
        ),
        (
            {"decision": "rejected", "reason": "Kein Kursplatz."},
            "rejected",
            "0.00",
            "abgelehnt",
            "CHF 0.00",
        ),
    ],
)
def test_decisions_and_totals(client, world, body, status, granted, sentence, letter_amount):
    cid = held_by(client, world)
    first = request_approval(client, world, cid).get_json()
    second = request_approval(client, world, cid, amount_chf="250.50").get_json()
    decided = decide(client, world, first["id"], **body)
    assert decided.status_code == 200, decided.get_json()
    assert (decided.get_json()["status"], decided.get_json()["approved_amount_chf"]) == (
        status,
        granted,
    )
    listing = client.get(f"{API}/cases/{cid}/cost-approvals", headers=world.auth("aarau"))
    assert listing.get_json()["approved_total_chf"] == granted
    assert listing.get_json()["requested_open_chf"] == "250.50"
    assert [a["id"] for a in listing.get_json()["items"]] == [second["id"], first["id"]]
    doc = decided.get_json()["decision_document_id"]
    text = letter_text(
        client.get(f"{API}/documents/{doc}/content", headers=world.auth("aarau")).data
    )
    assert sentence in text
    assert f"Bewilligter Betrag: {letter_amount}" in text
    single = client.get(f"{API}/cost-approvals/{first['id']}", headers=world.auth("aarau"))
    assert single.get_json()["status"] == status
    assert (
        client.get(f"{API}/cost-approvals/{first['id']}", headers=world.auth("baden")).status_code
        == 404
    )


def test_letter_is_a_complete_german_decision(client, world):
    cid = held_by(client, world)
    approval = request_approval(client, world, cid).get_json()
    decided = decide(
        client,
        world,
        approval["id"],
        decision="partially_approved",
        approved_amount_chf="3000.00",
        reason="Nur die Kurskosten.",
    ).get_json()
    document = client.get(
        f"{API}/documents/{decided['decision_document_id']}", headers=world.auth("aarau")
    ).get_json()
    assert document["type"] == "cost_approval_decision"
    assert document["title"].startswith("Kostengutsprache IKG1: Entscheid vom ")
    text = letter_text(
        client.get(f"{API}/documents/{document['id']}/content", headers=world.auth("aarau")).data
    )
    today = swiss_date(local_today())
    case = client.get(f"{API}/cases/{cid}", headers=world.auth("aarau")).get_json()
    for line in (
        "Kanton Aargau",
        "Kantonaler Sozialdienst",
        "Gemeinde Aarau",  # the requesting unit is the addressee
        f"Aarau, {today}",
        "Verfügung über Kostengutsprache",
        f"Fall {case['reference']}",
        "Person: Semhar Haile, geboren 03.2006",
        "Programm: Integrationskurs Grundkompetenzen 1 (IKG1)",
        "Zeitraum: 01.02.2026 – 30.06.2026",
        "Beantragter Betrag: CHF 4'800.00",
        "Bewilligter Betrag: CHF 3'000.00",
        "Die Kostengutsprache wird teilweise erteilt.",
        "Nur die Kurskosten.",
        "Rechtsmittelbelehrung",
    ):
        assert line in text, line
    # Nothing the letter does not need: no AHV or ZEMIS number.
    assert "756" not in text and "12345678" not in text


def test_who_decides(client, world):
    cid = held_by(client, world)
    approval = request_approval(client, world, cid).get_json()
    for user, status in (("aarau", 403), ("baden", 403), ("caritas", 403), ("auditor", 403)):
        response = decide(client, world, approval["id"], user=user, decision="approved")
        assert response.status_code == status, user
    missing = decide(client, world, "no-such-id", decision="approved")
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (
        404,
        "cost_approval_not_found",
    )
    assert decide(client, world, approval["id"], decision="approved").status_code == 200


def test_decision_notifies_the_requester_and_is_audited(client, world):
    cid = held_by(client, world)
    approval = request_approval(client, world, cid).get_json()
    decided = decide(client, world, approval["id"], decision="approved").get_json()
    assert "cost_approval.decided" in kinds(notifications_of(client, world, "aarau"), cid)
    assert "cost_approval.decided" not in kinds(notifications_of(client, world, "baden"), cid)
    log = client.get(f"{API}/audit?case_id={cid}", headers=world.auth("auditor")).get_json()
    entries = {(e["actor"], e["action"]): e for e in log["items"]}
    assert entries[("aarau", "cost_approval.request")]["detail"]["amount_chf"] == "4800.00"
    decide_entry = entries[("canton", "cost_approval.decide")]
    assert decide_entry["document_id"] == decided["decision_document_id"]
    assert decide_entry["detail"]["decision"] == "approved"
    assert ("canton", "document.create") in entries


# --- Atomicity and races ------------------------------------------------------------------


def test_storage_failure_leaves_the_request_undecided(client, world, container, monkeypatch):
    cid = held_by(client, world)
    approval = request_approval(client, world, cid).get_json()

    def unavailable(*_args: Any, **_kwargs: Any) -> None:
        raise StorageUnavailable("object store down")

    store = container.store
    monkeypatch.setattr(store, "put_file", unavailable)
    response = decide(client, world, approval["id"], decision="approved")
    assert (response.status_code, response.get_json()["error"]["code"]) == (
        503,
        "storage_unavailable",
    )
    state = client.get(f"{API}/cost-approvals/{approval['id']}", headers=world.auth("canton"))
    assert state.get_json()["status"] == "requested"
    assert decision_documents(container, cid) == 0
    assert "cost_approval.decided" not in kinds(notifications_of(client, world, "aarau"), cid)

    monkeypatch.undo()
    assert decide(client, world, approval["id"], decision="approved").status_code == 200
    assert decision_documents(container, cid) == 1


def test_decision_lost_after_storing_rolls_back_the_letter(client, world, container, monkeypatch):
    """Someone decides while our letter is being stored: ours is 409 and leaves nothing."""
    cid = held_by(client, world)
    approval = request_approval(client, world, cid).get_json()
    render = letters.decision_letter

    def render_and_lose_the_race(facts: Any) -> bytes:
        with container.db.transaction() as session:
            session.execute(
                update(CostApproval)
                .where(CostApproval.id == approval["id"])
                .values(
                    status="rejected",
                    decided_at=dt.datetime.now(dt.UTC),
                    approved_amount_chf=Decimal("0.00"),
                    decision_reason="parallel",
                )
            )
        return render(facts)

    monkeypatch.setattr(letters, "decision_letter", render_and_lose_the_race)
    response = decide(client, world, approval["id"], decision="approved")
    assert (response.status_code, response.get_json()["error"]["code"]) == (409, "already_decided")
    assert decision_documents(container, cid) == 0
    assert [f for f in fsck.check(container, verify_hashes=False) if f.kind == "orphan"] == []
    log = client.get(f"{API}/audit?case_id={cid}", headers=world.auth("auditor")).get_json()
    assert "cost_approval.decide" not in {e["action"] for e in log["items"]}


def test_two_decisions_at_once_one_wins(app, world, container):
    setup = app.test_client()
    cid = held_by(setup, world)
    approval = request_approval(setup, world, cid).get_json()
    barrier = threading.Barrier(2)
    results: list[tuple[int, str | None]] = []
    bodies = [
        {"decision": "approved"},
        {"decision": "partially_approved", "approved_amount_chf": "100.00", "reason": "Teil"},
    ]

    def worker(body: dict[str, Any]) -> None:
        client = app.test_client()
        barrier.wait()
        response = decide(client, world, approval["id"], **body)
        error = (response.get_json().get("error") or {}).get("code")
        results.append((response.status_code, error))

    threads = [threading.Thread(target=worker, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert sorted(results) == [(200, None), (409, "already_decided")], results
    assert decision_documents(container, cid) == 1
    assert [f for f in fsck.check(container, verify_hashes=False) if f.kind == "orphan"] == []
    final = setup.get(f"{API}/cost-approvals/{approval['id']}", headers=world.auth("canton"))
    assert final.get_json()["status"] in {"approved", "partially_approved"}


def test_decision_on_a_moved_case_goes_to_the_unit_holding_it(client, world):
    cid = held_by(client, world)
    approval = request_approval(client, world, cid).get_json()
    file_handover_note(client, world, "aarau", cid)
    moved = client.post(
        f"{API}/cases/{cid}/transfers",
        json={"to_unit": "baden", "reason": "Umzug"},
        headers=world.auth("aarau"),
    )
    assert moved.status_code == 201
    assert decide(client, world, approval["id"], decision="approved").status_code == 200
    assert "cost_approval.decided" in kinds(notifications_of(client, world, "baden"), cid)
    # Aarau can no longer open the case, so it is not pointed at it.
    assert "cost_approval.decided" not in kinds(notifications_of(client, world, "aarau"), cid)
