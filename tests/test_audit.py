"""The audit log's hash chain: intact after real use, and any edit or deletion shows."""

from __future__ import annotations

import itertools
import json
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from dossier_service.container import Container
from dossier_service.models import AuditEntry
from dossier_service.services import audit, audit_checkpoints
from tests.factories import World, new_case, upload


@pytest.fixture
def scenario(client: FlaskClient, world: World, container: Container) -> list[AuditEntry]:
    """A morning of work: register, upload, read, a refused peek, a transfer; the log after it."""
    container.store.check()
    cid = new_case(client, world)["id"]
    doc = upload(
        client,
        world,
        "canton",
        cid,
        "Schlussbericht: Übergabe an Aarau.\n".encode(),
        doc_type="end_report",
        filename="schlussbericht.txt",
    )
    assert doc.status_code == 201
    doc_id = doc.get_json()["id"]
    assert (
        client.get(f"/api/v1/documents/{doc_id}/content", headers=world.auth("canton")).status_code
        == 200
    )
    assert client.get(f"/api/v1/cases/{cid}", headers=world.auth("baden")).status_code == 404
    moved = client.post(
        f"/api/v1/cases/{cid}/transfers",
        json={"to_unit": "aarau", "reason": "Umzug"},
        headers=world.auth("canton"),
    )
    assert moved.status_code == 201
    assert client.get("/api/v1/audit", headers=world.auth("auditor")).status_code == 200
    return entries(container)


def entries(container: Container) -> list[AuditEntry]:
    """The whole log, oldest first."""
    with container.db.transaction() as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())


def problems(container: Container) -> list[tuple[int, str]]:
    """What verify_chain reports, as (entry id, message)."""
    with container.db.transaction() as session:
        return [(p.entry_id, p.message) for p in audit.verify_chain(session)]


def raw(container: Container, sql: str, **params: Any) -> None:
    """Run one statement behind the service's back, as an intruder with database access would."""
    with container.db.transaction() as session:
        session.execute(text(sql), params)


def _detail_sql(container: Container) -> str:
    """UPDATE of the JSON column in each dialect's spelling."""
    if container.db.dialect == "postgresql":
        return "UPDATE audit_log SET detail = CAST(:d AS json) WHERE id = :id"
    return "UPDATE audit_log SET detail = :d WHERE id = :id"


ALTERED = "content does not match its hash (altered)"
UNLINKED = "prev_hash does not match the previous entry"


def test_chain_verifies_after_real_use(scenario, container):
    actions = {(e.actor, e.action, e.outcome) for e in scenario}
    assert {
        ("canton", "case.create", "ok"),
        ("canton", "document.create", "ok"),
        ("canton", "content.read", "ok"),
        ("baden", "case.read", "denied"),
        ("canton", "transfer.create", "ok"),
        ("auditor", "audit.read", "ok"),
    } <= actions
    assert scenario[0].prev_hash == audit.GENESIS_HASH
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(scenario))
    assert problems(container) == []
    # The next entry chains onto the head, and the chain still verifies.
    with container.db.transaction() as session:
        added = audit.record(session, None, "test.marker", detail={"n": 1})
        added_id, added_prev = added.id, added.prev_hash
    assert added_prev == scenario[-1].hash
    assert entries(container)[-1].id == added_id
    assert problems(container) == []


def test_edited_detail_is_found(scenario, container):
    target = next(e for e in scenario if e.action == "document.create")
    raw(container, _detail_sql(container), d=json.dumps({**target.detail, "size": 1}), id=target.id)
    assert problems(container) == [(target.id, ALTERED)]


def test_edited_columns_are_found_and_restoring_heals(scenario, container):
    target = next(e for e in scenario if e.outcome == "denied")
    forgeries = {"actor": "aarau", "outcome": "ok", "action": "case.list", "case_id": None}
    for column, forged in forgeries.items():
        original = getattr(target, column)
        raw(container, f"UPDATE audit_log SET {column} = :v WHERE id = :id", v=forged, id=target.id)
        assert (column, problems(container)) == (column, [(target.id, ALTERED)])
        raw(
            container,
            f"UPDATE audit_log SET {column} = :v WHERE id = :id",
            v=original,
            id=target.id,
        )
        assert (column, problems(container)) == (column, [])


def test_deleted_middle_row_is_found(scenario, container):
    middle = scenario[len(scenario) // 2]
    follower = scenario[len(scenario) // 2 + 1]
    raw(container, "DELETE FROM audit_log WHERE id = :id", id=middle.id)
    assert problems(container) == [(follower.id, UNLINKED)]


def test_rehashed_edit_still_breaks_the_next_link(scenario, container):
    # An intruder who also recomputes the edited row's own hash is caught by its successor.
    target = next(e for e in scenario if e.action == "content.read")
    follower = scenario[scenario.index(target) + 1]
    forged_detail = {"range": [0, 1]}
    fields = {**audit._fields(target), "detail": forged_detail}
    key = audit_checkpoints.load_key(container.settings)
    assert key is not None
    forged_hash = audit._entry_digest(target.prev_hash, fields, key)
    raw(container, _detail_sql(container), d=json.dumps(forged_detail), id=target.id)
    raw(container, "UPDATE audit_log SET hash = :h WHERE id = :id", h=forged_hash, id=target.id)
    assert problems(container) == [(follower.id, UNLINKED)]
