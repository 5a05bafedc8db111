"""Searches record which documents and cases each page showed; the person's log names them."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import pytest
from sqlalchemy import select

from dossier_service.container import Container
from dossier_service.models import AuditEntry
from dossier_service.samples import make_pdf
from tests.factories import World, login, new_case, set_passwords, upload


@pytest.fixture
def two_cases(client: Any, world: World) -> dict[str, Any]:
    """Case A with two 'Zauberwort' documents, case B with one and a word of its own."""
    a = new_case(client, world)
    b = new_case(client, world, family_name="Okafor")
    docs: dict[str, Any] = {"a": a["id"], "b": b["id"]}
    for name, case, lines in (
        ("a1", a, ["Zauberwort eins."]),
        ("a2", a, ["Zauberwort zwei."]),
        ("b1", b, ["Zauberwort drei, Bernwort."]),
    ):
        created = upload(
            client, world, "canton", case["id"], make_pdf(name, lines), title=f"Titel {name}"
        )
        assert created.status_code == 201, created.get_json()
        docs[name] = created.get_json()["id"]
    return docs


def _last_search(container: Container) -> AuditEntry:
    with container.db.transaction() as session:
        return session.execute(
            select(AuditEntry)
            .where(AuditEntry.action == "search")
            .order_by(AuditEntry.id.desc())
            .limit(1)
        ).scalar_one()


def _api_search(client: Any, world: World, **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/search", query_string=params, headers=world.auth("canton"))
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def test_an_api_search_page_records_the_shown_documents_and_cases(
    client, world, container, two_cases
):
    body = _api_search(client, world, q="Zauberwort")
    shown = [item["document_id"] for item in body["items"]]
    assert set(shown) == {two_cases["a1"], two_cases["a2"], two_cases["b1"]}
    entry = _last_search(container)
    assert entry.detail["documents"] == shown
    assert entry.detail["cases"] == sorted({two_cases["a"], two_cases["b"]})

    # Each page records only what it showed.
    page = _api_search(client, world, q="Zauberwort", per_page=1, page=2)
    entry = _last_search(container)
    assert entry.detail["documents"] == [page["items"][0]["document_id"]]
    assert entry.detail["cases"] == [page["items"][0]["case_id"]]


def test_a_web_search_page_records_the_shown_documents_and_cases(
    client, world, container, two_cases
):
    set_passwords(container, "canton")
    login(client, "canton")
    response = client.get("/search?q=Bernwort")
    assert response.status_code == 200
    entry = _last_search(container)
    assert entry.detail["documents"] == [two_cases["b1"]]
    assert entry.detail["cases"] == [two_cases["b"]]


def _disclosure_log(client: Any, world: World, case_id: str) -> tuple[list[dict[str, Any]], str]:
    response = client.get(f"/api/v1/cases/{case_id}/disclosure", headers=world.auth("canton"))
    assert response.status_code == 200
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    log = json.loads(archive.read("zugriffsprotokoll.json"))
    return log, archive.read("index.html").decode("utf-8")


def test_the_disclosure_names_searches_that_showed_the_persons_documents(
    client, world, container, two_cases
):
    _api_search(client, world, q="Zauberwort")  # shows A's and B's documents
    _api_search(client, world, q="Bernwort")  # shows only B's document
    log, page = _disclosure_log(client, world, two_cases["a"])
    searches = [e for e in log if e["action"] == "search"]
    assert len(searches) == 1
    assert searches[0]["description"] == "In Suchergebnissen angezeigt"
    assert "Titel a1" in searches[0]["document"] and "Titel a2" in searches[0]["document"]
    assert "Titel b1" not in searches[0]["document"]
    assert "In Suchergebnissen angezeigt" in page

    log_b, _ = _disclosure_log(client, world, two_cases["b"])
    assert len([e for e in log_b if e["action"] == "search"]) == 2


def test_the_case_access_log_lists_the_searches_that_showed_it(client, world, container, two_cases):
    _api_search(client, world, q="Bernwort")
    _api_search(client, world, q="Zauberwort")
    body = client.get(
        "/api/v1/audit", query_string={"case_id": two_cases["a"]}, headers=world.auth("auditor")
    ).get_json()
    searches = [e for e in body["items"] if e["action"] == "search"]
    assert [e["detail"]["q"] for e in searches] == ["Zauberwort"]
