"""Issue 10: server-side sessions end at once; failed authentications are counted, not flooded."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any

import pytest
from click.testing import CliRunner
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dossier_service.api.health import OPENAPI_PATH
from dossier_service.app import create_app
from dossier_service.container import Container
from dossier_service.dates import utcnow
from dossier_service.models import AuditEntry, AuthFailureWindow, WebSession
from dossier_service.services import accounts
from tests.factories import login, post, set_passwords
from tests.openapi_schema import assert_matches
from workers import tasks
from workers.celery_app import make_celery

API = "/api/v1"
BOGUS = {"Authorization": "Bearer dos_" + "x" * 43}
COOKIE = "dossier_session"


def _entries(container: Container, *actions: str) -> list[AuditEntry]:
    with container.db.transaction() as session:
        return list(
            session.execute(
                select(AuditEntry).where(AuditEntry.action.in_(actions)).order_by(AuditEntry.id)
            ).scalars()
        )


def _saved_cookie(client: FlaskClient) -> str:
    cookie = client.get_cookie(COOKIE)
    assert cookie is not None
    return cookie.value


def _replay(app: Flask, cookie: str) -> Any:
    """GET /cases from another browser holding a copy of the cookie."""
    thief = app.test_client()
    thief.set_cookie(COOKIE, cookie)
    return thief.get("/cases")


def _cli(container: Container, monkeypatch: pytest.MonkeyPatch, *args: str) -> None:
    from dossier_service.cli import main

    monkeypatch.setenv("DOSSIER_DATA_DIR", str(container.settings.data_dir))
    monkeypatch.setenv("DOSSIER_DATABASE_URL", container.settings.database_url)
    result = CliRunner().invoke(main, list(args))
    assert result.exit_code == 0, result.output


def _logout(client: FlaskClient, container: Container, mp: pytest.MonkeyPatch) -> None:
    assert post(client, "/logout").status_code == 302


def _password(client: FlaskClient, container: Container, mp: pytest.MonkeyPatch) -> None:
    with container.db.transaction() as session:
        accounts.set_password(session, "aarau", "Ein-neues-Passwort")


def _disable(client: FlaskClient, container: Container, mp: pytest.MonkeyPatch) -> None:
    _cli(container, mp, "users", "disable", "--username", "aarau")


def _revoke(client: FlaskClient, container: Container, mp: pytest.MonkeyPatch) -> None:
    _cli(container, mp, "tokens", "revoke", "--username", "aarau")


ENDINGS: dict[str, Callable[[FlaskClient, Container, pytest.MonkeyPatch], None]] = {
    "logout": _logout,
    "password_changed": _password,
    "user_disabled": _disable,
    "tokens_revoked": _revoke,
}


@pytest.mark.parametrize("ending", list(ENDINGS))
def test_a_cookie_saved_before_the_session_ended_no_longer_opens_cases(
    app, client, world, container, monkeypatch, ending
):
    set_passwords(container, "aarau", "baden")
    assert login(client, "aarau").status_code == 302
    saved = _saved_cookie(client)
    other = app.test_client()  # a second browser of the user: ended too, except by a logout
    assert login(other, "aarau").status_code == 302
    bystander = app.test_client()  # another user's session is not touched
    assert login(bystander, "baden").status_code == 302
    assert _replay(app, saved).status_code == 200

    ENDINGS[ending](client, container, monkeypatch)

    replayed = _replay(app, saved)
    assert replayed.status_code == 302 and replayed.headers["Location"].startswith("/login")
    everywhere = ending != "logout"  # a logout ends the session it is sent from
    assert other.get("/cases").status_code == (302 if everywhere else 200)
    assert bystander.get("/cases").status_code == 200
    with container.db.transaction() as session:
        ended = session.execute(
            select(func.count()).select_from(WebSession).where(WebSession.end_reason == ending)
        ).scalar_one()
    assert ended == (2 if everywhere else 1)


def test_an_enabled_user_logs_in_anew_but_the_old_cookie_stays_dead(
    app, client, world, container, monkeypatch
):
    set_passwords(container, "aarau")
    login(client, "aarau")
    saved = _saved_cookie(client)
    _cli(container, monkeypatch, "users", "disable", "--username", "aarau")
    assert login(app.test_client(), "aarau").status_code == 401
    _cli(container, monkeypatch, "users", "enable", "--username", "aarau")
    assert _replay(app, saved).status_code == 302
    fresh = app.test_client()
    assert login(fresh, "aarau").status_code == 302
    assert fresh.get("/cases").status_code == 200
    actions = [e.action for e in _entries(container, "user.disable", "user.enable")]
    assert actions == ["user.disable", "user.enable"]


def test_the_cookie_names_a_server_side_session_only(client, world, container):
    set_passwords(container, "aarau")
    login(client, "aarau")
    with client.session_transaction() as cookie:
        assert set(cookie) <= {"sid", "csrf", "lang"}
        sid = cookie["sid"]
    with container.db.transaction() as session:
        row = session.execute(select(WebSession)).scalar_one()
        # Only the id's hash is stored: a copy of the table opens no session.
        assert row.id == accounts.hash_token(sid) != sid
        assert row.expires_at - row.created_at == dt.timedelta(hours=12)


def test_an_expired_session_ends_however_active_it_is(app, client, world, container):
    set_passwords(container, "aarau")
    login(client, "aarau")
    with container.db.transaction() as session:
        row = session.execute(select(WebSession)).scalar_one()
        row.expires_at = utcnow() - dt.timedelta(seconds=1)
    response = client.get("/cases")
    assert response.status_code == 302
    page = client.get(response.headers["Location"])
    assert "Ihre Sitzung ist abgelaufen" in page.get_data(as_text=True)
    with container.db.transaction() as session:
        assert session.execute(select(WebSession.end_reason)).scalar_one() == "expired"


# --- failed authentications ----------------------------------------------------------------


def _housekeeping_later(container: Container, monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Run the beat task as it would run three minutes from now."""
    later = utcnow() + dt.timedelta(minutes=3)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    tasks.use_container(container)
    result = tasks.auth_housekeeping()
    monkeypatch.undo()
    return result


def test_a_flood_of_bogus_tokens_writes_a_handful_of_entries(client, world, container, monkeypatch):
    statuses = [client.get(f"{API}/cases", headers=BOGUS).status_code for _ in range(400)]
    assert set(statuses) <= {401, 429}
    entries = _entries(container, "auth.failed", "auth.failed_summary")
    # One entry of its own per address and minute (two if the run crossed a minute).
    assert 1 <= len(entries) <= 2
    assert {e.action for e in entries} == {"auth.failed"}
    assert entries[0].detail == {"reason": "unknown_token"} and entries[0].ip == "127.0.0.1"

    assert _housekeeping_later(container, monkeypatch)["summaries"] == len(entries)
    summaries = _entries(container, "auth.failed_summary")
    assert sum(s.detail["count"] for s in summaries) == 400
    assert sum(s.detail["not_logged_singly"] for s in summaries) == 400 - len(entries)
    assert {(s.ip, s.outcome, s.actor) for s in summaries} == {("127.0.0.1", "denied", None)}
    assert len(_entries(container, "auth.failed", "auth.failed_summary")) <= 4
    # Run again: nothing is summarised twice.
    assert _housekeeping_later(container, monkeypatch)["summaries"] == 0


def test_an_address_that_keeps_failing_gets_429_but_valid_tokens_are_served(
    app, client, world, container
):
    for _ in range(accounts.ADDRESS_FAILURES - 1):
        assert client.get(f"{API}/cases", headers=BOGUS).status_code == 401
    throttled = client.get(f"{API}/cases", headers=BOGUS)
    assert throttled.status_code == 429
    assert throttled.get_json() == {
        "error": {
            "code": "too_many_requests",
            "message": "Too many failed authentications from this address; try again later.",
        }
    }
    doc = json.loads(OPENAPI_PATH.read_text("utf-8"))
    assert_matches(doc, "/cases", "get", 429, throttled.get_json())
    retry = int(throttled.headers["Retry-After"])
    assert 0 < retry <= 15 * 60 + 1
    assert client.get(f"{API}/cases").status_code == 429  # no token at all: the same
    # A valid token from the same address is still served.
    assert client.get(f"{API}/cases", headers=world.auth("aarau")).status_code == 200
    # Another address is not affected.
    other = client.get(f"{API}/cases", headers=BOGUS, environ_base={"REMOTE_ADDR": "10.9.8.7"})
    assert other.status_code == 401
    # The web login from the throttled address is refused before any password check.
    set_passwords(container, "aarau")
    page = login(app.test_client(), "aarau")
    assert page.status_code == 429 and int(page.headers["Retry-After"]) > 0
    assert "Zu viele fehlgeschlagene Anmeldungen" in page.get_data(as_text=True)


def test_the_throttle_lifts_once_the_failures_leave_the_window(client, world, container):
    for _ in range(accounts.ADDRESS_FAILURES):
        client.get(f"{API}/cases", headers=BOGUS)
    assert client.get(f"{API}/cases", headers=BOGUS).status_code == 429
    with container.db.transaction() as session:
        for window in session.execute(select(AuthFailureWindow)).scalars():
            window.window_start -= accounts.ADDRESS_WINDOW
    assert client.get(f"{API}/cases", headers=BOGUS).status_code == 401


def test_the_client_address_comes_from_the_trusted_proxy(container, world):
    behind_proxy = Container(container.settings.with_overrides(trusted_proxies=1))
    proxied = create_app(container=behind_proxy).test_client()
    for _ in range(accounts.ADDRESS_FAILURES):
        proxied.get(f"{API}/cases", headers={**BOGUS, "X-Forwarded-For": "203.0.113.5"})
    blocked = proxied.get(f"{API}/cases", headers={**BOGUS, "X-Forwarded-For": "203.0.113.5"})
    assert blocked.status_code == 429
    neighbour = proxied.get(f"{API}/cases", headers={**BOGUS, "X-Forwarded-For": "203.0.113.6"})
    assert neighbour.status_code == 401
    first = _entries(container, "auth.failed")
    assert {e.ip for e in first} == {"203.0.113.5", "203.0.113.6"}
    behind_proxy.close()


def test_failed_logins_still_lock_a_username_and_are_bounded_per_minute(
    client, world, container, monkeypatch
):
    set_passwords(container, "aarau")
    # The bound is per calendar minute: pin the clock inside one minute, or a run that
    # crosses a minute boundary (slow database) rightly gets a second allowance.
    pinned = utcnow().replace(second=30, microsecond=0)
    monkeypatch.setattr(accounts, "utcnow", lambda: pinned)
    for i in range(30):
        login(client, f"niemand{i}", "falsch-falsch-falsch")
    assert len(_entries(container, "auth.failed")) == accounts.LOGIN_ENTRIES_PER_MINUTE
    # The minute's allowance is spent on sprayed names; guesses at a real account are still
    # written one by one and lock it (before the fix they went unlogged and never locked).
    for _ in range(accounts.THROTTLE_FAILURES):
        login(client, "aarau", "falsch-falsch-falsch")
    guesses = [e for e in _entries(container, "auth.failed") if e.actor == "aarau"]
    assert len(guesses) == accounts.THROTTLE_FAILURES
    locked = login(client, "aarau")  # the right password, too late
    assert locked.status_code == 429
    assert "Zu viele fehlgeschlagene Anmeldungen" in locked.get_data(as_text=True)
    # Further guesses add no entries of their own: the flood stays bounded.
    for _ in range(10):
        login(client, "aarau", "falsch-falsch-falsch")
    assert len(_entries(container, "auth.failed")) == (
        accounts.LOGIN_ENTRIES_PER_MINUTE + accounts.THROTTLE_FAILURES
    )


def test_housekeeping_runs_every_minute_from_beat(settings):
    schedule = make_celery(settings).conf.beat_schedule["auth-housekeeping"]
    assert schedule == {"task": "dossier.auth_housekeeping", "schedule": 60.0}


def test_housekeeping_drops_old_counters_and_old_sessions(client, world, container, monkeypatch):
    set_passwords(container, "aarau")
    login(client, "aarau")
    post(client, "/logout")
    client.get(f"{API}/cases", headers=BOGUS)
    later = utcnow() + dt.timedelta(days=8)
    monkeypatch.setattr(accounts, "utcnow", lambda: later)
    with container.db.transaction() as session:
        first = accounts.auth_housekeeping(session)
        second = accounts.auth_housekeeping(session)
    assert first == {"summaries": 0, "counters_deleted": 1, "sessions_deleted": 1}
    assert second == {"summaries": 0, "counters_deleted": 0, "sessions_deleted": 0}
