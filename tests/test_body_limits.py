"""Issue 10, finding 3: request bodies are bounded and refused before they are read."""

from __future__ import annotations

import io
import json
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import select
from werkzeug.test import EnvironBuilder, run_wsgi_app

from dossier_service.app import create_app
from dossier_service.container import Container
from dossier_service.models import AuditEntry
from tests.factories import World, fresh_person, login, new_case, set_passwords, upload
from tests.sample_files import make_png

HUGE = 300 * 1024 * 1024


class Tripwire(io.RawIOBase):
    """A request body that counts what the app reads and fails if it reads past ``allowed``."""

    def __init__(self, allowed: int, total: int = HUGE, fill: bytes = b" ") -> None:
        self.allowed = allowed
        self.total = total
        self.fill = fill
        self.read_bytes = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        size = min(len(buffer), self.total - self.read_bytes, 64 * 1024)
        if size <= 0:
            return 0
        if self.read_bytes + size > self.allowed:
            raise AssertionError(f"the app read past {self.allowed} bytes of the body")
        buffer[:size] = self.fill * size
        self.read_bytes += size
        return size


def _error(response: Any) -> dict[str, Any]:
    body = response.get_json()
    assert set(body) == {"error"}, body
    assert {"code", "message"} <= set(body["error"]), body
    return body["error"]  # type: ignore[no-any-return]


def _send(
    app: Flask,
    path: str,
    stream: Any,
    *,
    length: int | None,
    method: str = "POST",
    content_type: str = "application/json",
    headers: dict[str, str] | None = None,
) -> Any:
    """Send a body stream as gunicorn hands it over: a declared length, or chunked (none)."""
    environ = EnvironBuilder(path=path, method=method, headers=headers).get_environ()
    environ["wsgi.input"] = stream
    # gunicorn marks a body it de-chunks itself this way (it then has no Content-Length).
    environ["wsgi.input_terminated"] = True
    environ["CONTENT_TYPE"] = content_type
    environ.pop("CONTENT_LENGTH", None)
    if length is not None:
        environ["CONTENT_LENGTH"] = str(length)
    app_iter, status, response_headers = run_wsgi_app(app, environ, buffered=True)
    return app.response_class(app_iter, status, response_headers)


JSON_ENDPOINTS = [
    ("POST", "/api/v1/cases"),
    ("PATCH", "/api/v1/cases/{case}"),
    ("POST", "/api/v1/cases/{case}/transfers"),
    ("POST", "/api/v1/cases/{case}/measures"),
    ("POST", "/api/v1/exports"),
]


@pytest.mark.parametrize(("method", "path"), JSON_ENDPOINTS)
def test_an_oversized_json_body_gets_413_before_a_byte_is_read(
    app: Flask, client: FlaskClient, world: World, method: str, path: str
) -> None:
    case_id = new_case(client, world)["id"]
    stream = Tripwire(allowed=0)
    response = _send(
        app,
        path.format(case=case_id),
        stream,
        length=HUGE,
        method=method,
        headers=world.auth("canton"),
    )
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"
    assert response.headers["Cache-Control"] == "no-store"
    assert stream.read_bytes == 0


def test_a_chunked_body_is_counted_as_it_arrives(app: Flask, world: World) -> None:
    stream = Tripwire(allowed=1024 * 1024 + 256 * 1024, total=HUGE)
    response = _send(app, "/api/v1/cases", stream, length=None, headers=world.auth("canton"))
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"
    assert stream.read_bytes <= 1024 * 1024 + 256 * 1024


def test_a_chunked_body_under_the_limit_still_works(app: Flask, world: World) -> None:
    person = fresh_person(family_name="Güneş", given_names="Şahin")
    body = json.dumps({"person": person, "entry_date": "2025-03-01"}).encode()
    response = _send(
        app, "/api/v1/cases", io.BytesIO(body), length=None, headers=world.auth("canton")
    )
    assert response.status_code == 201, response.get_json()


def test_the_limit_is_a_setting(container: Container, world: World) -> None:
    settings = container.settings.with_overrides(max_body_bytes=2048)
    app = create_app(settings, container=Container(settings))
    response = app.test_client().post(
        "/api/v1/cases",
        data=b"{" + b" " * 4096 + b"}",
        headers={"Content-Type": "application/json", **world.auth("canton")},
    )
    assert response.status_code == 413
    assert _error(response)["code"] == "payload_too_large"


def test_an_auditor_is_refused_before_the_body_is_read(
    app: Flask, world: World, container: Container
) -> None:
    stream = Tripwire(allowed=0)
    response = _send(app, "/api/v1/cases", stream, length=512, headers=world.auth("auditor"))
    assert response.status_code == 403
    assert _error(response)["code"] == "forbidden"
    assert stream.read_bytes == 0
    with container.db.transaction() as session:
        entry = session.execute(
            select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
        ).scalar_one()
        assert (entry.actor, entry.action, entry.outcome) == ("auditor", "case.create", "denied")


def test_a_huge_login_form_gets_a_german_413_page_before_parsing(app: Flask) -> None:
    stream = Tripwire(allowed=0, fill=b"a")
    response = _send(
        app, "/login", stream, length=HUGE, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "text/html" in response.headers["Content-Type"]
    assert "Die Anfrage ist grösser als erlaubt." in response.get_data(as_text=True)
    assert stream.read_bytes == 0


def test_a_chunked_login_form_is_cut_off_at_the_limit(app: Flask) -> None:
    stream = Tripwire(allowed=1024 * 1024 + 256 * 1024, fill=b"a")
    response = _send(
        app, "/login", stream, length=None, content_type="application/x-www-form-urlencoded"
    )
    assert response.status_code == 413
    assert "Die Anfrage ist grösser als erlaubt." in response.get_data(as_text=True)


def test_uploads_still_take_files_larger_than_the_body_limit(
    container: Container, world: World
) -> None:
    settings = container.settings.with_overrides(max_body_bytes=4096)
    app: Flask = create_app(settings, container=Container(settings))
    client = app.test_client()
    case_id = new_case(client, world)["id"]
    png = make_png(300, 300, seed=7)
    assert len(png) > 4096
    response = upload(client, world, "canton", case_id, png, filename="scan.png")
    assert response.status_code == 201, response.get_json()
    # ...and the same app refuses a JSON body of that size.
    response = client.post(
        "/api/v1/cases",
        data=b"{" + b" " * len(png) + b"}",
        headers={"Content-Type": "application/json", **world.auth("canton")},
    )
    assert response.status_code == 413


def test_web_pages_still_take_small_forms(
    client: FlaskClient, container: Container, world: World
) -> None:
    set_passwords(container, "canton")
    response = login(client, "canton")
    assert response.status_code in (302, 303)
