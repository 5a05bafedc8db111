"""Migrations step by step with rows present, and downgrade/upgrade round trips.

The rows come from a real scenario run at head (cases handed over, delegated, closed,
exported, a cost approval, notifications, the audit log). A fresh database is then upgraded
one revision at a time; after each revision the rows of the tables it created are inserted
with the columns that revision knows. At head every row must be there unchanged, and every
column a later revision added must hold what that revision promises for existing rows.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask.testing import FlaskClient
from sqlalchemy import MetaData, Table, select
from sqlalchemy.engine import Connection
from sqlalchemy.types import NullType

from dossier_service.container import Container
from dossier_service.dates import local_today
from dossier_service.db import Base, Database
from dossier_service.folding import name_key
from dossier_service.schema import alembic_config
from dossier_service.services import audit, audit_checkpoints, notifications
from tests.factories import (
    API,
    PDF_V1,
    PDF_V2,
    World,
    closed_case,
    export_and_download,
    held_by,
    login,
    new_case,
    request_approval,
    set_passwords,
    upload,
)

Rows = dict[str, list[dict[str, Any]]]


def _json(value: Any) -> Any:
    """A JSON column's value whether the driver decoded it (PostgreSQL) or not (SQLite)."""
    return json.loads(value) if isinstance(value, str) else value


def _if_unfinished(row: dict[str, Any]) -> Any:
    """A version's creation time if it still waits for processing, else nothing."""
    return row["created_at"] if row["processing"] in ("pending", "processing") else None


#: What a revision that adds a column to an existing table puts into the rows already there.
#: A new migration that adds a column must say it here, or the step test fails.
ADDED_TO_EXISTING_ROWS: dict[tuple[str, str], Callable[[dict[str, Any]], Any]] = {
    ("document_versions", "text_key"): lambda row: None,
    ("document_versions", "text_chars"): lambda row: None,
    ("document_versions", "extraction"): lambda row: {},
    ("document_versions", "indexed_at"): lambda row: None,
    ("responsibilities", "index_synced_at"): lambda row: row["started_at"],
    # 0008: the date of a case's Regelung was never recorded before.
    ("cases", "regulation_date"): lambda row: None,
    # 0012: every existing case stands on its own.
    ("cases", "merged_into_id"): lambda row: None,
    # 0006: versions still waiting count from their upload; the rest have no round running.
    ("document_versions", "processing_since"): lambda row: _if_unfinished(row),
    ("document_versions", "processing_queued_at"): lambda row: _if_unfinished(row),
    ("document_versions", "processing_owner"): lambda row: None,
    ("document_versions", "processing_lease_until"): lambda row: None,
    ("document_versions", "processing_attempts"): lambda row: 0,
    # 0010: existing documents have no date on them, no tags, are not withdrawn; existing
    # versions were uploaded without a reason.
    ("documents", "document_date"): lambda row: None,
    ("documents", "tags"): lambda row: [],
    ("documents", "withdrawn_at"): lambda row: None,
    ("documents", "withdrawn_by"): lambda row: None,
    ("documents", "withdrawn_reason"): lambda row: None,
    ("document_versions", "reason"): lambda row: None,
    # 0011: the folded name key is computed from the names the row already has.
    ("cases", "name_key"): lambda row: name_key(row["family_name"], row["given_names"]),
}
#: Tables the scenario leaves empty (their rows need a retention run or a legal hold).
EMPTY_IN_SCENARIO = {"case_tombstones", "legal_holds"}
COMPARED_AS_JSON = {"extraction", "tags"}


def _comparable(column: str, got: Any, want: Any) -> tuple[str, Any]:
    """(column, got) with JSON decoded where ``want`` is decoded: for one equality check."""
    if column in COMPARED_AS_JSON and not isinstance(want, str):
        got = _json(got)
    return column, got


def _tables(conn: Connection) -> list[Table]:
    """The tables at the connection's current revision, dependencies first, values raw."""
    metadata = MetaData()
    metadata.reflect(conn)
    tables = [t for t in metadata.sorted_tables if t.name != "alembic_version"]
    if conn.dialect.name == "sqlite":
        # Raw values: stored strings are copied as they are, not re-formatted by a type.
        for table in tables:
            for column in table.columns:
                column.type = NullType()
    return tables


def _dump(conn: Connection) -> Rows:
    """Every row of every table, ordered by primary key."""
    rows: Rows = {}
    for table in _tables(conn):
        order = list(table.primary_key.columns) or list(table.columns)
        result = conn.execute(select(table).order_by(*order))
        rows[table.name] = [dict(row._mapping) for row in result]
    return rows


def _referenced_first(table: Table, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows in an order a self-referencing table accepts (a journal correction after the
    entry it corrects): each row after the row its own foreign key points at."""
    own = [
        (fk.parent.name, fk.column.name)
        for fk in table.foreign_keys
        if fk.column.table.name == table.name
    ]
    if not own:
        return rows
    placed: list[dict[str, Any]] = []
    seen: set[tuple[str, Any]] = set()
    pending = list(rows)
    while pending:
        ready = [r for r in pending if all(r.get(c) is None or (t, r[c]) in seen for c, t in own)]
        assert ready, f"{table.name}: a cycle of references"
        for row in ready:
            placed.append(row)
            seen.update((t, row[t]) for _c, t in own)
        pending = [r for r in pending if r not in ready]
    return placed


def _revisions(url: str) -> list[str]:
    """Revision ids from the first to head."""
    script = ScriptDirectory.from_config(alembic_config(url))
    return [r.revision for r in reversed(list(script.walk_revisions("base", "heads")))]


def _scenario(client: FlaskClient, world: World, container: Container) -> None:
    """Work that fills the tables: hand-over, delegation, versions, closing, export, plan."""
    case = closed_case(client, world)
    export_and_download(client, world, [case.id])
    cid = held_by(client, world, unit="baden", family_name="Tesfay")
    baden = world.auth("baden")
    offer = upload(client, world, "baden", cid, PDF_V1, doc_type="programme_report")
    assert offer.status_code == 201, offer.get_json()
    requested = request_approval(
        client, world, cid, user="baden", document_ids=[offer.get_json()["id"]]
    )
    assert requested.status_code == 201, requested.get_json()
    measure = {"programme": "IKG1", "provider": "ECAP", "start": "2026-02-01"}
    assert (
        client.post(f"{API}/cases/{cid}/measures", json=measure, headers=baden).status_code == 201
    )
    milestone = {"kind": "language_level", "value": "A1", "date": "2025-09-01"}
    posted = client.post(f"{API}/cases/{cid}/milestones", json=milestone, headers=baden)
    assert posted.status_code == 201, posted.get_json()
    # A corrected document (document_changes) and a misfiled one purged (document_tombstones).
    doc = offer.get_json()["id"]
    fix = {"title": "Kursangebot ECAP", "tags": ["deutsch"], "reason": "Titel präzisiert"}
    assert client.patch(f"{API}/documents/{doc}", json=fix, headers=baden).status_code == 200
    misfiled = upload(client, world, "baden", cid, PDF_V2, doc_type="other").get_json()["id"]
    why = {"reason": "Falsche Person"}
    withdrawn = client.post(f"{API}/documents/{misfiled}/withdraw", json=why, headers=baden)
    assert withdrawn.status_code == 200, withdrawn.get_json()
    canton = world.auth("canton")
    purged = client.post(f"{API}/documents/{misfiled}/purge", json=why, headers=canton)
    assert purged.status_code == 200, purged.get_json()
    # A corrected name (person_changes) and a status undone (residence_status_changes).
    corrected = client.patch(
        f"{API}/cases/{cid}/person",
        json={
            "given_names": "Semhar T.",
            "residence_status": "N",
            "reason": "Pass und Entscheid",
        },
        headers=baden,
    )
    assert corrected.status_code == 200, corrected.get_json()
    partner = held_by(client, world, unit="baden", family_name="Tesfay", given_names="Yonas")
    linked = client.post(
        f"{API}/cases/{cid}/household",
        json={"case_id": partner, "relation": "partner"},
        headers=baden,
    )
    assert linked.status_code == 201, linked.get_json()
    # A journal entry and its correction (journal_entries), a follow-up (follow_ups).
    note = {"kind": "phone", "text": "Anruf Schule.", "participants": ["Lehrerin"]}
    first = client.post(f"{API}/cases/{cid}/journal", json=note, headers=baden)
    assert first.status_code == 201, first.get_json()
    fix = {**note, "text": "Anruf der Schule.", "corrects": first.get_json()["id"]}
    assert client.post(f"{API}/cases/{cid}/journal", json=fix, headers=baden).status_code == 201
    due = {"due_date": local_today().isoformat(), "note": "Zeugnis einholen"}
    assert client.post(f"{API}/cases/{cid}/follow-ups", json=due, headers=baden).status_code == 201
    # A second registration of the person merged into the case (case_merges, a pointer).
    duplicate = new_case(client, world, family_name="Tesfay", ahv_number=None)["id"]
    merged = client.post(
        f"{API}/cases/{cid}/merge",
        json={"from_case": duplicate, "reason": "Doppelt erfasst"},
        headers=world.auth("canton"),
    )
    assert merged.status_code == 200, merged.get_json()
    with container.db.transaction() as session:
        notifications.set_mailbox(session, "baden", "integration@baden.example")
    # A web login (web_sessions) and a refused token (auth_failures).
    set_passwords(container, "aarau")
    assert login(client.application.test_client(), "aarau").status_code == 302
    bogus = {"Authorization": "Bearer dos_" + "x" * 43}
    assert client.get(f"{API}/cases", headers=bogus).status_code == 401


def _columns_at(url: str) -> dict[str, set[str]]:
    db = Database(url)
    with db.engine.connect() as conn:
        columns = {t.name: set(t.columns.keys()) for t in _tables(conn)}
    db.dispose()
    return columns


def test_upgrade_step_by_step_keeps_and_transforms_existing_rows(
    client: FlaskClient, world: World, container: Container, empty_database_url: str
):
    _scenario(client, world, container)
    with container.db.engine.connect() as conn:
        expected = _dump(conn)
    empty = {name for name, rows in expected.items() if not rows}
    assert empty == EMPTY_IN_SCENARIO, "the scenario should fill every table"

    config = alembic_config(empty_database_url)
    created_at: dict[str, set[str]] = {}
    for revision in _revisions(empty_database_url):
        command.upgrade(config, revision)
        columns = _columns_at(empty_database_url)
        new_tables = {name: cols for name, cols in columns.items() if name not in created_at}
        db = Database(empty_database_url)
        with db.engine.begin() as conn:
            for table in _tables(conn):
                if table.name in new_tables and expected[table.name]:
                    rows = [
                        {k: v for k, v in row.items() if k in new_tables[table.name]}
                        for row in expected[table.name]
                    ]
                    for row in _referenced_first(table, rows):
                        conn.execute(table.insert(), row)
        db.dispose()
        created_at.update(new_tables)

    db = Database(empty_database_url)
    with db.engine.connect() as conn:
        migrated = _dump(conn)
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    with db.transaction() as session:
        # The copied rows were keyed with the scenario container's chain key.
        key = audit_checkpoints.load_key(container.settings)
        assert list(audit.verify_chain(session, key=key)) == []
    db.dispose()

    assert migrated.keys() == expected.keys()
    for table, rows in expected.items():
        assert len(migrated[table]) == len(rows), table
        for before, after in zip(rows, migrated[table], strict=True):
            for column, value in before.items():
                if column in created_at[table]:
                    got, want = after[column], value
                else:
                    assert (table, column) in ADDED_TO_EXISTING_ROWS, (
                        f"{table}.{column} was added by a migration: "
                        "say in ADDED_TO_EXISTING_ROWS what existing rows get"
                    )
                    got, want = after[column], ADDED_TO_EXISTING_ROWS[(table, column)](after)
                assert _comparable(column, got, want) == (column, want), table


def test_downgrade_to_base_and_back_to_head(empty_database_url: str):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "head")
    command.downgrade(config, "base")
    assert set(_columns_at(empty_database_url)) == set()
    command.upgrade(config, "head")
    db = Database(empty_database_url)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    db.dispose()


def test_last_migration_down_and_up_again_with_rows(
    client: FlaskClient, world: World, container: Container
):
    _scenario(client, world, container)
    url = container.settings.database_url
    with container.db.engine.connect() as conn:
        before = _dump(conn)
    config = alembic_config(url)
    command.downgrade(config, "-1")
    kept = _columns_at(url)
    command.upgrade(config, "head")
    with container.db.engine.connect() as conn:
        after = _dump(conn)
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    assert after.keys() == before.keys()
    for table, rows in before.items():
        if table not in kept:
            # A table the last migration creates goes with its downgrade, rows and all
            # (open web sessions and failure counters are not records): it comes back empty.
            assert after[table] == [], table
            continue
        assert len(after[table]) == len(rows), table
        for old, new in zip(rows, after[table], strict=True):
            for column, value in old.items():
                want = value
                if column not in kept.get(table, set()):
                    want = ADDED_TO_EXISTING_ROWS[(table, column)](new)
                assert _comparable(column, new[column], want) == (column, want), table
