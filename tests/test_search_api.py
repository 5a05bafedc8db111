"""Search through the API: extraction, OCR, German matching and security trimming."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from dossier_service.samples import make_docx, make_pdf
from tests.factories import file_handover_note, new_case, upload
from tests.sample_files import image_only_pdf, scanned_page

END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde."])


def search(client, world, user, **params):
    """GET /search as a user; returns the JSON body (asserting 200)."""
    response = client.get("/api/v1/search", query_string=params, headers=world.auth(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


@pytest.fixture
def dossier(client, world):
    """A canton case with a text PDF, a DOCX (keyword in a table cell) and a scanned PDF."""
    case = new_case(client, world, ahv_number="756.9217.0769.85")
    cid = case["id"]
    docs = {}
    docs["pdf"] = upload(
        client,
        world,
        "canton",
        cid,
        make_pdf(
            "Kurzassessment",
            [
                "Die Häuser an der Bahnhofstraße wurden verkauft. "
                "Herr Müller begleitet die Klientin.",
                "Die Kostengutsprache für den Integrationskurs wurde beantragt.",
            ],
        ),
        doc_type="short_assessment",
        filename="kurz.pdf",
    ).get_json()
    docs["docx"] = upload(
        client,
        world,
        "canton",
        cid,
        make_docx(
            "Integrationsplan",
            ["Massnahmenplanung"],
            [["Massnahme", "Anbieter"], ["Vorlehre", "Berufsschule Zofingen"]],
        ),
        doc_type="integration_plan",
        filename="plan.docx",
    ).get_json()
    scan = image_only_pdf(
        [
            scanned_page(
                [
                    "Potenzialabklärung",
                    "Die Klientin arbeitet zuverlässig",
                    "im Beschäftigungsprogramm Lenzburg.",
                ]
            )
        ]
    )
    docs["scan"] = upload(
        client, world, "canton", cid, scan, doc_type="potential_assessment", filename="scan.pdf"
    ).get_json()
    for doc in docs.values():
        body = client.get(f"/api/v1/documents/{doc['id']}", headers=world.auth("canton")).get_json()
        assert body["versions"][-1]["processing"] == "ready", body
    return case, docs


def ids(body):
    return {item["document_id"] for item in body["items"]}


def test_text_docx_table_cell_and_scan_are_found(client, world, dossier):
    _case, docs = dossier
    assert ids(search(client, world, "canton", q="Bahnhofstraße")) == {docs["pdf"]["id"]}
    assert ids(search(client, world, "canton", q="Zofingen")) == {docs["docx"]["id"]}
    assert ids(search(client, world, "canton", q="Lenzburg")) == {docs["scan"]["id"]}


def test_german_matching_and_phrases(client, world, dossier):
    _case, docs = dossier
    pdf = docs["pdf"]["id"]
    for query in ("Haus", "Bahnhofstrasse", "Mueller", "Muller", "Gutsprache", "Kostengutsprache"):
        assert pdf in ids(search(client, world, "canton", q=query)), query
    assert pdf in ids(search(client, world, "canton", q='"Häuser an der Bahnhofstraße"'))
    assert pdf not in ids(search(client, world, "canton", q='"Bahnhofstraße an der Häuser"'))
    assert pdf not in ids(search(client, world, "canton", q="Häuser -Müller"))
    assert pdf in ids(search(client, world, "canton", q="Integrations*"))


def test_identifiers_and_facets(client, world, dossier):
    case, docs = dossier
    everything = {d["id"] for d in docs.values()}
    assert ids(search(client, world, "canton", q="7569217076985")) == everything
    assert ids(search(client, world, "canton", q="756.9217.0769.85")) == everything
    assert ids(search(client, world, "canton", q=case["reference"])) == everything
    body = search(client, world, "canton", q="Semhar")
    assert body["total"] == 3
    assert body["facets"]["type"] == {
        "short_assessment": 1,
        "integration_plan": 1,
        "potential_assessment": 1,
    }
    assert body["facets"]["unit"] == {"ag": 3}
    only = search(client, world, "canton", q="Semhar", type="integration_plan")
    assert ids(only) == {docs["docx"]["id"]}
    highlighted = search(client, world, "canton", q="Bahnhofstraße")["items"][0]["highlight"]
    assert "<mark>" in highlighted


def test_trimming_follows_transfers_immediately(client, world, dossier):
    case, docs = dossier
    cid = case["id"]
    empty = search(client, world, "aarau", q="Semhar")
    assert empty["total"] == 0 and empty["items"] == []
    assert all(not counts for counts in empty["facets"].values())
    assert (
        upload(client, world, "canton", cid, END_REPORT, doc_type="end_report").status_code == 201
    )
    assert (
        client.post(
            f"/api/v1/cases/{cid}/transfers",
            json={"to_unit": "aarau", "reason": "Umzug"},
            headers=world.auth("canton"),
        ).status_code
        == 201
    )
    assert search(client, world, "aarau", q="Semhar")["total"] == 4
    file_handover_note(client, world, "aarau", cid)
    assert (
        client.post(
            f"/api/v1/cases/{cid}/transfers",
            json={"to_unit": "baden", "reason": "Umzug"},
            headers=world.auth("aarau"),
        ).status_code
        == 201
    )
    # The very next search of the former unit: nothing, no count, no facet, no highlight.
    gone = search(client, world, "aarau", q="Bahnhofstraße")
    assert gone == {
        "total": 0,
        "page": 1,
        "per_page": 20,
        "items": [],
        "facets": {"type": {}, "unit": {}, "year": {}, "tags": {}},
    }
    found = search(client, world, "baden", q="Bahnhofstraße")
    assert ids(found) == {docs["pdf"]["id"]} and "<mark>" in found["items"][0]["highlight"]
    # Four documents and the hand-over note Aarau filed before the move.
    assert search(client, world, "baden", q="Semhar")["facets"]["unit"] == {"baden": 5}


def test_search_is_audited_and_refused_to_auditors(client, world, dossier):
    search(client, world, "canton", q="Lenzburg")
    assert client.get("/api/v1/search?q=x", headers=world.auth("auditor")).status_code == 403
    log = client.get(
        "/api/v1/audit?action=search&actor=canton", headers=world.auth("auditor")
    ).get_json()
    assert log["items"][0]["detail"]["q"] == "Lenzburg" and log["items"][0]["detail"]["hits"] == 1


def test_bad_queries_are_client_errors(client, world, dossier):
    for q in ('"unbalanced', "-", "*", "a" * 2000):
        response = client.get("/api/v1/search", query_string={"q": q}, headers=world.auth("canton"))
        assert response.status_code in (200, 400), (q, response.status_code)
        if response.status_code == 400:
            assert response.get_json()["error"]["code"] in {"invalid_query", "query_too_long"}
    assert client.get("/api/v1/search", headers=world.auth("canton")).status_code == 400


def test_reindex_and_verify_keep_everything_true(
    client, world, dossier, container, settings, monkeypatch
):
    from dossier_service import cli

    _case, docs = dossier
    monkeypatch.setattr(cli, "_container", lambda: container)
    runner = CliRunner()
    result = runner.invoke(cli.main, ["index", "verify"])
    assert result.exit_code == 0, result.output
    # Drift: drop an entry behind the service's back; verify notices, reindex repairs.
    container.search.delete([f"{docs['scan']['id']}:1"])
    container.search.refresh()
    result = runner.invoke(cli.main, ["index", "verify"])
    assert result.exit_code == 1 and f"{docs['scan']['id']}:1" in result.output
    result = runner.invoke(cli.main, ["reindex"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(cli.main, ["index", "verify"]).exit_code == 0
    assert ids(search(client, world, "canton", q="Lenzburg")) == {docs["scan"]["id"]}
    assert search(client, world, "aarau", q="Lenzburg")["total"] == 0


def test_dates_out_of_range_are_client_errors(client, world):
    for value in ("0421-01-01", "9999-12-31", "2026-13-01"):
        response = client.get(
            "/api/v1/search",
            query_string={"q": "x", "created_from": value},
            headers=world.auth("canton"),
        )
        assert response.status_code == 400, value
        assert response.get_json()["error"]["code"] == "invalid_parameter"


def transfer(client, world, cid, user, to_unit):
    """Hand the case over (asserting 201)."""
    response = client.post(
        f"/api/v1/cases/{cid}/transfers",
        json={"to_unit": to_unit, "reason": "Umzug"},
        headers=world.auth(user),
    )
    assert response.status_code == 201, response.get_json()


def synced_at(container, cid):
    """index_synced_at of the case's open responsibility period."""
    from dossier_service.models import Responsibility

    with container.db.transaction() as session:
        return (
            session.query(Responsibility.index_synced_at)
            .filter(Responsibility.case_id == cid, Responsibility.ended_at.is_(None))
            .scalar()
        )


def set_synced_at(container, cid, value):
    """Set index_synced_at of the case's open responsibility period."""
    from dossier_service.models import Responsibility

    with container.db.transaction() as session:
        session.query(Responsibility).filter(
            Responsibility.case_id == cid, Responsibility.ended_at.is_(None)
        ).update({"index_synced_at": value})


def relabelled(container, document_id, unit):
    """The document's current index entry with another unit label."""
    import dataclasses

    from dossier_service.models import Case, Document
    from dossier_service.services import indexing

    with container.db.transaction() as session:
        document = session.get(Document, document_id)
        version = document.versions[-1]
        case = session.get(Case, document.case_id)
        text = indexing.read_text(container, version.text_key)
        entry = indexing.build_entry(version, document, case, text, unit)
    return dataclasses.replace(entry, unit=unit)


def test_unit_facet_is_right_before_the_relabelling_task_ran(
    client, world, dossier, container, monkeypatch
):
    """Until the queued relabelling runs, the facet still names the unit responsible now."""
    from dossier_service.models import OutboxMessage
    from dossier_service.services import indexing
    from dossier_service.services import search as search_service

    case, _docs = dossier
    cid = case["id"]
    upload(client, world, "canton", cid, END_REPORT, doc_type="end_report")
    transfer(client, world, cid, "canton", "aarau")
    with container.db.transaction() as session:
        tasks = [m.task for m in session.query(OutboxMessage).all()]
    assert "dossier.sync_case_unit" in tasks
    assert container.search.case_units() == {cid: {"aarau": 4}}  # the task ran (eager)
    assert synced_at(container, cid) is not None
    # Pretend it has not run yet: the entries still carry the canton's code, the period
    # is not marked synced; one entry already carries the new unit (an upload after it).
    container.search.set_case_unit(cid, "ag")
    pdf = search(client, world, "aarau", q="Bahnhofstraße")["items"][0]["document_id"]
    container.search.upsert([relabelled(container, pdf, "aarau")])
    container.search.refresh()
    set_synced_at(container, cid, None)
    assert container.search.case_units() == {cid: {"ag": 3, "aarau": 1}}
    assert search(client, world, "canton", q="Semhar")["facets"]["unit"] == {"aarau": 4}
    assert search(client, world, "aarau", q="Semhar")["facets"]["unit"] == {"aarau": 4}
    assert search(client, world, "canton", q="Lenzburg")["facets"]["unit"] == {"aarau": 1}
    drift = indexing.verify(container)
    assert drift.wrong_unit == [(cid, "ag", "aarau")] and not drift.ok
    # The correction is what makes it right: marked synced, the stale labels would show.
    set_synced_at(container, cid, search_service.dt.datetime.now(search_service.dt.UTC))
    assert search(client, world, "canton", q="Semhar")["facets"]["unit"] == {"ag": 3, "aarau": 1}
    set_synced_at(container, cid, None)
    # The periodic resend leaves fresh transfers to their own task, then relabels.
    assert indexing.sync_pending(container) == 0
    assert indexing.sync_pending(container, older_than=search_service.dt.timedelta(0)) == 1
    assert synced_at(container, cid) is not None
    assert search(client, world, "canton", q="Semhar")["facets"]["unit"] == {"aarau": 4}
    assert indexing.verify(container).ok


def test_indexing_looks_again_when_a_transfer_raced_with_it(
    client, world, dossier, container, monkeypatch
):
    """An entry built just before a transfer committed does not keep the old unit."""
    from dossier_service.services import indexing

    case, docs = dossier
    cid = case["id"]
    real = indexing.responsible_units
    calls = []

    def stale_first(session, case_ids):
        calls.append(case_ids)
        units = real(session, case_ids)
        return {c: "zofingen" for c in units} if len(calls) == 1 else units

    monkeypatch.setattr(indexing, "responsible_units", stale_first)
    from dossier_service.models import DocumentVersion

    with container.db.transaction() as session:
        version_id = (
            session.query(DocumentVersion.id)
            .filter(DocumentVersion.document_id == docs["pdf"]["id"])
            .scalar()
        )
    assert indexing.index_version(container, version_id)
    assert len(calls) == 2
    assert container.search.case_units() == {cid: {"ag": 3}}


def test_init_rebuilds_an_index_of_an_older_format(client, world, dossier, container, monkeypatch):
    """Upgrading: `dossier init` finds the old-format index and rebuilds it from the dossiers."""
    import json
    import os

    from dossier_service import cli

    _case, docs = dossier
    root = container.settings.search_dir
    assert (root / "CURRENT").exists()  # the tests run on the embedded tantivy index
    live = root / os.readlink(root / "CURRENT")
    (live / "FORMAT").write_text(json.dumps({"format": 1, "analysis": 1}))
    # As after a restart: a new index object opens the live generation anew.
    container.search.close()
    del container.__dict__["search"]
    assert client.get("/api/v1/search?q=Lenzburg", headers=world.auth("canton")).status_code == 503
    monkeypatch.setattr(cli, "_container", lambda: container)
    result = CliRunner().invoke(cli.main, ["init"])
    assert result.exit_code == 0, result.output
    assert "rebuilding" in result.output
    assert ids(search(client, world, "canton", q="Lenzburg")) == {docs["scan"]["id"]}
