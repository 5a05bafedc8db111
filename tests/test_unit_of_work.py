"""One unit of work per request: audited reads are stored, an error stores nothing."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import event, func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from dossier_service.container import Container
from dossier_service.models import AuditEntry, Case, Document
from dossier_service.samples import make_pdf
from dossier_service.services import accounts, audit
from tests.factories import World, new_case, upload

API = "/api/v1"
PDF = make_pdf("Kursbestätigung", ["Deutschkurs A2 abgeschlossen."])
PASSWORD = "ein-langes-Passwort-42"

#: Every audited read: (user, address, the audit action it must store). {case} and the
#: other fields are filled from the scenario below.
AUDITED_READS = [
    ("canton", API + "/cases", "case.list"),
    ("canton", API + "/cases/{case}", "case.read"),
    ("canton", API + "/cases/{case}/target-groups", "case.read"),
    ("canton", API + "/cases/{case}/responsibilities", "case.read"),
    ("canton", API + "/cases/{case}/person/history", "case.read"),
    ("canton", API + "/cases/{case}/household", "case.read"),
    ("canton", API + "/cases/{case}/journal", "journal.list"),
    ("canton", API + "/cases/{case}/follow-ups", "follow_up.list"),
    ("canton", API + "/cases/{case}/documents", "document.list"),
    ("canton", API + "/documents/{document}", "document.read"),
    ("canton", API + "/documents/{document}/history", "document.history"),
    ("canton", API + "/documents/{document}/content", "content.read"),
    ("canton", API + "/documents/{document}/versions/1/content", "content.read"),
    ("canton", API + "/cases/{case}/measures", "measure.list"),
    ("canton", API + "/cases/{case}/milestones", "milestone.list"),
    ("canton", API + "/cases/{case}/cost-approvals", "cost_approval.list"),
    ("canton", API + "/cost-approvals/{approval}", "cost_approval.read"),
    ("canton", API + "/cases/{closed}/disclosure", "disclosure.create"),
    ("canton", API + "/notifications", "notification.list"),
    ("canton", API + "/reports/ias?year=2025", "report.read"),
    ("canton", API + "/reports/stalled", "report.read"),
    ("canton", API + "/search?q=Deutschkurs", "search"),
    ("auditor", API + "/audit", "audit.read"),
    ("archivist", API + "/exports/{export}/content", "export.download"),
    ("canton", "/cases", "case.list"),
    ("canton", "/cases/{case}", "case.read"),
    ("canton", "/cases/{case}/transfer", "case.read"),
    ("canton", "/cases/{case}/person", "case.read"),
    ("aarau", "/cases/{held}/delegate", "case.read"),
    ("canton", "/cases/{case}/cost-approvals", "cost_approval.list"),
    ("canton", "/documents/{document}", "document.read"),
    ("canton", "/documents/{document}/versions/1/download", "content.read"),
    ("canton", "/documents/{document}/versions/1/preview", "content.read"),
    ("canton", "/notifications", "notification.list"),
    ("canton", "/reports/ias", "report.read"),
    ("canton", "/reports/ias.csv", "report.read"),
    ("canton", "/search?q=Deutschkurs", "search"),
    ("auditor", "/audit", "audit.read"),
]
#: Reads that write no audit entry (no personal data, or only the caller's own session).
UNAUDITED_READS = {
    "api.health",
    "api.openapi",
    "api.get_export",  # an export's status and checksum: no personal data
    "web.start",
    "web.login",
    "web.login_oidc",
    "web.oidc_callback",
    "web.case_processing",
    "web.case_new",  # the empty registration form: no personal data
    "static",
}


@pytest.fixture
def scenario(client: FlaskClient, world: World, container: Container) -> dict[str, str]:
    """An open case with a PDF and a cost approval, a closed case, and its SIP export."""
    case = new_case(client, world)
    document = upload(client, world, "canton", case["id"], PDF, doc_type="short_assessment")
    assert document.status_code == 201, document.get_json()
    approval = client.post(
        f"{API}/cases/{case['id']}/cost-approvals",
        json={
            "programme": "IKG1",
            "amount_chf": "4800.00",
            "period_from": "2026-02-01",
            "period_to": "2026-06-30",
            "justification": "IKG1 gemäss Integrationsplan.",
        },
        headers=world.auth("canton"),
    )
    assert approval.status_code == 201, approval.get_json()
    held = new_case(client, world, family_name="Kidane")
    report = upload(client, world, "canton", held["id"], PDF, doc_type="end_report")
    assert report.status_code == 201
    moved = client.post(
        f"{API}/cases/{held['id']}/transfers",
        json={"to_unit": "aarau", "reason": "Wohnsitz"},
        headers=world.auth("canton"),
    )
    assert moved.status_code == 201, moved.get_json()
    closed = new_case(client, world, family_name="Tesfay")
    filed = upload(client, world, "canton", closed["id"], PDF, doc_type="short_assessment")
    assert filed.status_code == 201
    closing = client.post(
        f"{API}/cases/{closed['id']}/close", json={"reason": "other"}, headers=world.auth("canton")
    )
    assert closing.status_code == 200, closing.get_json()
    export = client.post(
        f"{API}/exports", json={"case_ids": [closed["id"]]}, headers=world.auth("archivist")
    )
    assert export.status_code == 202, export.get_json()
    with container.db.transaction() as session:
        for username in ("canton", "aarau", "auditor"):
            accounts.set_password(session, username, PASSWORD)
    return {
        "case": case["id"],
        "document": document.get_json()["id"],
        "approval": approval.get_json()["id"],
        "held": held["id"],
        "closed": closed["id"],
        "export": export.get_json()["id"],
    }


def _log_in(client: FlaskClient, username: str) -> None:
    page = client.get("/login").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token is not None
    answer = client.post(
        "/login", data={"username": username, "password": PASSWORD, "csrf_token": token.group(1)}
    )
    assert answer.status_code == 302


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[AuditEntry]]:
    """Every audit entry the code under test records (stored or not)."""
    entries: list[AuditEntry] = []
    original = audit.record

    def spy(*args: Any, **kwargs: Any) -> AuditEntry:
        entry = original(*args, **kwargs)
        entries.append(entry)
        return entry

    monkeypatch.setattr(audit, "record", spy)
    yield entries


def _stored(container: Container, hashes: list[str]) -> set[str]:
    """Which of the entries are in the database, seen from a new transaction."""
    with container.db.transaction() as session:
        return set(
            session.execute(select(AuditEntry.hash).where(AuditEntry.hash.in_(hashes))).scalars()
        )


@pytest.mark.parametrize(("user", "address", "action"), AUDITED_READS)
def test_every_audited_read_is_stored(
    app: Flask,
    world: World,
    container: Container,
    scenario: dict[str, str],
    recorded: list[AuditEntry],
    user: str,
    address: str,
    action: str,
):
    client = app.test_client()
    url = address.format(**scenario)
    headers = world.auth(user) if url.startswith(API) else {}
    if not url.startswith(API):
        _log_in(client, user)
    recorded.clear()
    response = client.get(url, headers=headers)
    body = b"".join(response.response)  # a streamed body runs to its end
    assert response.status_code == 200, body[:300]
    mine = [e for e in recorded if e.actor == user]
    assert action in {e.action for e in mine}
    hashes = [e.hash for e in mine]
    assert _stored(container, hashes) == set(hashes)


def test_every_read_address_is_in_one_of_the_lists(app: Flask):
    reads = {rule.endpoint for rule in app.url_map.iter_rules() if "GET" in (rule.methods or set())}
    adapter = app.url_map.bind("localhost")
    covered = {
        adapter.match(
            address.split("?")[0].format(
                case="c", document="d", approval="a", held="h", closed="x", export="e"
            ),
            method="GET",
        )[0]
        for _user, address, _action in AUDITED_READS
    }
    assert reads - covered - UNAUDITED_READS == set()


def test_an_error_after_writes_stores_none_of_them(
    app: Flask, client: FlaskClient, world: World, container: Container
):
    case = new_case(client, world)

    def fail_after_writing(case_id: str) -> None:
        from dossier_service.http.context import identity, session
        from dossier_service.policy import Action, load_case

        db = session()
        found = load_case(db, identity(), case_id, Action.CASE_WRITE)
        found.family_name = "Überschrieben"
        audit.record(db, identity(), "case.update", case_id=case_id)
        db.flush()
        raise RuntimeError("a bug after the writes")

    app.view_functions["api.list_measures"] = fail_after_writing
    with container.db.transaction() as session:
        entries_before = session.execute(select(func.count()).select_from(AuditEntry)).scalar()
    failed = client.get(f"{API}/cases/{case['id']}/measures", headers=world.auth("canton"))
    assert failed.status_code == 500
    with container.db.transaction() as session:
        assert session.get(Case, case["id"]).family_name == "Haile"  # type: ignore[union-attr]
        entries = session.execute(select(func.count()).select_from(AuditEntry)).scalar()
    assert entries == entries_before


def test_a_failed_commit_answers_an_error_and_removes_the_stored_object(
    client: FlaskClient, world: World, container: Container
):
    case = new_case(client, world)
    assert upload(client, world, "canton", case["id"], PDF).status_code == 201
    keys_before = set(container.store.iter_keys(""))

    def note(session: Session, _context: Any) -> None:
        if any(isinstance(row, Document) for row in session.new):
            session.info["writes_a_document"] = True

    def refuse(session: Session) -> None:
        if session.info.pop("writes_a_document", False):
            raise OperationalError("COMMIT", {}, Exception("the database went away"))

    event.listen(container.db.sessionmaker, "after_flush", note)
    event.listen(container.db.sessionmaker, "before_commit", refuse)
    try:
        response = upload(client, world, "canton", case["id"], PDF)
    finally:
        event.remove(container.db.sessionmaker, "before_commit", refuse)
        event.remove(container.db.sessionmaker, "after_flush", note)
    # Not a 201 for a document that was never stored: the commit's failure is the answer.
    assert response.status_code == 503, response.get_json()
    with container.db.transaction() as session:
        assert session.execute(select(func.count()).select_from(Document)).scalar() == 1
    assert set(container.store.iter_keys("")) == keys_before
