"""Web login: passwords, session cookie, CSRF, idle timeout, throttling, logout, CLI."""

from __future__ import annotations

import datetime as dt
import os
import stat

from click.testing import CliRunner
from sqlalchemy import select

from dossier_service.config import load_settings, session_secret
from dossier_service.dates import utcnow
from dossier_service.models import AuditEntry, User, WebSession
from tests.factories import PASSWORD, csrf, login, post, set_passwords


def _audit(container, action):
    with container.db.transaction() as session:
        return list(
            session.execute(select(AuditEntry).where(AuditEntry.action == action)).scalars()
        )


def test_login_sets_a_hardened_session_cookie_and_opens_my_cases(client, world, container):
    set_passwords(container, "aarau")
    response = login(client, "aarau")
    assert response.status_code == 302
    assert response.headers["Location"] == "/cases"
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("dossier_session=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert "Secure" not in cookie  # plain HTTP in the test and no DOSSIER_SECURE_COOKIES
    page = client.get("/cases")
    assert page.status_code == 200
    assert "Meine Fälle" in page.get_data(as_text=True)
    logins = _audit(container, "auth.login")
    assert [(e.actor, e.detail["method"]) for e in logins] == [("aarau", "password")]


def test_session_cookie_is_secure_behind_tls(client, world, container):
    set_passwords(container, "aarau")
    page = client.get("/login", base_url="https://localhost")
    token = page.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    response = client.post(
        "/login",
        data={"username": "aarau", "password": PASSWORD, "csrf_token": token},
        base_url="https://localhost",
        headers={"Origin": "https://localhost"},
    )
    assert response.status_code == 302
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers


def test_wrong_password_keeps_the_username_and_is_audited(client, world, container):
    set_passwords(container, "aarau")
    response = login(client, "aarau", "falsch-falsch-falsch")
    assert response.status_code == 401
    body = response.get_data(as_text=True)
    assert "Benutzername oder Passwort ist falsch." in body
    assert 'value="aarau"' in body
    assert "falsch-falsch-falsch" not in body
    failed = _audit(container, "auth.failed")
    assert [(e.actor, e.outcome, e.detail["reason"]) for e in failed] == [
        ("aarau", "denied", "password")
    ]
    assert client.get("/cases").status_code == 302  # still not logged in


def test_unknown_user_gets_the_same_answer_as_a_wrong_password(client, world, container):
    response = login(client, "niemand", "irgendwas-langes")
    assert response.status_code == 401
    assert "Benutzername oder Passwort ist falsch." in response.get_data(as_text=True)
    assert _audit(container, "auth.failed")[-1].detail["reason"] == "unknown_user"


def test_five_failures_lock_the_username_for_this_address(client, world, container):
    set_passwords(container, "aarau")
    for _ in range(5):
        assert login(client, "aarau", "falsch-falsch-falsch").status_code == 401
    locked = login(client, "aarau")  # even the right password is refused now
    assert locked.status_code == 429
    assert "Zu viele fehlgeschlagene Anmeldungen" in locked.get_data(as_text=True)
    throttled = _audit(container, "auth.throttled")
    assert [(e.actor, e.outcome) for e in throttled] == [("aarau", "denied")]
    assert len(_audit(container, "auth.failed")) == 5  # a refused try is not a failure
    # Another address is not locked out by this one's failures.
    other = client.application.test_client()
    response = other.get("/login", environ_base={"REMOTE_ADDR": "10.1.2.3"})
    token = response.get_data(as_text=True).split('name="csrf_token" value="')[1].split('"')[0]
    ok = other.post(
        "/login",
        data={"username": "aarau", "password": PASSWORD, "csrf_token": token},
        environ_base={"REMOTE_ADDR": "10.1.2.3"},
    )
    assert ok.status_code == 302


def test_failures_spread_over_more_than_the_window_do_not_lock(client, world, container):
    set_passwords(container, "aarau")
    for _ in range(4):
        login(client, "aarau", "falsch-falsch-falsch")
    with container.db.transaction() as session:
        # The four failures happened 20 minutes ago: outside the 15-minute window.
        for entry in session.execute(
            select(AuditEntry).where(AuditEntry.action == "auth.failed")
        ).scalars():
            entry.at = entry.at - dt.timedelta(minutes=20)
    login(client, "aarau", "falsch-falsch-falsch")
    assert login(client, "aarau").status_code == 302


def test_login_form_without_csrf_token_is_refused(client, world, container):
    set_passwords(container, "aarau")
    client.get("/login")
    response = client.post("/login", data={"username": "aarau", "password": PASSWORD})
    assert response.status_code == 400
    body = response.get_data(as_text=True)
    assert "Das Formular ist abgelaufen" in body
    assert 'id="username"' in body  # the login form is shown again, on the same page
    assert client.get("/cases").status_code == 302
    refused = _audit(container, "web.csrf_refused")
    assert refused and refused[-1].detail == {"reason": "token", "endpoint": "web.login"}


def test_a_post_from_another_origin_is_refused(client, world, container):
    set_passwords(container, "aarau")
    login(client, "aarau")
    response = client.post(
        "/logout", data={"csrf_token": csrf(client)}, headers={"Origin": "https://evil.example"}
    )
    assert response.status_code == 400
    assert client.get("/cases").status_code == 200  # still logged in


def test_logout_needs_the_token_ends_the_session_and_is_audited(client, world, container):
    set_passwords(container, "aarau")
    login(client, "aarau")
    assert client.post("/logout").status_code == 400
    assert client.get("/cases").status_code == 200
    response = post(client, "/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert client.get("/cases").status_code == 302
    assert [e.actor for e in _audit(container, "auth.logout")] == ["aarau"]


def _last_seen(container, minutes_ago=None):
    """The (only) web session's last_seen_at; moved back by minutes_ago if given."""
    with container.db.transaction() as session:
        row = session.execute(select(WebSession)).scalar_one()
        if minutes_ago is not None:
            row.last_seen_at = utcnow() - dt.timedelta(minutes=minutes_ago)
        return row.last_seen_at


def test_idle_session_ends_and_polling_does_not_keep_it_alive(client, world, container):
    set_passwords(container, "aarau")
    login(client, "aarau")
    seen_before = _last_seen(container, minutes_ago=29)
    # A background poll of the processing state does not count as activity.
    client.get("/cases/00000000-0000-0000-0000-000000000000/processing")
    assert _last_seen(container) == seen_before
    _last_seen(container, minutes_ago=31)
    response = client.get("/cases")
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")
    page = client.get(response.headers["Location"])
    assert "nach 30 Minuten ohne Aktivität abgemeldet" in page.get_data(as_text=True)
    assert client.get("/cases").status_code == 302


def test_a_disabled_user_is_logged_out_at_the_next_request(client, world, container):
    set_passwords(container, "aarau")
    login(client, "aarau")
    with container.db.transaction() as session:
        session.execute(select(User).where(User.username == "aarau")).scalar_one().active = False
    response = client.get("/cases")
    assert response.status_code == 302 and response.headers["Location"].startswith("/login")


def test_next_only_returns_to_local_paths(client, world, container):
    set_passwords(container, "aarau")
    page = client.get("/login?next=//evil.example/x")
    token = csrf(client)
    assert 'name="next" value="//evil.example/x"' not in page.get_data(as_text=True)
    response = client.post(
        "/login",
        data={
            "username": "aarau",
            "password": PASSWORD,
            "csrf_token": token,
            "next": "//evil.example/x",
        },
    )
    assert response.headers["Location"] == "/cases"
    post(client, "/logout")
    response = client.post(
        "/login",
        data={
            "username": "aarau",
            "password": PASSWORD,
            "csrf_token": csrf(client),
            "next": "/search?q=x",
        },
    )
    assert response.headers["Location"] == "/search?q=x"


def test_every_page_sends_the_login_page_to_anonymous_visitors(client, world):
    for path in ("/", "/cases", "/search?q=x", "/audit", "/reports/ias", "/notifications"):
        response = client.get(path)
        assert response.status_code == 302, path
        assert response.headers["Location"].startswith("/login"), path
    assert client.get("/cases", headers={"Accept": "application/json"}).status_code == 401


def test_session_key_is_generated_once_and_kept_private(tmp_path):
    settings = load_settings({"DOSSIER_DATA_DIR": str(tmp_path / "data")})
    first = session_secret(settings)
    path = tmp_path / "data" / "session-secret.key"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert session_secret(settings) == first and len(first) >= 32
    configured = settings.with_overrides(secret_key="x" * 40)
    assert session_secret(configured) == "x" * 40


def test_cli_sets_a_password_from_stdin(container, world, monkeypatch):
    from dossier_service.cli import main

    monkeypatch.setenv("DOSSIER_DATA_DIR", str(container.settings.data_dir))
    monkeypatch.setenv("DOSSIER_DATABASE_URL", container.settings.database_url)
    runner = CliRunner()
    result = runner.invoke(
        main,
        ["users", "set-password", "--username", "baden", "--password-stdin"],
        input="Ein-langes-Passwort\n",
    )
    assert result.exit_code == 0, result.output
    with container.db.transaction() as session:
        stored = session.execute(select(User).where(User.username == "baden")).scalar_one()
        assert stored.password_hash.startswith("$argon2id$")
        assert "Ein-langes-Passwort" not in stored.password_hash
    short = runner.invoke(
        main, ["users", "set-password", "--username", "baden", "--password-stdin"], input="kurz\n"
    )
    assert short.exit_code == 1 and "at least 10 characters" in short.output
