"""Two cases of one person merged: the dossier moves, the merged case points on, access stays."""

from __future__ import annotations

import datetime as dt
import io
from typing import Any

from flask.testing import FlaskClient
from sqlalchemy import select

from dossier_service.dates import local_today
from dossier_service.models import AuditEntry, CaseMerge, HouseholdLink
from dossier_service.samples import make_pdf
from tests.factories import (
    API,
    World,
    held_by,
    new_case,
    notifications_of,
    request_approval,
    upload,
)

REPORT = make_pdf("Standortbericht", ["Sprachstand Mondfinsternis A2 erreicht."])
REPORT_V2 = make_pdf("Standortbericht", ["Sprachstand Mondfinsternis B1 erreicht."])
REASON = "Doppelt erfasst: neue ZEMIS-Nummer nach Statuswechsel"


def _post(client: FlaskClient, world: World, user: str, url: str, body: Any) -> Any:
    return client.post(f"{API}{url}", json=body, headers=world.auth(user))


def _merge(client: FlaskClient, world: World, user: str, into: str, from_case: str) -> Any:
    return _post(
        client, world, user, f"/cases/{into}/merge", {"from_case": from_case, "reason": REASON}
    )


def _search(client: FlaskClient, world: World, user: str, q: str) -> dict[str, Any]:
    response = client.get(f"{API}/search", query_string={"q": q}, headers=world.auth(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()  # type: ignore[no-any-return]


def _error(response: Any) -> tuple[int, str]:
    return response.status_code, response.get_json()["error"]["code"]


def _populated(client: FlaskClient, world: World, unit: str) -> dict[str, str]:
    """A case held by the unit with a two-version document, a measure, a milestone, a target
    group, a cost approval, a household link and a person correction; the ids."""
    cid = held_by(client, world, unit, family_name="Haile", ahv_number=None)
    doc = upload(client, world, unit, cid, REPORT, title="Standortbericht").get_json()["id"]
    version = client.post(
        f"{API}/documents/{doc}/versions",
        data={"file": (io.BytesIO(REPORT_V2), "v2.pdf")},
        headers=world.auth(unit),
        content_type="multipart/form-data",
    )
    assert version.status_code == 201, version.get_json()
    measure = _post(
        client,
        world,
        unit,
        f"/cases/{cid}/measures",
        {"programme": "IKG1", "provider": "ECAP", "start": "2026-02-01"},
    )
    assert measure.status_code == 201, measure.get_json()
    milestone = _post(
        client,
        world,
        unit,
        f"/cases/{cid}/milestones",
        {"kind": "language_level", "value": "A2", "date": "2026-01-15"},
    )
    assert milestone.status_code == 201, milestone.get_json()
    group = client.patch(
        f"{API}/cases/{cid}", json={"target_group": "education"}, headers=world.auth(unit)
    )
    assert group.status_code == 200, group.get_json()
    approval = request_approval(client, world, cid, unit)
    assert approval.status_code == 201, approval.get_json()
    corrected = client.patch(
        f"{API}/cases/{cid}/person",
        json={"given_names": "Semhar Tesfay", "reason": "Laut Pass"},
        headers=world.auth(unit),
    )
    assert corrected.status_code == 200, corrected.get_json()
    noted = _post(
        client, world, unit, f"/cases/{cid}/journal", {"kind": "phone", "text": "Anruf Schule."}
    )
    assert noted.status_code == 201, noted.get_json()
    reminder = _post(
        client,
        world,
        unit,
        f"/cases/{cid}/follow-ups",
        {"due_date": (local_today() + dt.timedelta(days=30)).isoformat(), "note": "Zeugnis"},
    )
    assert reminder.status_code == 201, reminder.get_json()
    return {"case": cid, "doc": doc, "measure": measure.get_json()["id"]}


def test_a_merge_moves_the_whole_dossier_and_leaves_a_pointer(client, world, container):
    survivor = held_by(client, world, "aarau", family_name="Haile", ahv_number=None)
    merged = _populated(client, world, "baden")
    # The merged case's household: a child linked to both cases (the link to the merged
    # case would duplicate the survivor's) and a child linked to the merged case only.
    both = new_case(client, world, family_name="Haile", given_names="Luwam")["id"]
    only = new_case(client, world, family_name="Haile", given_names="Selam")["id"]
    for child, parent in ((both, survivor), (both, merged["case"]), (only, merged["case"])):
        linked = _post(
            client,
            world,
            "canton",
            f"/cases/{child}/household",
            {"case_id": parent, "relation": "parent"},
        )
        assert linked.status_code in (200, 201), linked.get_json()

    response = _merge(client, world, "canton", survivor, merged["case"])
    assert response.status_code == 200, response.get_json()
    body = response.get_json()
    assert body["case"]["id"] == survivor
    assert body["case"]["responsible_unit"]["code"] == "aarau"
    assert body["merge"]["merged_case_id"] == merged["case"]
    assert body["merge"]["moved"] == {
        "documents": 2,  # the report and the canton's end report
        "versions": 3,
        "target_groups": 1,
        "measures": 1,
        "milestones": 1,
        "cost_approvals": 1,
        "person_changes": 1,
        "status_changes": 0,
        "journal_entries": 1,
        "household_links": 1,
        "follow_ups": 1,
    }
    canton = world.auth("canton")
    docs = client.get(f"{API}/cases/{survivor}/documents", headers=canton).get_json()["items"]
    assert merged["doc"] in {d["id"] for d in docs}
    moved_doc = client.get(f"{API}/documents/{merged['doc']}", headers=canton).get_json()
    assert moved_doc["case_id"] == survivor and moved_doc["current_version"] == 2
    history = client.get(f"{API}/documents/{merged['doc']}/history", headers=canton).get_json()
    assert [(i["field"], i["reason"]) for i in history["items"]] == [("case", REASON)]
    measures = client.get(f"{API}/cases/{survivor}/measures", headers=canton).get_json()["items"]
    assert [m["id"] for m in measures] == [merged["measure"]]
    approvals = client.get(f"{API}/cases/{survivor}/cost-approvals", headers=canton).get_json()
    assert len(approvals["items"]) == 1
    survivor_case = client.get(f"{API}/cases/{survivor}", headers=canton).get_json()
    assert survivor_case["target_group"] == "education"
    assert [m["merged_case_id"] for m in survivor_case["merged_from"]] == [merged["case"]]
    person = client.get(f"{API}/cases/{survivor}/person/history", headers=canton).get_json()
    assert [i["field"] for i in person["items"]] == ["given_names"]
    household = client.get(f"{API}/cases/{survivor}/household", headers=canton).get_json()
    assert sorted(m["case_id"] for m in household["items"]) == sorted([both, only])

    # The merged case answers 410 with the pointer, for reads and writes, and is listed nowhere.
    gone = client.get(f"{API}/cases/{merged['case']}", headers=canton)
    assert _error(gone) == (410, "case_merged")
    assert gone.get_json()["error"]["details"]["surviving_case_id"] == survivor
    assert gone.get_json()["error"]["details"]["surviving_reference"] == body["case"]["reference"]
    write = upload(client, world, "canton", merged["case"], REPORT)
    assert _error(write) == (410, "case_merged")
    listed = client.get(f"{API}/cases?per_page=200", headers=canton).get_json()["items"]
    assert merged["case"] not in {c["id"] for c in listed} and survivor in {c["id"] for c in listed}

    with container.db.transaction() as session:
        audit = session.execute(
            select(AuditEntry.case_id, AuditEntry.detail).where(
                AuditEntry.action == "case.merge", AuditEntry.outcome == "ok"
            )
        ).all()
        record = session.execute(select(CaseMerge)).scalar_one()
        links = session.execute(select(HouseholdLink)).scalars().all()
        assert (record.surviving_case_id, record.merged_case_id, record.reason) == (
            survivor,
            merged["case"],
            REASON,
        )
        pairs = {frozenset((link.case_a_id, link.case_b_id)) for link in links}
        assert pairs == {frozenset((both, survivor)), frozenset((only, survivor))}
    assert {case_id for case_id, _ in audit} == {survivor, merged["case"]}
    assert all(d["reason"] == REASON and d["moved"]["documents"] == 2 for _, d in audit)
    assert "case.merged" in {n["kind"] for n in notifications_of(client, world, "aarau")}


def test_search_hits_move_to_the_surviving_case_at_once(client, world):
    survivor = held_by(client, world, "aarau", ahv_number=None)
    merged = _populated(client, world, "baden")
    before = _search(client, world, "canton", "Mondfinsternis")["items"]
    assert {h["case_id"] for h in before} == {merged["case"]}
    assert _merge(client, world, "canton", survivor, merged["case"]).status_code == 200
    for user in ("canton", "aarau"):
        hits = _search(client, world, user, "Mondfinsternis")["items"]
        assert {h["case_id"] for h in hits} == {survivor}, user
    assert _search(client, world, "baden", "Mondfinsternis")["items"] == []


def test_nobody_gains_access_through_the_merge(client, world):
    """Baden held the merged case: afterwards it reads neither case nor the moved document,
    while Aarau keeps the surviving case and reads what moved into it."""
    survivor = held_by(client, world, "aarau", ahv_number=None)
    merged = _populated(client, world, "baden")
    baden = world.auth("baden")
    assert client.get(f"{API}/documents/{merged['doc']}", headers=baden).status_code == 200
    assert client.get(f"{API}/cases/{survivor}", headers=baden).status_code == 404
    assert _merge(client, world, "canton", survivor, merged["case"]).status_code == 200
    for url in (
        f"/documents/{merged['doc']}",
        f"/documents/{merged['doc']}/content",
        f"/cases/{survivor}",
        f"/cases/{survivor}/documents",
    ):
        assert client.get(f"{API}{url}", headers=baden).status_code == 404, url
    listed = client.get(f"{API}/cases", headers=baden).get_json()
    assert listed["total"] == 0
    aarau = world.auth("aarau")
    assert client.get(f"{API}/documents/{merged['doc']}/content", headers=aarau).status_code == 200
    # The responsibility of the surviving case did not change.
    history = client.get(f"{API}/cases/{survivor}/responsibilities", headers=aarau).get_json()
    assert [h["unit"]["code"] for h in history["items"]] == ["ag", "aarau"]


def test_merge_refusals_change_nothing(client, world, container):
    survivor = new_case(client, world, ahv_number=None)["id"]
    other = new_case(client, world, ahv_number=None)["id"]
    # Only canton caseworkers merge.
    for user in ("aarau", "caritas", "auditor"):
        assert _error(_merge(client, world, user, survivor, other)) == (403, "forbidden"), user
    assert _error(_merge(client, world, "canton", survivor, survivor)) == (422, "merge_same_case")
    missing = _merge(client, world, "canton", survivor, "no-such-case")
    assert _error(missing) == (422, "merge_case_not_found")
    assert _error(_merge(client, world, "canton", "no-such-case", other)) == (404, "case_not_found")
    empty = _post(
        client, world, "canton", f"/cases/{survivor}/merge", {"from_case": other, "reason": " "}
    )
    assert empty.status_code == 422 and empty.get_json()["error"]["field"] == "reason"
    # Two AHV numbers that differ name two people.
    first, second = new_case(client, world)["id"], new_case(client, world)["id"]
    different = _merge(client, world, "canton", first, second)
    assert _error(different) == (422, "different_persons")
    assert "AHV" in different.get_json()["error"]["message"]
    # A closed case is merged neither way.
    closed = new_case(client, world, ahv_number=None)["id"]
    upload(client, world, "canton", closed, REPORT, doc_type="end_report")
    shut = _post(client, world, "canton", f"/cases/{closed}/close", {"reason": "other"})
    assert shut.status_code == 200, shut.get_json()
    assert _error(_merge(client, world, "canton", survivor, closed)) == (409, "case_closed")
    assert _error(_merge(client, world, "canton", closed, survivor)) == (409, "case_closed")
    with container.db.transaction() as session:
        assert session.execute(select(CaseMerge)).first() is None
    # Merged once, never again; and nothing is merged into a merged case.
    assert _merge(client, world, "canton", survivor, other).status_code == 200
    third = new_case(client, world, ahv_number=None)["id"]
    assert _error(_merge(client, world, "canton", third, other)) == (409, "case_already_merged")
    assert _error(_merge(client, world, "canton", other, third)) == (410, "case_merged")
