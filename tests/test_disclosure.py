"""Right of access: the canton hands the person everything held about them, readably."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
from typing import Any
from urllib.parse import unquote

import pytest
from sqlalchemy import select

from dossier_service.dates import local_today
from dossier_service.models import AuditEntry, User
from dossier_service.services import disclosure
from dossier_service.services.accounts import identity_for_user
from tests.factories import PDF_V1, closed_case, held_by, new_case, small_closed_case, upload

API = "/api/v1"
HOSTILE = '<script>alert("x")</script> & Co'


def fetch(client: Any, world: Any, case_id: str, user: str = "canton") -> Any:
    return client.get(f"{API}/cases/{case_id}/disclosure", headers=world.auth(user))


def test_the_disclosure_holds_person_data_every_version_and_the_access_log(
    client, world, container
):
    case = closed_case(client, world, ahv_number="756.9217.0769.85")
    response = fetch(client, world, case.id)
    assert response.status_code == 200
    assert response.is_streamed
    assert response.mimetype == "application/zip"
    assert f'filename="Auskunft-{case.reference}.zip"' in response.headers["Content-Disposition"]
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    assert archive.testzip() is None
    names = archive.namelist()
    assert {"person.json", "zugriffsprotokoll.json", "index.html"} <= set(names)

    person = json.loads(archive.read("person.json"))
    assert person["person"]["family_name"] == "Haile"
    assert person["person"]["ahv_number"] == "756.9217.0769.85"
    assert person["case"]["reference"] == case.reference
    assert [r["unit"]["code"] for r in person["responsibilities"]] == ["ag", "aarau"]
    assert [d["unit"]["code"] for d in person["delegations"]] == ["caritas"]
    assert person["target_groups"][0]["target_group"] == "education"
    assert person["closures"][0]["reason"] == "integrated_employment"

    # Every version, byte for byte, under a readable name.
    files = [n for n in names if n.startswith("Dokumente/")]
    assert len(files) == 4
    assert {hashlib.sha256(archive.read(n)).hexdigest() for n in files} == set(case.versions)
    assert "Dokumente/001 Kurzassessment - Kurzassessment/Version 1 - kurz.pdf" in files
    assert "Dokumente/001 Kurzassessment - Kurzassessment/Version 2 - kurz-v2.pdf" in files
    listed = [v["file"] for d in person["documents"] for v in d["versions"]]
    assert sorted(listed) == sorted(files)

    # The access log up to and including this disclosure, without staff names or addresses.
    log = json.loads(archive.read("zugriffsprotokoll.json"))
    assert log[0]["action"] == "case.create" and log[0]["description"] == "Fall eröffnet"
    assert log[-1]["action"] == "disclosure.create"
    assert {
        "document.create",
        "version.create",
        "transfer.create",
        "delegation.create",
        "case.close",
    } <= {e["action"] for e in log}
    assert all(
        set(e)
        == {"at", "action", "description", "unit", "unit_name", "document", "version", "outcome"}
        for e in log
    )
    with container.db.transaction() as session:
        expected = (
            session.execute(
                select(AuditEntry.id).where(AuditEntry.case_id == case.id).order_by(AuditEntry.id)
            )
            .scalars()
            .all()
        )
    assert len(log) == len(expected)

    # index.html: German, every link points at a file in the ZIP.
    page = archive.read("index.html").decode("utf-8")
    assert '<html lang="de-CH">' in page
    assert "Auskunft über Ihre Daten" in page and "Zugriffsprotokoll" in page
    links = [unquote(h) for h in re.findall(r'href="([^"]+)"', page)]
    assert sorted(links) == sorted(files)
    assert page.count("<tr><td>") >= len(log)


def test_values_are_escaped_in_the_index_page(client, world):
    case = new_case(client, world, family_name=HOSTILE)
    document = upload(
        client, world, "canton", case["id"], PDF_V1, title=HOSTILE, filename="a<b>.pdf"
    )
    assert document.status_code == 201
    response = fetch(client, world, case["id"])
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    page = archive.read("index.html").decode("utf-8")
    assert "<script>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; &amp; Co" in page
    # File names are made safe too (no path separators or markup characters).
    assert all("<" not in n and "\\" not in n for n in archive.namelist())


@pytest.mark.parametrize("user", ["aarau", "caritas", "auditor", "archivist", "admin"])
def test_only_the_canton_discloses(client, world, user):
    case = (
        closed_case(client, world)
        if user in ("aarau", "caritas")
        else small_closed_case(client, world)
    )
    refused = fetch(client, world, case.id, user)
    assert refused.status_code == 403


def test_unknown_cases_answer_404_and_open_cases_are_disclosed(client, world):
    assert fetch(client, world, "0" * 36).status_code == 404
    open_case = new_case(client, world)
    assert fetch(client, world, open_case["id"]).status_code == 200


def test_the_disclosure_is_audited_before_it_is_streamed(client, world, container):
    case = small_closed_case(client, world)
    response = fetch(client, world, case.id)
    # Audited at the start, even before the body is read.
    with container.db.transaction() as session:
        entries = (
            session.execute(select(AuditEntry).where(AuditEntry.action == "disclosure.create"))
            .scalars()
            .all()
        )
        assert [(e.case_id, e.actor, e.outcome) for e in entries] == [(case.id, "canton", "ok")]
        assert entries[0].detail == {"documents": 1, "files": 1}
    response.close()


def test_large_versions_are_streamed_in_bounded_chunks(client, world, container, monkeypatch):
    case = small_closed_case(client, world)
    big = os.urandom(3 * 1024 * 1024) + b"\n"
    stored = [k for k in container.store.iter_keys("versions/")]
    assert len(stored) == 1
    # Replace what the store hands out with a 3 MiB stream of 64 KiB chunks.
    original_open = type(container.store).open

    def chunked_open(self: Any, key: str, start: int = 0, length: int | None = None) -> Any:
        if key == stored[0]:
            return iter([big[i : i + 65536] for i in range(0, len(big), 65536)])
        return original_open(self, key, start, length)

    monkeypatch.setattr(type(container.store), "open", chunked_open)
    with container.db.transaction() as session:
        canton = session.execute(select(User).where(User.username == "canton")).scalar_one()
        prepared = disclosure.prepare(container, session, identity_for_user(canton), case.id)
    chunks = list(disclosure.stream(container, prepared))
    # The ZIP leaves in pieces: never more than the flush size plus one chunk at a time.
    assert max(len(c) for c in chunks) <= disclosure.FLUSH_BYTES + 65536 + 4096
    assert len([c for c in chunks if c]) > 3
    archive = zipfile.ZipFile(io.BytesIO(b"".join(chunks)))
    member = next(n for n in archive.namelist() if n.startswith("Dokumente/"))
    assert archive.read(member) == big


def test_a_version_missing_from_storage_is_noted_not_fatal(client, world, container):
    case = small_closed_case(client, world)
    key = next(container.store.iter_keys("versions/"))
    container.store.delete(key)
    response = fetch(client, world, case.id)
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    notes = [n for n in archive.namelist() if n.endswith(".FEHLT.txt")]
    assert len(notes) == 1
    assert "fehlt im Datenspeicher" in archive.read("index.html").decode("utf-8")


def test_the_disclosure_holds_the_journal_and_the_follow_ups(client, world):
    cid = held_by(client, world)
    first = client.post(
        f"{API}/cases/{cid}/journal",
        json={
            "kind": "conversation",
            "text": "Gespräch über den <Kurs> & die Kinderbetreuung.",
            "participants": ["Semhar Haile"],
            "occurred_on": "2026-11-02",
        },
        headers=world.auth("aarau"),
    ).get_json()
    client.post(
        f"{API}/cases/{cid}/journal",
        json={
            "kind": "conversation",
            "text": "Korrektur: Kita ab Januar.",
            "corrects": first["id"],
        },
        headers=world.auth("aarau"),
    )
    due = local_today().isoformat()
    client.post(
        f"{API}/cases/{cid}/follow-ups",
        json={"due_date": due, "note": "Kita-Platz bestätigen"},
        headers=world.auth("aarau"),
    )
    archive = zipfile.ZipFile(io.BytesIO(fetch(client, world, cid).data))
    person = json.loads(archive.read("person.json"))
    # Latest day first: the correction (written today) before the entry it corrects.
    assert [(e["text"], e["unit"], e["corrects"]) for e in person["journal"]] == [
        ("Korrektur: Kita ab Januar.", "Gemeinde Aarau", first["id"]),
        ("Gespräch über den <Kurs> & die Kinderbetreuung.", "Gemeinde Aarau", None),
    ]
    assert [(f["note"], f["due_date"], f["done_at"]) for f in person["follow_ups"]] == [
        ("Kita-Platz bestätigen", due, None)
    ]
    page = archive.read("index.html").decode("utf-8")
    assert "Journal" in page and "Wiedervorlagen" in page
    assert "Gespräch über den &lt;Kurs&gt; &amp; die Kinderbetreuung." in page
    assert "02.11.2026" in page and "(Korrektur eines früheren Eintrags)" in page
    assert "Kita-Platz bestätigen" in page
