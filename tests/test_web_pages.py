"""Every page through the Flask test client: content, policy, forms, uploads, escaping."""

from __future__ import annotations

import io
import re
from decimal import Decimal

from markupsafe import escape
from sqlalchemy import select

from dossier_service.models import AuditEntry
from dossier_service.money import format_chf
from dossier_service.samples import make_docx, make_pdf
from tests.factories import csrf, file_handover_note, login, new_case, post, set_passwords, upload

END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde."])
USERS = ("canton", "aarau", "baden", "wettingen", "caritas", "auditor", "archivist")


def _ready(client, world, container):
    set_passwords(container, *USERS)


def _case_at(client, world, unit, **person):
    """A case the canton registered and (with an end report) handed to the unit."""
    case = new_case(client, world, **person)
    if unit != "ag":
        upload(client, world, "canton", case["id"], END_REPORT, doc_type="end_report")
        moved = client.post(
            f"/api/v1/cases/{case['id']}/transfers",
            json={"to_unit": unit, "reason": "Wohnsitz"},
            headers=world.auth("canton"),
        )
        assert moved.status_code == 201
    return case


def _text(response):
    return response.get_data(as_text=True)


def _upload_form(
    client,
    case_id,
    data,
    *,
    filename="brief.pdf",
    doc_type="correspondence",
    title="",
    token=None,
    xhr=False,
):
    form = {"type": doc_type, "title": title, "file": (io.BytesIO(data), filename)}
    if token is not None:
        form = {"csrf_token": token, **form}
    headers = {"X-Requested-With": "XMLHttpRequest", "Accept": "application/json"} if xhr else {}
    return client.post(
        f"/cases/{case_id}/documents",
        data=form,
        content_type="multipart/form-data",
        headers=headers,
    )


def test_my_cases_lists_only_the_cases_my_unit_holds(client, world, container):
    _ready(client, world, container)
    aarau_case = _case_at(client, world, "aarau", family_name="Haile")
    _case_at(client, world, "baden", family_name="Okafor")
    login(client, "aarau")
    body = _text(client.get("/cases"))
    assert "Haile, Semhar" in body and "Okafor" not in body
    assert "Gemeinde Aarau" in body
    assert aarau_case["reference"] in body
    assert re.search(r"\d{2}\.\d{2}\.\d{4} \d{2}:\d{2}", body)  # last activity, de-CH


def test_the_canton_sees_all_cases_filters_by_unit_sorts_and_pages(client, world, container):
    _ready(client, world, container)
    _case_at(client, world, "aarau", family_name="Haile")
    _case_at(client, world, "baden", family_name="Okafor")
    new_case(client, world, family_name="Ahmadi")
    login(client, "canton")
    body = _text(client.get("/cases"))
    assert all(name in body for name in ("Haile", "Okafor", "Ahmadi"))
    assert '<option value="baden"' in body  # the unit filter
    only_baden = _text(client.get("/cases?unit=baden"))
    assert "Okafor" in only_baden and "Haile" not in only_baden and "Ahmadi" not in only_baden
    by_name = _text(client.get("/cases?sort=name"))
    assert by_name.index("Ahmadi") < by_name.index("Haile") < by_name.index("Okafor")
    by_name_desc = _text(client.get("/cases?sort=-name"))
    assert by_name_desc.index("Okafor") < by_name_desc.index("Ahmadi")
    found = _text(client.get("/cases?q_case=okaf"))
    assert "Okafor" in found and "Haile" not in found
    for i in range(24):
        new_case(client, world, family_name=f"Person{i:02d}")
    first = _text(client.get("/cases"))
    assert "1–25 von 27" in first and 'rel="next"' in first
    second = _text(client.get("/cases?page=2"))
    assert "26–27 von 27" in second


def test_case_page_shows_person_horizon_timeline_and_documents(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau", ahv_number="756.9217.0769.85")
    client.post(
        f"/api/v1/cases/{case['id']}/delegations",
        json={"to_unit": "caritas", "reason": "Alltag"},
        headers=world.auth("aarau"),
    )
    login(client, "aarau")
    body = _text(client.get(f"/cases/{case['id']}"))
    assert "Haile, Semhar" in body and "756.9217.0769.85" in body and "03.2006" in body
    assert "01.03.2025" in body and "01.03.2032" in body  # entry and 7-year horizon
    assert (
        "Kanton Aargau KSD" in body and "Delegiert an Caritas Aargau durch Gemeinde Aarau" in body
    )
    assert "Schlussbericht" in body  # the document group
    assert 'id="upload-file"' in body and 'name="csrf_token"' in body


def test_a_case_of_another_unit_is_not_found_and_the_attempt_is_logged(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "baden")
    login(client, "aarau")
    response = client.get(f"/cases/{case['id']}")
    assert response.status_code == 404
    assert "keinen Zugriff" in _text(response) and "Haile" not in _text(response)
    with container.db.transaction() as session:
        denied = (
            session.execute(
                select(AuditEntry).where(
                    AuditEntry.actor == "aarau", AuditEntry.outcome == "denied"
                )
            )
            .scalars()
            .all()
        )
    assert [(e.action, e.case_id) for e in denied] == [("case.read", case["id"])]


def test_roles_see_only_their_pages(client, world, container):
    _ready(client, world, container)
    case = new_case(client, world)
    login(client, "auditor")
    assert client.get("/").headers["Location"] == "/audit"
    assert client.get(f"/cases/{case['id']}").status_code == 403
    assert client.get("/cases").status_code == 403
    assert client.get("/reports/ias").status_code == 403
    post(client, "/logout")
    login(client, "aarau")
    assert client.get("/audit").status_code == 403
    assert client.get("/reports/ias").status_code == 403
    assert client.get("/notifications").status_code == 200
    post(client, "/logout")
    login(client, "archivist")
    start = client.get("/", follow_redirects=True)
    assert "Für Ihre Rolle gibt es in der Weboberfläche keine Seiten" in _text(start)


def test_upload_by_form_redirects_to_the_new_document(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    pdf = make_pdf("Brief", ["Einladung zum Gespräch."])
    response = _upload_form(client, case["id"], pdf, title="Einladung", token=csrf(client))
    assert response.status_code == 303
    page = client.get(response.headers["Location"])
    body = _text(page)
    assert "Das Dokument «Einladung» wurde gespeichert." in body
    assert "bereit" in body  # eager processing finished
    doc_id = response.headers["Location"].rsplit("/", 1)[1]
    download = client.get(f"/documents/{doc_id}/versions/1/download")
    assert download.data == pdf
    assert download.headers["Content-Disposition"].startswith("attachment;")
    assert download.headers["Content-Security-Policy"] == "default-src 'none'; sandbox"


def test_upload_by_script_answers_json_and_the_header_token_suffices(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    pdf = make_pdf("Brief", ["Per Skript."])
    response = client.post(
        f"/cases/{case['id']}/documents",
        data={"type": "correspondence", "file": (io.BytesIO(pdf), "skript.pdf")},
        content_type="multipart/form-data",
        headers={
            "X-CSRF-Token": csrf(client),
            "X-Requested-With": "XMLHttpRequest",
            "Accept": "application/json",
        },
    )
    assert response.status_code == 201
    body = response.get_json()
    assert body["version"] == 1 and body["redirect"] == f"/documents/{body['document_id']}"


def test_upload_without_csrf_token_is_refused_and_stores_nothing(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    response = _upload_form(client, case["id"], make_pdf("X", ["y"]), title="Ohne Token")
    assert response.status_code == 400
    docs = client.get(f"/api/v1/cases/{case['id']}/documents", headers=world.auth("aarau"))
    assert "Ohne Token" not in {d["title"] for d in docs.get_json()["items"]}


def test_upload_error_is_german_and_keeps_what_was_typed(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    response = _upload_form(
        client,
        case["id"],
        b"MZ\x90\x00 not a document",
        filename="x.exe",
        title="Mein Titel",
        token=csrf(client),
    )
    assert response.status_code == 415
    body = _text(response)
    assert "Dieser Dateityp wird nicht angenommen." in body
    assert 'value="Mein Titel"' in body
    assert '<option value="correspondence" selected>' in body
    xhr = _upload_form(
        client, case["id"], make_pdf("A", ["b"]), doc_type="", token=csrf(client), xhr=True
    )
    assert xhr.status_code == 422
    assert xhr.get_json()["error"] == {
        "message": "Bitte prüfen Sie das Feld «Dokumenttyp».",
        "field": "type",
    }


def test_a_unit_that_only_reads_gets_no_upload_and_a_refusal(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "canton")  # reads every case, works only on its own
    body = _text(client.get(f"/cases/{case['id']}"))
    assert 'id="upload-file"' not in body and "Fall übergeben" in body
    response = _upload_form(client, case["id"], make_pdf("X", ["y"]), token=csrf(client))
    assert response.status_code == 403
    assert "zuständig ist eine andere Stelle" in _text(response)


def test_new_version_and_a_stale_version_is_explained(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    doc = upload(client, world, "aarau", case["id"], make_pdf("V1", ["eins"])).get_json()
    login(client, "aarau")
    page = _text(client.get(f"/documents/{doc['id']}"))
    assert 'name="if_match" value="' + doc["versions"][0]["sha256"] in page
    v2 = make_pdf("V2", ["zwei"])
    response = client.post(
        f"/documents/{doc['id']}/versions",
        data={
            "csrf_token": csrf(client),
            "if_match": doc["versions"][0]["sha256"],
            "file": (io.BytesIO(v2), "v2.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert response.status_code == 303
    stale = client.post(
        f"/documents/{doc['id']}/versions",
        data={
            "csrf_token": csrf(client),
            "if_match": doc["versions"][0]["sha256"],
            "file": (io.BytesIO(make_pdf("V3", ["drei"])), "v3.pdf"),
        },
        content_type="multipart/form-data",
    )
    assert stale.status_code == 412
    assert "Das Dokument wurde inzwischen geändert." in _text(stale)
    assert client.get(f"/documents/{doc['id']}/versions/1/download").data != v2
    assert client.get(f"/documents/{doc['id']}/versions/2/download").data == v2


def test_preview_is_inline_framed_only_by_us_and_sandboxed(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    pdf = make_pdf("Vorschau", ["Text"])
    doc = upload(client, world, "aarau", case["id"], pdf).get_json()
    docx = upload(
        client, world, "aarau", case["id"], make_docx("Plan", ["x"]), filename="plan.docx"
    ).get_json()
    login(client, "aarau")
    body = _text(client.get(f"/documents/{doc['id']}"))
    assert f'<iframe class="preview-frame" src="/documents/{doc["id"]}/versions/1/preview"' in body
    preview = client.get(f"/documents/{doc['id']}/versions/1/preview")
    assert preview.data == pdf
    assert preview.headers["Content-Disposition"].startswith("inline;")
    assert preview.headers["X-Frame-Options"] == "SAMEORIGIN"
    assert preview.headers["Content-Security-Policy"] == (
        "default-src 'none'; frame-ancestors 'self'; sandbox"
    )
    assert client.get(f"/documents/{docx['id']}/versions/1/preview").status_code == 404
    assert "keine Vorschau" in _text(client.get(f"/documents/{docx['id']}"))
    with container.db.transaction() as session:
        reads = (
            session.execute(
                select(AuditEntry).where(
                    AuditEntry.action == "content.read", AuditEntry.actor == "aarau"
                )
            )
            .scalars()
            .all()
        )
    assert [(e.document_id, e.version) for e in reads] == [(doc["id"], 1)]


def test_processing_state_answers_json_for_readable_cases_only(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    doc = upload(client, world, "aarau", case["id"], make_pdf("P", ["q"])).get_json()
    login(client, "aarau")
    response = client.get(f"/cases/{case['id']}/processing", headers={"Accept": "application/json"})
    states = response.get_json()["versions"]
    assert [s["state"] for s in states.values()].count("ready") == len(states) >= 2
    assert all(set(s) == {"state", "label", "error"} for s in states.values())
    post(client, "/logout")
    login(client, "baden")
    other = client.get(f"/cases/{case['id']}/processing", headers={"Accept": "application/json"})
    assert other.status_code == 404 and doc["id"] not in _text(other)


def test_transfer_dialog_explains_gain_and_loss_and_the_old_unit_loses_the_case(
    client, world, container
):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    client.post(
        f"/api/v1/cases/{case['id']}/delegations",
        json={"to_unit": "caritas"},
        headers=world.auth("aarau"),
    )
    file_handover_note(client, world, "aarau", case["id"])
    login(client, "aarau")
    form = _text(client.get(f"/cases/{case['id']}/transfer"))
    assert '<option value="baden">Stadt Baden</option>' in form
    assert '<option value="aarau"' not in form  # not to itself
    missing = post(client, f"/cases/{case['id']}/transfer", {"step": "review", "to_unit": "baden"})
    assert missing.status_code == 422
    assert "Bitte geben Sie einen Grund an" in _text(missing)
    assert '<option value="baden" selected>' in _text(missing)
    review = post(
        client,
        f"/cases/{case['id']}/transfer",
        {"step": "review", "to_unit": "baden", "reason": "Umzug nach Baden"},
    )
    body = _text(review)
    assert "Stadt Baden erhält" in body and "Gemeinde Aarau verliert" in body
    assert "jeden Zugriff auf den Fall" in body
    assert "die Delegation an Caritas Aargau endet" in body
    assert client.get(f"/api/v1/cases/{case['id']}", headers=world.auth("aarau")).status_code == 200
    done = post(
        client,
        f"/cases/{case['id']}/transfer",
        {"step": "confirm", "to_unit": "baden", "reason": "Umzug nach Baden"},
    )
    assert done.status_code == 302 and done.headers["Location"] == "/cases"
    listing = _text(client.get("/cases"))
    assert "keinen Zugriff mehr darauf" in listing and "Haile" not in listing
    assert client.get(f"/cases/{case['id']}").status_code == 404
    api = client.get(f"/api/v1/cases/{case['id']}", headers=world.auth("baden")).get_json()
    assert api["responsible_unit"]["code"] == "baden" and api["delegations"] == []


def test_transfer_dialog_stops_a_move_without_a_hand_over_note(client, world, container):
    """Aarau's review of a move to Baden says the note is missing and offers no confirm."""
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    review = post(
        client,
        f"/cases/{case['id']}/transfer",
        {"step": "review", "to_unit": "baden", "reason": "Umzug nach Baden"},
    )
    body = _text(review)
    assert review.status_code == 409
    assert "Übergabe noch nicht möglich: Übergabenotiz fehlt" in body
    assert "Übergabenotiz jetzt hochladen" in body and 'value="confirm"' not in body
    # A confirm sent anyway is refused with the same reason, and nothing moves.
    forced = post(
        client,
        f"/cases/{case['id']}/transfer",
        {"step": "confirm", "to_unit": "baden", "reason": "Umzug nach Baden"},
    )
    assert forced.status_code == 409
    api = client.get(f"/api/v1/cases/{case['id']}", headers=world.auth("canton")).get_json()
    assert api["responsible_unit"]["code"] == "aarau"
    # The upload form offers the new type.
    assert '<option value="handover_note">Übergabenotiz</option>' in _text(
        client.get(f"/cases/{case['id']}")
    )


def test_transfer_dialog_says_what_the_unit_losing_the_case_keeps(client, world, container):
    """The loss box speaks of the unit that holds the case now, not of the caller.

    Bug fixed: when the canton handed a municipality's case on, the dialog said the
    municipality would keep reading it (it named what the canton keeps).
    """
    _ready(client, world, container)
    at_aarau = _case_at(client, world, "aarau")
    file_handover_note(client, world, "aarau", at_aarau["id"])
    at_canton = new_case(client, world, family_name="Tesfay")
    upload(client, world, "canton", at_canton["id"], END_REPORT, doc_type="end_report")
    login(client, "canton")
    moved_on = _text(
        post(
            client,
            f"/cases/{at_aarau['id']}/transfer",
            {"step": "review", "to_unit": "baden", "reason": "Umzug nach Baden"},
        )
    )
    assert "Gemeinde Aarau verliert" in moved_on
    assert "jeden Zugriff auf den Fall" in moved_on
    assert "weiterhin lesen" not in moved_on
    handed_down = _text(
        post(
            client,
            f"/cases/{at_canton['id']}/transfer",
            {"step": "review", "to_unit": "aarau", "reason": "Wohnsitz"},
        )
    )
    assert "der Kanton kann den Fall weiterhin lesen" in handed_down
    assert "jeden Zugriff auf den Fall" not in handed_down


def test_transfer_to_a_municipality_without_end_report_is_explained(client, world, container):
    _ready(client, world, container)
    case = new_case(client, world)
    login(client, "canton")
    review = post(
        client,
        f"/cases/{case['id']}/transfer",
        {"step": "review", "to_unit": "aarau", "reason": "Wohnsitz"},
    )
    assert review.status_code == 409
    body = _text(review)
    assert "Übergabe noch nicht möglich: Schlussbericht fehlt" in body
    assert "Ja, Fall an" not in body
    forced = post(
        client,
        f"/cases/{case['id']}/transfer",
        {"step": "confirm", "to_unit": "aarau", "reason": "Wohnsitz"},
    )
    assert forced.status_code == 409
    responsible = client.get(f"/api/v1/cases/{case['id']}", headers=world.auth("canton"))
    assert responsible.get_json()["responsible_unit"]["code"] == "ag"


def test_transfer_form_without_token_is_refused(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    response = client.post(
        f"/cases/{case['id']}/transfer",
        data={"step": "confirm", "to_unit": "baden", "reason": "x"},
    )
    assert response.status_code == 400
    assert client.get(f"/cases/{case['id']}").status_code == 200


def test_delegate_and_end_the_delegation(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    review = _text(
        post(client, f"/cases/{case['id']}/delegate", {"step": "review", "to_unit": "ors"})
    )
    assert "ORS Service AG erhält" in review and "Ihre Stelle verliert nichts" in review
    done = post(client, f"/cases/{case['id']}/delegate", {"step": "confirm", "to_unit": "ors"})
    assert done.status_code == 302
    assert client.get(f"/api/v1/cases/{case['id']}", headers=world.auth("ors")).status_code == 200
    page = _text(client.get(f"/cases/{case['id']}"))
    assert "Delegation an ORS Service AG beenden" in page
    ended = post(client, f"/cases/{case['id']}/delegations/ors/end")
    assert ended.status_code == 302
    assert client.get(f"/api/v1/cases/{case['id']}", headers=world.auth("ors")).status_code == 404


def test_search_highlights_matches_escapes_the_rest_and_trims_by_policy(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    other = _case_at(client, world, "baden", family_name="Okafor")
    hostile = make_pdf("Notiz", ["Vermerk <script>alert(1)</script> Zauberwort hier."])
    upload(client, world, "aarau", case["id"], hostile, title='<b>Fett</b> "Titel"')
    upload(client, world, "baden", other["id"], make_pdf("B", ["Zauberwort in Baden."]))
    login(client, "aarau")
    body = _text(client.get("/search?q=Zauberwort"))
    assert "1 Treffer" in body
    assert "<mark>Zauberwort</mark>" in body
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in body and "<script>alert(1)" not in body
    assert "&lt;b&gt;Fett&lt;/b&gt; &#34;Titel&#34;" in body
    assert other["reference"] not in body  # Baden's hit is not counted or shown
    assert '<input type="search" name="q" id="site-search" value="Zauberwort"' in body
    post(client, "/logout")
    login(client, "canton")
    everything = _text(client.get("/search?q=Zauberwort"))
    assert "2 Treffer" in everything
    facets = _text(client.get("/search?q=Zauberwort&unit=baden"))
    assert "1 Treffer" in facets and other["reference"] in facets


def test_search_errors_are_shown_on_the_search_page(client, world, container):
    _ready(client, world, container)
    login(client, "aarau")
    response = client.get("/search?q=" + "x" * 1001)
    assert response.status_code == 400
    assert "zu lang" in _text(response)
    assert client.get("/search").status_code == 200
    short = client.get("/search?q=ae*")  # folds to one letter: too short a prefix
    assert short.status_code == 400
    assert "Vor * braucht es mindestens zwei Buchstaben" in _text(short)


def test_audit_page_filters_for_auditors(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "baden")
    client.get(f"/cases/{case['id']}")  # denied, logged
    post(client, "/logout")
    login(client, "auditor")
    body = _text(client.get("/audit?actor=baden&outcome=denied"))
    assert "<code>case.read</code>" in body and "verweigert" in body
    assert "<code>auth.login</code>" not in body
    by_case = _text(client.get(f"/audit?case_id={case['id']}&action=transfer.create"))
    assert "<code>transfer.create</code>" in by_case and "<code>case.read</code>" not in by_case
    with container.db.transaction() as session:
        reads = (
            session.execute(select(AuditEntry).where(AuditEntry.action == "audit.read"))
            .scalars()
            .all()
        )
    assert reads and reads[-1].actor == "auditor" and reads[-1].detail["via"] == "web"


def test_reports_page_draws_charts_for_the_canton(client, world, container):
    _ready(client, world, container)
    _case_at(client, world, "aarau")
    login(client, "canton")
    body = _text(client.get("/reports/ias?as_of=2026-01-31"))
    assert "IAS-Kennzahlen" in body and "Stand 31.01.2026" in body
    assert body.count('<svg class="chart"') == 4 and 'role="img"' in body
    assert "Sprachniveau A1 innert 3 Jahren nach Regelung" in body
    bad = client.get("/reports/ias?as_of=gestern")
    assert bad.status_code == 422 and "gültiges Datum" in _text(bad)
    csv = client.get("/reports/ias.csv?as_of=2026-01-31")
    assert csv.status_code == 200 and csv.headers["Content-Type"].startswith("text/csv")


def test_notifications_are_listed_and_marked_read(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")  # Aarau was notified of the transfer
    login(client, "aarau")
    body = _text(client.get("/notifications"))
    assert "Ein Fall wurde Ihrer Stelle übergeben" in body and "1 ungelesene Meldung" in body
    notification_id = re.search(r"/notifications/(\d+)/read", body).group(1)
    opened = post(client, f"/notifications/{notification_id}/read", {"open": "1"})
    assert opened.headers["Location"] == f"/cases/{case['id']}"
    assert "0 ungelesene Meldungen" in _text(client.get("/notifications"))


def test_notifications_name_the_person_and_are_all_marked_read_at_once(client, world, container):
    _ready(client, world, container)
    for name in ("Tesfay", "Berhe"):
        _case_at(client, world, "aarau", family_name=name)
    login(client, "aarau")
    body = _text(client.get("/notifications"))
    assert "2 ungelesene Meldungen" in body
    assert "<strong>Tesfay, Semhar</strong>" in body and "<strong>Berhe, Semhar</strong>" in body
    done = post(client, "/notifications/read-all", {})
    assert done.status_code == 303
    body = _text(client.get("/notifications"))
    assert "2 Meldungen als gelesen markiert." in body and "0 ungelesene Meldungen" in body
    assert "Alle als gelesen markieren" not in body


def test_notifications_page_drops_a_case_handed_on(client, world, container):
    """After Aarau hands the case on, its page neither lists nor counts nor marks the notice."""
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    body = _text(client.get("/notifications"))
    notification_id = re.search(r"/notifications/(\d+)/read", body).group(1)
    file_handover_note(client, world, "aarau", case["id"])
    moved = client.post(
        f"/api/v1/cases/{case['id']}/transfers",
        json={"to_unit": "baden", "reason": "Umzug"},
        headers=world.auth("aarau"),
    )
    assert moved.status_code == 201
    body = _text(client.get("/notifications"))
    assert case["id"] not in body and "0 ungelesene Meldungen" in body
    gone = post(client, f"/notifications/{notification_id}/read", {"open": "1"})
    assert gone.status_code == 404 and case["id"] not in _text(gone)


def test_cost_approval_request_keeps_values_and_the_canton_decides(client, world, container):
    _ready(client, world, container)
    case = _case_at(client, world, "aarau")
    login(client, "aarau")
    page = f"/cases/{case['id']}/cost-approvals"
    bad = post(
        client,
        page,
        {
            "programme": "IKG1",
            "amount_chf": "viel",
            "period_from": "2026-08-01",
            "period_to": "2027-07-31",
            "justification": "Kurs gemäss Plan",
        },
    )
    assert bad.status_code == 422
    body = _text(bad)
    assert "Betrag (CHF)" in body and 'value="viel"' in body and "Kurs gemäss Plan" in body
    ok = post(
        client,
        page,
        {
            "programme": "IKG1",
            "amount_chf": "4'800.00",
            "period_from": "2026-08-01",
            "period_to": "2027-07-31",
            "justification": "Kurs gemäss Plan",
        },
    )
    assert ok.status_code == 303
    # Pages escape the de-CH grouping sign "'" as an HTML entity.
    assert escape(format_chf(Decimal("4800"))) in _text(client.get(page))
    approval_id = client.get(
        page.replace("/cases", "/api/v1/cases"), headers=world.auth("aarau")
    ).get_json()["items"][0]["id"]
    refused = post(
        client,
        f"/cost-approvals/{approval_id}/decision",
        {"decision": "approved", "approved_amount_chf": "4800"},
    )
    assert refused.status_code == 403 and "Ihre Rolle erlaubt diese Aktion nicht." in _text(refused)
    post(client, "/logout")
    login(client, "canton")
    decided = post(
        client,
        f"/cost-approvals/{approval_id}/decision",
        {
            "decision": "partially_approved",
            "approved_amount_chf": "3600",
            "reason": "Fahrkosten",
        },
    )
    assert decided.status_code == 303
    after = _text(client.get(page))
    assert (
        "teilweise bewilligt" in after
        and escape(format_chf(Decimal("3600"))) in after
        and "Verfügung" in after
    )
    again = post(
        client,
        f"/cost-approvals/{approval_id}/decision",
        {"decision": "approved", "approved_amount_chf": "4800"},
    )
    assert again.status_code == 409 and "bereits entschieden" in _text(again)


def test_security_headers_on_pages_and_no_inline_script_anywhere(client, world, container):
    _ready(client, world, container)
    login(client, "canton")
    response = client.get("/cases")
    csp = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
    assert response.headers["X-Frame-Options"] == "DENY"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert response.headers["Cache-Control"] == "no-store"
    login_page = client.get("/login")
    assert login_page.headers["X-Frame-Options"] == "DENY"
    from pathlib import Path

    templates = Path(__file__).resolve().parents[1] / "dossier_service" / "templates"
    for path in templates.rglob("*.html"):
        source = path.read_text()
        assert not re.search(r"<script(?![^>]*\bsrc=)", source), path
        assert not re.search(r"\son[a-z]+\s*=", source), path
        assert "style=" not in source, path
        assert "//cdn" not in source and "https://" not in source, path


def test_unknown_page_is_german_html_but_api_errors_stay_json(client, world, container):
    _ready(client, world, container)
    login(client, "aarau")
    page = client.get("/gibt-es-nicht")
    assert page.status_code == 404 and "Diese Seite gibt es nicht." in _text(page)
    api = client.get("/api/v1/gibt-es-nicht")
    assert api.status_code == 404 and api.get_json()["error"]["code"] == "not_found"
