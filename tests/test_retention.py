"""Retention and deletion: archived cases go after their period, never under legal hold."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dossier_service.container import Container
from dossier_service.dates import LOCAL_ZONE
from dossier_service.db import Base
from dossier_service.models import (
    AuditEntry,
    Case,
    CaseTombstone,
    Document,
    DocumentVersion,
    Export,
)
from dossier_service.services import audit, retention
from storage import StorageUnavailable
from tests.factories import (
    PDF_V1,
    World,
    closed_case,
    export_and_download,
    new_case,
    run_cli,
    small_closed_case,
    upload,
)

API = "/api/v1"
#: Tables that keep rows naming a deleted case on purpose: the log, the record of what went
#: to the archive, and the tombstone.
KEPT_TABLES = {"audit_log", "export_cases", "case_tombstones"}


def today() -> dt.date:
    return dt.datetime.now(LOCAL_ZONE).date()


def archive(
    client: FlaskClient, world: World, case_id: str, reference: str = "StAAG 2026/17"
) -> str:
    """Export the case and record the archive's receipt; the export id."""
    export_id, _ = export_and_download(client, world, [case_id])
    acknowledged = client.post(
        f"{API}/exports/{export_id}/acknowledge",
        json={"archive_reference": reference},
        headers=world.auth("archivist"),
    )
    assert acknowledged.status_code == 200, acknowledged.get_json()
    return export_id


def due_day(settings: Any) -> dt.date:
    """The first day on which a case closed today is due."""
    return today() + dt.timedelta(days=settings.retention_days)


def rows_naming(container: Container, case_id: str, document_ids: list[str]) -> dict[str, int]:
    """Rows of every table (but the kept ones) that name the case or one of its documents."""
    found: dict[str, int] = {}
    with container.db.transaction() as session:
        for table in Base.metadata.sorted_tables:
            if table.name in KEPT_TABLES:
                continue
            conditions = []
            if "case_id" in table.c:
                conditions.append(table.c.case_id == case_id)
            if table.name == "cases":
                conditions.append(table.c.id == case_id)
            for column in ("document_id", "decision_document_id"):
                if column in table.c and document_ids:
                    conditions.append(table.c[column].in_(document_ids))
            for condition in conditions:
                count = session.execute(
                    select(func.count()).select_from(table).where(condition)
                ).scalar_one()
                if count:
                    found[table.name] = found.get(table.name, 0) + count
    return found


def process_facts(client: FlaskClient, world: World, case_id: str) -> None:
    """Measures, milestones and a decided cost approval with an attachment (Aarau, canton)."""
    aarau = world.auth("aarau")
    measure = client.post(
        f"{API}/cases/{case_id}/measures",
        json={
            "programme": "IKG1",
            "provider": "ECAP",
            "start": "2026-02-01",
            "end": "2026-06-30",
            "status": "planned",
        },
        headers=aarau,
    )
    assert measure.status_code == 201, measure.get_json()
    milestone = client.post(
        f"{API}/cases/{case_id}/milestones",
        json={"kind": "language_level", "value": "A1", "date": "2025-09-01"},
        headers=aarau,
    )
    assert milestone.status_code == 201, milestone.get_json()
    offer = upload(client, world, "aarau", case_id, PDF_V1, doc_type="programme_report")
    assert offer.status_code == 201
    requested = client.post(
        f"{API}/cases/{case_id}/cost-approvals",
        json={
            "measure_id": measure.get_json()["id"],
            "programme": "IKG1",
            "amount_chf": "4800.00",
            "period_from": "2026-02-01",
            "period_to": "2026-06-30",
            "justification": "IKG1 gemäss Plan.",
            "document_ids": [offer.get_json()["id"]],
        },
        headers=aarau,
    )
    assert requested.status_code == 201, requested.get_json()
    decided = client.post(
        f"{API}/cost-approvals/{requested.get_json()['id']}/decision",
        json={"decision": "approved"},
        headers=world.auth("canton"),
    )
    assert decided.status_code == 200, decided.get_json()


# --- The scenario ------------------------------------------------------------------------


def test_archived_case_is_deleted_after_its_period_and_leaves_a_tombstone(
    client, world, container, settings
):
    case = closed_case(client, world, before_close=lambda cid: process_facts(client, world, cid))
    bystander = new_case(client, world, family_name="Tesfay", ahv_number=None)
    assert upload(client, world, "canton", bystander["id"], PDF_V1).status_code == 201
    export_id = archive(client, world, case.id)

    with container.db.transaction() as session:
        document_ids = list(
            session.execute(select(Document.id).where(Document.case_id == case.id)).scalars()
        )
        versions = session.execute(
            select(
                DocumentVersion.id,
                DocumentVersion.storage_key,
                DocumentVersion.text_key,
                DocumentVersion.size,
            )
            .join(Document)
            .where(Document.case_id == case.id)
        ).all()
        bystander_keys = set(
            session.execute(
                select(DocumentVersion.storage_key)
                .join(Document)
                .where(Document.case_id == bystander["id"])
            ).scalars()
        )
    case_keys = {v.storage_key for v in versions} | {v.text_key for v in versions if v.text_key}
    assert all(k.startswith("derived/") for v in versions if (k := v.text_key))
    store = container.store
    assert case_keys <= set(store.iter_keys())
    indexed = {k.split(":")[0] for k in container.search.doc_keys()}
    assert set(document_ids) <= indexed
    audit_before = [e for e in _entries(container) if e.case_id == case.id]

    # The day before the period ends: nothing is due.
    early = run_cli(
        settings,
        "retention",
        "run",
        "--dry-run",
        "--as-of",
        (due_day(settings) - dt.timedelta(days=1)).isoformat(),
    )
    assert early.exit_code == 0, early.output
    assert case.id not in early.output
    assert "dry run: 0 case(s) would be deleted" in early.output

    # On the day: the dry run lists exactly the case, its documents and bytes, and deletes nothing.
    day = due_day(settings).isoformat()
    dry = run_cli(settings, "retention", "run", "--dry-run", "--as-of", day)
    assert dry.exit_code == 0, dry.output
    size = sum(v.size for v in versions)
    line = (
        f"would delete\t{case.id}\t{case.reference}\t{len(document_ids)} document(s)\t"
        f"{len(versions)} version(s)\t{size} bytes\tSIP {export_id} (StAAG 2026/17)"
    )
    assert line in dry.output.splitlines()
    assert (
        f"dry run: 1 case(s) would be deleted ({len(document_ids)} document(s), {size} bytes)"
        in (dry.output)
    )
    assert bystander["id"] not in dry.output
    assert case_keys <= set(store.iter_keys())
    assert rows_naming(container, case.id, document_ids)["cases"] == 1

    # The run deletes it.
    done = run_cli(settings, "retention", "run", "--as-of", day)
    assert done.exit_code == 0, done.output
    assert f"deleted\t{case.id}\t{case.reference}" in done.output

    # Personal data is gone from the database: no row of any table names the case.
    assert rows_naming(container, case.id, document_ids) == {}
    # Bytes and derived objects are gone; the other case's are untouched; the SIP copy too.
    remaining = set(store.iter_keys())
    assert not case_keys & remaining
    assert not [
        k for v in versions for k in remaining if k.startswith(f"derived/{v.id[:2]}/{v.id}/")
    ]
    assert bystander_keys <= remaining
    assert not [k for k in remaining if k.startswith("exports/")]
    # The search index holds nothing of it any more.
    container.search.refresh()
    indexed_after = {k.split(":")[0] for k in container.search.doc_keys()}
    assert not set(document_ids) & indexed_after

    # The tombstone: reference, dates, SIP and archive reference, who and when.
    with container.db.transaction() as session:
        tombstone = session.get(CaseTombstone, case.id)
        assert tombstone is not None
        assert tombstone.reference == case.reference
        assert tombstone.entry_date.isoformat() == case.entry_date
        assert tombstone.closed_at.astimezone(LOCAL_ZONE).date() == today()
        assert (tombstone.export_id, tombstone.archive_reference) == (export_id, "StAAG 2026/17")
        assert tombstone.deleted_by.startswith("cli:")
        assert tombstone.purged_at is not None and tombstone.pending_objects == []
        assert (tombstone.documents, tombstone.versions, tombstone.bytes) == (
            len(document_ids),
            len(versions),
            size,
        )
        export = session.get(Export, export_id)
        assert export is not None and export.purged_at is not None

    # The audit log keeps every entry that named the case, adds case.delete, and verifies.
    audit_after = [e for e in _entries(container) if e.case_id == case.id]
    assert [e.id for e in audit_after[: len(audit_before)]] == [e.id for e in audit_before]
    deletion = [e for e in audit_after if e.action == "case.delete"]
    assert len(deletion) == 1 and deletion[0].detail["archive_reference"] == "StAAG 2026/17"
    with container.db.transaction() as session:
        assert list(audit.verify_chain(session)) == []

    # The case is unknown now; the archived package is no longer downloadable.
    assert client.get(f"{API}/cases/{case.id}", headers=world.auth("canton")).status_code == 404
    gone = client.get(f"{API}/exports/{export_id}/content", headers=world.auth("archivist"))
    assert (gone.status_code, gone.get_json()["error"]["code"]) == (409, "export_purged")
    # A second run finds nothing more to do.
    again = run_cli(settings, "retention", "run", "--as-of", day)
    assert "0 case(s) deleted" in again.output


def _entries(container: Container) -> list[AuditEntry]:
    with container.db.transaction() as session:
        entries = list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())
        session.expunge_all()
        return entries


def test_a_legal_hold_stops_deletion_until_it_is_released(client, world, container, settings):
    case = small_closed_case(client, world)
    archive(client, world, case.id)
    held = client.post(
        f"{API}/cases/{case.id}/legal-hold",
        json={"reason": "Beschwerdeverfahren hängig"},
        headers=world.auth("canton"),
    )
    assert held.status_code == 201, held.get_json()

    day = due_day(settings)
    dry = run_cli(settings, "retention", "run", "--dry-run", "--as-of", day.isoformat())
    assert f"kept\t{case.id}\t{case.reference}\tlegal hold since {today().isoformat()}" in (
        dry.output
    )
    assert "dry run: 0 case(s) would be deleted" in dry.output
    result = retention.run(container, day)
    assert result.deleted == [] and [s.case_id for s in result.plan.held] == [case.id]
    assert client.get(f"{API}/cases/{case.id}", headers=world.auth("canton")).status_code == 200

    released = client.delete(
        f"{API}/cases/{case.id}/legal-hold",
        json={"reason": "Verfahren erledigt"},
        headers=world.auth("canton"),
    )
    assert released.status_code == 200, released.get_json()
    assert released.get_json()["release_reason"] == "Verfahren erledigt"
    result = retention.run(container, day)
    assert [c.case_id for c in result.deleted] == [case.id]


def test_a_case_without_acknowledged_sip_is_kept(client, world, container, settings):
    case = small_closed_case(client, world)
    export_and_download(client, world, [case.id])  # delivered, not yet acknowledged
    plan = retention.run(container, due_day(settings), dry_run=True).plan
    assert plan.deletable == []
    assert [(s.case_id, s.reason) for s in plan.not_archived] == [
        (case.id, "not archived: no acknowledged SIP of its current closure")
    ]
    assert retention.run(container, due_day(settings)).deleted == []


def test_a_case_reopened_after_its_export_needs_a_new_one(client, world, container, settings):
    case = small_closed_case(client, world)
    archive(client, world, case.id)
    canton = world.auth("canton")
    assert (
        client.post(
            f"{API}/cases/{case.id}/reopen", json={"reason": "Rückkehr"}, headers=canton
        ).status_code
        == 200
    )
    assert (
        client.post(
            f"{API}/cases/{case.id}/close", json={"reason": "other"}, headers=canton
        ).status_code
        == 200
    )
    plan = retention.run(container, due_day(settings), dry_run=True).plan
    assert [s.case_id for s in plan.not_archived] == [case.id]
    archive(client, world, case.id, reference="StAAG 2026/18")
    deleted = retention.run(container, due_day(settings)).deleted
    assert [(c.case_id, c.archive_reference) for c in deleted] == [(case.id, "StAAG 2026/18")]


def test_a_hold_set_after_planning_wins(client, world, container, settings):
    case = small_closed_case(client, world)
    archive(client, world, case.id)
    day = due_day(settings)
    plan = retention.run(container, day, dry_run=True).plan
    assert [c.case_id for c in plan.deletable] == [case.id]
    assert (
        client.post(
            f"{API}/cases/{case.id}/legal-hold",
            json={"reason": "Anfrage Gericht"},
            headers=world.auth("canton"),
        ).status_code
        == 201
    )
    assert retention.delete_case(container, case.id, day, "test") is None
    with container.db.transaction() as session:
        assert session.get(Case, case.id) is not None


def test_an_unfinished_purge_is_completed_by_the_next_run(
    client, world, container, settings, monkeypatch
):
    case = small_closed_case(client, world)
    archive(client, world, case.id)
    day = due_day(settings)

    def down(self: Any, key: str) -> None:
        raise StorageUnavailable("store is down")

    monkeypatch.setattr(type(container.store), "delete", down)
    result = retention.run(container, day)
    assert [c.case_id for c in result.deleted] == [case.id]
    assert result.purge_failures == [case.id]
    with container.db.transaction() as session:
        tombstone = session.get(CaseTombstone, case.id)
        assert tombstone is not None and tombstone.purged_at is None
        pending = list(tombstone.pending_objects)
        assert session.get(Case, case.id) is None  # the database part is done regardless
    assert any(k.startswith("versions/") for k in pending)
    assert any(k.startswith("exports/") for k in pending)
    assert retention.run(container, day, dry_run=True).plan.unfinished == [case.id]

    monkeypatch.undo()
    again = retention.run(container, day)
    assert again.purge_failures == [] and again.deleted == []
    remaining = set(container.store.iter_keys())
    assert not [k for k in pending if not k.endswith("/") and k in remaining]
    with container.db.transaction() as session:
        tombstone = session.get(CaseTombstone, case.id)
        assert tombstone is not None and tombstone.purged_at is not None


def test_cutoff_is_local_midnight_after_the_last_due_closing_day():
    # 730 days before 10 March 2028 (a leap year) is 11 March 2026: a case closed on that day,
    # even at 23:59 Zurich time, is due; one closed a minute later is not.
    cutoff = retention.cutoff_for(dt.date(2028, 3, 10), 730)
    assert cutoff == dt.datetime(2026, 3, 12, 0, 0, tzinfo=LOCAL_ZONE)
    assert dt.datetime(2026, 3, 11, 23, 59, tzinfo=LOCAL_ZONE) < cutoff


def test_deletion_covers_every_table_that_references_a_case():
    deletions, nulls = retention._case_row_plan("x")
    tables = [t.name for t, _ in deletions]
    assert set(tables) == {
        "cases",
        "responsibilities",
        "delegations",
        "documents",
        "document_versions",
        # A document's corrections, and what remains of a purged one, go with the case.
        "document_changes",
        "document_tombstones",
        # The person's corrections and status changes, and the household links on either side.
        "person_changes",
        "residence_status_changes",
        "household_links",
        # The journal: notes of conversations about the person.
        "journal_entries",
        # Follow-ups (Wiedervorlagen) of the case.
        "follow_ups",
        "target_group_assignments",
        "measures",
        "milestones",
        "case_closures",
        "cost_approvals",
        "cost_approval_documents",
        "notifications",
        "legal_holds",
        # The record of a merge goes with either case (the audit log keeps the merge).
        "case_merges",
    }
    # Children before parents, the case last.
    assert tables.index("document_versions") < tables.index("documents")
    assert tables.index("document_changes") < tables.index("documents")
    assert tables.index("cost_approval_documents") < tables.index("cost_approvals")
    assert tables[-1] == "cases"
    assert {(t.name, c) for t, c, _ in nulls} == {
        ("cost_approvals", "measure_id"),
        ("cost_approvals", "decision_document_id"),
    }


def test_retention_runs_daily_in_the_scheduler(settings):
    from workers.celery_app import make_celery
    from workers.tasks import retention_run

    schedule = make_celery(settings).conf.beat_schedule
    assert schedule["retention-run"]["task"] == "dossier.retention_run" == retention_run.name
    assert schedule["resume-exports"]["task"] == "dossier.resume_exports"


# --- Legal hold API ------------------------------------------------------------------------------


@pytest.mark.parametrize("user", ["aarau", "caritas", "auditor", "archivist", "admin"])
def test_only_the_canton_sets_or_releases_a_legal_hold(client, world, user):
    case = small_closed_case(client, world)
    url = f"{API}/cases/{case.id}/legal-hold"
    refused = client.post(url, json={"reason": "x"}, headers=world.auth(user))
    assert refused.status_code == 403
    assert client.delete(url, headers=world.auth(user)).status_code == 403


def test_legal_hold_on_open_and_closed_cases_is_validated_and_audited(client, world, container):
    canton = world.auth("canton")
    open_case = new_case(client, world)
    assert (
        client.post(
            f"{API}/cases/{open_case['id']}/legal-hold",
            json={"reason": "Verfahren"},
            headers=canton,
        ).status_code
        == 201
    )
    case = small_closed_case(client, world, family_name="Tesfay", ahv_number=None)
    url = f"{API}/cases/{case.id}/legal-hold"
    assert client.post(url, json={}, headers=canton).status_code == 422
    held = client.post(url, json={"reason": "Beschwerde"}, headers=canton)
    assert held.status_code == 201
    body = held.get_json()
    assert (body["reason"], body["set_by"], body["released_at"]) == ("Beschwerde", "canton", None)
    twice = client.post(url, json={"reason": "noch einmal"}, headers=canton)
    assert (twice.status_code, twice.get_json()["error"]["code"]) == (409, "legal_hold_exists")
    released = client.delete(url, headers=canton)
    assert released.status_code == 200
    assert released.get_json()["released_by"] == "canton"
    again = client.delete(url, headers=canton)
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "no_legal_hold")
    unknown = client.post(
        f"{API}/cases/{'0' * 36}/legal-hold", json={"reason": "x"}, headers=canton
    )
    assert unknown.status_code == 404
    logged = [
        e.action
        for e in _entries(container)
        if e.case_id == case.id and e.outcome == "ok" and e.action.startswith("legal_hold")
    ]
    assert logged == ["legal_hold.set", "legal_hold.release"]
    # The free-text reason stays in the hold row, out of the log.
    assert all("Beschwerde" not in str(e.detail) for e in _entries(container))
