"""Request bodies: every JSON body is refused field by field, in the one error shape, never 500.

The models of ``dossier_service.bodies`` check types, lengths, codes and formats before a
service runs; the services check what depends on the database or the day. Each endpoint
gets bad bodies here (on every database backend) and must answer 422 naming the field, or
400 for a body (or nested object) that is not a JSON object.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from flask.testing import FlaskClient

from dossier_service.bodies.archive import ExportInput, LegalHoldRelease
from dossier_service.bodies.cases import CaseInput
from dossier_service.bodies.cost_approvals import CostApprovalInput, DecisionInput
from dossier_service.bodies.parse import parse
from dossier_service.bodies.plan import MeasureUpdate, MilestoneInput
from dossier_service.errors import BadRequest, Unprocessable
from tests.factories import PERSON, World, new_case

API = "/api/v1"
NO_SUCH_ID = "00000000-0000-4000-8000-000000000000"
CASE = {"person": PERSON, "entry_date": "2025-03-01"}
REQUEST = {
    "programme": "IKG1",
    "amount_chf": "4800.00",
    "period_from": "2026-02-01",
    "period_to": "2026-06-30",
    "justification": "IKG1 gemäss Integrationsplan.",
}
MEASURE = {"programme": "IKG1", "start": "2025-02-01"}
MILESTONE = {"kind": "language_level", "value": "A1", "date": "2025-02-01"}


def _person(**fields: Any) -> dict[str, Any]:
    return {**CASE, "person": {**PERSON, **fields}}


# (method, path with {case} for the canton's case, body, status, field). Bodies are
# checked before the object is looked up, so ids that name nothing still get the 422.
BAD_BODIES: list[tuple[str, str, Any, int, str | None]] = [
    ("post", "/cases", [], 400, None),
    ("post", "/cases", {}, 422, "person"),
    ("post", "/cases", {"person": PERSON}, 422, "entry_date"),
    ("post", "/cases", {**CASE, "person": []}, 400, None),
    ("post", "/cases", {**CASE, "person": None}, 422, "person"),
    ("post", "/cases", _person(family_name="x" * 100_000), 422, "person.family_name"),
    ("post", "/cases", _person(family_name="a\x00b"), 422, "person.family_name"),
    ("post", "/cases", _person(given_names="\ud800"), 422, "person.given_names"),
    ("post", "/cases", _person(given_names=7), 422, "person.given_names"),
    ("post", "/cases", _person(sex="f"), 422, "person.sex"),
    ("post", "/cases", _person(birth_date="0001"), 422, "person.birth_date"),
    ("post", "/cases", _person(ahv_number="756.0000.0000.00"), 422, "person.ahv_number"),
    ("post", "/cases", _person(zemis_number=""), 422, "person.zemis_number"),
    ("post", "/cases", {**CASE, "entry_date": 20250301}, 422, "entry_date"),
    ("post", "/cases", {**CASE, "entry_date": "2025-02-30"}, 422, "entry_date"),
    ("post", "/cases", {**CASE, "entry_date": "0001-01-01"}, 422, "entry_date"),
    ("post", "/cases", {**CASE, "entry_date": "9999-12-31"}, 422, "entry_date"),
    ("post", "/cases/{case}/transfers", {"to_unit": 5, "reason": "Umzug"}, 422, "to_unit"),
    ("post", "/cases/{case}/transfers", {"to_unit": "aarau"}, 422, "reason"),
    ("post", "/cases/{case}/delegations", {"reason": "Begleitung"}, 422, "to_unit"),
    ("patch", "/cases/{case}", {"target_group": None}, 422, "target_group"),
    ("patch", "/cases/{case}", {"target_group": "education", "x": 1}, 422, "x"),
    ("post", "/cases/{case}/measures", {"programme": "IKG1"}, 422, "start"),
    ("post", "/cases/{case}/measures", {**MEASURE, "end": "31.12.2025"}, 422, "end"),
    ("post", "/cases/{case}/measures", {**MEASURE, "end": "0001-01-01"}, 422, "end"),
    ("post", "/cases/{case}/measures", {**MEASURE, "note": "x" * 4001}, 422, "note"),
    ("post", "/cases/{case}/measures", {**MEASURE, "status": True}, 422, "status"),
    ("patch", f"/measures/{NO_SUCH_ID}", {"start": None}, 422, "start"),
    ("patch", f"/measures/{NO_SUCH_ID}", {"status": "paused"}, 422, "status"),
    ("patch", f"/measures/{NO_SUCH_ID}", {"provider": "x", "programme": "IKG1"}, 422, "programme"),
    ("post", "/cases/{case}/milestones", {**MILESTONE, "value": "B1+"}, 422, "value"),
    ("post", "/cases/{case}/milestones", {**MILESTONE, "value": "tertiary"}, 422, "value"),
    ("post", "/cases/{case}/milestones", {**MILESTONE, "date": None}, 422, "date"),
    ("post", "/cases/{case}/close", {"reason": "bored"}, 422, "reason"),
    ("post", "/cases/{case}/close", {"reason": "other", "note": ["x"]}, 422, "note"),
    ("post", "/cases/{case}/reopen", {"reason": "   "}, 422, "reason"),
    ("post", "/cases/{case}/cost-approvals", {**REQUEST, "amount_chf": 1.5}, 422, "amount_chf"),
    ("post", "/cases/{case}/cost-approvals", {**REQUEST, "measure_id": "m"}, 422, "measure_id"),
    ("post", "/cases/{case}/cost-approvals", {**REQUEST, "document_ids": "d"}, 422, "document_ids"),
    ("post", "/cases/{case}/cost-approvals", {**REQUEST, "period_to": "x"}, 422, "period_to"),
    (
        "post",
        "/cases/{case}/cost-approvals",
        {**REQUEST, "justification": ""},
        422,
        "justification",
    ),
    ("post", f"/cost-approvals/{NO_SUCH_ID}/decision", {"decision": "ok"}, 422, "decision"),
    ("post", f"/cost-approvals/{NO_SUCH_ID}/decision", "approved", 400, None),
    ("post", "/cases/{case}/legal-hold", {"reason": None}, 422, "reason"),
    ("delete", "/cases/{case}/legal-hold", {"reason": "x" * 2001}, 422, "reason"),
]
ARCHIVE_BODIES: list[tuple[str, Any, str]] = [
    ("/exports", {"case_ids": ["a\x00b"]}, "case_ids"),
    ("/exports", {"closed_before": "1.1.2026"}, "closed_before"),
    (f"/exports/{NO_SUCH_ID}/acknowledge", {"archive_reference": 17}, "archive_reference"),
]


@pytest.mark.parametrize(("method", "path", "body", "status", "field"), BAD_BODIES)
def test_bad_bodies_are_refused_naming_the_field(
    client: FlaskClient,
    world: World,
    method: str,
    path: str,
    body: Any,
    status: int,
    field: str | None,
) -> None:
    case_id = new_case(client, world)["id"] if "{case}" in path else ""
    url = API + path.format(case=case_id)
    # Sent as ASCII JSON: a lone surrogate travels escaped, as a hostile client would send it.
    response = getattr(client, method)(
        url, data=json.dumps(body), content_type="application/json", headers=world.auth("canton")
    )
    assert response.status_code == status, response.get_json()
    error = response.get_json()["error"]
    assert set(error) <= {"code", "message", "field"} and error["message"]
    if status == 400:
        assert error["code"] == "invalid_json"
    else:
        assert error.get("field") == field
        # The sentence names the field, so a person can find what to correct.
        assert (field or "").split(".")[-1] in error["message"]


@pytest.mark.parametrize(("path", "body", "field"), ARCHIVE_BODIES)
def test_bad_archive_bodies_are_refused_naming_the_field(
    client: FlaskClient, world: World, path: str, body: Any, field: str
) -> None:
    response = client.post(API + path, json=body, headers=world.auth("archivist"))
    assert response.status_code == 422, response.get_json()
    assert response.get_json()["error"]["field"] == field


def test_a_body_that_is_not_json_is_a_bad_request(client: FlaskClient, world: World) -> None:
    response = client.post(
        f"{API}/cases", data="person=x", content_type="text/plain", headers=world.auth("canton")
    )
    assert (response.status_code, response.get_json()["error"]["code"]) == (400, "invalid_json")


def test_unknown_fields_are_ignored_where_they_were_before(
    client: FlaskClient, world: World
) -> None:
    response = client.post(f"{API}/cases", json={**CASE, "extra": 1}, headers=world.auth("canton"))
    assert response.status_code == 201, response.get_json()


# --- The models on their own ---------------------------------------------------------------


def _refusal(model: Any, data: Any) -> Unprocessable:
    with pytest.raises(Unprocessable) as refused:
        parse(model, data)
    return refused.value


def test_text_is_trimmed_and_blank_counts_as_missing() -> None:
    body = parse(CaseInput, _person(family_name="  Haile  ", ahv_number="  "))
    assert (body.person.family_name, body.person.ahv_number) == ("Haile", None)
    refused = _refusal(CaseInput, _person(family_name=" \t "))
    assert (refused.message, refused.details["field"]) == (
        "'person.family_name' is required.",
        "person.family_name",
    )


def test_identifiers_are_normalised_by_the_model() -> None:
    person = parse(CaseInput, CASE).person
    assert (person.ahv_number, person.birth_date) == ("7569217076985", "2006-03")


def test_length_limits_name_the_limit() -> None:
    refused = _refusal(MilestoneInput, {**MILESTONE, "note": "x" * 2001})
    assert refused.message == "'note' is longer than 2000 characters."


def test_unknown_fields_are_named_together_where_the_model_forbids_them() -> None:
    refused = _refusal(MilestoneInput, {**MILESTONE, "b": 1, "a": 2, "value": 3})
    assert (refused.message, refused.details["field"]) == ("Unknown field(s): a, b.", "a")


def test_a_measure_update_knows_which_fields_were_sent() -> None:
    assert parse(MeasureUpdate, {"end": None}).model_fields_set == {"end"}
    assert parse(MeasureUpdate, {}).model_fields_set == set()


def test_amounts_are_exact_and_carry_their_own_code() -> None:
    assert (
        str(
            parse(
                DecisionInput, {"decision": "rejected", "approved_amount_chf": "0.1"}
            ).approved_amount_chf
        )
        == "0.10"
    )
    refused = _refusal(CostApprovalInput, {**REQUEST, "amount_chf": 4800})
    assert (refused.code, refused.details["field"]) == ("amount_not_string", "amount_chf")


def test_id_lists_drop_duplicates_and_are_bounded() -> None:
    ids = parse(ExportInput, {"case_ids": ["a", "b", "a"]}).case_ids
    assert ids == ["a", "b"]
    refused = _refusal(ExportInput, {"case_ids": [f"id-{n}" for n in range(501)]})
    assert refused.code == "too_many_cases"


def test_a_nested_object_that_is_not_one_is_a_bad_request() -> None:
    with pytest.raises(BadRequest) as refused:
        parse(CaseInput, {**CASE, "person": "Haile"})
    assert refused.value.code == "invalid_json"


def test_null_is_a_list_left_out() -> None:
    body = parse(ExportInput, {"case_ids": None, "closed_before": "2026-01-01"})
    assert (body.case_ids, str(body.closed_before)) == (None, "2026-01-01")
    assert parse(CostApprovalInput, {**REQUEST, "document_ids": None}).document_ids is None
    assert _refusal(ExportInput, {"case_ids": []}).details["field"] == "case_ids"


def test_an_empty_release_has_no_reason() -> None:
    assert parse(LegalHoldRelease, {}).reason is None
