"""Spool files left by a crash are reported by fsck and removed (issue 10, finding 7)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from dossier_service.config import ConfigError, load_settings
from dossier_service.services import spool
from tests.factories import run_cli
from workers import tasks
from workers.celery_app import make_celery

DAY = 24 * 3600


def _aged(path: Path, seconds: float, data: bytes = b"spooled") -> Path:
    """A file whose last change lies ``seconds`` in the past."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    moment = time.time() - seconds
    os.utime(path, (moment, moment))
    return path


def test_only_entries_older_than_the_bound_are_stale(settings):
    old = _aged(settings.spool_dir / "upload-old", DAY + 60)
    young = _aged(settings.spool_dir / "upload-young", 3600)
    # An export's work directory is judged by its newest file: one still written is young.
    busy = settings.spool_dir / "export-busy"
    _aged(busy / "a.pdf", 2 * DAY)
    _aged(busy / "b.pdf", 60)
    os.utime(busy, (time.time() - 2 * DAY, time.time() - 2 * DAY))
    dead = settings.spool_dir / "export-dead"
    _aged(dead / "a.pdf", 2 * DAY)
    os.utime(dead, (time.time() - 2 * DAY, time.time() - 2 * DAY))

    assert {e.path.name for e in spool.find_stale(settings)} == {"upload-old", "export-dead"}
    removed = spool.remove_stale(settings)
    assert {e.path.name for e in removed} == {"upload-old", "export-dead"}
    assert not old.exists() and not dead.exists()
    assert young.exists() and busy.exists()
    assert spool.find_stale(settings) == []


def test_the_age_is_a_setting_of_at_least_two_hours(settings, tmp_path):
    base = {"DOSSIER_DATA_DIR": str(tmp_path)}
    assert load_settings(base).spool_max_age_hours == 24
    assert load_settings({**base, "DOSSIER_SPOOL_MAX_AGE_HOURS": "2"}).spool_max_age_hours == 2
    with pytest.raises(ConfigError, match="at least 2"):
        load_settings({**base, "DOSSIER_SPOOL_MAX_AGE_HOURS": "1"})
    short = settings.with_overrides(spool_max_age_hours=2)
    _aged(short.spool_dir / "upload-3h", 3 * 3600)
    assert [e.path.name for e in spool.find_stale(short)] == ["upload-3h"]
    assert spool.find_stale(settings) == []


def test_fsck_reports_stale_spool_files_and_delete_orphans_removes_them(settings):
    assert run_cli(settings, "init").exit_code == 0
    stale = _aged(settings.spool_dir / "upload-abc", 2 * DAY, b"x" * 1000)
    young = _aged(settings.spool_dir / "upload-live", 10)

    report = run_cli(settings, "fsck", "--no-hash")
    # Leftovers, not damage: reported, exit 0.
    assert report.exit_code == 0, report.output
    assert f"orphan\tspool\t{stale}\t-\t48 h old, 1000 bytes" in report.output
    assert "upload-live" not in report.output
    assert "1 stale spool file(s)" in report.output
    assert stale.exists()

    cleaned = run_cli(settings, "fsck", "--no-hash", "--delete-orphans")
    assert cleaned.exit_code == 0, cleaned.output
    assert "1 stale spool file(s) deleted" in cleaned.output
    assert not stale.exists() and young.exists()
    assert "0 stale spool file(s)" in run_cli(settings, "fsck", "--no-hash").output


def test_the_scheduler_sweeps_the_spool_hourly_and_requeues_every_minute(container):
    schedule = make_celery(container.settings).conf.beat_schedule
    assert schedule["sweep-spool"] == {"task": "dossier.sweep_spool", "schedule": 3600.0}
    assert schedule["requeue-stuck-versions"] == {
        "task": "dossier.requeue_stuck_versions",
        "schedule": 60.0,
    }
    stale = _aged(container.settings.spool_dir / "process-xyz", 2 * DAY)
    tasks.use_container(container)
    assert tasks.sweep_spool.apply().get() == 1
    assert not stale.exists()
