"""Property-based API tests: schemathesis fuzzes every operation of the OpenAPI document.

The WSGI app runs in-process on each database backend, with data present (a case held by
the canton with a document, a case held by Aarau and delegated to Caritas) and a valid
token of each kind of caller. Every response must be free of server errors, use a
documented status code and content type, and match its documented schema.
"""

from __future__ import annotations

import datetime as dt
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

from dossier_service.samples import make_pdf
from tests.conftest import World, new_case, upload

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
MAX_EXAMPLES = 25
FUZZ_SETTINGS = settings(
    max_examples=MAX_EXAMPLES,
    deadline=dt.timedelta(seconds=10),
    database=None,  # no .hypothesis directory in the tree
    derandomize=False,
    suppress_health_check=list(HealthCheck),
    print_blob=True,
)


@dataclass
class Seed:
    """Ids of the objects the fuzzer may aim at."""

    case_ids: list[str]
    document_ids: list[str]


@pytest.fixture
def seed(client: FlaskClient, world: World) -> Seed:
    """A canton case with a document, and a case held by Aarau and delegated to Caritas."""
    canton_case = new_case(client, world)
    pdf = make_pdf("Kurzassessment", ["Deutschkenntnisse A1."])
    canton_doc = upload(client, world, "canton", canton_case["id"], pdf, doc_type="short_assessment")
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


def _aimed(operation: Any, seed: Seed, mode: GenerationMode, headers: dict[str, str]) -> Any:
    """Cases whose path parameters name existing objects (so success paths are reached)."""
    names = {p.name for p in operation.path_parameters}
    choices: dict[str, Any] = {}
    if "case_id" in names:
        choices["case_id"] = st.sampled_from(seed.case_ids)
    if "document_id" in names:
        choices["document_id"] = st.sampled_from(seed.document_ids)
    if "unit_code" in names:
        choices["unit_code"] = st.sampled_from(["caritas", "ors", "aarau"])
    if "number" in names:
        choices["number"] = st.sampled_from([1, 2])
    return st.fixed_dictionaries(choices).flatmap(
        lambda fixed: operation.as_strategy(
            generation_mode=mode, path_parameters=fixed, headers=headers
        )
    )


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
    for result in schema.get_all_operations():
        operation = result.ok()
        strategies = {
            "aimed-positive": _aimed(operation, seed, GenerationMode.POSITIVE, headers),
            "aimed-negative": _aimed(operation, seed, GenerationMode.NEGATIVE, headers),
        }
        if operation.path_parameters:
            strategies["negative"] = operation.as_strategy(
                generation_mode=GenerationMode.NEGATIVE, headers=headers
            )
        for label, strategy in strategies.items():
            start = time.monotonic()
            try:
                seen[f"{operation.label} {label}"] = _fuzz(app, strategy)
            except Exception as exc:
                failures.append(f"{operation.label} [{label}]: {exc}")
            print(f"{operation.label} {label}: {time.monotonic() - start:.1f}s")
    for key, value in seen.items():
        print(key, value)
    assert not failures, "\n\n".join(failures)
