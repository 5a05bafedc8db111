"""The journal on the German case page: writing, correcting, refusals, and who sees the form."""

from __future__ import annotations

import datetime as dt

from markupsafe import escape

from dossier_service.dates import local_today
from tests.factories import API, held_by, login, post, set_passwords


def _text(response):
    return response.get_data(as_text=True)


def _entries(client, world, cid):
    response = client.get(f"{API}/cases/{cid}/journal", headers=world.auth("canton"))
    return response.get_json()["items"]


def test_the_responsible_unit_writes_and_corrects_an_entry_on_the_case_page(
    client, world, container
):
    set_passwords(container, "aarau")
    cid = held_by(client, world)
    login(client, "aarau")
    page = _text(client.get(f"/cases/{cid}"))
    assert "Journal" in page and "Noch keine Einträge." in page and "Eintrag erfassen" in page
    done = post(
        client,
        f"/cases/{cid}/journal",
        {
            "kind": "conversation",
            "occurred_on": "30.11.2026",
            "participants": "Semhar Haile, Dolmetscherin",
            "text": "Standortgespräch: Kurs läuft gut.\nNächstes Gespräch im Januar.",
        },
    )
    assert done.status_code == 303 and done.headers["Location"].endswith(f"/cases/{cid}")
    [entry] = _entries(client, world, cid)
    assert (entry["kind"], entry["occurred_on"], entry["participants"]) == (
        "conversation",
        "2026-11-30",
        ["Semhar Haile", "Dolmetscherin"],
    )
    page = _text(client.get(f"/cases/{cid}"))
    assert str(escape("«Gespräch» wurde ins Journal eingetragen.")) in page
    assert "30.11.2026" in page and "Semhar Haile, Dolmetscherin" in page
    assert "Standortgespräch: Kurs läuft gut.<br>" in page
    fixed = post(
        client,
        f"/cases/{cid}/journal",
        {"kind": "conversation", "text": "Nächstes Gespräch im Februar.", "corrects": entry["id"]},
    )
    assert fixed.status_code == 303
    page = _text(client.get(f"/cases/{cid}"))
    assert "Die Korrektur wurde ins Journal eingetragen." in page
    assert "Dieser Eintrag wurde korrigiert." in page and "Standortgespräch" in page
    assert {e["corrected_by"] for e in _entries(client, world, cid)} > {None}


def test_a_refused_entry_stays_on_the_page_with_the_reason_and_what_was_typed(
    client, world, container
):
    set_passwords(container, "aarau")
    cid = held_by(client, world)
    login(client, "aarau")
    tomorrow = (local_today() + dt.timedelta(days=1)).isoformat()
    refused = post(
        client,
        f"/cases/{cid}/journal",
        {"kind": "phone", "occurred_on": tomorrow, "text": "Anruf der Schule."},
    )
    assert refused.status_code == 422
    page = _text(refused)
    assert "frühestens 01.01.1990, spätestens heute" in page
    assert "Anruf der Schule." in page and 'aria-invalid="true"' in page
    assert _entries(client, world, cid) == []


def test_readers_who_may_not_work_on_the_case_see_the_journal_without_the_form(
    client, world, container
):
    set_passwords(container, "aarau", "canton", "baden")
    cid = held_by(client, world)
    login(client, "aarau")
    post(client, f"/cases/{cid}/journal", {"kind": "note", "text": "Notiz der Gemeinde."})
    post(client, "/logout")
    login(client, "canton")
    page = _text(client.get(f"/cases/{cid}"))
    assert "Notiz der Gemeinde." in page and "Eintrag erfassen" not in page
    refused = post(client, f"/cases/{cid}/journal", {"kind": "note", "text": "Vom Kanton."})
    assert refused.status_code == 403
    post(client, "/logout")
    login(client, "baden")
    assert client.get(f"/cases/{cid}").status_code == 404
    assert post(client, f"/cases/{cid}/journal", {"kind": "note", "text": "x"}).status_code == 404
    assert [e["text"] for e in _entries(client, world, cid)] == ["Notiz der Gemeinde."]
