"""The integration plan and the closing of a case on the case page: forms, policy, errors."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from dossier_service.models import AuditEntry, Notification, Unit
from dossier_service.models.process import (
    CLOSE_REASONS,
    MEASURE_STATUSES,
    MILESTONE_VALUES,
    PROGRAMMES,
    TARGET_GROUPS,
)
from dossier_service.samples import make_pdf
from dossier_service.web.plan import (
    CLOSE_REASON_LABELS,
    MEASURE_STATUS_LABELS,
    MILESTONE_KIND_LABELS,
    MILESTONE_VALUE_LABELS,
    PROGRAMME_LABELS,
    TARGET_GROUP_LABELS,
)
from tests.factories import csrf, login, new_case, post, set_passwords, upload

API = "/api/v1"
END_REPORT = make_pdf("Schlussbericht", ["Übergabe an die Gemeinde."])
USERS = ("canton", "aarau", "baden", "caritas", "auditor")
MEASURE = {
    "programme": "IKG1",
    "provider": "HEKS Aargau",
    "start": "2026-08-01",
    "end": "2027-07-31",
    "status": "planned",
    "note": "Kurs gemäss Triage",
}


def _text(response):
    return response.get_data(as_text=True)


def _aarau_case(client, world, container):
    """A case the canton registered and handed to Aarau; passwords for the web users."""
    set_passwords(container, *USERS)
    case = new_case(client, world)
    upload(client, world, "canton", case["id"], END_REPORT, doc_type="end_report")
    moved = client.post(
        f"{API}/cases/{case['id']}/transfers",
        json={"to_unit": "aarau", "reason": "Wohnsitz"},
        headers=world.auth("canton"),
    )
    assert moved.status_code == 201
    return case


def _api(client, world, path, user="aarau"):
    response = client.get(f"{API}{path}", headers=world.auth(user))
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def _measure_by_api(client, world, case_id, **fields):
    response = client.post(
        f"{API}/cases/{case_id}/measures", json={**MEASURE, **fields}, headers=world.auth("aarau")
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def _audit(container, action):
    with container.db.transaction() as session:
        return list(
            session.execute(
                select(AuditEntry).where(AuditEntry.action == action).order_by(AuditEntry.id)
            ).scalars()
        )


def _redirected_to_case(response, case_id):
    assert response.status_code == 303, response.get_data(as_text=True)[:500]
    assert response.headers["Location"] == f"/cases/{case_id}"


def test_the_plan_is_shown_with_labels_history_and_swiss_dates(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    for group in ("education", "labour_market"):
        client.patch(
            f"{API}/cases/{cid}",
            json={"target_group": group, "reason": f"Triage {group}"},
            headers=world.auth("aarau"),
        )
    _measure_by_api(client, world, cid)
    client.post(
        f"{API}/cases/{cid}/milestones",
        json={"kind": "education", "value": "pre_apprenticeship", "date": "2025-09-01"},
        headers=world.auth("aarau"),
    )
    login(client, "aarau")
    body = _text(client.get(f"/cases/{cid}"))
    plan = body[body.index('id="plan-heading"') :]
    assert "Integrationsplan" in plan
    assert "Aktuell: <strong>Arbeitsmarktfähige</strong>" in plan
    # History, newest first, with the reasons and who set them.
    assert plan.index("Triage labour_market") < plan.index("Triage education")
    assert "Ausbildungsfähige (16–25)" in plan and "aarau" in plan
    assert "Integrationskurs Grundkompetenzen 1 (IKG1)" in plan and "HEKS Aargau" in plan
    assert "01.08.2026" in plan and "31.07.2027" in plan and "geplant" in plan
    assert "Kurs gemäss Triage" in plan
    assert "Ausbildung" in plan and "Integrationsvorlehre" in plan and "01.09.2025" in plan
    assert "<caption" in plan and 'scope="col"' in plan
    # Each read of the plan went through the plan service and is audited.
    assert {e.actor for e in _audit(container, "measure.list")} == {"aarau"}
    assert {e.actor for e in _audit(container, "milestone.list")} == {"aarau"}


def test_the_responsible_unit_sets_the_target_group(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    login(client, "aarau")
    page = _text(client.get(f"/cases/{cid}"))
    assert f'action="/cases/{cid}/target-group"' in page
    assert '<label for="target-group-target_group">Zielgruppe</label>' in page
    done = post(
        client,
        f"/cases/{cid}/target-group",
        {"target_group": "education", "reason": "Kurzassessment vom März"},
    )
    _redirected_to_case(done, cid)
    body = _text(client.get(done.headers["Location"]))
    assert "Die Zielgruppe ist jetzt «Ausbildungsfähige (16–25)»." in body
    assert "Kurzassessment vom März" in body
    assert '<option value="education" selected>' in body  # the form starts from the current
    post(client, f"/cases/{cid}/target-group", {"target_group": "social_integration"})
    history = _api(client, world, f"/cases/{cid}/target-groups")["items"]
    assert [h["target_group"] for h in history] == ["education", "social_integration"]
    assert history[0]["reason"] == "Kurzassessment vom März" and history[0]["to"] is not None
    assert _api(client, world, f"/cases/{cid}")["target_group"] == "social_integration"


def test_the_responsible_unit_adds_a_measure_and_completes_it(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    login(client, "aarau")
    # A date typed by hand the Swiss way is understood like the date picker's.
    done = post(client, f"/cases/{cid}/measures", {**MEASURE, "start": "1.8.2026", "end": ""})
    _redirected_to_case(done, cid)
    assert "Die Massnahme «Integrationskurs Grundkompetenzen 1 (IKG1)» wurde in den Plan" in (
        _text(client.get(done.headers["Location"]))
    )
    [measure] = _api(client, world, f"/cases/{cid}/measures")["items"]
    assert (measure["programme"], measure["provider"], measure["start"], measure["end"]) == (
        "IKG1",
        "HEKS Aargau",
        "2026-08-01",
        None,
    )
    assert measure["status"] == "planned" and measure["note"] == "Kurs gemäss Triage"
    page = _text(client.get(f"/cases/{cid}"))
    assert f'action="/measures/{measure["id"]}"' in page
    assert f'<label for="measure-{measure["id"]}-status">Status</label>' in page

    changed = post(
        client, f"/measures/{measure['id']}", {"status": "completed", "end": "2026-12-18"}
    )
    _redirected_to_case(changed, cid)
    body = _text(client.get(changed.headers["Location"]))
    assert "wurde geändert" in body and "benachrichtigt" not in body
    assert "18.12.2026" in body
    [after] = _api(client, world, f"/cases/{cid}/measures")["items"]
    assert (after["status"], after["end"]) == ("completed", "2026-12-18")
    updates = _audit(container, "measure.update")
    assert [(e.actor, e.detail["changed"]) for e in updates] == [("aarau", ["end", "status"])]

    # The same values again change nothing: no audit entry, no activity on the case.
    activity = _api(client, world, f"/cases/{cid}")["updated_at"]
    same = post(client, f"/measures/{measure['id']}", {"status": "completed", "end": "2026-12-18"})
    _redirected_to_case(same, cid)
    assert "ist unverändert" in _text(client.get(f"/cases/{cid}"))
    assert len(_audit(container, "measure.update")) == 1
    assert _api(client, world, f"/cases/{cid}")["updated_at"] == activity


def test_interrupting_a_measure_notifies_the_unit_and_the_canton(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    measure = _measure_by_api(client, world, cid, status="running")
    login(client, "aarau")
    done = post(
        client, f"/measures/{measure['id']}", {"status": "interrupted", "end": MEASURE["end"]}
    )
    _redirected_to_case(done, cid)
    body = _text(client.get(f"/cases/{cid}"))
    assert "Die zuständige Stelle und der Kanton wurden benachrichtigt." in body
    assert 'class="badge measure-interrupted">unterbrochen' in body
    with container.db.transaction() as session:
        notified = session.execute(
            select(Unit.code)
            .join(Notification, Notification.unit_id == Unit.id)
            .where(Notification.case_id == cid, Notification.kind == "measure.interrupted")
        ).scalars()
        assert sorted(notified) == ["aarau", "ag"]
    updates = _audit(container, "measure.update")
    assert [e.detail["changed"] for e in updates] == [["status"]]  # the end was unchanged
    assert "Eine Massnahme wurde unterbrochen" in _text(client.get("/notifications"))


def test_the_responsible_unit_records_a_milestone(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    login(client, "aarau")
    page = _text(client.get(f"/cases/{cid}"))
    assert '<optgroup label="Sprachniveau">' in page
    assert '<option value="language_level:A1">Sprachniveau: A1</option>' in page
    done = post(
        client,
        f"/cases/{cid}/milestones",
        {"milestone": "language_level:A1", "date": "15.01.2026", "note": "telc A1"},
    )
    _redirected_to_case(done, cid)
    body = _text(client.get(f"/cases/{cid}"))
    assert "Der Meilenstein «Sprachniveau: A1» wurde erfasst." in body
    assert "15.01.2026" in body and "telc A1" in body
    [milestone] = _api(client, world, f"/cases/{cid}/milestones")["items"]
    assert (milestone["kind"], milestone["value"], milestone["date"]) == (
        "language_level",
        "A1",
        "2026-01-15",
    )


def test_a_delegated_organisation_works_on_the_plan_but_does_not_close(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    delegated = client.post(
        f"{API}/cases/{cid}/delegations", json={"to_unit": "caritas"}, headers=world.auth("aarau")
    )
    assert delegated.status_code == 201
    login(client, "caritas")
    page = _text(client.get(f"/cases/{cid}"))
    assert f'action="/cases/{cid}/milestones"' in page
    assert f'action="/cases/{cid}/close"' not in page  # closing is the municipality's call
    done = post(client, f"/cases/{cid}/milestones", {"milestone": "employment:none", "date": ""})
    assert done.status_code == 422  # the date is required
    done = post(
        client, f"/cases/{cid}/milestones", {"milestone": "employment:none", "date": "2026-01-05"}
    )
    _redirected_to_case(done, cid)
    assert "Erwerbstätigkeit: nicht erwerbstätig" in _text(client.get(f"/cases/{cid}"))
    assert post(client, f"/cases/{cid}/close", {"reason": "other"}).status_code == 403
    assert _api(client, world, f"/cases/{cid}")["status"] == "open"


def test_a_refused_measure_keeps_what_was_typed_and_explains_in_german(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    login(client, "aarau")
    typed = {**MEASURE, "programme": "INVOL", "end": "2026-07-01", "note": "Zeile 1\nZeile 2"}
    refused = post(client, f"/cases/{cid}/measures", typed)
    assert refused.status_code == 422
    body = _text(refused)
    assert "Das Ende bleibt leer oder ist ein Datum, das nicht vor dem Beginn" in body
    assert 'role="alert" id="measure-new-error"' in body
    assert (
        'id="measure-new-end" name="end" min="1990-01-01" value="2026-07-01" '
        'aria-invalid="true" aria-describedby="measure-new-error"'
    ) in body
    assert '<option value="INVOL" selected>' in body
    assert 'value="HEKS Aargau"' in body and 'value="2026-08-01"' in body
    assert ">Zeile 1\nZeile 2</textarea>" in body
    assert re.search(r'<details class="plan-form" open>\s*<summary>Massnahme hinzufügen', body)
    assert _api(client, world, f"/cases/{cid}/measures")["items"] == []

    missing = post(client, f"/cases/{cid}/measures", {**MEASURE, "programme": ""})
    assert missing.status_code == 422
    assert "Bitte wählen Sie ein Programm aus der Liste." in _text(missing)


def test_a_refused_milestone_and_measure_change_keep_their_values(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    measure = _measure_by_api(client, world, cid)
    login(client, "aarau")
    future = post(
        client,
        f"/cases/{cid}/milestones",
        {"milestone": "employment:second_labour_market", "date": "2099-01-01", "note": "Teillohn"},
    )
    assert future.status_code == 422
    body = _text(future)
    assert "frühestens 01.01.1990, spätestens heute" in body
    assert (
        '<option value="employment:second_labour_market" selected>Erwerbstätigkeit: '
        "Zweiter Arbeitsmarkt" in body
    )
    assert 'value="2099-01-01" aria-invalid="true"' in body and ">Teillohn</textarea>" in body
    mismatched = post(
        client, f"/cases/{cid}/milestones", {"milestone": "language_level:tertiary", "date": ""}
    )
    assert mismatched.status_code == 422
    assert "Bitte wählen Sie einen Meilenstein aus der Liste." in _text(mismatched)
    assert _api(client, world, f"/cases/{cid}/milestones")["items"] == []

    before_start = post(
        client, f"/measures/{measure['id']}", {"status": "running", "end": "2020-01-01"}
    )
    assert before_start.status_code == 422
    body = _text(before_start)
    form_id = f"measure-{measure['id']}"
    assert f'role="alert" id="{form_id}-error"' in body
    assert f'value="2020-01-01" aria-invalid="true" aria-describedby="{form_id}-error"' in body
    assert '<option value="running" selected>' in body
    assert _api(client, world, f"/cases/{cid}/measures")["items"][0]["status"] == "planned"


def test_other_units_get_404_and_roles_without_write_403(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    measure = _measure_by_api(client, world, cid)
    forms = {
        f"/cases/{cid}/target-group": {"target_group": "education"},
        f"/cases/{cid}/measures": MEASURE,
        f"/measures/{measure['id']}": {"status": "aborted", "end": ""},
        f"/cases/{cid}/milestones": {"milestone": "language_level:A2", "date": "2026-01-10"},
        f"/cases/{cid}/close": {"reason": "other"},
        f"/cases/{cid}/reopen": {"reason": "Versehen"},
    }
    login(client, "baden")  # another municipality: the case is invisible
    for path, data in list(forms.items())[:5]:
        response = post(client, path, data)
        assert response.status_code == 404, path
        assert "Haile" not in _text(response)
    # A municipality may never reopen: the role answers before the case is looked up.
    assert post(client, f"/cases/{cid}/reopen", forms[f"/cases/{cid}/reopen"]).status_code == 403
    post(client, "/logout")
    login(client, "auditor")  # reads the audit log, never a case
    for path, data in forms.items():
        assert post(client, path, data).status_code == 403, path
    post(client, "/logout")
    login(client, "canton")  # reads every case, works only on its own
    page = _text(client.get(f"/cases/{cid}"))
    assert 'name="programme"' not in page and 'name="milestone"' not in page
    assert f'action="/measures/{measure["id"]}"' not in page
    assert f'action="/cases/{cid}/close"' in page  # the canton may close any case
    assert f'action="/cases/{cid}/reopen"' not in page  # the case is open
    for path in list(forms)[:4]:
        refused = post(client, path, forms[path])
        assert refused.status_code == 403, path
        assert "zuständig ist eine andere Stelle" in _text(refused)
    post(client, "/logout")
    login(client, "aarau")  # only the canton reopens
    assert post(client, f"/cases/{cid}/reopen", {"reason": "x"}).status_code == 403
    # Nothing of all that changed the plan; each refusal is in the audit log.
    assert _api(client, world, f"/cases/{cid}/measures")["items"][0]["status"] == "planned"
    assert _api(client, world, f"/cases/{cid}/milestones")["items"] == []
    assert _api(client, world, f"/cases/{cid}")["status"] == "open"
    with container.db.transaction() as session:
        denied = session.execute(
            select(AuditEntry.actor, AuditEntry.action).where(AuditEntry.outcome == "denied")
        ).all()
    assert ("baden", "measure.create") in denied and ("auditor", "case.close") in denied
    assert ("canton", "milestone.create") in denied and ("aarau", "case.reopen") in denied


def test_forms_without_the_csrf_token_are_refused(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    login(client, "aarau")
    for path, data in (
        (f"/cases/{cid}/measures", MEASURE),
        (f"/cases/{cid}/target-group", {"target_group": "education"}),
        (f"/cases/{cid}/close", {"reason": "other"}),
    ):
        response = client.post(path, data=data)
        assert response.status_code == 400, path
        assert "Das Formular ist abgelaufen" in _text(response)
    wrong = client.post(f"/cases/{cid}/measures", data={**MEASURE, "csrf_token": "falsch"})
    assert wrong.status_code == 400
    assert _api(client, world, f"/cases/{cid}/measures")["items"] == []
    assert _api(client, world, f"/cases/{cid}")["status"] == "open"
    assert _api(client, world, f"/cases/{cid}")["target_group"] is None
    assert csrf(client)  # the session is intact: the next form with its token works
    _redirected_to_case(post(client, f"/cases/{cid}/close", {"reason": "other"}), cid)


def test_a_closed_case_shows_the_plan_read_only_and_refuses_changes(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    measure = _measure_by_api(client, world, cid)
    login(client, "aarau")
    page = _text(client.get(f"/cases/{cid}"))
    assert "Nur der Kanton kann den Fall wieder eröffnen." in page  # the confirmation text
    assert '<option value="moved_out_of_canton">Wegzug aus dem Kanton</option>' in page
    closed = post(
        client, f"/cases/{cid}/close", {"reason": "moved_out_of_canton", "note": "nach Bern"}
    )
    _redirected_to_case(closed, cid)
    body = _text(client.get(f"/cases/{cid}"))
    assert "Der Fall wurde abgeschlossen (Wegzug aus dem Kanton)." in body
    assert "Der Fall ist abgeschlossen: Der Plan kann nur gelesen werden." in body
    assert "Integrationskurs Grundkompetenzen 1 (IKG1)" in body  # still readable
    assert "nach Bern" in body
    for action in (
        f"/cases/{cid}/target-group",
        f"/cases/{cid}/measures",
        f"/measures/{measure['id']}",
        f"/cases/{cid}/milestones",
        f"/cases/{cid}/close",
        f"/cases/{cid}/reopen",
    ):
        assert f'action="{action}"' not in body, action
    refused = post(client, f"/cases/{cid}/measures", MEASURE)
    assert refused.status_code == 409
    assert "Der Fall ist abgeschlossen und kann nicht mehr geändert werden." in _text(refused)
    change = post(client, f"/measures/{measure['id']}", {"status": "aborted", "end": ""})
    assert change.status_code == 409
    again = post(client, f"/cases/{cid}/close", {"reason": "other"})
    assert again.status_code == 409
    assert "Der Fall ist abgeschlossen" in _text(again)
    assert len(_api(client, world, f"/cases/{cid}/measures")["items"]) == 1
    assert _api(client, world, f"/cases/{cid}/measures")["items"][0]["status"] == "planned"


def test_the_canton_closes_and_reopens_and_the_page_shows_both(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    login(client, "canton")
    _redirected_to_case(post(client, f"/cases/{cid}/close", {"reason": "seven_years"}), cid)
    page = _text(client.get(f"/cases/{cid}"))
    assert "7-Jahres-Horizont erreicht" in page and "badge-closed" in page
    assert f'action="/cases/{cid}/reopen"' in page
    assert '<label for="reopen-reason">Grund der Wiedereröffnung</label>' in page
    missing = post(client, f"/cases/{cid}/reopen", {"reason": "  "})
    assert missing.status_code == 422
    assert "Bitte geben Sie an, warum der Fall wieder eröffnet wird" in _text(missing)
    assert 'id="reopen-reason"' in _text(missing) and 'aria-invalid="true"' in _text(missing)
    reopened = post(client, f"/cases/{cid}/reopen", {"reason": "Rückkehr in den Kanton Aargau"})
    _redirected_to_case(reopened, cid)
    body = _text(client.get(f"/cases/{cid}"))
    assert "Der Fall wurde wieder eröffnet" in body and "badge-open" in body
    history = body[body.index('id="closing-heading"') :]
    assert "7-Jahres-Horizont erreicht" in history
    assert "Rückkehr in den Kanton Aargau" in history and history.count("canton") >= 2
    assert f'action="/cases/{cid}/close"' in body
    not_closed = post(client, f"/cases/{cid}/reopen", {"reason": "nochmals"})
    assert not_closed.status_code == 409
    assert "Der Fall ist nicht abgeschlossen" in _text(not_closed)
    post(client, "/logout")
    login(client, "aarau")  # the responsible unit works on the case again
    assert 'name="programme"' in _text(client.get(f"/cases/{cid}"))
    assert _api(client, world, f"/cases/{cid}")["status"] == "open"
    assert [e.actor for e in _audit(container, "case.reopen")] == ["canton"]


def test_closing_with_an_undecided_cost_approval_is_explained(client, world, container):
    case = _aarau_case(client, world, container)
    cid = case["id"]
    requested = client.post(
        f"{API}/cases/{cid}/cost-approvals",
        json={
            "programme": "IKG1",
            "amount_chf": "4800.00",
            "period_from": "2026-08-01",
            "period_to": "2027-07-31",
            "justification": "Kurs gemäss Plan",
        },
        headers=world.auth("aarau"),
    )
    assert requested.status_code == 201, requested.get_json()
    login(client, "aarau")
    refused = post(
        client, f"/cases/{cid}/close", {"reason": "integrated_employment", "note": "Festanstellung"}
    )
    assert refused.status_code == 409
    body = _text(refused)
    assert "Offene Gesuche um Kostengutsprache müssen zuerst entschieden werden." in body
    assert '<option value="integrated_employment" selected>' in body
    assert ">Festanstellung</textarea>" in body
    assert _api(client, world, f"/cases/{cid}")["status"] == "open"
    no_reason = post(client, f"/cases/{cid}/close", {"reason": ""})
    assert no_reason.status_code == 422
    assert "Bitte wählen Sie den Grund des Abschlusses aus der Liste." in _text(no_reason)


def test_the_plan_speaks_french_on_request(client, world, container):
    case = _aarau_case(client, world, container)
    _measure_by_api(client, world, case["id"], status="interrupted")
    login(client, "aarau")
    post(client, "/language", {"lang": "fr"})
    body = _text(client.get(f"/cases/{case['id']}"))
    assert '<html lang="fr">' in body
    assert "Ajouter une mesure" in body and "Jalons" in body
    assert "Massnahme hinzufügen" not in body and "Meilensteine" not in body
    assert "interrompue" in body and "01.08.2026" in body


@pytest.mark.parametrize(
    ("labels", "wording"),
    [
        (TARGET_GROUP_LABELS, TARGET_GROUPS),
        (PROGRAMME_LABELS, PROGRAMMES),
        (MEASURE_STATUS_LABELS, MEASURE_STATUSES),
        (CLOSE_REASON_LABELS, CLOSE_REASONS),
    ],
)
def test_page_labels_are_the_models_german_wording(app, labels, wording):
    with app.test_request_context():
        assert {code: str(label) for code, label in labels.items()} == wording


def test_every_milestone_kind_and_value_has_a_label():
    assert list(MILESTONE_KIND_LABELS) == list(MILESTONE_VALUES)
    assert {kind: tuple(values) for kind, values in MILESTONE_VALUE_LABELS.items()} == (
        MILESTONE_VALUES
    )
