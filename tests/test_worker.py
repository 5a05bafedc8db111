"""A real Celery worker process runs the processing task, on the embedded broker and Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from dossier_service.app import create_app
from dossier_service.container import Container
from dossier_service.samples import make_pdf
from tests.brokers import broker_url  # noqa: F401
from tests.factories import new_case, upload
from workers.celery_app import make_sender


@pytest.fixture
def worker_settings(settings, broker_url):  # noqa: F811
    """Settings of a deployment with a separate worker process (tasks not eager)."""
    return settings.with_overrides(broker_url=broker_url, tasks_eager=False)


def _start_worker(worker_settings) -> subprocess.Popen[bytes]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("DOSSIER_") or k.startswith("DOSSIER_TEST_")
    }
    env.update(
        DOSSIER_DATA_DIR=str(worker_settings.data_dir),
        DOSSIER_DATABASE_URL=worker_settings.database_url,
        DOSSIER_BROKER_URL=worker_settings.broker_url,
    )
    return subprocess.Popen(
        [sys.executable, "-m", "dossier_service.cli", "worker", "--concurrency", "1", "--no-beat"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )


def _stop(proc: subprocess.Popen[bytes]) -> str:
    proc.send_signal(signal.SIGTERM)
    try:
        out, _ = proc.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out.decode("utf-8", "replace")


def test_upload_is_processed_by_a_real_worker(worker_settings, world):
    container = Container(worker_settings)
    app = create_app(container=container)
    client = app.test_client()
    case = new_case(client, world)
    response = upload(
        client, world, "canton", case["id"], make_pdf("Protokoll", ["Standortgespräch"])
    )
    assert response.status_code == 201
    doc_id = response.get_json()["id"]
    # Sent to the broker right after commit; nothing waits in the outbox.
    from dossier_service.services import outbox

    assert outbox.unsent_count(container.db) == 0
    worker = _start_worker(worker_settings)
    try:
        deadline = time.monotonic() + 90
        state = None
        while time.monotonic() < deadline:
            body = client.get(
                f"/api/v1/documents/{doc_id}", headers=world.auth("canton")
            ).get_json()
            state = body["versions"][0]["processing"]
            if state in {"ready", "failed"}:
                break
            assert worker.poll() is None, "worker died"
            time.sleep(0.5)
    finally:
        log = _stop(worker)
    assert state == "ready", log[-3000:]
    assert body["versions"][0]["fixity"] == "ok"
    container.close()


def test_broker_outage_keeps_the_task_until_the_relay_sends_it(worker_settings, world):
    """With the broker unreachable at commit the task waits in the outbox, then runs."""
    unreachable = worker_settings.with_overrides(
        broker_url="redis://127.0.0.1:1/0"
        if worker_settings.broker_url.startswith("redis")
        else "sqla+sqlite:////nonexistent-dir/broker.sqlite"
    )
    down = Container(unreachable)
    client = create_app(container=down).test_client()
    case = new_case(client, world)
    response = upload(client, world, "canton", case["id"], make_pdf("Protokoll", ["Erstgespräch"]))
    assert response.status_code == 201
    from dossier_service.services import outbox

    assert outbox.unsent_count(down.db) == 1
    # The broker is back: the relay sends it, a worker processes it.
    up = Container(worker_settings, task_sender=make_sender(worker_settings))
    assert outbox.relay(up.db, up.task_sender, older_than_s=0) == 1
    assert outbox.unsent_count(up.db) == 0
    worker = _start_worker(worker_settings)
    doc_id = response.get_json()["id"]
    ok_client = create_app(container=up).test_client()
    try:
        deadline = time.monotonic() + 90
        state = None
        while time.monotonic() < deadline:
            state = ok_client.get(
                f"/api/v1/documents/{doc_id}", headers=world.auth("canton")
            ).get_json()["versions"][0]["processing"]
            if state == "ready":
                break
            time.sleep(0.5)
    finally:
        log = _stop(worker)
    assert state == "ready", log[-3000:]
    down.close()
    up.close()
