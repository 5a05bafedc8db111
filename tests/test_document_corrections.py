"""Documents corrected, withdrawn, purged and moved: the API, access, index and audit follow."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from dossier_service.container import Container
from dossier_service.models import AuditEntry, DocumentTombstone, DocumentVersion
from dossier_service.samples import make_pdf
from tests.factories import (
    API,
    PDF_V1,
    PDF_V2,
    World,
    export_and_download,
    held_by,
    request_approval,
    small_closed_case,
    upload,
)

REPORT = make_pdf("Standortbericht", ["Sprachstand Zitronenfalter A2 erreicht."])


def _doc(client: FlaskClient, world: World, user: str, case_id: str, data: bytes = REPORT) -> str:
    response = upload(client, world, user, case_id, data, title="Standortbericht")
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def _search(client: FlaskClient, world: World, user: str, q: str) -> dict[str, Any]:
    response = client.get(f"{API}/search", query_string={"q": q}, headers=world.auth(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def _patch(client: FlaskClient, world: World, user: str, doc: str, body: dict[str, Any]) -> Any:
    return client.patch(f"{API}/documents/{doc}", json=body, headers=world.auth(user))


def _post(client: FlaskClient, world: World, user: str, url: str, body: dict[str, Any]) -> Any:
    return client.post(f"{API}{url}", json=body, headers=world.auth(user))


def _audit_actions(container: Container, document_id: str) -> list[str]:
    with container.db.transaction() as session:
        return list(
            session.execute(
                select(AuditEntry.action)
                .where(AuditEntry.document_id == document_id, AuditEntry.outcome == "ok")
                .order_by(AuditEntry.id)
            ).scalars()
        )


def test_a_correction_changes_the_facts_keeps_history_and_makes_no_version(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    response = _patch(
        client,
        world,
        "aarau",
        doc,
        {
            "title": "Standortbericht Frühling",
            "type": "programme_report",
            "document_date": "2026-03-14",
            "tags": ["  Sprache ", "sprache", "Schule   Aarau"],
            "reason": "Falscher Typ beim Hochladen",
        },
    )
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["title"] == "Standortbericht Frühling"
    assert body["type"] == "programme_report"
    assert body["document_date"] == "2026-03-14"
    assert body["tags"] == ["schule aarau", "sprache"]
    assert body["current_version"] == 1
    history = client.get(f"{API}/documents/{doc}/history", headers=world.auth("aarau")).get_json()
    fields = {item["field"]: item for item in history["items"]}
    assert set(fields) == {"title", "type", "document_date", "tags"}
    assert fields["type"]["old"] == "other" and fields["type"]["new"] == "programme_report"
    assert fields["document_date"]["old"] is None
    assert fields["tags"]["new"] == ["schule aarau", "sprache"]
    assert all(i["reason"] == "Falscher Typ beim Hochladen" for i in history["items"])
    assert all(i["by"] == "aarau" for i in history["items"])


def test_a_correction_is_validated_and_needs_a_reason(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    cases = [
        ({"title": "X"}, "reason"),
        ({"type": "poem", "reason": "r"}, "type"),
        ({"document_date": "2999-01-01", "reason": "r"}, "document_date"),
        ({"document_date": "14.3.2026", "reason": "r"}, "document_date"),
        ({"tags": ["x" * 41], "reason": "r"}, "tags"),
        ({"tags": [f"t{n}" for n in range(21)], "reason": "r"}, "tags"),
        ({"reason": "nothing"}, None),
        ({"colour": "red", "reason": "r"}, "colour"),
    ]
    for body, field in cases:
        response = _patch(client, world, "aarau", doc, body)
        assert response.status_code == 422, (body, response.get_json())
        if field is not None:
            assert field in str(response.get_json()), (body, response.get_json())
    same = _patch(client, world, "aarau", doc, {"title": "Standortbericht", "reason": "r"})
    assert same.status_code == 409 and same.get_json()["error"]["code"] == "nothing_changed"


def test_who_may_correct_follows_the_right_to_write(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    body = {"title": "Neu", "reason": "Tippfehler"}
    assert _patch(client, world, "baden", doc, body).status_code == 404
    assert _patch(client, world, "canton", doc, body).status_code == 403
    assert _patch(client, world, "auditor", doc, body).status_code == 403
    assert _patch(client, world, "aarau", doc, body).status_code == 200


def test_corrected_title_and_tags_are_searchable_at_once(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    assert _search(client, world, "aarau", "Kreuzworträtsel")["total"] == 0
    response = _patch(
        client,
        world,
        "aarau",
        doc,
        {"title": "Kreuzworträtsel Bericht", "tags": ["Zebrastreifen"], "reason": "Titel"},
    )
    assert response.status_code == 200
    hits = _search(client, world, "aarau", "Kreuzworträtsel")["items"]
    assert [h["document_id"] for h in hits] == [doc]
    assert hits[0]["title"] == "Kreuzworträtsel Bericht"
    by_tag = _search(client, world, "aarau", "Zebrastreifen")
    assert [h["document_id"] for h in by_tag["items"]] == [doc]
    assert by_tag["facets"]["tags"] == {"zebrastreifen": 1}


def test_a_withdrawn_document_is_gone_for_readers_but_kept_for_the_canton(client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    assert [h["document_id"] for h in _search(client, world, "aarau", "Zitronenfalter")["items"]]
    response = _post(
        client, world, "aarau", f"/documents/{doc}/withdraw", {"reason": "Falsche Person"}
    )
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["withdrawn"] is True
    for user in ("aarau", "canton"):
        auth = world.auth(user)
        assert client.get(f"{API}/documents/{doc}", headers=auth).status_code == 404
        assert client.get(f"{API}/documents/{doc}/content", headers=auth).status_code == 404
        listed = client.get(f"{API}/cases/{cid}/documents", headers=auth).get_json()["items"]
        assert doc not in {d["id"] for d in listed}
        assert _search(client, world, user, "Zitronenfalter")["total"] == 0
    assert f"{doc}:1" not in set(container.search.doc_keys())
    # The canton asks explicitly, and that is logged as its own action.
    canton = world.auth("canton")
    listed = client.get(f"{API}/cases/{cid}/documents?withdrawn=true", headers=canton).get_json()
    assert [d["id"] for d in listed["items"]] == [doc]
    assert listed["items"][0]["withdrawn_reason"] == "Falsche Person"
    assert client.get(f"{API}/documents/{doc}?withdrawn=true", headers=canton).status_code == 200
    content = client.get(f"{API}/documents/{doc}/content?withdrawn=true", headers=canton)
    assert content.status_code == 200 and content.data == REPORT
    aarau = world.auth("aarau")
    assert (
        client.get(f"{API}/cases/{cid}/documents?withdrawn=true", headers=aarau).status_code == 403
    )
    actions = _audit_actions(container, doc)
    assert "document.withdraw" in actions
    assert "document.read_withdrawn" in actions and "content.read_withdrawn" in actions
    again = _post(client, world, "canton", f"/documents/{doc}/withdraw", {"reason": "x"})
    assert again.status_code == 409 and again.get_json()["error"]["code"] == "already_withdrawn"


def test_who_may_withdraw(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    body = {"reason": "Falsche Person"}
    assert _post(client, world, "baden", f"/documents/{doc}/withdraw", body).status_code == 404
    assert _post(client, world, "auditor", f"/documents/{doc}/withdraw", body).status_code == 403
    assert _post(client, world, "aarau", f"/documents/{doc}/withdraw", {}).status_code == 422
    assert _post(client, world, "canton", f"/documents/{doc}/withdraw", body).status_code == 200


def test_the_disclosure_includes_a_withdrawn_document_marked(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    _post(client, world, "aarau", f"/documents/{doc}/withdraw", {"reason": "Falsche Person"})
    response = client.get(f"{API}/cases/{cid}/disclosure", headers=world.auth("canton"))
    assert response.status_code == 200, response.status_code
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    data = json.loads(archive.read("person.json"))
    disclosed = {d["id"]: d for d in data["documents"]}
    assert disclosed[doc]["withdrawn"] is True
    assert disclosed[doc]["withdrawn_reason"] == "Falsche Person"
    assert [h["field"] for h in disclosed[doc]["history"]] == ["withdrawn"]


def test_purge_deletes_bytes_and_index_but_leaves_a_tombstone(client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid, PDF_V1)
    added = client.post(
        f"{API}/documents/{doc}/versions",
        data={"file": (io.BytesIO(PDF_V2), "v2.pdf"), "reason": "Ergänzt"},
        headers=world.auth("aarau"),
        content_type="multipart/form-data",
    )
    assert added.status_code == 201, added.get_json()
    with container.db.transaction() as session:
        keys = list(
            session.execute(
                select(DocumentVersion.storage_key).where(DocumentVersion.document_id == doc)
            ).scalars()
        )
    assert len(keys) == 2
    purge = {"reason": "Datenschutz: falsche Person"}
    early = _post(client, world, "canton", f"/documents/{doc}/purge", purge)
    assert early.status_code == 409 and early.get_json()["error"]["code"] == "not_withdrawn"
    _post(client, world, "aarau", f"/documents/{doc}/withdraw", {"reason": "Falsche Person"})
    assert _post(client, world, "aarau", f"/documents/{doc}/purge", purge).status_code == 403
    response = _post(client, world, "canton", f"/documents/{doc}/purge", purge)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["versions"] == 2
    stored = set(container.store.iter_keys(""))
    assert not any(key in stored for key in keys)
    assert not any(key.startswith(f"{doc}:") for key in container.search.doc_keys())
    canton = world.auth("canton")
    assert client.get(f"{API}/documents/{doc}?withdrawn=true", headers=canton).status_code == 404
    with container.db.transaction() as session:
        tombstone = session.get(DocumentTombstone, doc)
        assert tombstone is not None
        assert tombstone.case_id == cid and tombstone.purged_by == "canton"
        assert tombstone.objects_deleted_at is not None and tombstone.pending_objects == []
    assert _audit_actions(container, doc)[-1] == "document.purge"


def test_purge_is_refused_under_legal_hold(client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    _post(client, world, "aarau", f"/documents/{doc}/withdraw", {"reason": "Falsche Person"})
    hold = _post(client, world, "canton", f"/cases/{cid}/legal-hold", {"reason": "Verfahren"})
    assert hold.status_code in (200, 201), hold.get_json()
    response = _post(client, world, "canton", f"/documents/{doc}/purge", {"reason": "weg"})
    assert response.status_code == 409 and response.get_json()["error"]["code"] == "legal_hold"
    canton = world.auth("canton")
    assert (
        client.get(f"{API}/documents/{doc}/content?withdrawn=true", headers=canton).status_code
        == 200
    )


def test_a_move_takes_access_index_and_audit_to_the_right_case(client, world, container):
    wrong = held_by(client, world, "aarau", family_name="Berisha")
    right = held_by(
        client, world, "baden", family_name="Krasniqi", zemis_number="87654321.0", ahv_number=None
    )
    doc = _doc(client, world, "aarau", wrong, PDF_V1)
    client.post(
        f"{API}/documents/{doc}/versions",
        data={"file": (io.BytesIO(PDF_V2), "v2.pdf")},
        headers=world.auth("aarau"),
        content_type="multipart/form-data",
    )
    body = {"to_case": right, "reason": "Falsche Person"}
    assert _post(client, world, "aarau", f"/documents/{doc}/move", body).status_code == 403
    missing = _post(client, world, "canton", f"/documents/{doc}/move", {**body, "to_case": "x"})
    assert missing.status_code == 422
    response = _post(client, world, "canton", f"/documents/{doc}/move", body)
    assert response.status_code == 200, response.get_json()
    assert response.get_json()["case_id"] == right
    assert response.get_json()["current_version"] == 2
    assert client.get(f"{API}/documents/{doc}", headers=world.auth("aarau")).status_code == 404
    assert (
        client.get(f"{API}/documents/{doc}/content", headers=world.auth("baden")).status_code == 200
    )
    assert [
        h["case_id"] for h in _search(client, world, "baden", "Deutschkenntnisse")["items"]
    ] == [right]
    assert _search(client, world, "aarau", "Deutschkenntnisse")["total"] == 0
    with container.db.transaction() as session:
        rows = session.execute(
            select(AuditEntry.action, AuditEntry.case_id).where(
                AuditEntry.document_id == doc, AuditEntry.action.like("document.move%")
            )
        ).all()
    assert set(rows) == {("document.move", wrong), ("document.move_in", right)}
    same = _post(client, world, "canton", f"/documents/{doc}/move", body)
    assert same.status_code == 409 and same.get_json()["error"]["code"] == "same_case"


def test_identical_bytes_are_refused_and_store_nothing(client, world, container):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid, PDF_V1)
    before = set(container.store.iter_keys("versions/"))
    response = client.post(
        f"{API}/documents/{doc}/versions",
        data={"file": (io.BytesIO(PDF_V1), "same.pdf")},
        headers=world.auth("aarau"),
        content_type="multipart/form-data",
    )
    assert (
        response.status_code == 409 and response.get_json()["error"]["code"] == "identical_version"
    )
    assert set(container.store.iter_keys("versions/")) == before
    with container.db.transaction() as session:
        numbers = session.execute(
            select(DocumentVersion.number).where(DocumentVersion.document_id == doc)
        ).scalars()
        assert list(numbers) == [1]


def test_a_version_carries_its_reason_form_field_or_query(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid, PDF_V1)
    by_form = client.post(
        f"{API}/documents/{doc}/versions",
        data={"file": (io.BytesIO(PDF_V2), "v2.pdf"), "reason": "Unterschrift ergänzt"},
        headers=world.auth("aarau"),
        content_type="multipart/form-data",
    )
    assert by_form.status_code == 201
    by_query = client.post(
        f"{API}/documents/{doc}/versions?reason=Scan+besser",
        data={"file": (io.BytesIO(REPORT), "v3.pdf")},
        headers=world.auth("aarau"),
        content_type="multipart/form-data",
    )
    assert by_query.status_code == 201
    versions = by_query.get_json()["versions"]
    assert [v["reason"] for v in versions] == [None, "Unterschrift ergänzt", "Scan besser"]


def test_the_sip_leaves_withdrawn_documents_out(client, world, container):
    case = small_closed_case(client, world)
    canton = world.auth("canton")
    items = client.get(f"{API}/cases/{case.id}/documents", headers=canton).get_json()["items"]
    doc = items[0]["id"]
    assert (
        _post(
            client, world, "canton", f"/documents/{doc}/withdraw", {"reason": "falsch"}
        ).status_code
        == 200
    )
    _export_id, sip = export_and_download(client, world, [case.id])
    archive = zipfile.ZipFile(io.BytesIO(sip))
    assert all(archive.read(name) != PDF_V1 for name in archive.namelist())
    assert not any(
        doc in archive.read(name).decode("utf-8", "replace") for name in archive.namelist()
    )


def test_a_document_a_cost_approval_rests_on_is_not_moved(client, world):
    cid = held_by(client, world)
    other = held_by(
        client, world, "baden", family_name="Gashi", zemis_number="87654321.1", ahv_number=None
    )
    doc = _doc(client, world, "aarau", cid)
    requested = request_approval(client, world, cid, document_ids=[doc])
    assert requested.status_code == 201, requested.get_json()
    body = {"to_case": other, "reason": "Falsche Person"}
    response = _post(client, world, "canton", f"/documents/{doc}/move", body)
    assert response.status_code == 409
    assert response.get_json()["error"]["code"] == "document_in_use"


def test_a_withdrawn_document_cannot_be_attached_to_a_cost_approval(client, world):
    cid = held_by(client, world)
    doc = _doc(client, world, "aarau", cid)
    _post(client, world, "aarau", f"/documents/{doc}/withdraw", {"reason": "Falsche Person"})
    assert request_approval(client, world, cid, document_ids=[doc]).status_code == 422
