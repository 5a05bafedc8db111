"""The access policy as a matrix of user (role × unit) × endpoint, proved through the API.

A case is driven through six states by the real API, and in each state every user calls
every case endpoint; the expected answer of each cell is written down in a table below.
Denials (403/404) must also leave a ``denied`` entry in the audit log. Around the matrix:
the transfer and delegation rules (409/422/404), the role-only endpoints (POST /cases,
GET /audit) and authentication failures (401).
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import pytest
from flask.testing import FlaskClient
from sqlalchemy import func, select

from dossier_service.dates import local_today, utcnow
from dossier_service.models import AuthFailureWindow, Responsibility, Unit, User
from dossier_service.samples import make_pdf
from dossier_service.services import accounts
from tests.factories import HANDOVER_NOTE, World, file_handover_note, new_case, upload

API = "/api/v1"
END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde."])
NEW_DOCUMENT = make_pdf("Gesprächsnotiz", ["Standortgespräch."])
NEW_VERSION = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde, ergänzt."])


def new_version(user: str) -> bytes:
    """A next version of the end report, different for every user."""
    return make_pdf("Schlussbericht", [f"Übergabe an die Gemeinde, ergänzt von {user}."])


USERS = ("canton", "aarau", "baden", "wettingen", "caritas", "ors", "auditor", "archivist", "admin")

# Expected answers of one cell.
OK = "ok"  # 200, or 201 for a creation; the answer is checked against the state
SEEN = "seen"  # GET /cases: 200 and the case is among the items
UNSEEN = "unseen"  # GET /cases: 200 and the case is not among the items
HIDDEN = "hidden"  # 404 case_not_found / document_not_found: the case's existence does not leak
ROLE = "role"  # 403 forbidden: the role (or its unit kind) may never do this
HELD = "held"  # 403 case_not_writable: readable, but another unit is responsible
NOT_DELEG = (404, "delegation_not_found")  # the case is visible but not delegated there
Expectation = str | tuple[int, str]


@dataclass(frozen=True)
class Endpoint:
    """One case endpoint: how to name it, what it logs, what success answers."""

    label: str
    audit_action: str
    success: int = 200
    about_document: bool = False
    mutates_access: bool = False

    @property
    def hidden_code(self) -> str:
        """The code of the 404 that hides a case the caller may not see."""
        return "document_not_found" if self.about_document else "case_not_found"


ENDPOINTS: dict[str, Endpoint] = {
    "list": Endpoint("GET /cases", "case.list"),
    "case": Endpoint("GET /cases/{id}", "case.read"),
    "history": Endpoint("GET /cases/{id}/responsibilities", "case.read"),
    "household": Endpoint("GET /cases/{id}/household", "case.read"),
    "docs": Endpoint("GET /cases/{id}/documents", "document.list"),
    "doc": Endpoint("GET /documents/{doc}", "document.read", about_document=True),
    "content": Endpoint("GET /documents/{doc}/content", "content.read", about_document=True),
    "content_v1": Endpoint(
        "GET /documents/{doc}/versions/1/content", "content.read", about_document=True
    ),
    "upload": Endpoint("POST /cases/{id}/documents", "document.create", 201),
    "version": Endpoint("POST /documents/{doc}/versions", "version.create", 201, True),
    "transfer": Endpoint("POST /cases/{id}/transfers", "transfer.create", 201, mutates_access=True),
    "delegate": Endpoint(
        "POST /cases/{id}/delegations", "delegation.create", 201, mutates_access=True
    ),
    "undelegate": Endpoint(
        "DELETE /cases/{id}/delegations/{unit}", "delegation.end", mutates_access=True
    ),
    "doc_history": Endpoint(
        "GET /documents/{doc}/history", "document.history", about_document=True
    ),
    "correct": Endpoint("PATCH /documents/{doc}", "document.correct", about_document=True),
    # Withdrawing and moving take the document away from the case: each runs on a fresh copy.
    "withdraw": Endpoint(
        "POST /documents/{doc}/withdraw",
        "document.withdraw",
        about_document=True,
        mutates_access=True,
    ),
    "move": Endpoint(
        "POST /documents/{doc}/move", "document.move", about_document=True, mutates_access=True
    ),
    "person_history": Endpoint("GET /cases/{id}/person/history", "case.read"),
    "person_correct": Endpoint("PATCH /cases/{id}/person", "person.correct"),
    # A merge takes a fresh second case of the person into the case: each runs on a copy.
    "merge": Endpoint("POST /cases/{id}/merge", "case.merge", mutates_access=True),
}
COLUMNS = tuple(ENDPOINTS)
READS = ("list", "case", "history", "household", "docs", "doc", "content", "content_v1", "doc_history",
         "person_history")
WRITES = ("upload", "version", "transfer", "delegate", "undelegate", "correct", "withdraw", "move",
          "person_correct", "merge")

# The rows a user can have; each state's table below picks one per user. The columns are
# the endpoints in COLUMNS order. The rows stay on one line each so they read as a table,
# which makes them wider than the line limit:
# ruff: noqa: E501
# fmt: off
#                 list    case    hist.   house.   docs    doc     cont.   v1      upload  vers.   transf. deleg.  undel.  d.hist. correct withdr. move p.hist. p.corr. merge
CANTON_HOLDS =   (SEEN, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, ROLE, ROLE, OK, OK, OK, OK, OK, OK, OK)
CANTON_READS =   (SEEN, OK, OK, OK, OK, OK, OK, OK, HELD, HELD, OK, ROLE, ROLE, OK, HELD, OK, OK, OK, OK, OK)
MUNI_HOLDS =     (SEEN, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, NOT_DELEG, OK, OK, OK, ROLE, OK, OK, ROLE)
MUNI_DELEGATED = (SEEN, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, OK, ROLE, OK, OK, ROLE)
ORG_DELEGATED =  (SEEN, OK, OK, OK, OK, OK, OK, OK, OK, OK, ROLE, ROLE, ROLE, OK, OK, ROLE, ROLE, OK, ROLE, ROLE)
STRANGER_MUNI =  (UNSEEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, ROLE, HIDDEN, HIDDEN, ROLE)
STRANGER_ORG =   (UNSEEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, HIDDEN, ROLE, ROLE, ROLE, HIDDEN, HIDDEN, ROLE, ROLE, HIDDEN, ROLE, ROLE)
NO_CASE_ACCESS = (ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE, ROLE)
# fmt: on
#: Auditors, archivists and admins touch no case endpoint, in any state.
OUTSIDERS = {"auditor": NO_CASE_ACCESS, "archivist": NO_CASE_ACCESS, "admin": NO_CASE_ACCESS}

MATRIX: dict[str, dict[str, tuple[Expectation, ...]]] = {
    "a_canton_holds": {
        "canton": CANTON_HOLDS,
        "aarau": STRANGER_MUNI,
        "baden": STRANGER_MUNI,
        "wettingen": STRANGER_MUNI,
        "caritas": STRANGER_ORG,
        "ors": STRANGER_ORG,
        **OUTSIDERS,
    },
    "b_transferred_to_aarau": {
        "canton": CANTON_READS,
        "aarau": MUNI_HOLDS,
        "baden": STRANGER_MUNI,
        "wettingen": STRANGER_MUNI,
        "caritas": STRANGER_ORG,
        "ors": STRANGER_ORG,
        **OUTSIDERS,
    },
    "c_aarau_delegates_to_caritas": {
        "canton": CANTON_READS,
        "aarau": MUNI_DELEGATED,
        "baden": STRANGER_MUNI,
        "wettingen": STRANGER_MUNI,
        "caritas": ORG_DELEGATED,
        "ors": STRANGER_ORG,
        **OUTSIDERS,
    },
    "d_delegation_ended": {
        "canton": CANTON_READS,
        "aarau": MUNI_HOLDS,
        "baden": STRANGER_MUNI,
        "wettingen": STRANGER_MUNI,
        "caritas": STRANGER_ORG,
        "ors": STRANGER_ORG,
        **OUTSIDERS,
    },
    "e_aarau_transfers_to_baden": {
        "canton": CANTON_READS,
        "aarau": STRANGER_MUNI,
        "baden": MUNI_HOLDS,
        "wettingen": STRANGER_MUNI,
        "caritas": STRANGER_ORG,
        "ors": STRANGER_ORG,
        **OUTSIDERS,
    },
    "f_baden_returns_to_canton": {
        "canton": CANTON_HOLDS,
        "aarau": STRANGER_MUNI,
        "baden": STRANGER_MUNI,
        "wettingen": STRANGER_MUNI,
        "caritas": STRANGER_ORG,
        "ors": STRANGER_ORG,
        **OUTSIDERS,
    },
}

#: One step of a state's history: (action, acting user, target unit code).
Step = tuple[str, str, str]


@dataclass(frozen=True)
class State:
    """How to reach a case state through the API, and what the state looks like then."""

    steps: tuple[Step, ...]
    holder: str  # code of the responsible unit
    history: tuple[str, ...]  # responsibility periods, oldest first
    delegated: tuple[str, ...] = ()
    # The targets of this state's write probes.
    transfer_to: str = "baden"
    delegate_to: str = "caritas"
    undelegate: str = "caritas"
    #: The case a moved document goes to (set to the bystander case when the test runs).
    move_to: str = ""


TO_AARAU: Step = ("transfer", "canton", "aarau")
DELEGATE: Step = ("delegate", "aarau", "caritas")
#: Aarau files a hand-over note, so that it may hand the case to another municipality.
AARAU_NOTE: Step = ("note", "aarau", "")
STATES: dict[str, State] = {
    "a_canton_holds": State((), "ag", ("ag",), transfer_to="aarau"),
    "b_transferred_to_aarau": State((TO_AARAU, AARAU_NOTE), "aarau", ("ag", "aarau")),
    "c_aarau_delegates_to_caritas": State(
        (TO_AARAU, DELEGATE, AARAU_NOTE),
        "aarau",
        ("ag", "aarau"),
        ("caritas",),
        delegate_to="ors",
    ),
    "d_delegation_ended": State(
        (TO_AARAU, DELEGATE, ("undelegate", "aarau", "caritas"), AARAU_NOTE),
        "aarau",
        ("ag", "aarau"),
    ),
    # Built from (c): Caritas holds a delegation until the move ends it.
    "e_aarau_transfers_to_baden": State(
        (TO_AARAU, DELEGATE, AARAU_NOTE, ("transfer", "aarau", "baden")),
        "baden",
        ("ag", "aarau", "baden"),
        transfer_to="ag",
    ),
    # Municipality → canton needs no end report; to hand the case on again the canton files
    # a new one (the end report of its first period no longer counts).
    "f_baden_returns_to_canton": State(
        (
            TO_AARAU,
            DELEGATE,
            AARAU_NOTE,
            ("transfer", "aarau", "baden"),
            ("transfer", "baden", "ag"),
            ("report", "canton", ""),
        ),
        "ag",
        ("ag", "aarau", "baden", "ag"),
        transfer_to="aarau",
    ),
}

#: Who sees the bystander case (held by Wettingen) in GET /cases.
BYSTANDER_READERS = {"canton", "wettingen"}


@dataclass
class Dossier:
    """A case driven into a state: its id and the id of its end report."""

    case_id: str
    doc_id: str


def _json_post(client: FlaskClient, world: World, user: str, url: str, body: Any) -> Any:
    return client.post(url, json=body, headers=world.auth(user))


def _perform(client: FlaskClient, world: World, case_id: str, step: Step) -> Any:
    """Run one step of a state's history and return the response."""
    action, user, unit = step
    if action == "note":
        return upload(client, world, user, case_id, HANDOVER_NOTE, doc_type="handover_note")
    if action == "report":
        return upload(client, world, user, case_id, END_REPORT, doc_type="end_report")
    if action == "transfer":
        return _json_post(
            client,
            world,
            user,
            f"{API}/cases/{case_id}/transfers",
            {"to_unit": unit, "reason": f"Test: an {unit}"},
        )
    if action == "delegate":
        return _json_post(
            client,
            world,
            user,
            f"{API}/cases/{case_id}/delegations",
            {"to_unit": unit, "reason": "Begleitung"},
        )
    assert action == "undelegate", action
    return client.delete(f"{API}/cases/{case_id}/delegations/{unit}", headers=world.auth(user))


def build_dossier(client: FlaskClient, world: World, steps: tuple[Step, ...]) -> Dossier:
    """Register a case with an end report and drive it through the steps via the API."""
    case_id = new_case(client, world, family_name="Tesfay")["id"]
    report = upload(
        client,
        world,
        "canton",
        case_id,
        END_REPORT,
        doc_type="end_report",
        filename="schlussbericht.pdf",
    )
    assert report.status_code == 201, report.get_json()
    for step in steps:
        response = _perform(client, world, case_id, step)
        assert response.status_code in (200, 201), (step, response.get_json())
    return Dossier(case_id, report.get_json()["id"])


def _file_form(data: bytes, filename: str, **fields: str) -> dict[str, Any]:
    return {"file": (io.BytesIO(data), filename), **fields}


def call(
    client: FlaskClient, world: World, user: str, name: str, dossier: Dossier, state: State
) -> Any:
    """Send the request of one matrix column as the user."""
    headers = world.auth(user)
    cid, did = dossier.case_id, dossier.doc_id
    if name == "list":
        return client.get(f"{API}/cases?per_page=200", headers=headers)
    if name == "case":
        return client.get(f"{API}/cases/{cid}", headers=headers)
    if name == "history":
        return client.get(f"{API}/cases/{cid}/responsibilities", headers=headers)
    if name == "household":
        return client.get(f"{API}/cases/{cid}/household", headers=headers)
    if name == "docs":
        return client.get(f"{API}/cases/{cid}/documents", headers=headers)
    if name == "doc":
        return client.get(f"{API}/documents/{did}", headers=headers)
    if name == "content":
        return client.get(f"{API}/documents/{did}/content", headers=headers)
    if name == "content_v1":
        return client.get(f"{API}/documents/{did}/versions/1/content", headers=headers)
    if name == "upload":
        return client.post(
            f"{API}/cases/{cid}/documents",
            headers=headers,
            data=_file_form(NEW_DOCUMENT, "notiz.pdf", type="meeting_record"),
            content_type="multipart/form-data",
        )
    if name == "version":
        return client.post(
            f"{API}/documents/{did}/versions",
            headers=headers,
            # Each user's own bytes: the same bytes again would be refused as identical_version.
            data=_file_form(new_version(user), "schlussbericht-v2.pdf"),
            content_type="multipart/form-data",
        )
    if name == "doc_history":
        return client.get(f"{API}/documents/{did}/history", headers=headers)
    if name == "correct":
        body = {"title": f"Schlussbericht ({user})", "reason": "Titel präzisiert"}
        return client.patch(f"{API}/documents/{did}", json=body, headers=headers)
    if name == "withdraw":
        body = {"reason": "Falsche Person"}
        return client.post(f"{API}/documents/{did}/withdraw", json=body, headers=headers)
    if name == "move":
        body = {"to_case": state.move_to, "reason": "Falsche Person"}
        return client.post(f"{API}/documents/{did}/move", json=body, headers=headers)
    if name == "transfer":
        return _perform(client, world, cid, ("transfer", user, state.transfer_to))
    if name == "delegate":
        return _perform(client, world, cid, ("delegate", user, state.delegate_to))
    if name == "person_history":
        return client.get(f"{API}/cases/{cid}/person/history", headers=headers)
    if name == "person_correct":
        return client.patch(
            f"{API}/cases/{cid}/person",
            json={"family_name": f"Tesfay-{user}", "reason": "Schreibweise laut Pass"},
            headers=headers,
        )
    if name == "merge":
        # A second registration of the person, under another ZEMIS number and without AHV.
        duplicate = new_case(client, world, family_name="Tesfay", ahv_number=None)["id"]
        body = {"from_case": duplicate, "reason": "Doppelt erfasst"}
        return client.post(f"{API}/cases/{cid}/merge", json=body, headers=headers)
    assert name == "undelegate", name
    return _perform(client, world, cid, ("undelegate", user, state.undelegate))


def expected_status(expectation: Expectation, endpoint: Endpoint) -> tuple[int, str | None]:
    """The (status, error code) a cell's expectation stands for."""
    if isinstance(expectation, tuple):
        return expectation
    return {
        OK: (endpoint.success, None),
        SEEN: (200, None),
        UNSEEN: (200, None),
        HIDDEN: (404, endpoint.hidden_code),
        ROLE: (403, "forbidden"),
        HELD: (403, "case_not_writable"),
    }[expectation]


def _latest_audit_entry(client: FlaskClient, world: World, actor: str) -> dict[str, Any] | None:
    items = client.get(
        f"{API}/audit?actor={actor}&per_page=1", headers=world.auth("auditor")
    ).get_json()["items"]
    return items[0] if items else None


class Checker:
    """Runs matrix cells and collects every mismatch, each naming state, user and endpoint."""

    def __init__(
        self,
        client: FlaskClient,
        world: World,
        state_name: str,
        state: State,
        dossier: Dossier,
        bystander: Dossier,
    ) -> None:
        self.client, self.world = client, world
        self.state_name, self.state = state_name, state
        self.dossier, self.bystander = dossier, bystander
        self.problems: list[str] = []

    def fail(self, user: str, name: str, message: str) -> None:
        """Note a mismatch of one cell."""
        self.problems.append(
            f"state {self.state_name}, user {user}, {ENDPOINTS[name].label} [{name}]: {message}"
        )

    def cell(
        self, user: str, name: str, expectation: Expectation, dossier: Dossier | None = None
    ) -> Any:
        """Call one endpoint as the user and check status, error code, body and audit."""
        dossier = dossier or self.dossier
        endpoint = ENDPOINTS[name]
        response = call(self.client, self.world, user, name, dossier, self.state)
        status, code = expected_status(expectation, endpoint)
        body = response.get_json(silent=True)
        if response.status_code != status:
            shown = str(body)[:200] if body is not None else repr(response.data[:80])
            self.fail(
                user, name, f"expected {status} {code or ''}, got {response.status_code} {shown}"
            )
            return response
        if code is not None:
            self._check_denial(user, name, response, status, code, dossier)
        else:
            self._check_success(user, name, expectation, response, dossier)
        return response

    def _check_denial(
        self, user: str, name: str, response: Any, status: int, code: str, dossier: Dossier
    ) -> None:
        body = response.get_json(silent=True)
        if not (
            isinstance(body, dict)
            and body.get("error", {}).get("code") == code
            and body["error"].get("message")
        ):
            self.fail(user, name, f"expected error code {code!r} in the JSON shape, got {body}")
        entry = _latest_audit_entry(self.client, self.world, user)
        wanted = {
            "action": ENDPOINTS[name].audit_action,
            "outcome": "denied",
            "case_id": None if name == "list" else dossier.case_id,
        }
        got = {k: (entry or {}).get(k) for k in wanted}
        if got != wanted or (entry or {}).get("detail", {}).get("status") != status:
            self.fail(user, name, f"expected a denied audit entry {wanted}, latest is {entry}")
        if name == "content_v1" and (entry or {}).get("version") != 1:
            self.fail(user, name, f"the denied audit entry does not name version 1: {entry}")

    def _check_success(
        self, user: str, name: str, expectation: Expectation, response: Any, dossier: Dossier
    ) -> None:
        body = response.get_json(silent=True)
        state = self.state
        if name == "list":
            ids = {item["id"] for item in body["items"]}
            seen = expectation == SEEN
            total = int(seen) + int(user in BYSTANDER_READERS)
            if (dossier.case_id in ids) != seen or body["total"] != total:
                self.fail(
                    user,
                    name,
                    f"expected case {'' if seen else 'not '}listed and "
                    f"total {total}, got total {body['total']}",
                )
            if (self.bystander.case_id in ids) != (user in BYSTANDER_READERS):
                self.fail(user, name, "the bystander case held by Wettingen is listed wrongly")
        elif name == "case":
            got = (
                body["responsible_unit"]["code"],
                tuple(d["unit"]["code"] for d in body["delegations"]),
            )
            if body["id"] != dossier.case_id or got != (state.holder, state.delegated):
                self.fail(
                    user,
                    name,
                    f"expected holder/delegations {state.holder, state.delegated}, got {got}",
                )
        elif name == "history":
            got_history = tuple(h["unit"]["code"] for h in body["items"])
            if got_history != state.history:
                self.fail(user, name, f"expected history {state.history}, got {got_history}")
        elif name == "docs":
            if dossier.doc_id not in {d["id"] for d in body["items"]}:
                self.fail(user, name, "the end report is not listed")
        elif name == "doc":
            if body["id"] != dossier.doc_id or body["case_id"] != dossier.case_id:
                self.fail(user, name, f"wrong document {body}")
        elif name in ("content", "content_v1"):
            if response.data != END_REPORT:
                self.fail(user, name, "the downloaded bytes differ from the uploaded end report")
        elif name == "upload":
            if body["case_id"] != dossier.case_id or body["current_version"] != 1:
                self.fail(user, name, f"unexpected new document {body}")
        elif name == "version":
            if body["versions"][-1]["created_by"] != user:
                self.fail(user, name, f"the new version is not by {user}: {body['versions'][-1]}")
        elif name == "doc_history":
            if [item["field"] for item in body["items"]] != []:
                self.fail(user, name, f"expected an empty history before any change, got {body}")
        elif name == "correct":
            if body["title"] != f"Schlussbericht ({user})" or body["type"] != "end_report":
                self.fail(user, name, f"the correction did not change the title only: {body}")
        elif name == "withdraw":
            if body["withdrawn"] is not True:
                self.fail(user, name, f"the document is not withdrawn: {body}")
        elif name == "move":
            if body["case_id"] != state.move_to:
                self.fail(user, name, f"the document did not move to {state.move_to}: {body}")
        elif name == "transfer":
            got = (body["responsible_unit"]["code"], body["delegations"])
            if got != (state.transfer_to, []):
                self.fail(
                    user,
                    name,
                    f"expected {state.transfer_to} responsible and no "
                    f"delegations after the transfer, got {got}",
                )
        elif name == "delegate":
            if state.delegate_to not in {d["unit"]["code"] for d in body["delegations"]}:
                self.fail(user, name, f"{state.delegate_to} is not delegated after delegating")
        elif name == "person_history":
            if not isinstance(body.get("items"), list) or "status_history" not in body:
                self.fail(user, name, f"not a person history: {body}")
        elif name == "person_correct":
            if body["id"] != dossier.case_id or body["person"]["family_name"] != f"Tesfay-{user}":
                self.fail(user, name, f"the correction by {user} is not in the case: {body}")
        elif name == "merge":
            case = body["case"]
            merged = body["merge"]["merged_case_id"]
            if case["id"] != dossier.case_id or case["responsible_unit"]["code"] != state.holder:
                self.fail(user, name, f"the merge changed the surviving case's holder: {case}")
            gone = self.client.get(f"{API}/cases/{merged}", headers=self.world.auth(user))
            if gone.status_code != 410:
                self.fail(user, name, f"the merged case answers {gone.status_code}, not 410")
        elif name == "undelegate":
            if state.undelegate in {d["unit"]["code"] for d in body["delegations"]}:
                self.fail(user, name, f"{state.undelegate} is still delegated after ending it")


@pytest.mark.parametrize("state_name", list(STATES))
def test_access_matrix(client: FlaskClient, world: World, state_name: str) -> None:
    """Every user × every case endpoint answers as its table row says, in each case state."""
    state, rows = STATES[state_name], MATRIX[state_name]
    assert set(rows) == set(USERS) and all(len(r) == len(COLUMNS) for r in rows.values())
    bystander = build_dossier(client, world, (("transfer", "canton", "wettingen"),))
    state = replace(state, move_to=bystander.case_id)
    dossier = build_dossier(client, world, state.steps)
    check = Checker(client, world, state_name, state, dossier, bystander)

    def cells(names: tuple[str, ...], keep: Callable[[Expectation, Endpoint], bool]) -> None:
        for user in USERS:
            for name in names:
                expectation = rows[user][COLUMNS.index(name)]
                if keep(expectation, ENDPOINTS[name]):
                    check.cell(user, name, expectation)

    # Reads first: nothing has changed the dossier yet (list totals, version 1 is current).
    cells(READS, lambda e, ep: True)
    # Refused writes change nothing, so they run on the same case.
    cells(WRITES, lambda e, ep: e != OK)
    # Allowed uploads and versions add documents but leave access as it is.
    cells(WRITES, lambda e, ep: e == OK and not ep.mutates_access)
    # An allowed transfer or delegation would change the state: each runs on a fresh copy.
    for user in USERS:
        for name in WRITES:
            expectation = rows[user][COLUMNS.index(name)]
            if expectation == OK and ENDPOINTS[name].mutates_access:
                check.cell(user, name, OK, build_dossier(client, world, state.steps))
    # The main case is still in its state: the readers' view did not move.
    for user in USERS:
        check.cell(user, "case", rows[user][COLUMNS.index("case")])
    assert not check.problems, "\n".join(check.problems)


def test_former_units_lose_access_with_the_very_next_request(client, world):
    """Aarau and its delegate Caritas read the case until the move; their next request is 404."""
    dossier = build_dossier(client, world, (TO_AARAU, DELEGATE))
    content = f"{API}/documents/{dossier.doc_id}/content"
    for user in ("aarau", "caritas"):
        assert client.get(content, headers=world.auth(user)).status_code == 200, user
    file_handover_note(client, world, "aarau", dossier.case_id)
    moved = _perform(client, world, dossier.case_id, ("transfer", "aarau", "baden"))
    assert moved.status_code == 201, moved.get_json()
    for user in ("aarau", "caritas"):
        response = client.get(content, headers=world.auth(user))
        assert response.status_code == 404, user
        assert response.get_json()["error"]["code"] == "document_not_found"
        listed = client.get(f"{API}/cases", headers=world.auth(user)).get_json()
        assert listed["total"] == 0 and listed["items"] == [], user
    assert client.get(content, headers=world.auth("baden")).data == END_REPORT


def test_hidden_case_answers_like_a_case_that_does_not_exist(client, world):
    """A case the caller may not see and an unknown id give the same 404 body."""
    dossier = build_dossier(client, world, ())
    unknown_case, unknown_doc = str(uuid.uuid4()), str(uuid.uuid4())
    for user in ("aarau", "caritas"):
        for template in (
            "/cases/{c}",
            "/cases/{c}/documents",
            "/cases/{c}/responsibilities",
            "/cases/{c}/person/history",
            "/documents/{d}",
            "/documents/{d}/content",
            "/documents/{d}/versions/1/content",
        ):
            hidden = client.get(
                API + template.format(c=dossier.case_id, d=dossier.doc_id), headers=world.auth(user)
            )
            absent = client.get(
                API + template.format(c=unknown_case, d=unknown_doc), headers=world.auth(user)
            )
            assert (hidden.status_code, hidden.get_json()) == (404, absent.get_json()), (
                user,
                template,
            )
            assert absent.status_code == 404


# ---- transfer and delegation rules ------------------------------------------------------


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def _holder(client: FlaskClient, world: World, case_id: str) -> str:
    body = client.get(f"{API}/cases/{case_id}", headers=world.auth("canton")).get_json()
    return body["responsible_unit"]["code"]  # type: ignore[no-any-return]


def test_canton_hands_to_a_municipality_only_with_an_end_report(client, world):
    """Without an end report the transfer is 409 end_report_required and nothing moves."""
    cid = new_case(client, world)["id"]
    refused = _perform(client, world, cid, ("transfer", "canton", "aarau"))
    assert _error(refused) == (409, "end_report_required")
    assert _holder(client, world, cid) == "ag"
    # Another document type does not count as the end report.
    other = upload(client, world, "canton", cid, NEW_DOCUMENT, doc_type="meeting_record")
    assert other.status_code == 201
    assert _error(_perform(client, world, cid, ("transfer", "canton", "aarau"))) == (
        409,
        "end_report_required",
    )
    report = upload(client, world, "canton", cid, END_REPORT, doc_type="end_report")
    assert report.status_code == 201
    assert _perform(client, world, cid, ("transfer", "canton", "aarau")).status_code == 201
    assert _holder(client, world, cid) == "aarau"


def test_an_end_report_of_an_earlier_canton_period_no_longer_counts(client, world):
    """The canton's second period needs an end report of its own before the next hand-over."""
    cid = build_dossier(client, world, (TO_AARAU, ("transfer", "aarau", "ag"))).case_id
    refused = _perform(client, world, cid, ("transfer", "canton", "baden"))
    assert _error(refused) == (409, "end_report_required")
    assert "current responsibility" in refused.get_json()["error"]["message"]
    assert _holder(client, world, cid) == "ag"
    assert _perform(client, world, cid, ("report", "canton", "")).status_code == 201
    assert _perform(client, world, cid, ("transfer", "canton", "baden")).status_code == 201
    assert _holder(client, world, cid) == "baden"


def test_a_move_needs_a_hand_over_note_of_the_leaving_municipality(client, world):
    """Municipality → municipality: 409 handover_note_required until Aarau files a note (or
    an end report) during its own period; the canton's end report does not count."""
    cid = build_dossier(client, world, (TO_AARAU,)).case_id
    for user in ("aarau", "canton"):  # the canton moving Aarau's case needs Aarau's note too
        refused = _perform(client, world, cid, ("transfer", user, "baden"))
        assert _error(refused) == (409, "handover_note_required"), user
        assert "hand-over note (Übergabenotiz)" in refused.get_json()["error"]["message"]
    # Another document type is no hand-over note.
    other = upload(client, world, "aarau", cid, NEW_DOCUMENT, doc_type="meeting_record")
    assert other.status_code == 201
    assert _error(_perform(client, world, cid, ("transfer", "aarau", "baden")))[1] == (
        "handover_note_required"
    )
    assert _holder(client, world, cid) == "aarau"
    file_handover_note(client, world, "aarau", cid)
    assert _perform(client, world, cid, ("transfer", "aarau", "baden")).status_code == 201
    # Baden's period starts empty: Aarau's note is no note of Baden's.
    assert _error(_perform(client, world, cid, ("transfer", "baden", "wettingen"))) == (
        409,
        "handover_note_required",
    )
    # An end report filed by Baden counts as its hand-over note.
    report = upload(client, world, "baden", cid, END_REPORT, doc_type="end_report")
    assert report.status_code == 201
    assert _perform(client, world, cid, ("transfer", "baden", "wettingen")).status_code == 201
    assert _holder(client, world, cid) == "wettingen"


def test_a_withdrawn_end_report_hands_nothing_over(client, world):
    """An end report withdrawn as misfiled no longer lets the canton hand the case over."""
    cid = new_case(client, world)["id"]
    report = upload(client, world, "canton", cid, END_REPORT, doc_type="end_report")
    assert report.status_code == 201
    withdrawn = client.post(
        f"{API}/documents/{report.get_json()['id']}/withdraw",
        json={"reason": "Falsche Person"},
        headers=world.auth("canton"),
    )
    assert withdrawn.status_code == 200, withdrawn.get_json()
    refused = _perform(client, world, cid, ("transfer", "canton", "aarau"))
    assert _error(refused) == (409, "end_report_required")
    assert _holder(client, world, cid) == "ag"


def test_a_new_version_of_an_older_note_counts_for_the_period_it_was_filed_in(client, world):
    """Updating the note an earlier period left (a new version now) is filing it now."""
    cid = build_dossier(client, world, (TO_AARAU,)).case_id
    note = file_handover_note(client, world, "aarau", cid)
    assert _perform(client, world, cid, ("transfer", "aarau", "baden")).status_code == 201
    assert _perform(client, world, cid, ("transfer", "baden", "ag")).status_code == 201
    assert _perform(client, world, cid, ("report", "canton", "")).status_code == 201
    assert _perform(client, world, cid, ("transfer", "canton", "aarau")).status_code == 201
    # Aarau's second period: its note of the first period no longer counts ...
    assert _error(_perform(client, world, cid, ("transfer", "aarau", "baden")))[1] == (
        "handover_note_required"
    )
    # ... until Aarau files a new version of it.
    version = client.post(
        f"{API}/documents/{note}/versions",
        data={"file": (io.BytesIO(HANDOVER_NOTE + b"\n"), "notiz.pdf")},
        headers=world.auth("aarau"),
        content_type="multipart/form-data",
    )
    assert version.status_code == 201, version.get_json()
    assert _perform(client, world, cid, ("transfer", "aarau", "baden")).status_code == 201


def test_municipality_hands_back_to_the_canton_without_an_end_report(client, world, container):
    """Municipality → canton needs no end report (here: a migrated case that never had one)."""
    cid = new_case(client, world)["id"]
    # No API path reaches a municipality without an end report, so the legacy state is
    # written directly: the canton's period ends and Aarau's begins.
    with container.db.transaction() as session:
        period = session.execute(
            select(Responsibility).where(Responsibility.case_id == cid)
        ).scalar_one()
        period.ended_at = utcnow()
        session.flush()
        aarau = session.execute(select(Unit).where(Unit.code == "aarau")).scalar_one()
        user = session.execute(select(User).where(User.username == "aarau")).scalar_one()
        session.add(
            Responsibility(
                case_id=cid,
                unit_id=aarau.id,
                started_at=utcnow(),
                reason="Migration",
                created_by_id=user.id,
            )
        )
    assert (
        client.get(f"{API}/cases/{cid}/documents", headers=world.auth("aarau")).get_json()["items"]
        == []
    )
    moved = _perform(client, world, cid, ("transfer", "aarau", "ag"))
    assert moved.status_code == 201, moved.get_json()
    assert _holder(client, world, cid) == "ag"


def test_transfer_targets_are_checked(client, world):
    """Only canton or municipality units, known and not already responsible, take a case."""
    dossier = build_dossier(client, world, (TO_AARAU,))
    cid = dossier.case_id
    cases = [
        ("aarau", "caritas", (422, "invalid_target")),
        ("canton", "ors", (422, "invalid_target")),
        ("aarau", "nowhere", (422, "unknown_unit")),
        ("aarau", "aarau", (409, "already_responsible")),
        ("canton", "aarau", (409, "already_responsible")),
    ]
    for user, target, expected in cases:
        assert _error(_perform(client, world, cid, ("transfer", user, target))) == expected, (
            user,
            target,
        )
    assert _error(_json_post(client, world, "aarau", f"{API}/cases/{cid}/transfers", {})) == (
        422,
        "validation_failed",
    )
    canton_case = build_dossier(client, world, ())
    assert _error(_perform(client, world, canton_case.case_id, ("transfer", "canton", "ag"))) == (
        409,
        "already_responsible",
    )
    # Nothing of the above moved the case.
    history = client.get(f"{API}/cases/{cid}/responsibilities", headers=world.auth("aarau"))
    assert [h["unit"]["code"] for h in history.get_json()["items"]] == ["ag", "aarau"]


def test_delegation_rules(client, world):
    """Only organisations take delegations, once at a time; ending an absent one is 404."""
    cid = build_dossier(client, world, (TO_AARAU,)).case_id
    for target, expected in [
        ("baden", (422, "invalid_target")),
        ("ag", (422, "invalid_target")),
        ("nowhere", (422, "unknown_unit")),
    ]:
        assert _error(_perform(client, world, cid, ("delegate", "aarau", target))) == expected
    assert _perform(client, world, cid, ("delegate", "aarau", "caritas")).status_code == 201
    assert _error(_perform(client, world, cid, ("delegate", "aarau", "caritas"))) == (
        409,
        "already_delegated",
    )
    for code in ("ors", "nowhere"):
        assert _error(_perform(client, world, cid, ("undelegate", "aarau", code))) == (
            404,
            "delegation_not_found",
        )
    ended = _perform(client, world, cid, ("undelegate", "aarau", "caritas"))
    assert ended.status_code == 200 and ended.get_json()["delegations"] == []
    assert _error(_perform(client, world, cid, ("undelegate", "aarau", "caritas"))) == (
        404,
        "delegation_not_found",
    )
    # A delegation can be granted again after it ended.
    again = _perform(client, world, cid, ("delegate", "aarau", "caritas"))
    assert again.status_code == 201
    assert client.get(f"{API}/cases/{cid}", headers=world.auth("caritas")).status_code == 200


def test_roles_that_may_never_act_get_403_even_for_unknown_ids(client, world):
    """A role-level refusal does not depend on the case: no existence oracle either way."""
    unknown = str(uuid.uuid4())
    checks = [
        ("caritas", "post", f"/cases/{unknown}/transfers", {"to_unit": "aarau", "reason": "x"}),
        ("canton", "post", f"/cases/{unknown}/delegations", {"to_unit": "caritas"}),
        ("caritas", "delete", f"/cases/{unknown}/delegations/caritas", None),
        ("auditor", "get", f"/cases/{unknown}", None),
        ("auditor", "get", f"/documents/{unknown}", None),
        ("archivist", "get", f"/documents/{unknown}/content", None),
        ("admin", "get", f"/cases/{unknown}/documents", None),
    ]
    for user, method, path, body in checks:
        kwargs: dict[str, Any] = {"headers": world.auth(user)}
        if body is not None:
            kwargs["json"] = body
        response = getattr(client, method)(API + path, **kwargs)
        assert _error(response) == (403, "forbidden"), (user, method, path)


# ---- endpoints bound to a role, not a case ------------------------------------------------

#: POST /cases and GET /audit per user (status, error code or None).
ROLE_ENDPOINTS: dict[str, dict[str, tuple[int, str | None]]] = {
    #              POST /cases            GET /audit
    "canton": {"create": (201, None), "audit": (403, "forbidden")},
    "aarau": {"create": (403, "forbidden"), "audit": (403, "forbidden")},
    "baden": {"create": (403, "forbidden"), "audit": (403, "forbidden")},
    "wettingen": {"create": (403, "forbidden"), "audit": (403, "forbidden")},
    "caritas": {"create": (403, "forbidden"), "audit": (403, "forbidden")},
    "ors": {"create": (403, "forbidden"), "audit": (403, "forbidden")},
    "auditor": {"create": (403, "forbidden"), "audit": (200, None)},
    "archivist": {"create": (403, "forbidden"), "audit": (403, "forbidden")},
    "admin": {"create": (403, "forbidden"), "audit": (403, "forbidden")},
}


def test_role_bound_endpoints(client, world):
    """Only canton caseworkers register cases; only the auditor reads the audit log."""
    from tests.factories import PERSON

    problems = []
    for user in USERS:
        for name, (status, code) in ROLE_ENDPOINTS[user].items():
            if name == "create":
                response = client.post(
                    f"{API}/cases",
                    headers=world.auth(user),
                    json={"person": PERSON, "entry_date": "2025-03-01"},
                )
                action = "case.create"
            else:
                response = client.get(f"{API}/audit", headers=world.auth(user))
                action = "audit.read"
            got = (response.status_code, (response.get_json().get("error") or {}).get("code"))
            if got != (status, code):
                problems.append(f"user {user}, {name}: expected {(status, code)}, got {got}")
                continue
            if code is not None:
                entry = _latest_audit_entry(client, world, user)
                if not entry or (entry["action"], entry["outcome"]) != (action, "denied"):
                    problems.append(f"user {user}, {name}: no denied audit entry, latest {entry}")
    assert not problems, "\n".join(problems)
    created = client.get(f"{API}/cases", headers=world.auth("canton")).get_json()
    assert created["total"] == 1 and created["items"][0]["responsible_unit"]["code"] == "ag"


# ---- authentication ------------------------------------------------------------------------

PROTECTED = [
    ("get", "/cases"),
    ("get", "/cases/{c}"),
    ("get", "/cases/{c}/responsibilities"),
    ("get", "/cases/{c}/person/history"),
    ("patch", "/cases/{c}/person"),
    ("get", "/cases/{c}/documents"),
    ("get", "/documents/{d}"),
    ("get", "/documents/{d}/content"),
    ("post", "/cases/{c}/documents"),
    ("post", "/documents/{d}/versions"),
    ("post", "/cases/{c}/transfers"),
    ("post", "/cases/{c}/delegations"),
    ("delete", "/cases/{c}/delegations/caritas"),
    ("post", "/cases"),
    ("get", "/audit"),
]

CREDENTIALS: dict[str, Callable[[World], dict[str, str]]] = {
    "none": lambda w: {},
    "basic_scheme": lambda w: {"Authorization": "Basic YWFyYXU6c2VjcmV0"},
    "empty_bearer": lambda w: {"Authorization": "Bearer "},
    "unknown_token": lambda w: {"Authorization": "Bearer dos_" + "x" * 43},
    "garbage": lambda w: {"Authorization": "Bearer not-a-token"},
    "revoked": lambda w: w.auth("aarau"),
}
EXPECTED_401_CODE = {
    "none": "missing_token",
    "basic_scheme": "missing_token",
    "empty_bearer": "missing_token",
    "unknown_token": "invalid_token",
    "garbage": "invalid_token",
    "revoked": "invalid_token",
}


def _auth_failures(client: FlaskClient, world: World) -> list[dict[str, Any]]:
    body = client.get(
        f"{API}/audit?action=auth.failed&per_page=1000", headers=world.auth("auditor")
    ).get_json()
    return body["items"]  # type: ignore[no-any-return]


@pytest.mark.parametrize("credential", list(CREDENTIALS))
def test_requests_without_valid_token_get_401_and_are_logged(client, world, container, credential):
    """Every protected endpoint answers 401 in the error shape and logs auth.failed."""
    dossier = build_dossier(client, world, (TO_AARAU,))
    before_revocation = client.get(f"{API}/cases/{dossier.case_id}", headers=world.auth("aarau"))
    assert before_revocation.status_code == 200
    if credential == "revoked":
        with container.db.transaction() as session:
            assert accounts.revoke_tokens(session, "aarau") == 1
    headers = CREDENTIALS[credential](world)
    before = len(_auth_failures(client, world))
    for method, template in PROTECTED:
        path = API + template.format(c=dossier.case_id, d=dossier.doc_id)
        kwargs: dict[str, Any] = {"headers": headers}
        if method == "post" and ("documents" in template or "versions" in template):
            kwargs.update(
                data=_file_form(NEW_VERSION, "x.pdf", type="other"),
                content_type="multipart/form-data",
            )
        elif method == "post":
            kwargs["json"] = {"to_unit": "baden", "reason": "x"}
        response = getattr(client, method)(path, **kwargs)
        assert response.status_code == 401, (credential, method, template)
        error = response.get_json()["error"]
        assert set(error) == {"code", "message"} and error["message"], (credential, template)
        assert error["code"] == EXPECTED_401_CODE[credential], (credential, method, template)
    # One entry of its own per address and minute; the other refusals are counted for the
    # minute's auth.failed_summary (two if the run crossed a minute).
    failures = _auth_failures(client, world)
    assert before + 1 <= len(failures) <= before + 2, credential
    latest = failures[0]
    assert (latest["outcome"], latest["actor"]) == ("denied", None)
    with container.db.transaction() as session:
        counted = session.execute(select(func.sum(AuthFailureWindow.count))).scalar_one()
    assert counted == len(PROTECTED), credential
    # Nothing was changed by the refused requests.
    assert _holder(client, world, dossier.case_id) == "aarau"
    docs = client.get(f"{API}/cases/{dossier.case_id}/documents", headers=world.auth("canton"))
    assert [d["current_version"] for d in docs.get_json()["items"]] == [1]
    if credential == "revoked":
        assert failures[0]["detail"]["reason"] == "revoked"
        # Revoking Aarau's token does not touch anyone else's.
        assert client.get(f"{API}/cases", headers=world.auth("baden")).status_code == 200


# --- The journal and the follow-ups follow the case's access ---------------------------------
# A journal entry or a follow-up is read by whoever reads the case and written by whoever may
# add a document to it, so each cell's expectation is taken from the ``case`` and ``upload``
# columns above rather than written down a second time.

ENTRY = {"kind": "meeting", "text": "Standortgespräch.", "participants": ["Klient"]}


def _access_check(
    client: FlaskClient,
    world: World,
    user: str,
    response: Any,
    like: str,
    audit_action: str,
    expectation: Any,
    case_id: str,
) -> list[str]:
    """Mismatches of one cell: status, error code, and the denied audit entry."""
    status, code = expected_status(expectation, ENDPOINTS[like])
    body = response.get_json(silent=True) or {}
    problems = []
    if response.status_code != status:
        return [f"{user} {audit_action}: expected {status}, got {response.status_code} {body}"]
    if code is not None:
        if body.get("error", {}).get("code") != code:
            problems.append(f"{user} {audit_action}: expected code {code}, got {body}")
        entry = _latest_audit_entry(client, world, user) or {}
        got = (entry.get("action"), entry.get("outcome"), entry.get("case_id"))
        if got != (audit_action, "denied", case_id):
            problems.append(f"{user} {audit_action}: no denied audit entry, latest {entry}")
    elif audit_action == "journal.create" and body.get("created_by") != user:
        problems.append(f"{user}: the entry is not by {user}: {body}")
    return problems


@pytest.mark.parametrize("state_name", list(STATES))
def test_journal_access_matrix(client: FlaskClient, world: World, state_name: str) -> None:
    state, rows = STATES[state_name], MATRIX[state_name]
    dossier = build_dossier(client, world, state.steps)
    url = f"{API}/cases/{dossier.case_id}/journal"
    problems: list[str] = []
    writers = []
    for user in USERS:
        read = rows[user][COLUMNS.index("case")]
        write = rows[user][COLUMNS.index("upload")]
        response = client.get(url, headers=world.auth(user))
        problems += _access_check(
            client, world, user, response, "case", "journal.list", read, dossier.case_id
        )
        response = client.post(url, json=ENTRY, headers=world.auth(user))
        problems += _access_check(
            client, world, user, response, "upload", "journal.create", write, dossier.case_id
        )
        if response.status_code == 201:
            writers.append(user)
    assert not problems, "\n".join(problems)
    # Every reader sees exactly the entries the writers wrote.
    reader = next(u for u in USERS if rows[u][COLUMNS.index("case")] == "ok")
    items = client.get(url, headers=world.auth(reader)).get_json()["items"]
    assert sorted(e["created_by"] for e in items) == sorted(writers)
    assert writers, "no unit could write in this state"


def _follow_up_body() -> dict[str, str]:
    return {"due_date": local_today().isoformat(), "note": "Kursbericht?"}


@pytest.mark.parametrize("state_name", list(STATES))
def test_follow_up_access_matrix(client, world, state_name):
    """Read like the case, set and mark done like an upload: every user in every state."""
    state, rows = STATES[state_name], MATRIX[state_name]
    dossier = build_dossier(client, world, state.steps)
    cid = dossier.case_id
    problems: list[str] = []
    for user in USERS:
        read = rows[user][COLUMNS.index("case")]
        write = rows[user][COLUMNS.index("upload")]
        listed = client.get(f"{API}/cases/{cid}/follow-ups", headers=world.auth(user))
        problems += _access_check(client, world, user, listed, "case", "follow_up.list", read, cid)
        created = client.post(
            f"{API}/cases/{cid}/follow-ups", json=_follow_up_body(), headers=world.auth(user)
        )
        problems += _access_check(client, world, user, created, "upload", "follow_up.create", write, cid)
    assert not problems, "\n".join(problems)
    listed = client.get(f"{API}/cases/{cid}/follow-ups", headers=world.auth("canton"))
    [first, *_] = listed.get_json()["items"]
    writers = [u for u in USERS if rows[u][COLUMNS.index("upload")] == "ok"]
    for user in USERS:
        write = rows[user][COLUMNS.index("upload")]
        if write != "ok":  # refused: the follow-up stays open for the writers
            response = client.post(f"{API}/follow-ups/{first['id']}/done", json={}, headers=world.auth(user))
            expected = {"hidden": 404, "role": 403, "held": 403}[write]
            assert response.status_code == expected, (user, response.get_json())
    assert client.post(
        f"{API}/follow-ups/{first['id']}/done", json={}, headers=world.auth(writers[0])
    ).status_code == 200
