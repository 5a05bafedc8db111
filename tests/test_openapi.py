"""The OpenAPI document: complete, valid, served as is, and true to real responses."""

from __future__ import annotations

import copy
import io
import json
import re
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from jsonschema import ValidationError
from openapi_spec_validator import validate as validate_openapi
from openapi_spec_validator.validation.exceptions import OpenAPIValidationError

from dossier_service.api import spec
from dossier_service.api.health import OPENAPI_PATH
from dossier_service.samples import make_pdf
from tests.factories import World, new_case, upload
from tests.openapi_schema import assert_matches, schema_validator

API = "/api/v1"
METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
PUBLIC = {("/health", "get"), ("/openapi.json", "get")}
PDF = make_pdf("Kurzassessment", ["Deutschkenntnisse A1."])


@pytest.fixture(scope="module")
def doc() -> dict[str, Any]:
    """The document as shipped with the package."""
    return json.loads(OPENAPI_PATH.read_text("utf-8"))  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(path, method, operation) for every operation of the document."""
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method in METHODS:
                yield path, method, operation


def flask_routes(app: Flask) -> set[tuple[str, str]]:
    """(path, method) of every API rule, written as OpenAPI path templates below /api/v1."""
    routes = set()
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith(API + "/"):
            continue
        # <case_id> and <int:number> become {case_id} and {number}.
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule[len(API) :])
        for method in rule.methods or ():
            if method not in {"HEAD", "OPTIONS"}:  # Flask adds these to every GET rule
                routes.add((path, method.lower()))
    return routes


# --- The document as a whole --------------------------------------------------------------


def test_every_api_route_is_documented_with_the_same_methods_and_vice_versa(app, doc):
    routes = flask_routes(app)
    documented = {(path, method) for path, method, _ in operations(doc)}
    assert routes, "no API routes found: is the blueprint registered?"
    assert routes - documented == set(), "routes missing from openapi.json"
    assert documented - routes == set(), "openapi.json documents routes the app does not have"


def test_document_is_a_valid_openapi_31_document(doc):
    assert doc["openapi"].startswith("3.1.")
    validate_openapi(doc)


@pytest.mark.parametrize("breakage", ["bad type", "undeclared path parameter"])
def test_validator_rejects_a_broken_document(doc, breakage):
    """The validity check above is real: it refuses a bad schema type and a lost parameter."""
    broken = copy.deepcopy(doc)
    if breakage == "bad type":
        broken["components"]["schemas"]["Unit"]["properties"]["kind"]["type"] = "strng"
    else:
        broken["paths"]["/cases/{case_id}"]["parameters"] = []
    with pytest.raises(OpenAPIValidationError):
        validate_openapi(broken)


def test_served_document_is_the_shipped_file_and_public(client: FlaskClient, doc):
    response = client.get(f"{API}/openapi.json")
    assert response.status_code == 200
    assert response.mimetype == "application/json"
    assert response.get_json() == doc


def test_operation_ids_are_unique(doc):
    ids = [operation["operationId"] for _, _, operation in operations(doc)]
    assert len(ids) == len(set(ids))


def test_path_templates_and_declared_path_parameters_agree(doc):
    for path, item in doc["paths"].items():
        in_template = set(re.findall(r"{([^}]+)}", path))
        for method, operation in item.items():
            if method not in METHODS:
                continue
            declared = {
                _resolve(doc, p)["name"]
                for p in [*item.get("parameters", []), *operation.get("parameters", [])]
                if _resolve(doc, p)["in"] == "path"
            }
            assert declared == in_template, (path, method)


def _resolve(doc: dict[str, Any], obj: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref of the document."""
    if "$ref" not in obj:
        return obj
    node: Any = doc
    for part in obj["$ref"].removeprefix("#/").split("/"):
        node = node[part]
    return node  # type: ignore[no-any-return]


def test_only_health_and_the_document_itself_are_public(doc):
    assert doc["security"] == [{"bearerAuth": []}]
    assert doc["components"]["securitySchemes"]["bearerAuth"] == {
        **doc["components"]["securitySchemes"]["bearerAuth"],
        "type": "http",
        "scheme": "bearer",
    }
    for path, method, operation in operations(doc):
        if (path, method) in PUBLIC:
            assert operation["security"] == [], (path, method)
        else:
            assert "security" not in operation, (path, method)  # inherits bearerAuth
            assert "401" in operation["responses"], (path, method)


def test_every_error_status_uses_the_one_error_schema(doc):
    error_ref = {"$ref": "#/components/schemas/Error"}
    for path, method, operation in operations(doc):
        for status, response in operation["responses"].items():
            code = int(status)
            # 416 has no body; the health probe answers 503 with its own report.
            if code < 400 or code == 416 or (path, method) == ("/health", "get"):
                continue
            content = _resolve(doc, response)["content"]
            assert content == {"application/json": {"schema": error_ref}}, (path, method, status)


def test_secured_operations_answer_401_without_a_token_and_public_ones_answer(
    client: FlaskClient, doc
):
    no_such_id = "00000000-0000-4000-8000-000000000000"
    for path, method, _ in operations(doc):
        # Any other path parameter (measure_id, approval_id, notification_id, …) gets "1".
        values = {"case_id": no_such_id, "document_id": no_such_id, "unit_code": "caritas"}
        url = API + path.format_map(defaultdict(lambda: "1", values))
        response = client.open(url, method=method.upper())
        if (path, method) in PUBLIC:
            assert response.status_code in (200, 503), (path, method)
        else:
            assert response.status_code == 401, (path, method)
            assert_matches(doc, path, method, 401, response.get_json())


# --- Real responses against their schemas -------------------------------------------------


def test_case_responses_match_their_schemas(client: FlaskClient, world: World, doc):
    case = new_case(client, world)
    assert_matches(doc, "/cases", "post", 201, case)
    without_ahv = new_case(client, world, ahv_number=None, birth_date="1990")
    assert without_ahv["person"]["ahv_number"] is None
    assert_matches(doc, "/cases", "post", 201, without_ahv)

    got = client.get(f"{API}/cases/{case['id']}", headers=world.auth("canton"))
    assert got.status_code == 200
    assert_matches(doc, "/cases/{case_id}", "get", 200, got.get_json())

    listed = client.get(f"{API}/cases?per_page=1", headers=world.auth("canton"))
    assert listed.status_code == 200
    assert listed.get_json()["total"] == 2
    assert_matches(doc, "/cases", "get", 200, listed.get_json())

    report = upload(client, world, "canton", case["id"], PDF, doc_type="end_report")
    assert report.status_code == 201
    moved = client.post(
        f"{API}/cases/{case['id']}/transfers",
        json={"to_unit": "aarau", "reason": "Wohnsitz Aarau"},
        headers=world.auth("canton"),
    )
    assert moved.status_code == 201
    assert_matches(doc, "/cases/{case_id}/transfers", "post", 201, moved.get_json())
    delegated = client.post(
        f"{API}/cases/{case['id']}/delegations",
        json={"to_unit": "caritas"},
        headers=world.auth("aarau"),
    )
    assert delegated.status_code == 201
    assert delegated.get_json()["delegations"][0]["unit"]["code"] == "caritas"
    assert_matches(doc, "/cases/{case_id}/delegations", "post", 201, delegated.get_json())
    ended = client.delete(
        f"{API}/cases/{case['id']}/delegations/caritas", headers=world.auth("aarau")
    )
    assert ended.status_code == 200
    assert_matches(doc, "/cases/{case_id}/delegations/{unit_code}", "delete", 200, ended.get_json())

    history = client.get(f"{API}/cases/{case['id']}/responsibilities", headers=world.auth("aarau"))
    assert history.status_code == 200
    assert [h["to"] is None for h in history.get_json()["items"]] == [False, True]
    assert_matches(doc, "/cases/{case_id}/responsibilities", "get", 200, history.get_json())


def test_document_responses_match_their_schemas(client: FlaskClient, world: World, doc):
    case = new_case(client, world)
    created = upload(client, world, "canton", case["id"], PDF, doc_type="short_assessment")
    assert created.status_code == 201
    document = created.get_json()
    assert_matches(doc, "/cases/{case_id}/documents", "post", 201, document)

    version = client.post(
        f"{API}/documents/{document['id']}/versions",
        data={"file": (io.BytesIO(make_pdf("v2", ["A2"])), "v2.pdf")},
        headers={**world.auth("canton"), "If-Match": f'"{document["versions"][0]["sha256"]}"'},
        content_type="multipart/form-data",
    )
    assert version.status_code == 201
    assert version.get_json()["current_version"] == 2
    assert_matches(doc, "/documents/{document_id}/versions", "post", 201, version.get_json())

    got = client.get(f"{API}/documents/{document['id']}", headers=world.auth("canton"))
    assert got.status_code == 200
    assert_matches(doc, "/documents/{document_id}", "get", 200, got.get_json())
    listed = client.get(f"{API}/cases/{case['id']}/documents", headers=world.auth("canton"))
    assert listed.status_code == 200
    assert len(listed.get_json()["items"]) == 1
    assert_matches(doc, "/cases/{case_id}/documents", "get", 200, listed.get_json())


def test_audit_list_matches_its_schema(client: FlaskClient, world: World, doc):
    case = new_case(client, world)
    # A denied read, so entries with and without a case, ok and denied are all present.
    assert client.get(f"{API}/cases/{case['id']}", headers=world.auth("aarau")).status_code == 404
    response = client.get(f"{API}/audit?per_page=1000", headers=world.auth("auditor"))
    assert response.status_code == 200
    body = response.get_json()
    assert {e["outcome"] for e in body["items"]} == {"ok", "denied"}
    assert any(e["case_id"] is None for e in body["items"])
    assert_matches(doc, "/audit", "get", 200, body)


def test_health_matches_its_schema(client: FlaskClient, doc):
    response = client.get(f"{API}/health")
    assert response.status_code in (200, 503)
    assert_matches(doc, "/health", "get", response.status_code, response.get_json())


def test_error_responses_match_the_error_schema(client: FlaskClient, world: World, doc):
    unknown = client.get(
        f"{API}/cases/{'0' * 8}-0000-4000-8000-{'0' * 12}", headers=world.auth("canton")
    )
    assert unknown.status_code == 404
    assert_matches(doc, "/cases/{case_id}", "get", 404, unknown.get_json())

    invalid = client.post(
        f"{API}/cases", json={"person": {"family_name": "X"}}, headers=world.auth("canton")
    )
    assert invalid.status_code == 422
    assert "field" in invalid.get_json()["error"]
    assert_matches(doc, "/cases", "post", 422, invalid.get_json())

    forbidden = client.get(f"{API}/audit", headers=world.auth("canton"))
    assert forbidden.status_code == 403
    assert_matches(doc, "/audit", "get", 403, forbidden.get_json())

    bad = client.get(f"{API}/cases?page=zero", headers=world.auth("canton"))
    assert bad.status_code == 400
    assert_matches(doc, "/cases", "get", 400, bad.get_json())


# --- The schemas are strict enough to notice drift ----------------------------------------


def test_case_schema_refuses_drift(client: FlaskClient, world: World, doc):
    case = new_case(client, world)
    validator = schema_validator(doc, "Case")
    validator.validate(case)
    drifted = [
        {**case, "unexpected": 1},
        {k: v for k, v in case.items() if k != "horizon_date"},
        {**case, "status": "archived"},
        {**case, "created_at": "yesterday"},
        {**case, "person": {**case["person"], "ahv_number": "7569217076985"}},
        {**case, "person": {**case["person"], "birth_date": "03.1998"}},
        {**case, "responsible_unit": {**case["responsible_unit"], "kind": "club"}},
    ]
    for body in drifted:
        with pytest.raises(ValidationError):
            validator.validate(body)


def test_error_schema_refuses_drift(doc):
    validator = schema_validator(doc, "Error")
    validator.validate({"error": {"code": "not_found", "message": "No such case."}})
    for body in (
        {"error": {"code": "not_found"}},
        {"error": {"code": "not_found", "message": "x", "status": 404}},
        {"error": "not_found"},
        {"message": "x"},
    ):
        with pytest.raises(ValidationError):
            validator.validate(body)


# --- Request schemas generated from the body models ----------------------------------------


def test_request_schemas_are_the_generated_ones(doc):
    """openapi.json holds the request schemas its models generate, and nothing else differs."""
    assert doc == spec.generated(doc), (
        f"The request schemas of openapi.json differ from the models; run: {spec.REGENERATE}"
    )


def test_every_json_request_body_is_a_generated_schema(doc):
    generated = spec.request_schemas()
    for path, method, operation in operations(doc):
        content = operation.get("requestBody", {}).get("content", {})
        if "application/json" in content:
            name = content["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
            assert name in generated, (path, method, name)


def test_the_regeneration_check_sees_a_hand_edited_schema(doc):
    edited = copy.deepcopy(doc)
    edited["components"]["schemas"]["ReopenInput"]["properties"]["reason"]["maxLength"] = 9
    assert spec.generated(edited) != edited
