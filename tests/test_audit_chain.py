"""The keyed audit chain and its checkpoints: truncation, emptying and recomputation show."""

from __future__ import annotations

import datetime as dt
import json
import stat
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select, text

from dossier_service.container import Container
from dossier_service.models import AuditEntry
from dossier_service.services import audit, audit_checkpoints
from tests.factories import World, new_case, run_cli
from tests.s3_peer import s3_endpoint, s3_settings  # noqa: F401
from workers import celery_app, tasks


def _entries(container: Container) -> list[AuditEntry]:
    with container.db.transaction() as session:
        return list(session.execute(select(AuditEntry).order_by(AuditEntry.id)).scalars())


def _raw(container: Container, sql: str, **params: Any) -> None:
    """A statement behind the service's back, as an intruder with database access runs it."""
    with container.db.transaction() as session:
        session.execute(text(sql), params)


@pytest.fixture
def logged(client: FlaskClient, world: World, container: Container) -> list[AuditEntry]:
    """Some work, then a checkpoint (as the beat task writes it), then the log."""
    for _ in range(3):
        new_case(client, world)
    assert client.get("/api/v1/cases", headers=world.auth("canton")).status_code == 200
    audit_checkpoints.write_checkpoint(container)
    return _entries(container)


def _verify(settings: Any, **env: str | None) -> tuple[int, str]:
    result = run_cli(settings, "audit", "verify", **env)
    return result.exit_code, result.output


def test_a_clean_chain_verifies(logged, settings):
    code, output = _verify(settings)
    assert code == 0, output
    assert "audit chain intact" in output


def test_deleting_the_newest_entries_fails(logged, settings, container):
    _raw(container, "DELETE FROM audit_log WHERE id >= :id", id=logged[-2].id)
    code, output = _verify(settings)
    assert code == 1
    assert f"entry {logged[-1].id}, the head at the checkpoint" in output
    assert "newest entries deleted" in output
    assert "audit chain BROKEN" in output


def test_deleting_all_entries_fails(logged, settings, container):
    _raw(container, "DELETE FROM audit_log")
    code, output = _verify(settings)
    assert code == 1
    assert "the audit log is empty" in output
    assert "all entries deleted" in output


def _recompute_from(container: Container, start: int, digest: Any) -> None:
    """Rewrite prev_hash and hash of every entry from ``start`` on with ``digest``."""
    rows = [e for e in _entries(container) if e.id >= start]
    prev = next((e.hash for e in reversed(_entries(container)) if e.id < start), "0" * 64)
    for entry in rows:
        entry.prev_hash = prev
        new_hash = digest(prev, audit.entry_fields(entry))
        _raw(
            container,
            "UPDATE audit_log SET prev_hash = :p, hash = :h WHERE id = :id",
            p=prev,
            h=new_hash,
            id=entry.id,
        )
        prev = new_hash


@pytest.mark.parametrize("digest_name", ["unkeyed", "guessed_key"])
def test_deleting_one_entry_and_recomputing_the_rest_fails(
    logged, settings, container, digest_name
):
    # The intruder has the service's code but not its key.
    digests = {
        "unkeyed": audit.legacy_digest,
        "guessed_key": lambda prev, fields: audit._entry_digest(prev, fields, b"x" * 64),
    }
    victim = logged[2]
    _raw(container, "DELETE FROM audit_log WHERE id = :id", id=victim.id)
    _recompute_from(container, victim.id, digests[digest_name])
    code, output = _verify(settings)
    assert code == 1
    assert f"entry {logged[3].id}: content does not match its hash" in output


def test_recomputing_after_the_checkpoint_is_caught_by_the_checkpoint_too(
    logged, settings, container
):
    # Deleting the newest entry and recomputing nothing else: the count and head differ.
    _raw(container, "DELETE FROM audit_log WHERE id = :id", id=logged[-1].id)
    code, output = _verify(settings)
    assert code == 1
    assert "newest entries deleted" in output


def test_a_wrong_key_fails(logged, settings):
    code, output = _verify(settings, DOSSIER_AUDIT_KEY="w" * 64)
    assert code == 1
    assert "content does not match its hash" in output
    assert "wrong MAC" in output


def test_an_edited_checkpoint_fails(logged, settings):
    path = audit_checkpoints.checkpoint_path(settings)
    lines = path.read_text().splitlines()
    last = json.loads(lines[-1])
    last["count"] = 1
    path.write_text("\n".join([*lines[:-1], json.dumps(last)]) + "\n")
    code, output = _verify(settings)
    assert code == 1
    assert "wrong MAC" in output


def test_init_creates_the_key_file_0600(settings):
    result = run_cli(settings, "init")
    assert result.exit_code == 0, result.output
    path = audit_checkpoints.key_path(settings)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(path.read_text().strip()) == 64
    again = run_cli(settings, "init")
    assert again.exit_code == 0
    assert len(path.read_text().strip()) == 64  # kept, not replaced


def test_the_setting_takes_precedence_over_the_file(settings):
    keyed = settings.with_overrides(audit_key="k" * 40)
    assert audit_checkpoints.load_key(keyed) == b"k" * 40


def test_init_adopts_a_legacy_unkeyed_log(settings, container, world):
    # Rewrite the whole log with the unkeyed digest of older releases, with no checkpoints.
    assert _entries(container), "world creation writes audit entries"
    _recompute_from(container, 0, audit.legacy_digest)
    audit_checkpoints.checkpoint_path(settings).unlink(missing_ok=True)
    legacy_head = _entries(container)[-1]
    result = run_cli(settings, "init")
    assert result.exit_code == 0, result.output
    lines = [json.loads(x) for x in audit_checkpoints.checkpoint_path(settings).read_text().split()]
    assert lines[0]["kind"] == "legacy"
    assert lines[0]["last_id"] == legacy_head.id
    code, output = _verify(settings)
    assert code == 0, output
    # New entries are keyed and chain onto the legacy head.
    with container.db.transaction() as session:
        entry = audit.record(session, None, "fixity.check")
    assert entry.prev_hash == legacy_head.hash
    assert entry.hash != audit.legacy_digest(entry.prev_hash, audit.entry_fields(entry))
    audit_checkpoints.write_checkpoint(container)
    code, output = _verify(settings)
    assert code == 0, output


def test_a_commit_writes_a_checkpoint_when_the_last_is_old(container, world):
    path = audit_checkpoints.checkpoint_path(container.settings)
    assert path.is_file()  # the first audited commit found none and wrote one
    before = path.read_text().splitlines()
    with container.db.transaction() as session:
        audit.record(session, None, "fixity.check")
    assert path.read_text().splitlines() == before  # the last one is younger than a minute
    old = (dt.datetime.now(dt.UTC) - dt.timedelta(seconds=120)).timestamp()
    import os

    os.utime(path, (old, old))
    with container.db.transaction() as session:
        entry = audit.record(session, None, "fixity.check")
    lines = path.read_text().splitlines()
    assert len(lines) == len(before) + 1
    assert json.loads(lines[-1])["last_id"] == entry.id


def test_the_beat_task_writes_a_checkpoint_every_minute(container, world):
    schedule = celery_app.make_celery(container.settings).conf.beat_schedule
    assert schedule["audit-checkpoint"]["task"] == "dossier.audit_checkpoint"
    assert schedule["audit-checkpoint"]["schedule"] == 60.0
    with container.db.transaction() as session:
        entry = audit.record(session, None, "fixity.check")
    tasks.use_container(container)
    result = tasks.audit_checkpoint.apply().get()
    assert result["last_id"] == entry.id
    assert tasks.audit_checkpoint.apply().get() is None  # the head did not move


def test_checkpoints_go_to_an_object_lock_bucket_on_s3(settings, s3_endpoint, world):  # noqa: F811
    from minio import Minio

    s3 = s3_settings(settings, s3_endpoint)
    container = Container(s3)
    try:
        container.store.ensure_bucket()
        audit_checkpoints.ensure_bucket(s3)
        with container.db.transaction() as session:
            audit.record(session, None, "fixity.check")
        line = audit_checkpoints.write_checkpoint(container, force=True)
        assert line is not None
        client = Minio(s3_endpoint, "testing", "testing", secure=False, region="us-east-1")
        bucket = audit_checkpoints.audit_bucket(s3)
        name = audit_checkpoints.object_name(line)
        # moto answers GET ?retention with the body; the HEAD headers carry the lock.
        headers = {k.lower(): v for k, v in client.stat_object(bucket, name).metadata.items()}
        assert headers["x-amz-object-lock-mode"] == "COMPLIANCE"
        until = dt.datetime.fromisoformat(headers["x-amz-object-lock-retain-until-date"])
        assert until > dt.datetime.now(dt.UTC) + dt.timedelta(days=3000)
        stored = json.loads(client.get_object(bucket, name).read())
        assert stored["mac"] == line["mac"]
        assert audit_checkpoints.verify(container) == []
        # Deleting the newest entry and the file's checkpoints: S3's locked copy still tells.
        audit_checkpoints.checkpoint_path(s3).unlink()
        _raw(container, "DELETE FROM audit_log WHERE id = :id", id=line["last_id"])
        messages = [p.message for p in audit_checkpoints.verify(container)]
        assert any("newest entries deleted" in m for m in messages), messages
    finally:
        container.close()
