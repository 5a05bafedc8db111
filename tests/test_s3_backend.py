"""The service end to end on the S3 backend (moto's standalone server as the S3 peer)."""

from __future__ import annotations

import io

import pytest

from dossier_service.app import create_app
from dossier_service.container import Container
from dossier_service.samples import make_docx, make_pdf
from dossier_service.services import fsck
from tests.factories import new_case, upload
from tests.s3_peer import s3_endpoint, s3_settings  # noqa: F401


@pytest.fixture
def s3_container(settings, s3_endpoint):  # noqa: F811
    """A container whose object store is a fresh S3 bucket."""
    s3 = s3_settings(settings, s3_endpoint)
    container = Container(s3)
    yield container
    container.close()


def test_upload_version_download_and_fsck_on_s3(s3_container, world):
    client = create_app(container=s3_container).test_client()
    case = new_case(client, world)
    pdf = make_pdf("Kurzassessment", ["Deutschkurs A1"])
    created = upload(client, world, "canton", case["id"], pdf, filename="kurz.pdf")
    assert created.status_code == 201, created.get_json()
    doc = created.get_json()
    docx = make_docx("Kurzassessment", ["Deutschkurs A2"])
    v2 = client.post(
        f"/api/v1/documents/{doc['id']}/versions",
        data={"file": (io.BytesIO(docx), "kurz.docx")},
        headers={**world.auth("canton"), "If-Match": f'"{doc["versions"][0]["sha256"]}"'},
        content_type="multipart/form-data",
    )
    assert v2.status_code == 201, v2.get_json()
    assert (
        client.get(
            f"/api/v1/documents/{doc['id']}/versions/1/content", headers=world.auth("canton")
        ).data
        == pdf
    )
    assert (
        client.get(f"/api/v1/documents/{doc['id']}/content", headers=world.auth("canton")).data
        == docx
    )
    ranged = client.get(
        f"/api/v1/documents/{doc['id']}/versions/1/content",
        headers={**world.auth("canton"), "Range": "bytes=5-14"},
    )
    assert ranged.status_code == 206 and ranged.data == pdf[5:15]
    # Each object carries its case, document, version and checksum as metadata.
    keys = list(s3_container.store.iter_keys("versions/"))
    assert len(keys) == 2
    metas = [s3_container.store.stat(k).metadata for k in keys]
    assert {m["version"] for m in metas} == {"1", "2"}
    assert all(m["case-id"] == case["id"] and m["document-id"] == doc["id"] for m in metas)
    assert {m["sha256"] for m in metas} == {v["sha256"] for v in v2.get_json()["versions"]}
    assert list(fsck.check(s3_container)) == []
    # Processing (fixity) ran against S3 too.
    versions = client.get(
        f"/api/v1/documents/{doc['id']}", headers=world.auth("canton")
    ).get_json()["versions"]
    assert [v["fixity"] for v in versions] == ["ok", "ok"]
