"""Versions whose processing a dead worker held are taken up again; overdue ones are reported.

Issue 10, finding 1: after kill -9 of the worker, versions stayed ``processing`` forever and
nothing reported them. Now a worker claims a version under a lease it renews while it works;
the periodic requeue queues versions with an expired lease again (and fails them after too
many claims); ``fsck``, ``index verify`` and the health endpoint report overdue versions.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select, update

from dossier_service.app import create_app
from dossier_service.container import Container
from dossier_service.dates import utcnow
from dossier_service.models import Document, DocumentVersion
from dossier_service.services import processing
from tests.brokers import broker_url  # noqa: F401
from tests.factories import PDF_V1, World, new_case, run_cli, upload
from tests.sample_files import image_only_pdf, scanned_page

LONG_AGO = dt.timedelta(hours=2)


def _version_id(container: Container, document_id: str) -> str:
    with container.db.transaction() as session:
        return str(
            session.execute(
                select(DocumentVersion.id).where(DocumentVersion.document_id == document_id)
            ).scalar_one()
        )


def _uploaded_version(client: Any, world: World, container: Container) -> str:
    """A version uploaded (and, tasks being eager, processed) through the API."""
    case = new_case(client, world)
    response = upload(client, world, "canton", case["id"], PDF_V1)
    assert response.status_code == 201, response.get_json()
    return _version_id(container, response.get_json()["id"])


def _set(container: Container, version_id: str, **values: Any) -> None:
    with container.db.transaction() as session:
        session.execute(
            update(DocumentVersion).where(DocumentVersion.id == version_id).values(**values)
        )


def _get(container: Container, version_id: str) -> DocumentVersion:
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        assert version is not None
        session.expunge(version)
        return version


def _held_by_dead_worker(container: Container, version_id: str, attempts: int = 1) -> None:
    """The state a worker killed mid-processing leaves: processing, a lease run out."""
    _set(
        container,
        version_id,
        processing="processing",
        processing_owner="host:4242:dead",
        processing_lease_until=utcnow() - dt.timedelta(seconds=1),
        processing_since=utcnow() - LONG_AGO,
        processing_queued_at=utcnow() - LONG_AGO,
        processing_attempts=attempts,
    )


# --- claim and lease ---------------------------------------------------------------------


def test_claim_is_exclusive_while_the_lease_lives(client, world, container):
    vid = _uploaded_version(client, world, container)
    assert _get(container, vid).processing == "ready"
    # A finished version is not claimed again (a duplicate message does nothing)...
    assert not processing.claim(container, vid, "a")
    assert process_version_task(container, vid) == "ready"
    assert _get(container, vid).processing_attempts == 1
    # ... unless asked for on purpose.
    assert processing.claim(container, vid, "a", finished_too=True)
    _set(
        container,
        vid,
        processing="pending",
        processing_attempts=0,
        processing_owner=None,
        processing_lease_until=None,
    )

    assert processing.claim(container, vid, "a")
    assert not processing.claim(container, vid, "b"), "a live lease must not be taken over"
    version = _get(container, vid)
    assert (version.processing, version.processing_owner, version.processing_attempts) == (
        "processing",
        "a",
        1,
    )
    assert version.processing_lease_until is not None
    assert version.processing_lease_until > utcnow() + dt.timedelta(seconds=250)

    # Its worker died: once the lease ran out another worker may take it.
    _set(container, vid, processing_lease_until=utcnow() - dt.timedelta(seconds=1))
    assert processing.claim(container, vid, "b")
    assert _get(container, vid).processing_attempts == 2
    assert not processing.renew(container, vid, "a"), "the dead owner's lease is gone"
    assert processing.renew(container, vid, "b")


def process_version_task(container: Container, version_id: str) -> str:
    """Run the worker's processing task inline, as a worker would on a message."""
    from workers import tasks

    tasks.use_container(container)
    return str(tasks.process_version.apply(args=[version_id]).get())


def test_heartbeat_renews_the_lease_while_work_runs(client, world, container):
    vid = _uploaded_version(client, world, container)
    _set(container, vid, processing="pending")
    short = Container(container.settings.with_overrides(processing_lease_seconds=3))
    try:
        assert processing.claim(short, vid, "me")
        first = _get(short, vid).processing_lease_until
        assert first is not None
        with processing.Heartbeat(short, vid, "me") as beat:
            time.sleep(4.5)  # longer than the lease: without renewal it would have run out
            assert not processing.claim(short, vid, "other")
        assert not beat.lost
        renewed = _get(short, vid).processing_lease_until
        assert renewed is not None and renewed > first
    finally:
        short.close()


def test_processing_clears_the_lease_and_skips_a_version_held_by_a_live_worker(
    client, world, container
):
    vid = _uploaded_version(client, world, container)
    version = _get(container, vid)
    assert version.processing == "ready"
    assert (version.processing_owner, version.processing_lease_until) == (None, None)

    _set(
        container,
        vid,
        processing="processing",
        processing_owner="alive",
        processing_lease_until=utcnow() + dt.timedelta(minutes=5),
    )
    assert processing.process_version(container, vid) == "busy"
    assert _get(container, vid).processing_owner == "alive"


# --- the periodic requeue ----------------------------------------------------------------


def test_requeue_takes_up_a_version_whose_worker_died(client, world, container):
    vid = _uploaded_version(client, world, container)
    _held_by_dead_worker(container, vid, attempts=1)
    # Tasks are eager here: the requeued task runs as soon as the requeue commits.
    assert processing.requeue_stuck(container) == {"requeued": 1, "failed": 0}
    version = _get(container, vid)
    assert version.processing == "ready"
    assert version.processing_owner is None and version.processing_lease_until is None
    assert version.processing_attempts == 2


def test_requeue_leaves_live_and_finished_versions_alone(client, world, container):
    live = _uploaded_version(client, world, container)
    done = _uploaded_version(client, world, container)
    _set(
        container,
        live,
        processing="processing",
        processing_owner="alive",
        processing_lease_until=utcnow() + dt.timedelta(minutes=5),
        processing_since=utcnow() - LONG_AGO,
    )
    assert processing.requeue_stuck(container) == {"requeued": 0, "failed": 0}
    assert _get(container, live).processing_owner == "alive"
    assert _get(container, done).processing == "ready"


def test_requeue_fails_a_version_after_max_attempts(client, world, container):
    vid = _uploaded_version(client, world, container)
    _held_by_dead_worker(container, vid, attempts=container.settings.processing_max_attempts)
    assert processing.requeue_stuck(container) == {"requeued": 0, "failed": 1}
    version = _get(container, vid)
    assert version.processing == "failed"
    assert version.processing_error is not None
    assert "interrupted 3 times" in version.processing_error
    assert version.processing_owner is None


def test_requeue_sends_a_version_nobody_claimed_again(client, world, container):
    vid = _uploaded_version(client, world, container)
    _set(
        container,
        vid,
        processing="pending",
        processing_since=utcnow() - LONG_AGO,
        processing_queued_at=utcnow() - LONG_AGO,
    )
    assert processing.requeue_stuck(container) == {"requeued": 1, "failed": 0}
    assert _get(container, vid).processing == "ready"

    fresh = _uploaded_version(client, world, container)
    _set(container, fresh, processing="pending")  # queued just now: may still be in the queue
    assert processing.requeue_stuck(container) == {"requeued": 0, "failed": 0}


def test_a_version_left_processing_by_the_release_before_leases_is_taken_up(
    client, world, container
):
    vid = _uploaded_version(client, world, container)
    # What migration 0006 makes of a version an old worker died on.
    _set(
        container,
        vid,
        processing="processing",
        processing_owner=None,
        processing_lease_until=None,
        processing_since=utcnow() - LONG_AGO,
        processing_queued_at=utcnow() - LONG_AGO,
    )
    assert processing.requeue_stuck(container)["requeued"] == 1
    assert _get(container, vid).processing == "ready"


# --- reports: fsck, index verify, health; reprocess --stuck --------------------------------


def test_fsck_index_verify_and_health_report_overdue_versions(settings, client, world, container):
    vid = _uploaded_version(client, world, container)
    assert run_cli(settings, "fsck", "--no-hash").exit_code == 0
    assert run_cli(settings, "index", "verify").exit_code == 0
    health = client.get("/api/v1/health").get_json()
    assert health["checks"]["processing"] == {"overdue": 0}

    _held_by_dead_worker(container, vid)
    fsck = run_cli(settings, "fsck", "--no-hash")
    assert fsck.exit_code == 1, fsck.output
    assert f"overdue\t{vid}\tprocessing since" in fsck.output
    assert "1 overdue version(s)" in fsck.output
    verify = run_cli(settings, "index", "verify")
    assert verify.exit_code == 1, verify.output
    assert f"overdue\t{vid}" in verify.output
    health = client.get("/api/v1/health")
    assert health.get_json()["checks"]["processing"] == {"overdue": 1}
    # Reported, but the service itself is healthy (no restart would help).
    assert health.status_code == 200

    # Within the bound a waiting version is not overdue.
    _set(container, vid, processing_since=utcnow())
    assert run_cli(settings, "fsck", "--no-hash").exit_code == 0


def test_reprocess_stuck_queues_overdue_versions_only(settings, client, world, container):
    stuck = _uploaded_version(client, world, container)
    done = _uploaded_version(client, world, container)
    _held_by_dead_worker(container, stuck, attempts=2)
    result = run_cli(settings, "reprocess", "--stuck")
    assert result.exit_code == 0, result.output
    assert "1 version(s) queued for processing" in result.output
    version = _get(container, stuck)
    # A new round: pending, no lease, no claims counted, its bound starts now.
    assert version.processing == "pending"
    assert (version.processing_owner, version.processing_attempts) == (None, 0)
    assert version.processing_since is not None
    assert version.processing_since > utcnow() - dt.timedelta(minutes=1)
    assert _get(container, done).processing == "ready"
    with container.db.transaction() as session:
        waiting = session.execute(
            select(DocumentVersion.id).where(DocumentVersion.processing != "ready")
        ).scalars()
        assert list(waiting) == [stuck]


# --- a real worker killed with SIGKILL mid-processing --------------------------------------


def _worker_env(settings: Any, lease_seconds: int) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DOSSIER_") or k.startswith("DOSSIER_TEST_")
    }
    env.update(
        DOSSIER_DATA_DIR=str(settings.data_dir),
        DOSSIER_DATABASE_URL=settings.database_url,
        DOSSIER_BROKER_URL=settings.broker_url,
        DOSSIER_PROCESSING_LEASE_SECONDS=str(lease_seconds),
    )
    return env


def _start_worker(settings: Any, lease_seconds: int, log: Path) -> subprocess.Popen[bytes]:
    """`dossier worker` as `dossier serve` starts it (with the scheduler), in its own group."""
    return subprocess.Popen(
        [sys.executable, "-m", "dossier_service.cli", "worker", "--concurrency", "1"],
        env=_worker_env(settings, lease_seconds),
        stdout=log.open("ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,  # kill -9 of the group takes the pool child with it
    )


def _kill_group(proc: subprocess.Popen[bytes], sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except ProcessLookupError:
        return
    try:
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def _wait_for(predicate: Any, timeout: float, what: str, log: Path) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.2)
    pytest.fail(f"timed out waiting for {what}; worker log:\n{log.read_text()[-4000:]}")


def test_a_worker_killed_mid_processing_is_replaced_without_manual_action(
    settings,
    world,
    tmp_path,
    broker_url,  # noqa: F811
):
    lease = 10
    worker_settings = settings.with_overrides(
        broker_url=broker_url,
        tasks_eager=False,
        processing_lease_seconds=lease,
    )
    container = Container(worker_settings)
    client = create_app(container=container).test_client()
    case = new_case(client, world)
    # Scanned pages: OCR keeps the worker busy long enough to kill it in the middle.
    pages = [scanned_page([f"Seite {n} Standortgespräch Deutschkurs"] * 12) for n in range(6)]
    response = upload(client, world, "canton", case["id"], image_only_pdf(pages))
    assert response.status_code == 201, response.get_json()
    vid = _version_id(container, response.get_json()["id"])
    # A spool file a crash left a day ago: the next worker start removes it.
    worker_settings.spool_dir.mkdir(parents=True, exist_ok=True)
    stale = worker_settings.spool_dir / "upload-left-by-a-crash"
    stale.write_bytes(b"x" * 100)
    day_ago = time.time() - 25 * 3600
    os.utime(stale, (day_ago, day_ago))

    log = tmp_path / "worker.log"
    first = _start_worker(worker_settings, lease, log)
    try:
        _wait_for(lambda: _get(container, vid).processing_owner is not None, 120, "the claim", log)
        time.sleep(1.0)  # in the middle of the work
        assert _get(container, vid).processing == "processing"
    finally:
        _kill_group(first, signal.SIGKILL)
    assert not stale.exists(), "the worker removes stale spool files at start"
    held = _get(container, vid)
    assert held.processing == "processing" and held.processing_attempts == 1

    second = _start_worker(worker_settings, lease, log)
    try:
        _wait_for(
            lambda: _get(container, vid).processing in {"ready", "failed"},
            240,
            "the version to be taken up again",
            log,
        )
    finally:
        _kill_group(second, signal.SIGTERM)
    version = _get(container, vid)
    assert version.processing == "ready", (version.processing_error, log.read_text()[-4000:])
    assert version.processing_attempts == 2
    assert (version.processing_owner, version.processing_lease_until) == (None, None)
    with container.db.transaction() as session:
        document = session.get(Document, response.get_json()["id"])
        assert document is not None
    hits = client.get(
        "/api/v1/search", query_string={"q": "Standortgespräch"}, headers=world.auth("canton")
    )
    assert hits.status_code == 200, hits.get_json()
    assert hits.get_json()["total"] >= 1
    container.close()
