"""Scenario builders for the tests: the canton's units and users, cases, uploads, hand-overs."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import io
import itertools
import os
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from click.testing import CliRunner, Result
from flask.testing import FlaskClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.bodies.archive import ExportInput
from dossier_service.cli import main
from dossier_service.config import Settings
from dossier_service.container import Container
from dossier_service.db import Database
from dossier_service.models import User
from dossier_service.samples import make_docx, make_pdf
from dossier_service.services import accounts, exports

API = "/api/v1"
PDF_V1 = make_pdf("Kurzassessment", ["Deutschkenntnisse A1."])
PDF_V2 = make_pdf("Kurzassessment", ["Deutschkenntnisse A2."])
DOCX = make_docx("Integrationsplan", ["IKG1 ab Februar."])
END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde Aarau."])
HANDOVER_NOTE = make_pdf("Übergabenotiz", ["Stand der Begleitung beim Wegzug."])
#: The password every web-interface test user gets.
PASSWORD = "Sicheres-Passwort-2026"

# --- Units, users, tokens ------------------------------------------------------------------


@dataclass
class World:
    """Units and users of a small canton, with one token per user."""

    tokens: dict[str, str]

    def auth(self, username: str) -> dict[str, str]:
        """The Authorization header of a user."""
        return {"Authorization": f"Bearer {self.tokens[username]}"}


UNITS = [
    ("ag", "Kanton Aargau KSD", "canton"),
    ("aarau", "Gemeinde Aarau", "municipality"),
    ("baden", "Stadt Baden", "municipality"),
    ("wettingen", "Gemeinde Wettingen", "municipality"),
    ("caritas", "Caritas Aargau", "organisation"),
    ("ors", "ORS Service AG", "organisation"),
]


USERS = [
    ("canton", "ag", "caseworker"),
    ("aarau", "aarau", "caseworker"),
    ("baden", "baden", "caseworker"),
    ("wettingen", "wettingen", "caseworker"),
    ("caritas", "caritas", "caseworker"),
    ("ors", "ors", "caseworker"),
    ("auditor", "ag", "auditor"),
    ("archivist", "ag", "archivist"),
    ("admin", "ag", "admin"),
]


def create_world(container: Container) -> World:
    """Create the units and users and a token for each user."""
    with container.db.transaction() as session:
        for code, name, kind in UNITS:
            accounts.create_unit(session, code, name, kind)
        for username, unit, role in USERS:
            accounts.create_user(session, username, unit, role)
        tokens = {u: accounts.create_token(session, u) for u, _, _ in USERS}
    return World(tokens)


# --- Cases and documents through the API -------------------------------------------------


PERSON = {
    "family_name": "Haile",
    "given_names": "Semhar",
    "birth_date": "2006-03",
    "sex": "female",
    "nationality": "ER",
    "zemis_number": "12345678.9",
    "ahv_number": "756.9217.0769.85",
    "residence_status": "F",
}


_PERSON_SERIAL = itertools.count(1)


def fresh_person(**person: Any) -> dict[str, Any]:
    """PERSON with a ZEMIS and an AHV number no other case of the run carries (one person,
    one case), unless the caller gives them."""
    serial = next(_PERSON_SERIAL)
    first12 = f"756{serial:09d}"
    weights = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    ahv = first12 + str((10 - weights % 10) % 10)
    return {
        **PERSON,
        "zemis_number": f"9{serial:07d}.{serial % 10}",
        "ahv_number": f"{ahv[:3]}.{ahv[3:7]}.{ahv[7:11]}.{ahv[11:]}",
        **person,
    }


def new_case(client: FlaskClient, world: World, **person: Any) -> dict[str, Any]:
    """Register a case as the canton (a fresh person unless told otherwise); its JSON."""
    response = client.post(
        "/api/v1/cases",
        json={"person": fresh_person(**person), "entry_date": "2025-03-01"},
        headers=world.auth("canton"),
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def upload(
    client: FlaskClient,
    world: World,
    user: str,
    case_id: str,
    data: bytes,
    *,
    doc_type: str = "other",
    filename: str = "dokument.pdf",
    title: str | None = None,
) -> Any:
    """POST a document and return the response."""

    form: dict[str, Any] = {"type": doc_type, "file": (io.BytesIO(data), filename)}
    if title is not None:
        form["title"] = title
    return client.post(
        f"/api/v1/cases/{case_id}/documents",
        data=form,
        headers=world.auth(user),
        content_type="multipart/form-data",
    )


# --- The case process: hand-over, delegation, closing, cost approvals -----------------------


def held_by(client: FlaskClient, world: World, unit: str = "aarau", **person: Any) -> str:
    """A case registered by the canton and handed to a municipality; its id."""
    cid = new_case(client, world, **person)["id"]
    assert (
        upload(client, world, "canton", cid, END_REPORT, doc_type="end_report").status_code == 201
    )
    moved = client.post(
        f"{API}/cases/{cid}/transfers",
        json={"to_unit": unit, "reason": "Wohnsitznahme"},
        headers=world.auth("canton"),
    )
    assert moved.status_code == 201, moved.get_json()
    return cid


def file_handover_note(client: FlaskClient, world: World, user: str, case_id: str) -> str:
    """Upload a hand-over note (Übergabenotiz) as the user; the document's id."""
    filed = upload(client, world, user, case_id, HANDOVER_NOTE, doc_type="handover_note")
    assert filed.status_code == 201, filed.get_json()
    return str(filed.get_json()["id"])


def move(
    client: FlaskClient, world: World, case_id: str, user: str, to_unit: str, reason: str = "Umzug"
) -> Any:
    """The responsible municipality's user files a hand-over note and hands the case to
    another municipality (a move); the transfer's response."""
    file_handover_note(client, world, user, case_id)
    return client.post(
        f"{API}/cases/{case_id}/transfers",
        json={"to_unit": to_unit, "reason": reason},
        headers=world.auth(user),
    )


def notifications_of(client: FlaskClient, world: World, user: str, **params: str) -> list[dict]:
    """The notifications the user's unit sees (all pages merged, newest first)."""
    response = client.get(
        f"{API}/notifications", query_string={"per_page": "200", **params}, headers=world.auth(user)
    )
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def kinds(items: list[dict], case_id: str) -> list[str]:
    """The kinds of the notifications about one case, oldest first."""
    return sorted(n["kind"] for n in items if n["case_id"] == case_id)


REQUEST = {
    "programme": "IKG1",
    "amount_chf": "4800.00",
    "period_from": "2026-02-01",
    "period_to": "2026-06-30",
    "justification": "IKG1 gemäss Integrationsplan.",
}


def request_approval(
    client: FlaskClient, world: World, cid: str, user: str = "aarau", **fields: Any
) -> Any:
    """POST a cost-approval request and return the response."""
    return client.post(
        f"{API}/cases/{cid}/cost-approvals", json={**REQUEST, **fields}, headers=world.auth(user)
    )


def monitor(settings: Any, as_of: dt.date) -> str:
    """Run ``dossier monitor run --as-of`` against the test's database and data dir."""
    env = {
        "DOSSIER_DATA_DIR": str(settings.data_dir),
        "DOSSIER_DATABASE_URL": settings.database_url,
        "DOSSIER_TASKS_EAGER": "true",
    }
    result = CliRunner().invoke(main, ["monitor", "run", "--as-of", as_of.isoformat()], env=env)
    assert result.exit_code == 0, result.output
    return result.output


# --- Closed cases and their export ------------------------------------------------------------


@dataclass
class ClosedCase:
    """A case as the issue describes it, closed: ids of the case and its documents."""

    id: str
    reference: str
    entry_date: str
    pdf_id: str
    docx_id: str
    end_report_id: str
    versions: dict[str, bytes]  # sha256 -> bytes of every version


def closed_case(
    client: FlaskClient,
    world: World,
    before_close: Callable[[str], None] | None = None,
    **person: Any,
) -> ClosedCase:
    """Canton registers and files, hands to Aarau (who delegates to Caritas and adds version 2
    of the PDF), target group set; ``before_close(case_id)`` may add more; Aarau closes it."""
    case = new_case(client, world, **person)
    cid = case["id"]
    canton, aarau = world.auth("canton"), world.auth("aarau")
    assert (
        client.patch(
            f"{API}/cases/{cid}", json={"target_group": "education"}, headers=canton
        ).status_code
        == 200
    )
    pdf = upload(
        client,
        world,
        "canton",
        cid,
        PDF_V1,
        doc_type="short_assessment",
        filename="kurz.pdf",
        title="Kurzassessment",
    )
    assert pdf.status_code == 201, pdf.get_json()
    docx = upload(
        client,
        world,
        "canton",
        cid,
        DOCX,
        doc_type="integration_plan",
        filename="plan.docx",
        title="Integrationsplan",
    )
    assert docx.status_code == 201, docx.get_json()
    report = upload(
        client,
        world,
        "canton",
        cid,
        END_REPORT,
        doc_type="end_report",
        filename="schlussbericht.pdf",
    )
    assert report.status_code == 201
    moved = client.post(
        f"{API}/cases/{cid}/transfers",
        json={"to_unit": "aarau", "reason": "Wohnsitz Aarau"},
        headers=canton,
    )
    assert moved.status_code == 201, moved.get_json()
    delegated = client.post(
        f"{API}/cases/{cid}/delegations",
        json={"to_unit": "caritas", "reason": "Begleitung"},
        headers=aarau,
    )
    assert delegated.status_code == 201, delegated.get_json()
    v2 = client.post(
        f"{API}/documents/{pdf.get_json()['id']}/versions",
        data={"file": (io.BytesIO(PDF_V2), "kurz-v2.pdf")},
        headers=aarau,
        content_type="multipart/form-data",
    )
    assert v2.status_code == 201, v2.get_json()
    if before_close is not None:
        before_close(cid)
    closed = client.post(
        f"{API}/cases/{cid}/close", json={"reason": "integrated_employment"}, headers=aarau
    )
    assert closed.status_code == 200, closed.get_json()
    return ClosedCase(
        id=cid,
        reference=case["reference"],
        entry_date=case["entry_date"],
        pdf_id=pdf.get_json()["id"],
        docx_id=docx.get_json()["id"],
        end_report_id=report.get_json()["id"],
        versions={hashlib.sha256(b).hexdigest(): b for b in (PDF_V1, PDF_V2, DOCX, END_REPORT)},
    )


def small_closed_case(client: FlaskClient, world: World, **person: Any) -> ClosedCase:
    """A closed case with one PDF (for tests where the dossier's shape does not matter)."""
    case = new_case(client, world, **person)
    pdf = upload(client, world, "canton", case["id"], PDF_V1, doc_type="short_assessment")
    assert pdf.status_code == 201, pdf.get_json()
    closed = client.post(
        f"{API}/cases/{case['id']}/close", json={"reason": "other"}, headers=world.auth("canton")
    )
    assert closed.status_code == 200, closed.get_json()
    return ClosedCase(
        id=case["id"],
        reference=case["reference"],
        entry_date=case["entry_date"],
        pdf_id=pdf.get_json()["id"],
        docx_id="",
        end_report_id="",
        versions={hashlib.sha256(PDF_V1).hexdigest(): PDF_V1},
    )


def export_and_download(
    client: FlaskClient, world: World, case_ids: list[str]
) -> tuple[str, bytes]:
    """Export as the archivist (eager tasks build it at once) and download the ZIP."""
    created = client.post(
        f"{API}/exports", json={"case_ids": case_ids}, headers=world.auth("archivist")
    )
    assert created.status_code == 202, created.get_json()
    assert created.get_json()["status"] == "queued"
    export_id = created.get_json()["id"]
    status = client.get(f"{API}/exports/{export_id}", headers=world.auth("archivist")).get_json()
    assert status["status"] == "done", status
    content = client.get(f"{API}/exports/{export_id}/content", headers=world.auth("archivist"))
    assert content.status_code == 200
    assert content.mimetype == "application/zip"
    return export_id, content.data


def queue_export(session: Session, world: World, case_ids: list[str]) -> str:
    """Request an export as the archivist without sending its task (the test runs it)."""
    user = session.execute(select(User).where(User.username == "archivist")).scalar_one()
    export = exports.create_export(
        session,
        accounts.identity_for_user(user),
        ExportInput.model_validate({"case_ids": case_ids}),
    )
    return export.id


@contextlib.contextmanager
def quiet_transaction(container: Container) -> Iterator[Session]:
    """A transaction whose commit sends no task (a bare Database has no after-commit hook)."""
    db = Database(container.settings.database_url)
    try:
        with db.transaction() as session:
            yield session
    finally:
        db.dispose()


# --- The command line ------------------------------------------------------------------------


def cli_env(settings: Settings, **extra: str | None) -> dict[str, str | None]:
    """The environment of a CLI run on the test's data dir and database, nothing inherited."""
    # Unset the caller's DOSSIER_* settings so the run sees exactly what the test gives it.
    env: dict[str, str | None] = {
        name: None
        for name in os.environ
        if name.startswith("DOSSIER_") and not name.startswith("DOSSIER_TEST_")
    }
    env.update(DOSSIER_DATA_DIR=str(settings.data_dir), DOSSIER_DATABASE_URL=settings.database_url)
    env.update(extra)
    return env


def run_cli(settings: Settings, *args: str, **extra: str | None) -> Result:
    """Invoke ``dossier ARGS`` in-process; exceptions other than exits propagate."""
    return CliRunner().invoke(
        main, list(args), env=cli_env(settings, **extra), catch_exceptions=False
    )


# --- The web interface: passwords, login, the session's CSRF token ---------------------------


def set_passwords(container: Container, *usernames: str) -> None:
    """Give the users the test password."""
    with container.db.transaction() as session:
        for username in usernames:
            accounts.set_password(session, username, PASSWORD)


def csrf(client: FlaskClient) -> str:
    """The CSRF token of the client's session (created by a first page view if missing)."""
    with client.session_transaction() as session:
        token = session.get("csrf")
    if token is None:
        client.get("/login")
        with client.session_transaction() as session:
            token = session["csrf"]
    return str(token)


def login(client: FlaskClient, username: str, password: str = PASSWORD) -> Any:
    """Log in through the form, as a browser would (token from the login page)."""
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.get_data(as_text=True))
    assert token is not None
    return client.post(
        "/login",
        data={"username": username, "password": password, "csrf_token": token.group(1)},
    )


def post(client: FlaskClient, path: str, data: dict[str, Any] | None = None, **kwargs: Any) -> Any:
    """POST a form with the session's CSRF token."""
    return client.post(path, data={**(data or {}), "csrf_token": csrf(client)}, **kwargs)
