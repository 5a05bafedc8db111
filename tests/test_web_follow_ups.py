"""Wiedervorlagen on the German case page: set, refused with the reason, marked done."""

from __future__ import annotations

import datetime as dt

from dossier_service.dates import local_today
from tests.factories import API, held_by, login, post, set_passwords

TODAY = local_today()


def _text(response):
    return response.get_data(as_text=True)


def _items(client, world, cid):
    response = client.get(f"{API}/cases/{cid}/follow-ups", headers=world.auth("canton"))
    return response.get_json()["items"]


def test_a_follow_up_is_set_and_marked_done_on_the_case_page(client, world, container):
    set_passwords(container, "aarau")
    cid = held_by(client, world)
    login(client, "aarau")
    page = _text(client.get(f"/cases/{cid}"))
    assert "Wiedervorlagen" in page and "Keine Wiedervorlagen." in page
    due = TODAY + dt.timedelta(days=10)
    done = post(
        client,
        f"/cases/{cid}/follow-ups",
        {"due_date": f"{due:%d.%m.%Y}", "note": "Kursbestätigung einholen", "measure": ""},
    )
    assert done.status_code == 303, _text(done)[:500]
    [item] = _items(client, world, cid)
    assert (item["due_date"], item["note"], item["unit"]) == (
        due.isoformat(),
        "Kursbestätigung einholen",
        "aarau",
    )
    page = _text(client.get(f"/cases/{cid}"))
    assert f"Die Wiedervorlage auf den {due:%d.%m.%Y} wurde gesetzt." in page
    assert "Kursbestätigung einholen" in page and "(1 offen)" in page
    finished = post(client, f"/follow-ups/{item['id']}/done", {"note": "Bestätigung liegt vor."})
    assert finished.status_code == 303
    page = _text(client.get(f"/cases/{cid}"))
    assert "Die Wiedervorlage ist erledigt." in page and "(0 offen)" in page
    assert "Bestätigung liegt vor." in page
    assert _items(client, world, cid)[0]["done_by"] == "aarau"


def test_a_due_day_in_the_past_is_refused_beside_the_form(client, world, container):
    set_passwords(container, "aarau")
    cid = held_by(client, world)
    login(client, "aarau")
    refused = post(
        client,
        f"/cases/{cid}/follow-ups",
        {"due_date": (TODAY - dt.timedelta(days=1)).isoformat(), "note": "Zu spät"},
    )
    assert refused.status_code == 422
    page = _text(refused)
    assert "frühestens heute, höchstens acht Jahre voraus" in page
    assert 'value="Zu spät"' in page
    assert _items(client, world, cid) == []


def test_readers_who_do_not_work_on_the_case_get_no_forms(client, world, container):
    set_passwords(container, "aarau", "canton")
    cid = held_by(client, world)
    login(client, "aarau")
    post(client, f"/cases/{cid}/follow-ups", {"due_date": TODAY.isoformat(), "note": "Anrufen"})
    [item] = _items(client, world, cid)
    post(client, "/logout")
    login(client, "canton")
    page = _text(client.get(f"/cases/{cid}"))
    assert "Anrufen" in page and "Wiedervorlage setzen" not in page
    assert f"/follow-ups/{item['id']}/done" not in page
    assert post(client, f"/follow-ups/{item['id']}/done", {"note": ""}).status_code == 403
    assert _items(client, world, cid)[0]["done"] is False
