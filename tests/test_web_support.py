"""Helpers of the web-interface tests: passwords, login, the session's CSRF token."""

from __future__ import annotations

import re
from typing import Any

from flask.testing import FlaskClient

from dossier_service.container import Container
from dossier_service.services import accounts

PASSWORD = "Sicheres-Passwort-2026"


def set_passwords(container: Container, *usernames: str) -> None:
    """Give the users the test password."""
    with container.db.transaction() as session:
        for username in usernames:
            accounts.set_password(session, username, PASSWORD)


def csrf(client: FlaskClient) -> str:
    """The CSRF token of the client's session (created by a first page view if missing)."""
    with client.session_transaction() as session:
        token = session.get("csrf")
    if token is None:
        client.get("/login")
        with client.session_transaction() as session:
            token = session["csrf"]
    return str(token)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    """Log in through the form, as a browser would (token from the login page)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
    )


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf(client)}, **kwargs)
