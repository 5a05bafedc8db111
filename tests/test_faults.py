"""Fault tolerance of uploads: storage, broker and database failures, crashes, bit rot."""

from __future__ import annotations

import hashlib
import io
import socket
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError

from dossier_service.app import create_app
from dossier_service.config import Settings
from dossier_service.container import Container
from dossier_service.models import AuditEntry, Document, DocumentVersion, OutboxMessage, User
from dossier_service.services import accounts, audit, documents, fsck, outbox, processing
from dossier_service.uploads import SpooledFile
from storage import StorageUnavailable
from tests.factories import World, new_case, upload
from tests.sample_files import make_png
from tests.upload_checks import assert_nothing_left, snapshot, spool_entries
from workers.celery_app import make_sender

# Inspected in-process (no sandbox child), which keeps these tests quick; the faults under
# test happen after inspection, so the type does not matter.
PNG = make_png(48, 48)
PROCESS = documents.PROCESS_TASK


@pytest.fixture(autouse=True)
def _initialised_store(container: Container) -> None:
    """Create the store's layout, as ``dossier init`` does in a real installation."""
    container.store.check()


class RecordingSender:
    """A broker stand-in: records every task and, when working, runs the fixity task."""

    def __init__(self, container: Container | None = None, *, down: bool = False) -> None:
        self.container = container
        self.down = down
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, task: str, payload: dict[str, Any]) -> None:
        """Send one task, or fail like an unreachable broker."""
        if self.down:
            raise ConnectionError("broker unreachable: connection refused")
        self.sent.append((task, dict(payload)))
        if self.container is not None and task == PROCESS:
            processing.process_version(self.container, **payload)


def client_with(container: Container) -> FlaskClient:
    """A test client of an app built on the given container."""
    app = create_app(container=container)
    app.testing = True
    return app.test_client()


def only_version(container: Container) -> DocumentVersion:
    """The single version row in the database."""
    with container.db.transaction() as session:
        return session.execute(select(DocumentVersion)).scalar_one()


def outbox_rows(container: Container) -> list[OutboxMessage]:
    """All outbox messages, oldest first."""
    with container.db.transaction() as session:
        return list(session.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars())


def object_path(settings: Settings, key: str) -> Path:
    """Where the local store keeps an object's bytes."""
    return settings.storage_root / "objects" / key


def db_down(*_args: Any, **_kwargs: Any) -> None:
    """Fail like a database connection lost in the middle of a transaction."""
    raise OperationalError(
        "INSERT INTO audit_log ...", {}, Exception("server closed the connection")
    )


def fail_on(action: str, original: Callable[..., Any]) -> Callable[..., Any]:
    """audit.record that fails for one action (the last write before commit) only."""

    def record(session: Any, who: Any, name: str, **kwargs: Any) -> Any:
        if name == action:
            db_down()
        return original(session, who, name, **kwargs)

    return record


# --- (1) storage down ---------------------------------------------------------------------


def test_storage_down_is_503_and_no_row(client, world, container, monkeypatch):
    cid = new_case(client, world)["id"]
    before = snapshot(container)

    def refuse(*_args: Any, **_kwargs: Any) -> None:
        raise StorageUnavailable("local storage root is not mounted")

    monkeypatch.setattr(container.store, "put_file", refuse)
    response = upload(client, world, "canton", cid, PNG)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "storage_unavailable"
    assert_nothing_left(container, before)


def _closed_port() -> int:
    """A local TCP port nobody listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_s3_unreachable_is_503_fast_and_no_row(client, world, settings):
    cid = new_case(client, world)["id"]
    s3_settings = settings.with_overrides(
        storage="s3",
        s3_endpoint=f"127.0.0.1:{_closed_port()}",
        s3_access_key="dossier",
        s3_secret_key="dossier-secret",
        s3_bucket="dossier-versions",
    )
    s3_container = Container(s3_settings)
    try:
        s3_client = client_with(s3_container)
        started = time.monotonic()
        response = upload(s3_client, world, "canton", cid, PNG)
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.get_json()["error"]["code"] == "storage_unavailable"
        assert elapsed < 10  # fails fast, does not hang a request thread
        with s3_container.db.transaction() as session:
            assert session.execute(select(func.count()).select_from(Document)).scalar_one() == 0
            assert (
                session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one() == 0
            )
        assert spool_entries(s3_settings) == []
    finally:
        s3_container.close()


# --- (2) broker down at commit ------------------------------------------------------------


def test_broker_down_upload_succeeds_and_relay_sends_once(world, settings):
    broker = RecordingSender(down=True)
    down_container = Container(settings, task_sender=broker)
    try:
        client = client_with(down_container)
        cid = new_case(client, world)["id"]
        response = upload(client, world, "canton", cid, PNG)
        assert response.status_code == 201, response.get_json()
        assert response.get_json()["versions"][0]["processing"] == "pending"

        (message,) = outbox_rows(down_container)
        version = only_version(down_container)
        assert message.task == PROCESS
        assert message.payload == {"version_id": version.id}
        assert message.sent_at is None
        assert message.attempts == 1
        assert "broker unreachable" in (message.last_error or "")

        # Still down: the relay keeps the message.
        assert outbox.relay(down_container.db, broker, older_than_s=0) == 0
        assert outbox.unsent_count(down_container.db) == 1

        working = RecordingSender(down_container)
        assert outbox.relay(down_container.db, working, older_than_s=0) == 1
        assert outbox.relay(down_container.db, working, older_than_s=0) == 0
        assert working.sent == [(PROCESS, {"version_id": version.id})]
        assert outbox.unsent_count(down_container.db) == 0
        (message,) = outbox_rows(down_container)
        assert message.sent_at is not None and message.last_error is None

        document = client.get(
            f"/api/v1/documents/{response.get_json()['id']}", headers=world.auth("canton")
        ).get_json()
        assert document["versions"][0]["processing"] == "ready"
        assert document["versions"][0]["fixity"] == "ok"
    finally:
        down_container.close()


def test_real_broker_down_does_not_hold_up_the_upload(world, settings):
    # The Celery sender itself, pointed at a Redis port nobody listens on: the request must
    # not wait out kombu's connection retries (about 6 s) before answering.
    down = settings.with_overrides(
        broker_url=f"redis://127.0.0.1:{_closed_port()}/0", tasks_eager=False
    )
    down_container = Container(down, task_sender=make_sender(down))
    celery_sender = down_container.task_sender
    durations: list[float] = []

    def timed_sender(task: str, payload: dict[str, Any]) -> None:
        started = time.monotonic()
        try:
            celery_sender(task, payload)
        finally:
            durations.append(time.monotonic() - started)

    down_container._task_sender = timed_sender
    try:
        client = client_with(down_container)
        cid = new_case(client, world)["id"]
        response = upload(client, world, "canton", cid, PNG)
        assert response.status_code == 201, response.get_json()
        (duration,) = durations
        assert duration < 3.0
        (message,) = outbox_rows(down_container)
        assert message.sent_at is None and message.attempts == 1
        assert "refused" in (message.last_error or "").lower()
    finally:
        down_container.close()


def test_relay_leaves_fresh_messages_to_the_commit_path(world, settings):
    broker = RecordingSender(down=True)
    down_container = Container(settings, task_sender=broker)
    try:
        client = client_with(down_container)
        cid = new_case(client, world)["id"]
        assert upload(client, world, "canton", cid, PNG).status_code == 201
        working = RecordingSender()
        # A message younger than the relay's grace period may still be sent by its request.
        assert outbox.relay(down_container.db, working, older_than_s=3600) == 0
        assert working.sent == []
    finally:
        down_container.close()


# --- (3) crash between the storage write and the commit -----------------------------------


def test_crash_before_commit_leaves_orphan_that_fsck_reports(client, world, container, monkeypatch):
    cid = new_case(client, world)["id"]
    before = snapshot(container)
    monkeypatch.setattr(audit, "record", fail_on("document.create", audit.record))

    def delete_fails(_key: str) -> None:
        raise StorageUnavailable("store went away with the process")

    monkeypatch.setattr(container.store, "delete", delete_fails)
    response = upload(client, world, "canton", cid, PNG)
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "database_unavailable"

    after = snapshot(container)
    assert (after.documents, after.versions, after.outbox) == (
        before.documents,
        before.versions,
        before.outbox,
    )
    (orphan,) = after.objects - before.objects
    listing = client.get(f"/api/v1/cases/{cid}/documents", headers=world.auth("canton"))
    assert listing.get_json()["items"] == []

    findings = list(fsck.check(container))
    assert [(f.kind, f.key, f.version_id, f.is_error) for f in findings] == [
        ("orphan", orphan, None, False)
    ]
    assert spool_entries(container.settings) == []


def test_failed_commit_removes_the_object(client, world, container, monkeypatch):
    cid = new_case(client, world)["id"]
    real_record = audit.record
    before = snapshot(container)
    monkeypatch.setattr(audit, "record", fail_on("document.create", real_record))
    response = upload(client, world, "canton", cid, PNG)
    assert response.status_code == 503
    assert_nothing_left(container, before)

    # The same for a new version of an existing document.
    monkeypatch.setattr(audit, "record", fail_on("version.create", real_record))
    created = upload(client, world, "canton", cid, PNG)
    assert created.status_code == 201
    before = snapshot(container)
    response = client.post(
        f"/api/v1/documents/{created.get_json()['id']}/versions",
        data={"file": (io.BytesIO(make_png(seed=2)), "v2.png")},
        headers=world.auth("canton"),
        content_type="multipart/form-data",
    )
    assert response.status_code == 503
    assert_nothing_left(container, before)
    assert list(fsck.check(container)) == []


# --- (4) a rollback never enqueues --------------------------------------------------------


def test_rollback_after_enqueue_sends_nothing(world, settings, monkeypatch):
    broker = RecordingSender()
    rec_container = Container(settings, task_sender=broker)
    try:
        client = client_with(rec_container)
        cid = new_case(client, world)["id"]
        real_enqueue = outbox.enqueue

        def enqueue_then_crash(*args: Any, **kwargs: Any) -> Any:
            real_enqueue(*args, **kwargs)
            db_down()

        monkeypatch.setattr(outbox, "enqueue", enqueue_then_crash)
        assert upload(client, world, "canton", cid, PNG).status_code == 503
        assert broker.sent == []
        assert outbox_rows(rec_container) == []

        monkeypatch.setattr(outbox, "enqueue", real_enqueue)
        assert upload(client, world, "canton", cid, PNG).status_code == 201
        assert broker.sent == [(PROCESS, {"version_id": only_version(rec_container).id})]
    finally:
        rec_container.close()


def _spool(settings: Settings, data: bytes) -> SpooledFile:
    """Put bytes in the spool directory as the multipart parser would."""
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    path = settings.spool_dir / f"upload-{hashlib.sha256(data).hexdigest()[:12]}"
    path.write_bytes(data)
    return SpooledFile(path, hashlib.sha256(data).hexdigest(), len(data), "image/png", "scan.png")


def test_rolled_back_task_is_not_sent_by_the_sessions_next_commit(
    world: World, settings, monkeypatch
):
    broker = RecordingSender()
    rec_container = Container(settings, task_sender=broker)
    client = client_with(rec_container)
    cid = new_case(client, world)["id"]
    session = rec_container.db.session()
    try:
        user = session.execute(select(User).where(User.username == "canton")).scalar_one()
        who = accounts.identity_for_user(user)
        session.rollback()
        real_record = audit.record
        monkeypatch.setattr(audit, "record", fail_on("document.create", real_record))
        with pytest.raises(OperationalError):
            documents.create_document(
                rec_container, session, who, cid, _spool(settings, PNG), {"type": "other"}
            )
        session.rollback()  # what the request's unit of work does after an error
        monkeypatch.setattr(audit, "record", real_record)
        second = make_png(seed=2)
        document = documents.create_document(
            rec_container, session, who, cid, _spool(settings, second), {"type": "other"}
        )
        (version_id,) = [v.id for v in document.versions]
        session.commit()  # the caller's transaction stores the document and sends its task
        assert broker.sent == [(PROCESS, {"version_id": version_id})]
        assert len(outbox_rows(rec_container)) == 1
    finally:
        session.close()
        rec_container.close()


# --- (5) tampered or lost bytes -----------------------------------------------------------


def test_tampered_object_found_by_fsck_and_fixity_task(client, world, container):
    cid = new_case(client, world)["id"]
    assert upload(client, world, "canton", cid, PNG).status_code == 201
    version = only_version(container)
    assert version.fixity_status == "ok"
    assert list(fsck.check(container)) == []

    path = object_path(container.settings, version.storage_key)
    path.chmod(0o640)  # stored read-only; an attacker with disk access would do the same
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01  # one flipped bit, same size
    path.write_bytes(bytes(data))

    findings = list(fsck.check(container))
    assert [(f.kind, f.key, f.version_id, f.is_error) for f in findings] == [
        ("mismatch", version.storage_key, version.id, True)
    ]
    # Without re-hashing, a same-size change is invisible: only the full check finds it.
    assert list(fsck.check(container, verify_hashes=False)) == []

    assert processing.process_version(container, version.id) == "failed"
    checked = only_version(container)
    assert (checked.fixity_status, checked.processing) == ("mismatch", "failed")
    assert checked.processing_error
    with container.db.transaction() as session:
        last = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "fixity.check")
                .order_by(AuditEntry.id.desc())
            )
            .scalars()
            .first()
        )
    assert last is not None and last.detail == {"status": "mismatch"} and last.version == 1


def test_truncated_and_lost_objects_reported(client, world, container):
    cid = new_case(client, world)["id"]
    for seed in (1, 2):
        assert upload(client, world, "canton", cid, make_png(seed=seed)).status_code == 201
    with container.db.transaction() as session:
        truncated, lost = session.execute(
            select(DocumentVersion.id, DocumentVersion.storage_key).order_by(DocumentVersion.id)
        ).all()
    path = object_path(container.settings, truncated.storage_key)
    path.chmod(0o640)
    path.write_bytes(path.read_bytes()[:-100])
    container.store.delete(lost.storage_key)

    findings = sorted((f.kind, f.version_id, f.is_error) for f in fsck.check(container))
    assert findings == sorted([("size", truncated.id, True), ("missing", lost.id, True)])
    # Without re-hashing, existence and size are still checked.
    assert len(list(fsck.check(container, verify_hashes=False))) == 2

    assert processing.process_version(container, truncated.id) == "failed"
    assert processing.process_version(container, lost.id) == "failed"
    with container.db.transaction() as session:
        states = dict(
            session.execute(select(DocumentVersion.id, DocumentVersion.fixity_status)).all()
        )
    assert states == {truncated.id: "mismatch", lost.id: "missing"}


def test_storage_down_during_fixity_task_is_retried_not_failed(
    client, world, container, monkeypatch
):
    cid = new_case(client, world)["id"]
    assert upload(client, world, "canton", cid, PNG).status_code == 201
    version = only_version(container)

    def unreachable(*_args: Any, **_kwargs: Any) -> None:
        raise StorageUnavailable("connection refused")

    monkeypatch.setattr(container.store, "open", unreachable)
    with pytest.raises(processing.TransientError):
        processing.process_version(container, version.id)
    # Pending again, so the retry (or the next check) picks it up; fixity unchanged.
    checked = only_version(container)
    assert (checked.processing, checked.fixity_status) == ("pending", "ok")
