"""Downloads: exact bytes, ETags, conditional and ranged requests, headers, audit."""

from __future__ import annotations

import io
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import select

from dossier_service.container import Container
from dossier_service.models import AuditEntry
from tests.factories import World, new_case, upload
from tests.sample_files import make_png
from tests.upload_checks import assert_nothing_left, snapshot

# Binary (every byte value occurs) and inspected in-process, which keeps the tests quick.
V1 = make_png(40, 40, seed=1)
V2 = make_png(40, 40, seed=2)


@pytest.fixture(autouse=True)
def _initialised_store(container: Container) -> None:
    """Create the store's layout, as ``dossier init`` does in a real installation."""
    container.store.check()


@pytest.fixture
def document(client: FlaskClient, world: World) -> dict[str, Any]:
    """A case of the canton with one document (version 1 = V1)."""
    cid = new_case(client, world)["id"]
    response = upload(client, world, "canton", cid, V1, filename="ausweis.png")
    assert response.status_code == 201
    return response.get_json()  # type: ignore[no-any-return]


def content_url(document: dict[str, Any], number: int | None = None) -> str:
    """The content address of a document's current or numbered version."""
    if number is None:
        return f"/api/v1/documents/{document['id']}/content"
    return f"/api/v1/documents/{document['id']}/versions/{number}/content"


def reads(container: Container, document_id: str) -> list[AuditEntry]:
    """The content.read entries of a document, oldest first."""
    with container.db.transaction() as session:
        return list(
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.action == "content.read", AuditEntry.document_id == document_id)
                .order_by(AuditEntry.id)
            ).scalars()
        )


def post_version(
    client: FlaskClient, world: World, document: dict[str, Any], data: bytes, **headers: str
) -> Any:
    """POST the next version of a document as the canton."""
    return client.post(
        f"/api/v1/documents/{document['id']}/versions",
        data={"file": (io.BytesIO(data), "ausweis-v2.png")},
        headers={**world.auth("canton"), **headers},
        content_type="multipart/form-data",
    )


def test_download_is_byte_identical_with_safe_headers(client, world, document):
    sha = document["versions"][0]["sha256"]
    response = client.get(content_url(document), headers=world.auth("canton"))
    assert response.status_code == 200
    assert response.data == V1
    assert response.headers["ETag"] == f'"{sha}"'
    assert response.headers["Content-Length"] == str(len(V1))
    assert response.headers["Content-Type"] == "image/png"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Accept-Ranges"] == "bytes"
    assert "sandbox" in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Disposition"].startswith("attachment;")
    assert "private" in response.headers["Cache-Control"]


def test_content_read_is_audited_with_version_number(client, world, container, document):
    assert post_version(client, world, document, V2).status_code == 201
    assert client.get(content_url(document), headers=world.auth("canton")).data == V2
    assert client.get(content_url(document, 1), headers=world.auth("canton")).data == V1
    entries = reads(container, document["id"])
    assert [(e.actor, e.unit, e.version, e.outcome) for e in entries] == [
        ("canton", "ag", 2, "ok"),
        ("canton", "ag", 1, "ok"),
    ]
    assert all(e.case_id == document["case_id"] for e in entries)


def test_if_none_match_gives_304_and_is_audited(client, world, container, document):
    etag = f'"{document["versions"][0]["sha256"]}"'
    response = client.get(
        content_url(document), headers={**world.auth("canton"), "If-None-Match": etag}
    )
    assert response.status_code == 304
    assert response.data == b""
    assert response.headers["ETag"] == etag
    # A weak validator in a list of candidates matches too.
    listed = client.get(
        content_url(document),
        headers={**world.auth("canton"), "If-None-Match": f'"0000", W/{etag}'},
    )
    assert listed.status_code == 304
    stale = client.get(
        content_url(document), headers={**world.auth("canton"), "If-None-Match": '"abc"'}
    )
    assert (stale.status_code, stale.data) == (200, V1)
    entries = reads(container, document["id"])
    assert [(e.version, e.detail) for e in entries] == [(1, {"not_modified": True})] * 2 + [(1, {})]


def _get_range(client: FlaskClient, world: World, document: dict[str, Any], **headers: str) -> Any:
    """GET the current content with extra headers (Range, If-Range) as the canton."""
    return client.get(content_url(document), headers={**world.auth("canton"), **headers})


def test_ranges(client, world, container, document):
    size = len(V1)
    first = _get_range(client, world, document, Range="bytes=0-9")
    assert first.status_code == 206
    assert first.data == V1[:10]
    assert first.headers["Content-Range"] == f"bytes 0-9/{size}"
    assert first.headers["Content-Length"] == "10"

    suffix = _get_range(client, world, document, Range="bytes=-7")
    assert suffix.status_code == 206
    assert suffix.data == V1[-7:]
    assert suffix.headers["Content-Range"] == f"bytes {size - 7}-{size - 1}/{size}"

    rest = _get_range(client, world, document, Range="bytes=100-")
    assert (rest.status_code, rest.data) == (206, V1[100:])

    # If-Range with an old ETag: the client's partial copy is stale, so the whole file comes.
    stale = _get_range(client, world, document, Range="bytes=0-9", **{"If-Range": '"old"'})
    assert (stale.status_code, stale.data) == (200, V1)

    entries = reads(container, document["id"])
    assert [e.detail for e in entries] == [
        {"range": [0, 10]},
        {"range": [size - 7, 7]},
        {"range": [100, size - 100]},
        {},
    ]
    assert {e.version for e in entries} == {1}


def test_unsatisfiable_range_is_416_and_not_audited_as_read(client, world, container, document):
    response = _get_range(client, world, document, Range=f"bytes={len(V1)}-")
    assert response.status_code == 416
    assert response.headers["Content-Range"] == f"bytes */{len(V1)}"
    assert reads(container, document["id"]) == []


def test_stale_if_match_on_new_version_is_412_and_nothing_stored(
    client, world, container, document
):
    before = snapshot(container)
    response = post_version(client, world, document, V2, **{"If-Match": '"' + "0" * 64 + '"'})
    assert response.status_code == 412
    assert response.get_json()["error"]["code"] == "version_conflict"
    assert_nothing_left(container, before)
    current = client.get(
        f"/api/v1/documents/{document['id']}", headers=world.auth("canton")
    ).get_json()
    assert current["current_version"] == 1


def test_current_if_match_on_new_version_is_201(client, world, container, document):
    etag = f'"{document["versions"][0]["sha256"]}"'
    response = post_version(client, world, document, V2, **{"If-Match": etag})
    assert response.status_code == 201, response.get_json()
    assert response.get_json()["current_version"] == 2
    # The ETag that was current is stale now: a second writer with it gets 412.
    before = snapshot(container)
    again = post_version(client, world, document, make_png(seed=3), **{"If-Match": etag})
    assert again.status_code == 412
    assert_nothing_left(container, before)


def test_unknown_version_and_unreadable_case_are_404(client, world, container, document):
    missing = client.get(content_url(document, 99), headers=world.auth("canton"))
    assert missing.status_code == 404
    assert missing.get_json()["error"]["code"] == "version_not_found"
    hidden = client.get(content_url(document), headers=world.auth("aarau"))
    assert hidden.status_code == 404
    assert hidden.get_json()["error"]["code"] == "document_not_found"
    # Both refusals are logged; the foreign unit's attempt names the case it tried to reach.
    entries = [(e.actor, e.outcome, e.case_id) for e in reads(container, document["id"])]
    assert entries == [
        ("canton", "denied", document["case_id"]),
        ("aarau", "denied", document["case_id"]),
    ]


def test_missing_object_is_503_not_a_crash(client, world, container, document):
    (key,) = container.store.iter_keys("versions/")
    container.store.delete(key)
    response = client.get(content_url(document), headers=world.auth("canton"))
    assert response.status_code == 503
    assert response.get_json()["error"]["code"] == "content_missing"
