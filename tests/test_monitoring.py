"""Continuity monitoring: stalled cases, stopped measures without follow-up, the horizon."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from click.testing import CliRunner

from dossier_service.cli import main as cli
from dossier_service.dates import LOCAL_ZONE
from dossier_service.samples import make_pdf
from dossier_service.services import monitoring
from dossier_service.services.indicators import add_years
from tests.factories import (
    fresh_person,
    held_by,
    kinds,
    monitor,
    new_case,
    notifications_of,
    upload,
)

API = "/api/v1"
TODAY = dt.datetime.now(LOCAL_ZONE).date()
NOTE = make_pdf("Gesprächsprotokoll", ["Standortgespräch nach dem Kursabbruch."])


def days(n: int) -> dt.date:
    """The day n days from today (Zurich)."""
    return TODAY + dt.timedelta(days=n)


def count(client: Any, world: Any, user: str, cid: str, kind: str) -> int:
    """How many notifications of a kind the user's unit has about the case."""
    return kinds(notifications_of(client, world, user), cid).count(kind)


def test_idle_case_is_flagged_once_per_stall(client, world, container):
    cid = held_by(client, world)
    assert monitoring.monitor_run(container, days(89)).stalled_cases == 0
    first = monitoring.monitor_run(container, days(90))
    assert (first.stalled_cases, first.notifications_created) == (1, 2)
    assert count(client, world, "aarau", cid, "case.stalled") == 1
    assert count(client, world, "canton", cid, "case.stalled") == 1
    assert count(client, world, "baden", cid, "case.stalled") == 0
    again = monitoring.monitor_run(container, days(95))
    assert (again.stalled_cases, again.notifications_created) == (1, 0)

    # New activity ends the stall; the next stall is a new occurrence.
    assert upload(client, world, "aarau", cid, NOTE, doc_type="meeting_record").status_code == 201
    assert monitoring.monitor_run(container, days(89)).stalled_cases == 0
    assert monitoring.monitor_run(container, days(90)).notifications_created == 2
    assert count(client, world, "aarau", cid, "case.stalled") == 2


def test_stall_days_come_from_the_settings(client, world, settings):
    from dossier_service.container import Container

    held_by(client, world)
    short = Container(settings.with_overrides(stall_days=10))
    try:
        assert monitoring.monitor_run(short, days(9)).stalled_cases == 0
        assert monitoring.monitor_run(short, days(10)).stalled_cases == 1
    finally:
        short.close()


def test_closed_cases_are_not_monitored(client, world, container):
    cid = held_by(client, world)
    client.post(
        f"{API}/cases/{cid}/close", json={"reason": "deceased"}, headers=world.auth("aarau")
    )
    result = monitoring.monitor_run(container, days(400))
    assert (result.stalled_cases, result.notifications_created) == (0, 0)


def _stopped_measure(client: Any, world: Any, cid: str, status: str = "interrupted") -> str:
    mid = client.post(
        f"{API}/cases/{cid}/measures",
        json={"programme": "IKG2", "start": TODAY.isoformat(), "status": "running"},
        headers=world.auth("aarau"),
    ).get_json()["id"]
    response = client.patch(
        f"{API}/measures/{mid}", json={"status": status}, headers=world.auth("aarau")
    )
    assert response.status_code == 200
    return mid


@pytest.mark.parametrize("status", ["interrupted", "aborted"])
def test_stopped_measure_without_follow_up_is_reminded_once(client, world, container, status):
    cid = held_by(client, world)
    _stopped_measure(client, world, cid, status)
    assert monitoring.monitor_run(container, days(29)).measures_without_follow_up == 0
    first = monitoring.monitor_run(container, days(30))
    assert first.measures_without_follow_up == 1
    for user in ("aarau", "canton"):
        assert count(client, world, user, cid, "measure.follow_up_missing") == 1
    assert monitoring.monitor_run(container, days(31)).notifications_created == 0


@pytest.mark.parametrize(
    "follow_up", ["meeting_record", "new_measure", "planned_successor", "journal_conversation"]
)
def test_a_follow_up_ends_the_reminders(client, world, container, follow_up):
    cid = held_by(client, world)
    if follow_up == "planned_successor":
        # Planned before the stop, starting after it: the plan goes on.
        client.post(
            f"{API}/cases/{cid}/measures",
            json={"programme": "INVOL", "start": days(60).isoformat()},
            headers=world.auth("aarau"),
        )
    _stopped_measure(client, world, cid)
    if follow_up == "meeting_record":
        assert (
            upload(client, world, "aarau", cid, NOTE, doc_type="meeting_record").status_code == 201
        )
    elif follow_up == "journal_conversation":
        noted = client.post(
            f"{API}/cases/{cid}/journal",
            json={"kind": "conversation", "text": "Weiteres Vorgehen besprochen."},
            headers=world.auth("aarau"),
        )
        assert noted.status_code == 201, noted.get_json()
    elif follow_up == "new_measure":
        client.post(
            f"{API}/cases/{cid}/measures",
            json={"programme": "employment_programme", "start": TODAY.isoformat()},
            headers=world.auth("aarau"),
        )
    assert monitoring.monitor_run(container, days(45)).measures_without_follow_up == 0


def test_an_other_document_is_no_follow_up(client, world, container):
    cid = held_by(client, world)
    _stopped_measure(client, world, cid)
    upload(client, world, "aarau", cid, NOTE, doc_type="correspondence")
    assert monitoring.monitor_run(container, days(45)).measures_without_follow_up == 1


def test_a_plain_journal_note_is_no_follow_up(client, world, container):
    cid = held_by(client, world)
    _stopped_measure(client, world, cid)
    noted = client.post(
        f"{API}/cases/{cid}/journal",
        json={"kind": "note", "text": "Akte durchgesehen."},
        headers=world.auth("aarau"),
    )
    assert noted.status_code == 201
    assert monitoring.monitor_run(container, days(45)).measures_without_follow_up == 1


def _case_entered(client: Any, world: Any, entry: dt.date) -> str:
    response = client.post(
        f"{API}/cases",
        json={"person": fresh_person(ahv_number=None), "entry_date": entry.isoformat()},
        headers=world.auth("canton"),
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def test_horizon_warning_after_six_and_a_half_years(client, world, container):
    old = _case_entered(client, world, add_years(TODAY, -7))
    young = _case_entered(client, world, add_years(TODAY, -6))
    result = monitoring.monitor_run(container, TODAY)
    assert result.horizon_cases == 1
    assert count(client, world, "canton", old, "case.horizon_approaching") == 1
    assert count(client, world, "canton", young, "case.horizon_approaching") == 0
    # The young case reaches 6.5 years half a year later; the old one is not warned again.
    later = monitoring.monitor_run(container, days(200))
    assert later.horizon_cases == 2
    assert count(client, world, "canton", old, "case.horizon_approaching") == 1
    assert count(client, world, "canton", young, "case.horizon_approaching") == 1


def test_monitoring_is_audited(client, world, container):
    held_by(client, world)
    monitoring.monitor_run(container, days(100))
    log = client.get(f"{API}/audit?action=monitor.run", headers=world.auth("auditor")).get_json()
    [entry] = log["items"]
    assert entry["actor"] is None
    assert entry["detail"]["stalled_cases"] == 1
    assert entry["detail"]["as_of"] == days(100).isoformat()


def test_stalled_dashboard(client, world):
    aarau_case = held_by(client, world)
    held_by(client, world, family_name="Tesfay", unit="baden")
    baden_case = held_by(client, world, family_name="Yonas", unit="baden")
    upload(client, world, "baden", baden_case, NOTE)  # active today, like all others
    fresh = new_case(client, world)["id"]  # held by the canton
    response = client.get(f"{API}/reports/stalled?as_of={days(90)}", headers=world.auth("canton"))
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert (body["as_of"], body["stall_days"], body["total_stalled"]) == (
        days(90).isoformat(),
        90,
        4,
    )
    by_unit = {item["unit"]["code"]: item for item in body["items"]}
    assert by_unit["baden"]["stalled_cases"] == 2 and by_unit["baden"]["open_cases"] == 2
    assert [c["case_id"] for c in by_unit["aarau"]["cases"]] == [aarau_case]
    assert by_unit["aarau"]["cases"][0]["idle_days"] == 90
    assert by_unit["ag"]["cases"][0]["case_id"] == fresh
    assert body["items"][0]["unit"]["code"] == "baden"  # most stalled first
    # No names in the dashboard, only references.
    assert "Haile" not in response.get_data(as_text=True)

    early = client.get(f"{API}/reports/stalled?as_of={days(10)}", headers=world.auth("canton"))
    assert early.get_json()["items"] == []
    for user in ("aarau", "caritas", "auditor"):
        assert client.get(f"{API}/reports/stalled", headers=world.auth(user)).status_code == 403
    assert (
        client.get(
            f"{API}/reports/stalled?as_of=2026-13-01", headers=world.auth("canton")
        ).status_code
        == 400
    )


def test_monitor_command_and_task(client, world, settings, container):
    held_by(client, world)
    output = monitor(settings, days(100))
    assert output.startswith(f"monitor {days(100).isoformat()}: 1 stalled case(s)")
    assert "2 new notification(s)" in output
    bad = CliRunner().invoke(
        cli,
        ["monitor", "run", "--as-of", "tomorrow"],
        env={
            "DOSSIER_DATA_DIR": str(settings.data_dir),
            "DOSSIER_DATABASE_URL": settings.database_url,
        },
    )
    assert bad.exit_code == 2

    from workers import tasks
    from workers.celery_app import make_celery

    tasks.use_container(container)
    result = tasks.monitor_run.apply(kwargs={"as_of": days(100).isoformat()}).get()
    assert result["stalled_cases"] == 1 and result["notifications_created"] == 0
    schedule = make_celery(settings).conf.beat_schedule["monitor-run"]
    assert schedule["task"] == "dossier.monitor_run"
    # Once a day: one hour and one minute in the crontab.
    assert schedule["schedule"].hour == {3} and schedule["schedule"].minute == {30}
