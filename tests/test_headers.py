"""Issue 10, finding 11: API answers are not cached; each server keeps its own control socket."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from flask.testing import FlaskClient

from dossier_service import server
from tests.factories import World, new_case, upload
from tests.sample_files import make_png


def test_api_answers_carry_no_store(client: FlaskClient, world: World) -> None:
    case_id = new_case(client, world)["id"]
    for path in ("/api/v1/health", "/api/v1/cases", f"/api/v1/cases/{case_id}"):
        response = client.get(path, headers=world.auth("canton"))
        assert response.status_code == 200, path
        assert response.headers["Cache-Control"] == "no-store", path
    # Errors too: they can name what exists.
    response = client.get("/api/v1/cases/nope", headers=world.auth("canton"))
    assert response.status_code == 404
    assert response.headers["Cache-Control"] == "no-store"


def test_downloads_are_private_and_not_stored(client: FlaskClient, world: World) -> None:
    case_id = new_case(client, world)["id"]
    document = upload(client, world, "canton", case_id, make_png(seed=3), filename="a.png")
    assert document.status_code == 201
    document_id = document.get_json()["id"]
    response = client.get(f"/api/v1/documents/{document_id}/content", headers=world.auth("canton"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "private, no-store"


def test_gunicorn_keeps_its_control_socket_in_the_data_directory(
    monkeypatch: Any, tmp_path: Path
) -> None:
    seen: dict[str, Any] = {}

    def fake_run(self: Any) -> None:
        seen.update({k: v.get() for k, v in self.cfg.settings.items()})

    monkeypatch.setattr(server._Gunicorn, "run", fake_run)
    server.run_server("127.0.0.1:0", control_socket=tmp_path / "gunicorn.ctl")
    assert seen["control_socket"] == str(tmp_path / "gunicorn.ctl")
    assert seen["control_socket_mode"] == 0o600


def test_make_run_does_not_print_passwords() -> None:
    makefile = (Path(__file__).parents[1] / "Makefile").read_text()
    run = makefile[makefile.index("\nrun:") : makefile.index("\nlint:")]
    # Only the file's place is printed, never a column of it that holds a password.
    assert "print $$3" not in run
    assert "demo-tokens.txt" in run


def test_gunicorn_outlasts_nginx_on_idle_keep_alive_connections(
    monkeypatch: Any, tmp_path: Path
) -> None:
    """The side that closes an idle connection first must be the one that reuses it: nginx.

    With gunicorn's default of 2 s, clients pausing about 2 s between requests (and nginx,
    which keeps upstream connections 60 s) sent requests into sockets gunicorn was closing
    and got connection resets (3 in the 10-minute load run).
    """
    seen: dict[str, Any] = {}

    def fake_run(self: Any) -> None:
        seen.update({k: v.get() for k, v in self.cfg.settings.items()})

    monkeypatch.setattr(server._Gunicorn, "run", fake_run)
    server.run_server("127.0.0.1:0", control_socket=tmp_path / "gunicorn.ctl")
    template = (
        Path(__file__).parents[1] / "dossier_service" / "nginx" / "dossier.conf.template"
    ).read_text()
    upstream = template[template.index("upstream dossier_app") :]
    upstream = upstream[: upstream.index("\n}")]
    match = re.search(r"keepalive_timeout (\d+)s;", upstream)
    assert match, "the upstream block sets keepalive_timeout (nginx's default is 60 s)"
    assert seen["keepalive"] > int(match.group(1)) >= 30
