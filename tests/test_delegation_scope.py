"""What a delegation gives an organisation: the dialog says exactly what the policy grants.

The organisation works on the delegated case (documents, measures, milestones, notes) but
does not set the target group, close, transfer, delegate or request cost approvals; the
delegation dialog lists what it gains from ``policy.delegation_scope`` and these tests
compare that list with what ``policy.rights`` grants the organisation once delegated.
"""

from __future__ import annotations

import re
from html import unescape

from sqlalchemy import select

from dossier_service import labels
from dossier_service.models import Case, User
from dossier_service.policy import Action, rights
from dossier_service.services.accounts import identity_for_user
from tests.factories import API, held_by, login, post, set_passwords


def _list(html: str, list_id: str) -> list[str]:
    """The texts of the items of the list with this id."""
    match = re.search(rf'<ul id="{list_id}">(.*?)</ul>', html, re.S)
    assert match, f"no list {list_id}"
    return [unescape(item.strip()) for item in re.findall(r"<li>(.*?)</li>", match.group(1), re.S)]


def _rights_of(container, username: str, case_id: str) -> frozenset[Action]:
    with container.db.transaction() as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        case = session.get(Case, case_id)
        assert case is not None
        return rights(session, identity_for_user(user), case)


def test_the_dialog_lists_exactly_what_the_organisation_may_do(client, world, container):
    set_passwords(container, "aarau", "caritas")
    cid = held_by(client, world, "aarau")
    login(client, "aarau")
    review = post(client, f"/cases/{cid}/delegate", {"step": "review", "to_unit": "caritas"})
    assert review.status_code == 200
    html = review.get_data(as_text=True)
    gains, kept = _list(html, "delegation-gains"), _list(html, "delegation-kept")
    municipality = _rights_of(container, "aarau", cid)

    done = post(client, f"/cases/{cid}/delegate", {"step": "confirm", "to_unit": "caritas"})
    assert done.status_code == 302
    granted = _rights_of(container, "caritas", cid)

    assert granted == {Action.CASE_READ, Action.CASE_WRITE}
    assert gains == [labels.CASE_RIGHT[a.value] for a in Action if a in granted]
    assert kept == [
        labels.CASE_RIGHT[a.value] for a in Action if a in municipality and a not in granted
    ]
    assert "das Recht, die Zielgruppe festzulegen" in kept
    assert "das Recht, Kostengutsprachen zu beantragen" in kept
    assert "das Recht, den Fall abzuschliessen" in kept
    assert "das Recht, den Fall an eine andere Stelle weiterzugeben" in kept


def test_every_case_right_has_words():
    """The dialog names any right the policy may hand out (a new action needs its words)."""
    case_bound = set(Action) - {
        Action.CASE_CREATE,
        Action.AUDIT_READ,
        Action.NOTIFICATION_READ,
        Action.REPORT_READ,
        Action.EXPORT,
    }
    assert {a.value for a in case_bound} == set(labels.CASE_RIGHT)


def test_the_organisation_works_on_the_plan_but_does_not_set_the_target_group(
    app, client, world, container
):
    set_passwords(container, "aarau", "caritas")
    cid = held_by(client, world, "aarau")
    delegated = client.post(
        f"{API}/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=world.auth("aarau")
    )
    assert delegated.status_code == 201
    caritas = world.auth("caritas")
    refused = client.patch(
        f"{API}/cases/{cid}", json={"target_group": "education"}, headers=caritas
    )
    assert refused.status_code == 403 and refused.get_json()["error"]["code"] == "forbidden"
    measure = client.post(
        f"{API}/cases/{cid}/measures",
        json={"programme": "IKG1", "start": "2026-08-01", "note": "Kursplatz reserviert"},
        headers=caritas,
    )
    assert measure.status_code == 201
    for path, body in (
        (f"{API}/cases/{cid}/close", {"reason": "other"}),
        (f"{API}/cases/{cid}/transfers", {"to_unit": "baden", "reason": "Umzug"}),
    ):
        assert client.post(path, json=body, headers=caritas).status_code == 403

    login(client, "caritas")
    page = client.get(f"/cases/{cid}").get_data(as_text=True)
    assert f'action="/cases/{cid}/measures"' in page
    assert f'action="/cases/{cid}/target-group"' not in page
    assert (
        post(client, f"/cases/{cid}/target-group", {"target_group": "education"}).status_code == 403
    )
    municipality = app.test_client()
    login(municipality, "aarau")
    page = municipality.get(f"/cases/{cid}").get_data(as_text=True)
    assert f'action="/cases/{cid}/target-group"' in page
    assert (
        client.patch(
            f"{API}/cases/{cid}", json={"target_group": "education"}, headers=world.auth("aarau")
        ).status_code
        == 200
    )
