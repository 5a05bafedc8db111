"""Every API and web route × every kind of user × open and closed case: the status answered.

The routes come from ``app.url_map``: a route without a row in ROUTES fails the test, so a new
endpoint is added to the matrix when it is written. One world per backend: an open case held
by Aarau and delegated to Caritas, and a closed one; a request that changed something (2xx or
a redirect on a write) makes the next cell of that state start from a freshly built case.
The expectations are statuses only, so they hold however the views are built.
"""

from __future__ import annotations

# The rows of REQUESTS and EXPECTED stay on one line each so they read as a table:
# ruff: noqa: E501
import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from dossier_service.container import Container
from dossier_service.dates import local_today
from tests.factories import (
    API,
    PASSWORD,
    PDF_V1,
    World,
    export_and_download,
    file_handover_note,
    fresh_person,
    held_by,
    login,
    new_case,
    request_approval,
    set_passwords,
    small_closed_case,
)
from tests.factories import post as web_post

#: Columns of every row: the kinds of user of the issue, in this order.
USERS = ("canton", "aarau", "baden", "caritas", "ors", "auditor", "archivist", "admin")
#: canton; municipality responsible; municipality other; organisation delegated;
#: organisation not delegated; auditor; archivist; admin.
STATES = ("open", "closed")
SKIPPED_RULES = {"/static/<path:filename>"}


@dataclass
class Case:
    """A case in one state and the ids of what belongs to it."""

    id: str
    doc: str
    approval: str
    measure: str
    follow_up: str = ""


@dataclass
class Fixtures:
    """The shared world: ids for every URL parameter."""

    cases: dict[str, Case]
    export: str
    notification: int
    #: An open case of another person, where a misfiled document is moved to.
    target: str = ""
    target_reference: str = ""


def _build_case(client: FlaskClient, world: World, closed: bool) -> Case:
    """Held by Aarau, delegated to Caritas, a document, a cost approval and a measure."""
    cid = held_by(client, world, family_name="Matrix")
    aarau = world.auth("aarau")
    moved = client.post(
        f"{API}/cases/{cid}/delegations",
        json={"to_unit": "caritas", "reason": "Begleitung"},
        headers=aarau,
    )
    assert moved.status_code == 201, moved.get_json()
    documents = client.get(f"{API}/cases/{cid}/documents", headers=aarau).get_json()
    doc = documents["items"][0]["id"]
    file_handover_note(client, world, "aarau", cid)  # so that Aarau may hand it on
    approval = request_approval(client, world, cid).get_json()["id"]
    measure = client.post(
        f"{API}/cases/{cid}/measures",
        json={"programme": "IKG1", "provider": "ECAP", "start": "2026-02-01"},
        headers=aarau,
    ).get_json()["id"]
    follow_up = client.post(
        f"{API}/cases/{cid}/follow-ups",
        json={"due_date": local_today().isoformat(), "note": "Matrix"},
        headers=aarau,
    ).get_json()["id"]
    if closed:
        decided = client.post(
            f"{API}/cost-approvals/{approval}/decision",
            json={"decision": "approved"},
            headers=world.auth("canton"),
        )
        assert decided.status_code == 200, decided.get_json()
        shut = client.post(f"{API}/cases/{cid}/close", json={"reason": "other"}, headers=aarau)
        assert shut.status_code == 200, shut.get_json()
    return Case(cid, doc, approval, measure, follow_up)


# --- The requests --------------------------------------------------------------------------

Request = Callable[[FlaskClient, World, str, Case, Fixtures], Any]


def _get(path: str, **kwargs: Any) -> Request:
    def send(client: FlaskClient, world: World, user: str, case: Case, fx: Fixtures) -> Any:
        return client.get(_fill(path, case, fx), headers=world.auth(user), **kwargs)

    return send


def _api(method: str, path: str, body: Any = None, files: dict[str, Any] | None = None) -> Request:
    def send(client: FlaskClient, world: World, user: str, case: Case, fx: Fixtures) -> Any:
        url = _fill(path, case, fx)
        if files is not None:
            form = {
                k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else v for k, v in files.items()
            }
            return client.open(
                url,
                method=method,
                data=form,
                headers=world.auth(user),
                content_type="multipart/form-data",
            )
        filled = _fill_body(body, case, fx)
        return client.open(url, method=method, json=filled, headers=world.auth(user))

    return send


def _register_fresh_person(
    client: FlaskClient, world: World, user: str, case: Case, fx: Fixtures
) -> Any:
    """POST /cases with a person no case carries yet (one person, one case)."""
    body = {"person": fresh_person(family_name="Neu"), "entry_date": "2025-03-01"}
    return client.post("/api/v1/cases", json=body, headers=world.auth(user))


def _merge_fresh_duplicate(web: bool) -> Request:
    """Merge a second registration of the person (no AHV number) into the case."""

    def send(client: FlaskClient, world: World, user: str, case: Case, fx: Fixtures) -> Any:
        duplicate = new_case(client, world, family_name="Matrix", ahv_number=None)
        if web:
            form = {
                "from_reference": duplicate["reference"],
                "reason": "Doppelt erfasst",
                "confirm": "yes",
            }
            return web_post(client, f"/cases/{case.id}/merge", form)
        body = {"from_case": duplicate["id"], "reason": "Doppelt erfasst"}
        return client.post(f"/api/v1/cases/{case.id}/merge", json=body, headers=world.auth(user))

    return send


def _web(method: str, path: str, data: dict[str, Any] | None = None) -> Request:
    def send(client: FlaskClient, world: World, user: str, case: Case, fx: Fixtures) -> Any:
        url = _fill(path, case, fx)
        if method == "GET":
            return client.get(url)
        form = {
            k: (io.BytesIO(v[0]), v[1]) if isinstance(v, tuple) else _fill_body(v, case, fx)
            for k, v in (data or {}).items()
        }
        return web_post(client, url, form, content_type="multipart/form-data")

    return send


def _fill_body(body: Any, case: Case, fx: Fixtures) -> Any:
    """The JSON body with the world's ids put into its placeholders."""
    if isinstance(body, str):
        return _fill(body, case, fx)
    if isinstance(body, list):
        return [_fill_body(item, case, fx) for item in body]
    if isinstance(body, dict):
        return {key: _fill_body(value, case, fx) for key, value in body.items()}
    return body


def _login(client: FlaskClient, world: World, user: str, case: Case, fx: Fixtures) -> Any:
    return web_post(client, "/login", {"username": user, "password": PASSWORD})


def _fill(path: str, case: Case, fx: Fixtures) -> str:
    return (
        path.replace("{case}", case.id)
        .replace("{doc}", case.doc)
        .replace("{approval}", case.approval)
        .replace("{measure}", case.measure)
        .replace("{follow_up}", case.follow_up)
        .replace("{export}", fx.export)
        .replace("{notification}", str(fx.notification))
        .replace("{target_reference}", fx.target_reference)
        .replace("{target}", fx.target)
    )


PDF = (PDF_V1, "notiz.pdf")

#: (rule, method) -> the request the matrix sends.
REQUESTS: dict[tuple[str, str], Request] = {
    ("/", "GET"): _web("GET", "/"),
    ("/api/v1/audit", "GET"): _get("/api/v1/audit"),
    ("/api/v1/cases", "POST"): _register_fresh_person,
    ("/api/v1/cases", "GET"): _get("/api/v1/cases"),
    ("/api/v1/cases/<case_id>", "GET"): _get("/api/v1/cases/{case}"),
    ("/api/v1/cases/<case_id>", "PATCH"): _api(
        "PATCH", "/api/v1/cases/{case}", {"target_group": "education"}
    ),
    ("/api/v1/cases/<case_id>/close", "POST"): _api(
        "POST", "/api/v1/cases/{case}/close", {"reason": "other"}
    ),
    ("/api/v1/cases/<case_id>/cost-approvals", "POST"): _api(
        "POST",
        "/api/v1/cases/{case}/cost-approvals",
        {
            "programme": "IKG1",
            "amount_chf": "100.00",
            "period_from": "2026-02-01",
            "period_to": "2026-06-30",
            "justification": "Kurs.",
        },
    ),
    ("/api/v1/cases/<case_id>/cost-approvals", "GET"): _get("/api/v1/cases/{case}/cost-approvals"),
    ("/api/v1/cases/<case_id>/delegations", "POST"): _api(
        "POST", "/api/v1/cases/{case}/delegations", {"to_unit": "ors", "reason": "Begleitung"}
    ),
    ("/api/v1/cases/<case_id>/delegations/<unit_code>", "DELETE"): _api(
        "DELETE", "/api/v1/cases/{case}/delegations/caritas"
    ),
    ("/api/v1/cases/<case_id>/disclosure", "GET"): _get("/api/v1/cases/{case}/disclosure"),
    ("/api/v1/cases/<case_id>/documents", "POST"): _api(
        "POST", "/api/v1/cases/{case}/documents", files={"type": "other", "file": PDF}
    ),
    ("/api/v1/cases/<case_id>/documents", "GET"): _get("/api/v1/cases/{case}/documents"),
    ("/api/v1/cases/<case_id>/legal-hold", "POST"): _api(
        "POST", "/api/v1/cases/{case}/legal-hold", {"reason": "Verfahren"}
    ),
    ("/api/v1/cases/<case_id>/legal-hold", "DELETE"): _api(
        "DELETE", "/api/v1/cases/{case}/legal-hold"
    ),
    ("/api/v1/cases/<case_id>/measures", "POST"): _api(
        "POST",
        "/api/v1/cases/{case}/measures",
        {"programme": "IKG1", "provider": "ECAP", "start": "2026-02-01"},
    ),
    ("/api/v1/cases/<case_id>/measures", "GET"): _get("/api/v1/cases/{case}/measures"),
    ("/api/v1/cases/<case_id>/milestones", "POST"): _api(
        "POST",
        "/api/v1/cases/{case}/milestones",
        {"kind": "language_level", "value": "A1", "date": "2025-09-01"},
    ),
    ("/api/v1/cases/<case_id>/milestones", "GET"): _get("/api/v1/cases/{case}/milestones"),
    ("/api/v1/cases/<case_id>/reopen", "POST"): _api(
        "POST", "/api/v1/cases/{case}/reopen", {"reason": "Neue Lage"}
    ),
    ("/api/v1/cases/<case_id>/person", "PATCH"): _api(
        "PATCH", "/api/v1/cases/{case}/person", {"given_names": "Semhar T.", "reason": "Pass"}
    ),
    ("/api/v1/cases/<case_id>/person/history", "GET"): _get("/api/v1/cases/{case}/person/history"),
    ("/api/v1/cases/<case_id>/household", "GET"): _get("/api/v1/cases/{case}/household"),
    # Linking the case to itself: a writer gets as far as the refusal of that (409).
    ("/api/v1/cases/<case_id>/household", "POST"): _api(
        "POST", "/api/v1/cases/{case}/household", {"case_id": "{case}", "relation": "child"}
    ),
    ("/api/v1/cases/<case_id>/household/<other_id>", "DELETE"): _api(
        "DELETE", "/api/v1/cases/{case}/household/{case}"
    ),
    ("/api/v1/cases/<case_id>/journal", "GET"): _get("/api/v1/cases/{case}/journal"),
    ("/api/v1/cases/<case_id>/journal", "POST"): _api(
        "POST", "/api/v1/cases/{case}/journal", {"kind": "note", "text": "Matrix"}
    ),
    ("/api/v1/cases/<case_id>/follow-ups", "GET"): _get("/api/v1/cases/{case}/follow-ups"),
    ("/api/v1/cases/<case_id>/follow-ups", "POST"): _api(
        "POST",
        "/api/v1/cases/{case}/follow-ups",
        {"due_date": local_today().isoformat(), "note": "Matrix"},
    ),
    ("/api/v1/follow-ups/<follow_up_id>/done", "POST"): _api(
        "POST", "/api/v1/follow-ups/{follow_up}/done", {}
    ),
    ("/api/v1/notifications/read-all", "POST"): _api("POST", "/api/v1/notifications/read-all"),
    ("/api/v1/cases/<case_id>/responsibilities", "GET"): _get(
        "/api/v1/cases/{case}/responsibilities"
    ),
    ("/api/v1/cases/<case_id>/target-groups", "GET"): _get("/api/v1/cases/{case}/target-groups"),
    ("/api/v1/cases/<case_id>/merge", "POST"): _merge_fresh_duplicate(web=False),
    ("/api/v1/cases/<case_id>/transfers", "POST"): _api(
        "POST", "/api/v1/cases/{case}/transfers", {"to_unit": "baden", "reason": "Umzug"}
    ),
    ("/api/v1/cost-approvals/<approval_id>", "GET"): _get("/api/v1/cost-approvals/{approval}"),
    ("/api/v1/cost-approvals/<approval_id>/decision", "POST"): _api(
        "POST", "/api/v1/cost-approvals/{approval}/decision", {"decision": "approved"}
    ),
    ("/api/v1/documents/<document_id>", "GET"): _get("/api/v1/documents/{doc}"),
    ("/api/v1/documents/<document_id>", "PATCH"): _api(
        "PATCH", "/api/v1/documents/{doc}", {"title": "Neu", "reason": "Tippfehler"}
    ),
    ("/api/v1/documents/<document_id>/history", "GET"): _get("/api/v1/documents/{doc}/history"),
    ("/api/v1/documents/<document_id>/withdraw", "POST"): _api(
        "POST", "/api/v1/documents/{doc}/withdraw", {"reason": "Falsche Person"}
    ),
    ("/api/v1/documents/<document_id>/purge", "POST"): _api(
        "POST", "/api/v1/documents/{doc}/purge", {"reason": "Datenschutz"}
    ),
    ("/api/v1/documents/<document_id>/move", "POST"): _api(
        "POST", "/api/v1/documents/{doc}/move", {"to_case": "{target}", "reason": "Falsche Person"}
    ),
    ("/api/v1/documents/<document_id>/content", "GET"): _get("/api/v1/documents/{doc}/content"),
    ("/api/v1/documents/<document_id>/versions", "POST"): _api(
        "POST", "/api/v1/documents/{doc}/versions", files={"file": PDF}
    ),
    ("/api/v1/documents/<document_id>/versions/<int:number>/content", "GET"): _get(
        "/api/v1/documents/{doc}/versions/1/content"
    ),
    ("/api/v1/exports", "POST"): _api("POST", "/api/v1/exports", {"case_ids": ["{case}"]}),
    ("/api/v1/exports/<export_id>", "GET"): _get("/api/v1/exports/{export}"),
    ("/api/v1/exports/<export_id>/acknowledge", "POST"): _api(
        "POST", "/api/v1/exports/{export}/acknowledge", {"archive_reference": "StAAG-1"}
    ),
    ("/api/v1/exports/<export_id>/content", "GET"): _get("/api/v1/exports/{export}/content"),
    ("/api/v1/health", "GET"): _get("/api/v1/health"),
    ("/api/v1/measures/<measure_id>", "PATCH"): _api(
        "PATCH", "/api/v1/measures/{measure}", {"status": "running"}
    ),
    ("/api/v1/notifications", "GET"): _get("/api/v1/notifications"),
    ("/api/v1/notifications/<int:notification_id>/read", "POST"): _api(
        "POST", "/api/v1/notifications/{notification}/read"
    ),
    ("/api/v1/openapi.json", "GET"): _get("/api/v1/openapi.json"),
    ("/api/v1/reports/ias", "GET"): _get("/api/v1/reports/ias?year=2025"),
    ("/api/v1/reports/stalled", "GET"): _get("/api/v1/reports/stalled"),
    ("/api/v1/search", "GET"): _get("/api/v1/search?q=Kurzassessment"),
    ("/audit", "GET"): _web("GET", "/audit"),
    ("/cases", "GET"): _web("GET", "/cases"),
    ("/cases/<case_id>", "GET"): _web("GET", "/cases/{case}"),
    ("/cases/new", "GET"): _web("GET", "/cases/new"),
    ("/cases/new", "POST"): _web("POST", "/cases/new", {"family_name": "Neu"}),
    ("/cases/<case_id>/close", "POST"): _web("POST", "/cases/{case}/close", {"reason": "other"}),
    ("/cases/<case_id>/cost-approvals", "GET"): _web("GET", "/cases/{case}/cost-approvals"),
    ("/cases/<case_id>/cost-approvals", "POST"): _web(
        "POST",
        "/cases/{case}/cost-approvals",
        {
            "programme": "IKG1",
            "amount_chf": "100.00",
            "period_from": "2026-02-01",
            "period_to": "2026-06-30",
            "justification": "Kurs.",
        },
    ),
    ("/cases/<case_id>/merge", "POST"): _merge_fresh_duplicate(web=True),
    ("/cases/<case_id>/journal", "POST"): _web(
        "POST", "/cases/{case}/journal", {"kind": "note", "text": "Matrix"}
    ),
    ("/cases/<case_id>/follow-ups", "POST"): _web(
        "POST", "/cases/{case}/follow-ups", {"due_date": local_today().isoformat(), "note": "M"}
    ),
    ("/follow-ups/<follow_up_id>/done", "POST"): _web("POST", "/follow-ups/{follow_up}/done"),
    ("/notifications/read-all", "POST"): _web("POST", "/notifications/read-all"),
    ("/cases/<case_id>/household", "POST"): _web(
        "POST", "/cases/{case}/household", {"reference": "{target_reference}", "relation": "child"}
    ),
    ("/cases/<case_id>/household/<other_id>/remove", "POST"): _web(
        "POST", "/cases/{case}/household/{case}/remove"
    ),
    ("/cases/<case_id>/person", "GET"): _web("GET", "/cases/{case}/person"),
    ("/cases/<case_id>/person", "POST"): _web(
        "POST", "/cases/{case}/person", {"family_name": "Matrix-Korrektur", "reason": "Pass"}
    ),
    ("/cases/<case_id>/delegate", "GET"): _web("GET", "/cases/{case}/delegate"),
    ("/cases/<case_id>/delegate", "POST"): _web(
        "POST", "/cases/{case}/delegate", {"to_unit": "ors", "reason": "Begleitung"}
    ),
    ("/cases/<case_id>/delegations/<unit_code>/end", "POST"): _web(
        "POST", "/cases/{case}/delegations/caritas/end"
    ),
    ("/cases/<case_id>/documents", "POST"): _web(
        "POST", "/cases/{case}/documents", {"type": "other", "file": PDF}
    ),
    ("/cases/<case_id>/measures", "POST"): _web(
        "POST",
        "/cases/{case}/measures",
        {"programme": "IKG1", "provider": "ECAP", "start": "2026-02-01"},
    ),
    ("/cases/<case_id>/milestones", "POST"): _web(
        "POST",
        "/cases/{case}/milestones",
        {"milestone": "language_level:A1", "date": "2025-09-01"},
    ),
    ("/cases/<case_id>/processing", "GET"): _web("GET", "/cases/{case}/processing"),
    ("/cases/<case_id>/reopen", "POST"): _web(
        "POST", "/cases/{case}/reopen", {"reason": "Neue Lage"}
    ),
    ("/cases/<case_id>/target-group", "POST"): _web(
        "POST", "/cases/{case}/target-group", {"target_group": "education"}
    ),
    ("/cases/<case_id>/transfer", "GET"): _web("GET", "/cases/{case}/transfer"),
    ("/cases/<case_id>/transfer", "POST"): _web(
        "POST", "/cases/{case}/transfer", {"to_unit": "baden", "reason": "Umzug"}
    ),
    ("/cost-approvals/<approval_id>/decision", "POST"): _web(
        "POST", "/cost-approvals/{approval}/decision", {"decision": "approved"}
    ),
    ("/documents/<document_id>", "GET"): _web("GET", "/documents/{doc}"),
    ("/documents/<document_id>/correct", "POST"): _web(
        "POST",
        "/documents/{doc}/correct",
        {"title": "Neu", "type": "other", "reason": "Tippfehler"},
    ),
    ("/documents/<document_id>/withdraw", "POST"): _web(
        "POST", "/documents/{doc}/withdraw", {"reason": "Falsche Person", "confirm": "yes"}
    ),
    ("/documents/<document_id>/purge", "POST"): _web(
        "POST", "/documents/{doc}/purge", {"reason": "Datenschutz", "confirm": "yes"}
    ),
    ("/documents/<document_id>/move", "POST"): _web(
        "POST",
        "/documents/{doc}/move",
        {"to_reference": "{target_reference}", "reason": "Falsche Person"},
    ),
    ("/documents/<document_id>/versions", "POST"): _web(
        "POST", "/documents/{doc}/versions", {"file": PDF}
    ),
    ("/documents/<document_id>/versions/<int:number>/download", "GET"): _web(
        "GET", "/documents/{doc}/versions/1/download"
    ),
    ("/documents/<document_id>/versions/<int:number>/preview", "GET"): _web(
        "GET", "/documents/{doc}/versions/1/preview"
    ),
    ("/language", "POST"): _web("POST", "/language", {"language": "fr"}),
    ("/login", "GET"): _web("GET", "/login"),
    ("/login", "POST"): _login,
    ("/login/oidc", "GET"): _web("GET", "/login/oidc"),
    ("/login/oidc/callback", "GET"): _web("GET", "/login/oidc/callback"),
    ("/logout", "POST"): _web("POST", "/logout"),
    ("/measures/<measure_id>", "POST"): _web("POST", "/measures/{measure}", {"status": "running"}),
    ("/notifications", "GET"): _web("GET", "/notifications"),
    ("/notifications/<int:notification_id>/read", "POST"): _web(
        "POST", "/notifications/{notification}/read"
    ),
    ("/reports/ias", "GET"): _web("GET", "/reports/ias?year=2025"),
    ("/reports/ias.csv", "GET"): _web("GET", "/reports/ias.csv?year=2025"),
    ("/search", "GET"): _web("GET", "/search?q=Kurzassessment"),
}


#: (rule, method) -> state -> the status each user gets, in the order of USERS:
#: canton, aarau (responsible), baden (other municipality), caritas (delegated),
#: ors (not delegated), auditor, archivist, admin. 404 hides a case the user may not read,
#: 403 refuses a role or a readable case the user may not change, 409 a closed case (or an
#: undecided cost approval that blocks closing); the web answers a done form with 302/303.
# fmt: off
EXPECTED: dict[tuple[str, str], dict[str, str]] = {
    ("/", "GET"): {"open": "302 302 302 302 302 302 200 200", "closed": "302 302 302 302 302 302 200 200"},
    ("/api/v1/audit", "GET"): {"open": "403 403 403 403 403 200 403 403", "closed": "403 403 403 403 403 200 403 403"},
    ("/api/v1/cases", "POST"): {"open": "201 403 403 403 403 403 403 403", "closed": "201 403 403 403 403 403 403 403"},
    ("/api/v1/cases", "GET"): {"open": "200 200 200 200 200 403 403 403", "closed": "200 200 200 200 200 403 403 403"},
    ("/api/v1/cases/<case_id>", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>", "PATCH"): {"open": "403 200 404 403 403 403 403 403", "closed": "403 409 404 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/close", "POST"): {"open": "409 409 404 403 403 403 403 403", "closed": "409 409 404 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/cost-approvals", "POST"): {"open": "403 201 404 403 403 403 403 403", "closed": "403 409 404 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/cost-approvals", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/delegations", "POST"): {"open": "403 201 404 403 403 403 403 403", "closed": "403 409 404 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/delegations/<unit_code>", "DELETE"): {"open": "403 200 404 403 403 403 403 403", "closed": "403 409 404 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/disclosure", "GET"): {"open": "200 403 403 403 403 403 403 403", "closed": "200 403 403 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/documents", "POST"): {"open": "403 201 404 201 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/cases/<case_id>/documents", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/legal-hold", "POST"): {"open": "201 403 403 403 403 403 403 403", "closed": "201 403 403 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/legal-hold", "DELETE"): {"open": "409 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/measures", "POST"): {"open": "403 201 404 201 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/cases/<case_id>/measures", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/milestones", "POST"): {"open": "403 201 404 201 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/cases/<case_id>/milestones", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/person", "PATCH"): {"open": "200 200 404 403 403 403 403 403", "closed": "409 409 404 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/person/history", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/reopen", "POST"): {"open": "409 403 403 403 403 403 403 403", "closed": "200 403 403 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/household", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/household", "POST"): {"open": "403 409 404 409 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/cases/<case_id>/household/<other_id>", "DELETE"): {"open": "403 404 404 404 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/cases/<case_id>/journal", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/journal", "POST"): {"open": "403 201 404 201 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/cases/<case_id>/follow-ups", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/follow-ups", "POST"): {"open": "403 201 404 201 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/follow-ups/<follow_up_id>/done", "POST"): {"open": "403 200 404 200 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/notifications/read-all", "POST"): {"open": "200 200 200 200 200 403 403 403", "closed": "200 200 200 200 200 403 403 403"},
    ("/api/v1/cases/<case_id>/responsibilities", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/target-groups", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cases/<case_id>/merge", "POST"): {"open": "200 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/api/v1/cases/<case_id>/transfers", "POST"): {"open": "201 201 404 403 403 403 403 403", "closed": "409 409 404 403 403 403 403 403"},
    ("/api/v1/cost-approvals/<approval_id>", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/cost-approvals/<approval_id>/decision", "POST"): {"open": "200 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/api/v1/documents/<document_id>", "PATCH"): {"open": "403 200 404 200 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/documents/<document_id>/history", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/documents/<document_id>/withdraw", "POST"): {"open": "200 200 404 403 403 403 403 403", "closed": "200 200 404 403 403 403 403 403"},
    ("/api/v1/documents/<document_id>/purge", "POST"): {"open": "409 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/api/v1/documents/<document_id>/move", "POST"): {"open": "200 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/api/v1/documents/<document_id>", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/documents/<document_id>/content", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/documents/<document_id>/versions", "POST"): {"open": "403 201 404 201 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/documents/<document_id>/versions/<int:number>/content", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/api/v1/exports", "POST"): {"open": "403 403 403 403 403 403 409 403", "closed": "403 403 403 403 403 403 202 403"},
    ("/api/v1/exports/<export_id>", "GET"): {"open": "403 403 403 403 403 403 200 403", "closed": "403 403 403 403 403 403 200 403"},
    ("/api/v1/exports/<export_id>/acknowledge", "POST"): {"open": "403 403 403 403 403 403 200 403", "closed": "403 403 403 403 403 403 200 403"},
    ("/api/v1/exports/<export_id>/content", "GET"): {"open": "403 403 403 403 403 403 200 403", "closed": "403 403 403 403 403 403 200 403"},
    ("/api/v1/health", "GET"): {"open": "200 200 200 200 200 200 200 200", "closed": "200 200 200 200 200 200 200 200"},
    ("/api/v1/measures/<measure_id>", "PATCH"): {"open": "403 200 404 200 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/api/v1/notifications", "GET"): {"open": "200 200 200 200 200 403 403 403", "closed": "200 200 200 200 200 403 403 403"},
    ("/api/v1/notifications/<int:notification_id>/read", "POST"): {"open": "404 200 404 404 404 403 403 403", "closed": "404 200 404 404 404 403 403 403"},
    ("/api/v1/openapi.json", "GET"): {"open": "200 200 200 200 200 200 200 200", "closed": "200 200 200 200 200 200 200 200"},
    ("/api/v1/reports/ias", "GET"): {"open": "200 403 403 403 403 403 403 403", "closed": "200 403 403 403 403 403 403 403"},
    ("/api/v1/reports/stalled", "GET"): {"open": "200 403 403 403 403 403 403 403", "closed": "200 403 403 403 403 403 403 403"},
    ("/api/v1/search", "GET"): {"open": "200 200 200 200 200 403 403 403", "closed": "200 200 200 200 200 403 403 403"},
    ("/audit", "GET"): {"open": "403 403 403 403 403 200 403 403", "closed": "403 403 403 403 403 200 403 403"},
    ("/cases", "GET"): {"open": "200 200 200 200 200 403 403 403", "closed": "200 200 200 200 200 403 403 403"},
    ("/cases/<case_id>", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/cases/new", "GET"): {"open": "200 403 403 403 403 403 403 403", "closed": "200 403 403 403 403 403 403 403"},
    ("/cases/new", "POST"): {"open": "422 403 403 403 403 403 403 403", "closed": "422 403 403 403 403 403 403 403"},
    ("/cases/<case_id>/close", "POST"): {"open": "409 409 404 403 403 403 403 403", "closed": "409 409 404 403 403 403 403 403"},
    ("/cases/<case_id>/cost-approvals", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/cases/<case_id>/cost-approvals", "POST"): {"open": "403 303 404 403 403 403 403 403", "closed": "403 409 404 403 403 403 403 403"},
    ("/cases/<case_id>/merge", "POST"): {"open": "303 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/cases/<case_id>/journal", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/cases/<case_id>/follow-ups", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/follow-ups/<follow_up_id>/done", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/notifications/read-all", "POST"): {"open": "303 303 303 303 303 403 403 403", "closed": "303 303 303 303 303 403 403 403"},
    ("/cases/<case_id>/household", "POST"): {"open": "403 422 404 422 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/cases/<case_id>/household/<other_id>/remove", "POST"): {"open": "403 404 404 404 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/cases/<case_id>/person", "GET"): {"open": "200 200 404 403 404 403 403 403", "closed": "200 200 404 403 404 403 403 403"},
    ("/cases/<case_id>/person", "POST"): {"open": "302 302 404 403 404 403 403 403", "closed": "409 409 404 403 404 403 403 403"},
    ("/cases/<case_id>/delegate", "GET"): {"open": "403 200 404 403 404 403 403 403", "closed": "403 200 404 403 404 403 403 403"},
    ("/cases/<case_id>/delegate", "POST"): {"open": "403 200 404 403 404 403 403 403", "closed": "403 200 404 403 404 403 403 403"},
    ("/cases/<case_id>/delegations/<unit_code>/end", "POST"): {"open": "403 302 404 403 403 403 403 403", "closed": "403 302 404 403 403 403 403 403"},
    ("/cases/<case_id>/documents", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/cases/<case_id>/measures", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/cases/<case_id>/milestones", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/cases/<case_id>/processing", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/cases/<case_id>/reopen", "POST"): {"open": "409 403 403 403 403 403 403 403", "closed": "303 403 403 403 403 403 403 403"},
    ("/cases/<case_id>/target-group", "POST"): {"open": "403 303 404 403 403 403 403 403", "closed": "403 409 404 403 403 403 403 403"},
    ("/cases/<case_id>/transfer", "GET"): {"open": "200 200 404 403 404 403 403 403", "closed": "200 200 404 403 404 403 403 403"},
    ("/cases/<case_id>/transfer", "POST"): {"open": "200 200 404 403 404 403 403 403", "closed": "200 200 404 403 404 403 403 403"},
    ("/cost-approvals/<approval_id>/decision", "POST"): {"open": "303 403 404 403 404 403 403 403", "closed": "409 403 404 403 404 403 403 403"},
    ("/documents/<document_id>/correct", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/documents/<document_id>/withdraw", "POST"): {"open": "303 303 404 403 403 403 403 403", "closed": "303 303 404 403 403 403 403 403"},
    ("/documents/<document_id>/purge", "POST"): {"open": "409 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/documents/<document_id>/move", "POST"): {"open": "303 403 403 403 403 403 403 403", "closed": "409 403 403 403 403 403 403 403"},
    ("/documents/<document_id>", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/documents/<document_id>/versions", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/documents/<document_id>/versions/<int:number>/download", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/documents/<document_id>/versions/<int:number>/preview", "GET"): {"open": "200 200 404 200 404 403 403 403", "closed": "200 200 404 200 404 403 403 403"},
    ("/language", "POST"): {"open": "302 302 302 302 302 302 302 302", "closed": "302 302 302 302 302 302 302 302"},
    ("/login", "GET"): {"open": "302 302 302 302 302 302 302 302", "closed": "302 302 302 302 302 302 302 302"},
    ("/login", "POST"): {"open": "302 302 302 302 302 302 302 302", "closed": "302 302 302 302 302 302 302 302"},
    ("/login/oidc", "GET"): {"open": "302 302 302 302 302 302 302 302", "closed": "302 302 302 302 302 302 302 302"},
    ("/login/oidc/callback", "GET"): {"open": "302 302 302 302 302 302 302 302", "closed": "302 302 302 302 302 302 302 302"},
    ("/logout", "POST"): {"open": "302 302 302 302 302 302 302 302", "closed": "302 302 302 302 302 302 302 302"},
    ("/measures/<measure_id>", "POST"): {"open": "403 303 404 303 404 403 403 403", "closed": "403 409 404 409 404 403 403 403"},
    ("/notifications", "GET"): {"open": "200 200 200 200 200 403 403 403", "closed": "200 200 200 200 200 403 403 403"},
    ("/notifications/<int:notification_id>/read", "POST"): {"open": "404 303 404 404 404 403 403 403", "closed": "404 303 404 404 404 403 403 403"},
    ("/reports/ias", "GET"): {"open": "200 403 403 403 403 403 403 403", "closed": "200 403 403 403 403 403 403 403"},
    ("/reports/ias.csv", "GET"): {"open": "200 403 403 403 403 403 403 403", "closed": "200 403 403 403 403 403 403 403"},
    ("/search", "GET"): {"open": "200 200 200 200 200 403 403 403", "closed": "200 200 200 200 200 403 403 403"},
}
# fmt: on


def app_routes(app: Flask) -> set[tuple[str, str]]:
    """(rule, method) of every route of the app, HEAD and OPTIONS aside."""
    return {
        (rule.rule, method)
        for rule in app.url_map.iter_rules()
        if rule.rule not in SKIPPED_RULES
        for method in rule.methods or ()
        if method not in {"HEAD", "OPTIONS"}
    }


def _mutates(rule: str, method: str, status: int) -> bool:
    """Whether a cell changed the world, so the next one needs a fresh case."""
    return method != "GET" and (200 <= status < 400) and rule not in {"/language", "/login"}


class Runner:
    """Sends the cells, one API client and one logged-in web client per user."""

    def __init__(self, app: Flask, world: World, container: Container) -> None:
        self.app, self.world = app, world
        self.api = app.test_client()
        set_passwords(container, *USERS)
        self.web = {user: self._logged_in(user) for user in USERS}
        self.fresh: dict[str, bool] = {}
        self.fx = Fixtures({s: self._case(s) for s in STATES}, self._export(), self._notification())
        target = new_case(
            self.api, world, family_name="Ziel", zemis_number="87654321.2", ahv_number=None
        )
        self.fx.target, self.fx.target_reference = target["id"], target["reference"]

    def _logged_in(self, user: str) -> FlaskClient:
        client = self.app.test_client()
        assert login(client, user).status_code == 302
        return client

    def _case(self, state: str) -> Case:
        return _build_case(self.api, self.world, closed=state == "closed")

    def _export(self) -> str:
        closed = small_closed_case(self.api, self.world, family_name="Archiv")
        export_id, _ = export_and_download(self.api, self.world, [closed.id])
        return export_id

    def _notification(self) -> int:
        items = self.api.get(f"{API}/notifications", headers=self.world.auth("aarau")).get_json()
        return int(items["items"][0]["id"])

    def status(self, rule: str, method: str, user: str, state: str) -> int:
        """Send one cell and return its status; rebuild what it changed."""
        client = self.web[user] if not rule.startswith(API) else self.api
        response = REQUESTS[(rule, method)](client, self.world, user, self.fx.cases[state], self.fx)
        if _mutates(rule, method, response.status_code):
            self.fx.cases[state] = self._case(state)
        if rule in {"/logout", "/language"}:
            self.web[user] = self._logged_in(user)
        return response.status_code


def test_every_route_has_a_row_and_every_row_a_route(app: Flask):
    routes = app_routes(app)
    assert routes - set(EXPECTED) == set(), "add the new routes to EXPECTED and REQUESTS"
    assert set(EXPECTED) - routes == set(), "EXPECTED names routes the app no longer has"
    assert set(REQUESTS) == set(EXPECTED)


# Some 2000 requests, many of them building a fresh case: beyond the suite's 300 s default
# on a 2-core machine (about 250 s before the journal and follow-up rows were added).
@pytest.mark.timeout(1200)
def test_route_matrix(app: Flask, world: World, container: Container):
    runner = Runner(app, world, container)
    problems = []
    for (rule, method), row in EXPECTED.items():
        for state in STATES:
            want = row[state].split()
            for user, expected in zip(USERS, want, strict=True):
                got = runner.status(rule, method, user, state)
                if str(got) != expected:
                    problems.append(
                        f"{method} {rule} [{state}] {user}: expected {expected}, got {got}"
                    )
    assert problems == []
