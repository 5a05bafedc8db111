"""Export lifecycle: who may export what, queued → running → done|failed, crash-safe repeats."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import zipfile
from typing import Any

import pytest
from sqlalchemy import select, update

from dossier_service.container import Container
from dossier_service.dates import local_today
from dossier_service.models import AuditEntry, Export
from dossier_service.services import audit, exports, sip
from storage import StorageUnavailable
from tests.factories import (
    closed_case,
    export_and_download,
    new_case,
    queue_export,
    quiet_transaction,
    small_closed_case,
)

API = "/api/v1"


def export_row(container: Container, export_id: str) -> Export:
    with container.db.transaction() as session:
        export = session.get(Export, export_id)
        assert export is not None
        session.expunge(export)
        return export


def actions(container: Container, case_id: str | None = None) -> list[tuple[str, str | None]]:
    with container.db.transaction() as session:
        query = select(AuditEntry.action, AuditEntry.actor).order_by(AuditEntry.id)
        if case_id:
            query = query.where(AuditEntry.case_id == case_id)
        return [(a, b) for a, b in session.execute(query).all()]


# --- Who may export what -----------------------------------------------------------------------


@pytest.mark.parametrize("user", ["canton", "aarau", "caritas", "auditor", "admin"])
def test_only_archivists_export(client, world, user):
    case = small_closed_case(client, world)
    refused = client.post(f"{API}/exports", json={"case_ids": [case.id]}, headers=world.auth(user))
    assert refused.status_code == 403
    assert refused.get_json()["error"]["code"] == "forbidden"


def test_open_cases_are_refused_with_409_and_unknown_ones_with_404(client, world):
    closed = small_closed_case(client, world)
    still_open = new_case(client, world, family_name="Tesfay")
    archivist = world.auth("archivist")
    refused = client.post(
        f"{API}/exports", json={"case_ids": [closed.id, still_open["id"]]}, headers=archivist
    )
    assert refused.status_code == 409
    assert refused.get_json()["error"]["code"] == "case_open"
    assert still_open["reference"] in refused.get_json()["error"]["message"]
    unknown = client.post(f"{API}/exports", json={"case_ids": ["0" * 36]}, headers=archivist)
    assert (unknown.status_code, unknown.get_json()["error"]["code"]) == (404, "case_not_found")
    # Nothing was queued by the refused requests; the unknown id is logged as denied.
    container = client.application.extensions["dossier"]
    with container.db.transaction() as session:
        assert session.execute(select(Export)).first() is None
        outcomes = session.execute(
            select(AuditEntry.outcome).where(AuditEntry.action == "export.create")
        ).scalars()
        assert list(outcomes) == ["denied"]


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"case_ids": []},
        {"case_ids": "abc"},
        {"case_ids": [1, 2]},
        {"case_ids": ["x"], "closed_before": "2026-01-01"},
        {"closed_before": "01.01.2026"},
        {"case_ids": [f"id-{n}" for n in range(exports.MAX_CASES + 1)]},
    ],
)
def test_export_requests_are_validated(client, world, body):
    response = client.post(f"{API}/exports", json=body, headers=world.auth("archivist"))
    assert response.status_code == 422, response.get_json()


def test_exports_are_visible_to_archivists_only(client, world):
    case = small_closed_case(client, world)
    export_id, _ = export_and_download(client, world, [case.id])
    for user in ("canton", "aarau", "auditor"):
        for url in (f"{API}/exports/{export_id}", f"{API}/exports/{export_id}/content"):
            assert client.get(url, headers=world.auth(user)).status_code == 403, (user, url)
        acknowledged = client.post(
            f"{API}/exports/{export_id}/acknowledge",
            json={"archive_reference": "X"},
            headers=world.auth(user),
        )
        assert acknowledged.status_code == 403
    missing = client.get(f"{API}/exports/{'0' * 36}", headers=world.auth("archivist"))
    assert (missing.status_code, missing.get_json()["error"]["code"]) == (404, "export_not_found")


# --- Lifecycle ---------------------------------------------------------------------------------


def test_lifecycle_queued_then_done_with_progress_size_and_sha256(client, world, container):
    case = closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    queued = client.get(f"{API}/exports/{export_id}", headers=world.auth("archivist")).get_json()
    assert queued["status"] == "queued"
    assert queued["progress"]["percent"] == 0.0 and queued["size"] is None
    # Not yet built: no content, no acknowledgement.
    early = client.get(f"{API}/exports/{export_id}/content", headers=world.auth("archivist"))
    assert (early.status_code, early.get_json()["error"]["code"]) == (409, "export_not_ready")
    ack = client.post(
        f"{API}/exports/{export_id}/acknowledge",
        json={"archive_reference": "A-1"},
        headers=world.auth("archivist"),
    )
    assert (ack.status_code, ack.get_json()["error"]["code"]) == (409, "export_not_done")

    assert exports.run_export(container, export_id) == "done"
    done = client.get(f"{API}/exports/{export_id}", headers=world.auth("archivist")).get_json()
    assert done["status"] == "done" and done["attempts"] == 1 and done["error"] is None
    assert done["progress"] == {
        "files_done": 4,
        "files_total": 4,
        "bytes_done": done["progress"]["bytes_total"],
        "bytes_total": sum(len(b) for b in case.versions.values()),
        "percent": 100.0,
    }
    data = client.get(f"{API}/exports/{export_id}/content", headers=world.auth("archivist")).data
    assert done["size"] == len(data) and done["sha256"] == hashlib.sha256(data).hexdigest()
    stored = container.store.stat(exports.export_key(export_id))
    assert stored.size == len(data) and stored.metadata["sha256"] == done["sha256"]

    # Running the task again (a duplicate delivery) changes nothing.
    assert exports.run_export(container, export_id) == "done"
    again = client.get(f"{API}/exports/{export_id}", headers=world.auth("archivist")).get_json()
    assert again == done


def test_every_step_is_audited_per_case(client, world, container):
    case = small_closed_case(client, world)
    export_id, _ = export_and_download(client, world, [case.id])
    ack = client.post(
        f"{API}/exports/{export_id}/acknowledge",
        json={"archive_reference": "StAAG 2026/17"},
        headers=world.auth("archivist"),
    )
    assert ack.status_code == 200
    logged = [a for a in actions(container, case.id) if a[0].startswith("export.")]
    assert logged == [
        ("export.create", "archivist"),
        ("export.download", "archivist"),
        ("export.acknowledge", "archivist"),
    ]
    assert ("export.build", "system:export") in actions(container)
    with container.db.transaction() as session:
        assert list(audit.verify_chain(session)) == []


def test_acknowledgement_records_the_archive_reference_once(client, world):
    case = small_closed_case(client, world)
    export_id, _ = export_and_download(client, world, [case.id])
    url = f"{API}/exports/{export_id}/acknowledge"
    archivist = world.auth("archivist")
    missing = client.post(url, json={}, headers=archivist)
    assert (missing.status_code, missing.get_json()["error"].get("field")) == (
        422,
        "archive_reference",
    )
    ok = client.post(url, json={"archive_reference": "StAAG 2026/17"}, headers=archivist)
    assert ok.status_code == 200
    assert ok.get_json()["archive_reference"] == "StAAG 2026/17"
    assert ok.get_json()["acknowledged_at"] is not None
    repeated = client.post(url, json={"archive_reference": "StAAG 2026/17"}, headers=archivist)
    assert repeated.status_code == 200
    assert repeated.get_json()["acknowledged_at"] == ok.get_json()["acknowledged_at"]
    other = client.post(url, json={"archive_reference": "StAAG 2026/99"}, headers=archivist)
    assert (other.status_code, other.get_json()["error"]["code"]) == (409, "already_acknowledged")


def test_closed_before_selects_closed_cases_not_archived_yet(client, world, container):
    first = small_closed_case(client, world)
    second = small_closed_case(client, world, family_name="Tesfay", ahv_number=None)
    new_case(client, world, family_name="Offen", ahv_number=None)  # open: never selected
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()
    archivist = world.auth("archivist")
    none_yet = client.post(
        f"{API}/exports", json={"closed_before": local_today().isoformat()}, headers=archivist
    )
    assert (none_yet.status_code, none_yet.get_json()["error"]["code"]) == (422, "no_cases")
    created = client.post(f"{API}/exports", json={"closed_before": tomorrow}, headers=archivist)
    assert created.status_code == 202
    body = client.get(f"{API}/exports/{created.get_json()['id']}", headers=archivist).get_json()
    assert [c["id"] for c in body["cases"]] == [first.id, second.id]
    assert body["criteria"] == {"closed_before": tomorrow}
    # Once the archive acknowledged the first one, the next periodic delivery skips it.
    solo, _ = export_and_download(client, world, [first.id])
    assert (
        client.post(
            f"{API}/exports/{solo}/acknowledge", json={"archive_reference": "R1"}, headers=archivist
        ).status_code
        == 200
    )
    later = client.post(f"{API}/exports", json={"closed_before": tomorrow}, headers=archivist)
    later_body = client.get(f"{API}/exports/{later.get_json()['id']}", headers=archivist).get_json()
    assert [c["id"] for c in later_body["cases"]] == [second.id]


def test_a_case_reopened_after_the_request_fails_the_export_with_a_reason(client, world, container):
    case = small_closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    reopened = client.post(
        f"{API}/cases/{case.id}/reopen", json={"reason": "Rückkehr"}, headers=world.auth("canton")
    )
    assert reopened.status_code == 200, reopened.get_json()
    assert exports.run_export(container, export_id) == "failed"
    row = export_row(container, export_id)
    assert row.status == "failed"
    assert row.error == (
        f"case {case.reference} was reopened since the export was requested; request a new export"
    )
    assert not list(container.store.iter_keys("exports/"))


def test_altered_content_fails_the_export_and_stores_nothing(client, world, container):
    case = small_closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    victim = next(container.store.iter_keys("versions/"))
    path = container.settings.storage_root / "objects" / victim
    path.chmod(0o640)
    path.write_bytes(path.read_bytes() + b"!")
    assert exports.run_export(container, export_id) == "failed"
    row = export_row(container, export_id)
    assert "does not match the SHA-256 and size recorded at upload" in (row.error or "")
    assert row.storage_key is None and not list(container.store.iter_keys("exports/"))
    assert ("export.build", "system:export") in actions(container)


def test_an_invalid_package_fails_the_export(client, world, container, monkeypatch):
    case = small_closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    monkeypatch.setattr(sip, "validate_sip", lambda path: ["header/metadata.xml line 3: bad"])
    assert exports.run_export(container, export_id) == "failed"
    assert export_row(container, export_id).error == (
        "the package does not validate (1 problem(s)): header/metadata.xml line 3: bad"
    )


# --- Crashes and repeats -----------------------------------------------------------------------


def _pretend_running(container: Container, export_id: str, heartbeat_age: dt.timedelta) -> None:
    with container.db.transaction() as session:
        session.execute(
            update(Export)
            .where(Export.id == export_id)
            .values(
                status="running",
                run_id="dead-run",
                attempts=1,
                heartbeat_at=dt.datetime.now(dt.UTC) - heartbeat_age,
            )
        )


def test_a_crashed_run_is_rebuilt_from_scratch(client, world, container, tmp_path):
    case = small_closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    _pretend_running(container, export_id, exports.STALE_AFTER + dt.timedelta(minutes=1))
    # The dead run got as far as storing a (broken) ZIP.
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"half a zip")
    container.store.put_file(exports.export_key(export_id), junk, {})

    assert exports.run_export(container, export_id) == "done"
    row = export_row(container, export_id)
    assert row.status == "done" and row.attempts == 2 and row.run_id != "dead-run"
    data = b"".join(container.store.open(exports.export_key(export_id)))
    assert hashlib.sha256(data).hexdigest() == row.sha256
    path = tmp_path / "rebuilt.zip"
    path.write_bytes(data)
    assert sip.validate_sip(path) == []


def test_a_live_run_is_left_alone(client, world, container):
    case = small_closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    _pretend_running(container, export_id, dt.timedelta(seconds=10))
    assert exports.run_export(container, export_id) == "busy"
    row = export_row(container, export_id)
    assert (row.status, row.run_id, row.attempts) == ("running", "dead-run", 1)


def test_a_superseded_run_stops_without_writing_its_result(client, world, container, monkeypatch):
    case = small_closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])
    original = sip.build_sip

    def hijacked(*args: Any, **kwargs: Any) -> Any:
        # Another delivery takes the export over while this run builds.
        with container.db.transaction() as session:
            session.execute(update(Export).where(Export.id == export_id).values(run_id="other-run"))
        return original(*args, **kwargs)

    monkeypatch.setattr(sip, "build_sip", hijacked)
    assert exports.run_export(container, export_id) == "superseded"
    row = export_row(container, export_id)
    assert (row.status, row.run_id, row.error) == ("running", "other-run", None)
    assert not list(container.store.iter_keys("exports/"))


def test_unavailable_storage_queues_the_export_again_for_a_retry(
    client, world, container, monkeypatch
):
    case = small_closed_case(client, world)
    with quiet_transaction(container) as session:
        export_id = queue_export(session, world, [case.id])

    def down(*args: Any, **kwargs: Any) -> Any:
        raise StorageUnavailable("store is down")

    monkeypatch.setattr(type(container.store), "put_file", down)
    with pytest.raises(exports.TransientError):
        exports.run_export(container, export_id)
    assert export_row(container, export_id).status == "queued"
    monkeypatch.undo()
    assert exports.run_export(container, export_id) == "done"


def test_resume_sends_the_task_again_for_stale_and_forgotten_exports(client, world, settings):
    sent: list[tuple[str, dict[str, Any]]] = []
    recording = Container(settings, task_sender=lambda task, payload: sent.append((task, payload)))
    try:
        case = small_closed_case(client, world)
        with quiet_transaction(recording) as session:
            stale = queue_export(session, world, [case.id])
            fresh = queue_export(session, world, [case.id])
            forgotten = queue_export(session, world, [case.id])
            recent = queue_export(session, world, [case.id])
        _pretend_running(recording, stale, exports.STALE_AFTER + dt.timedelta(minutes=1))
        _pretend_running(recording, fresh, dt.timedelta(minutes=1))
        with recording.db.transaction() as session:
            session.execute(
                update(Export)
                .where(Export.id == forgotten)
                .values(created_at=dt.datetime.now(dt.UTC) - exports.QUEUED_RESEND_AFTER * 2)
            )
        assert exports.resume_stalled(recording) == 2
        assert sorted(p["export_id"] for _, p in sent) == sorted([stale, forgotten])
        assert {t for t, _ in sent} == {exports.BUILD_TASK}
        assert recent not in [p["export_id"] for _, p in sent]
    finally:
        recording.close()


def test_the_package_holds_several_cases(client, world):
    first = small_closed_case(client, world)
    second = small_closed_case(client, world, family_name="Tesfay", ahv_number=None)
    _, data = export_and_download(client, world, [first.id, second.id])
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        folders = {n.split("/")[1] for n in archive.namelist() if n.startswith("content/")}
    assert folders == {first.reference, second.reference}


def test_a_package_is_limited_in_files(client, world, monkeypatch):
    case = closed_case(client, world)  # four versions
    monkeypatch.setattr(exports, "MAX_FILES", 3)
    refused = client.post(
        f"{API}/exports", json={"case_ids": [case.id]}, headers=world.auth("archivist")
    )
    assert (refused.status_code, refused.get_json()["error"]["code"]) == (422, "too_many_files")
