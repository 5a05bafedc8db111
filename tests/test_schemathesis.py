"""Property-based API tests: schemathesis fuzzes every operation of the OpenAPI document.

The WSGI app runs in-process on each database backend, with data present (a case held by
the canton with a document, a case held by Aarau and delegated to Caritas) and a valid
token of each kind of caller. Every response must be free of server errors, use a
documented status code and content type, and match its documented schema.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
import schemathesis.checks
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis.generation import GenerationMode

from dossier_service.models import DOCUMENT_TYPES
from dossier_service.samples import make_docx, make_pdf
from tests.conftest import UNITS, World, new_case, upload

#: One caller of each kind: canton and municipal and organisation caseworkers, auditor, archivist.
ROLES = ("canton", "aarau", "caritas", "auditor", "archivist")

#: What every response must satisfy, whatever the input.
CHECKS = [
    schemathesis.checks.not_a_server_error,
    schemathesis.checks.status_code_conformance,
    schemathesis.checks.content_type_conformance,
    schemathesis.checks.response_schema_conformance,
]

# Bounded so that the whole file stays well below three minutes per database backend.
MAX_EXAMPLES = int(os.environ.get("DOSSIER_FUZZ_EXAMPLES", "25"))
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=dt.timedelta(seconds=10),
    database=None,  # no .hypothesis directory in the tree
    suppress_health_check=list(HealthCheck),
)

UNIT_CODES = [code for code, _, _ in UNITS]
PDF = make_pdf("Kurzassessment", ["Deutschkenntnisse A1."])
DOCX = make_docx("Integrationsplan", ["IKG1 ab Februar."])


@dataclass
class Seed:
    """Ids of the objects the fuzzer aims at."""

    case_ids: list[str]
    document_ids: list[str]


@pytest.fixture
def seed(client: FlaskClient, world: World) -> Seed:
    """A canton case with a document, and a case held by Aarau and delegated to Caritas."""
    canton_case = new_case(client, world)
    canton_doc = upload(client, world, "canton", canton_case["id"], PDF, doc_type="short_assessment")
    assert canton_doc.status_code == 201, canton_doc.get_json()

    aarau_case = new_case(client, world, family_name="Tesfay", ahv_number=None)
    report = upload(
        client, world, "canton", aarau_case["id"], make_pdf("Schlussbericht", ["Übergabe."]),
        doc_type="end_report",
    )
    assert report.status_code == 201, report.get_json()
    moved = client.post(
        f"/api/v1/cases/{aarau_case['id']}/transfers",
        json={"to_unit": "aarau", "reason": "Wohnsitz Aarau"},
        headers=world.auth("canton"),
    )
    assert moved.status_code == 201, moved.get_json()
    delegated = client.post(
        f"/api/v1/cases/{aarau_case['id']}/delegations",
        json={"to_unit": "caritas", "reason": "Begleitung"},
        headers=world.auth("aarau"),
    )
    assert delegated.status_code == 201, delegated.get_json()
    return Seed(
        case_ids=[canton_case["id"], aarau_case["id"]],
        document_ids=[canton_doc.get_json()["id"], report.get_json()["id"]],
    )


# --- Domain-valid request bodies ----------------------------------------------------------
# Values generated from the schema alone are nearly always refused with 422 (a random AHV
# number has the wrong check digit, a random date lies in the future), so these strategies
# make sure the success paths and their response shapes are exercised too.


def _ahv_numbers() -> st.SearchStrategy[str]:
    """Valid AHV numbers (EAN-13 check digit), written with dots."""

    def build(body: str) -> str:
        first12 = "756" + body
        check = (10 - sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12)) % 10) % 10
        digits = first12 + str(check)
        return f"{digits[:3]}.{digits[3:7]}.{digits[7:11]}.{digits[11:]}"

    return st.text("0123456789", min_size=9, max_size=9).map(build)


def _birth_dates() -> st.SearchStrategy[str]:
    """eCH-0044 dates: full, year and month, or year only."""
    return st.tuples(
        st.dates(dt.date(1930, 1, 1), dt.date(2024, 12, 31)), st.sampled_from([10, 7, 4])
    ).map(lambda pair: pair[0].isoformat()[: pair[1]])


NAMES = st.text(
    st.characters(codec="utf-8", categories=["L", "Zs"]), min_size=1, max_size=60
).filter(str.strip)

PERSONS = st.fixed_dictionaries(
    {
        "family_name": NAMES,
        "given_names": NAMES,
        "birth_date": _birth_dates(),
        "sex": st.sampled_from(["female", "male", "unknown"]),
        "nationality": st.sampled_from(["ER", "AF", "SY", "TR", "UA"]),
        "zemis_number": st.from_regex(r"\A[0-9]{8}\.[0-9]\Z"),
        "residence_status": st.sampled_from(["N", "F", "B"]),
    },
    optional={"ahv_number": st.one_of(st.none(), _ahv_numbers())},
)
CASE_BODIES = st.fixed_dictionaries(
    {
        "person": PERSONS,
        "entry_date": st.dates(dt.date(1990, 1, 1), dt.date.today()).map(dt.date.isoformat),
    }
)
TARGETS = st.sampled_from([*UNIT_CODES, "nowhere"])
TRANSFER_BODIES = st.fixed_dictionaries({"to_unit": TARGETS, "reason": NAMES})
DELEGATION_BODIES = st.fixed_dictionaries({"to_unit": TARGETS}, optional={"reason": NAMES})
FILES = st.sampled_from([PDF, DOCX, "Gesprächsnotiz vom 3. März.\n".encode()])
UPLOAD_BODIES = st.fixed_dictionaries(
    {"file": FILES, "type": st.sampled_from(list(DOCUMENT_TYPES))},
    optional={"title": NAMES},
)
VERSION_BODIES = st.fixed_dictionaries({"file": FILES})

DOMAIN_BODIES = {
    "POST /cases": CASE_BODIES,
    "POST /cases/{case_id}/transfers": TRANSFER_BODIES,
    "POST /cases/{case_id}/delegations": DELEGATION_BODIES,
    "POST /cases/{case_id}/documents": UPLOAD_BODIES,
    "POST /documents/{document_id}/versions": VERSION_BODIES,
}


def _aimed_paths(operation: Any, seed: Seed) -> st.SearchStrategy[dict[str, Any]]:
    """Path parameters that name existing objects (or, for versions, maybe missing ones)."""
    names = {p.name for p in operation.path_parameters}
    choices: dict[str, Any] = {}
    if "case_id" in names:
        choices["case_id"] = st.sampled_from(seed.case_ids)
    if "document_id" in names:
        choices["document_id"] = st.sampled_from(seed.document_ids)
    if "unit_code" in names:
        choices["unit_code"] = st.sampled_from(["caritas", "ors", "aarau"])
    if "number" in names:
        choices["number"] = st.integers(1, 3)
    return st.fixed_dictionaries(choices)


def _strategies(operation: Any, seed: Seed, headers: dict[str, str]) -> dict[str, Any]:
    """The named input families to try on one operation."""
    paths = _aimed_paths(operation, seed)

    def aimed(mode: GenerationMode, **kwargs: Any) -> Any:
        return paths.flatmap(
            lambda fixed: operation.as_strategy(
                generation_mode=mode, path_parameters=fixed, headers=headers, **kwargs
            )
        )

    strategies = {"positive": aimed(GenerationMode.POSITIVE)}
    # Negative data needs something with constraints to violate besides the fixed paths.
    if operation.body or operation.query:
        strategies["negative"] = aimed(GenerationMode.NEGATIVE)
    if operation.path_parameters:
        strategies["negative-path"] = operation.as_strategy(
            generation_mode=GenerationMode.NEGATIVE, headers=headers
        )
    bodies = DOMAIN_BODIES.get(operation.label)
    if bodies is not None:
        strategies["domain"] = st.tuples(paths, bodies).flatmap(
            lambda pair: operation.as_strategy(
                path_parameters=pair[0], headers=headers, body=pair[1]
            )
        )
    return strategies


def _fuzz(app: Flask, strategy: Any) -> dict[int, int]:
    """Send every generated case to the app and validate the response; return status counts."""
    statuses: dict[int, int] = {}

    @FUZZ_SETTINGS
    @given(case=strategy)
    def run(case: Any) -> None:
        response = case.call(app=app)
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        case.validate_response(response, checks=CHECKS)

    run()
    return statuses


@pytest.mark.parametrize("role", ROLES)
def test_every_operation_conforms(app: Flask, world: World, seed: Seed, role: str) -> None:
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", app)
    headers = world.auth(role)
    failures: list[str] = []
    seen: dict[str, dict[int, int]] = {}
    operations = [result.ok() for result in schema.get_all_operations()]
    # A successful transfer takes the case away from a municipality; fuzz it last.
    operations.sort(key=lambda op: op.label.endswith("/transfers"))
    for operation in operations:
        for label, strategy in _strategies(operation, seed, headers).items():
            start = time.monotonic()
            try:
                seen[f"{operation.label} {label}"] = _fuzz(app, strategy)
            except Exception as exc:
                failures.append(f"{operation.label} [{label}]: {exc}")
            print(f"{operation.label} {label}: {time.monotonic() - start:.1f}s")
    for key, value in seen.items():
        print(key, value)
    assert not failures, "\n\n".join(failures)
