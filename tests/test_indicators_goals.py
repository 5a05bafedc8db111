"""IAS goals by regulation cohort: only F/B persons, small children in goal 2 not goal 1,
goal 2 at school entry, goal 5 after 7 years; and the milestones for goals 2 and 5."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from dossier_service.dates import LOCAL_ZONE
from dossier_service.services.indicators import school_entry, school_entry_bounds
from tests.factories import fresh_person, login, post, set_passwords

API = "/api/v1"
TODAY = dt.datetime.now(LOCAL_ZONE).date()
Y = TODAY.year


def _d(years_ago: int, month: int, day: int) -> dt.date:
    return dt.date(Y - years_ago, month, day)


def _case(
    client: Any,
    world: Any,
    *,
    birth: dt.date,
    entry: dt.date,
    status: str,
    regulation: dt.date | None = None,
) -> str:
    person = fresh_person(
        birth_date=birth.isoformat(),
        residence_status=status,
        regulation_date=regulation.isoformat() if regulation else None,
    )
    response = client.post(
        f"{API}/cases",
        json={"person": person, "entry_date": entry.isoformat()},
        headers=world.auth("canton"),
    )
    assert response.status_code == 201, response.get_json()
    return str(response.get_json()["id"])


def _milestone(client: Any, world: Any, cid: str, kind: str, value: str, day: dt.date) -> None:
    response = client.post(
        f"{API}/cases/{cid}/milestones",
        json={"kind": kind, "value": value, "date": day.isoformat()},
        headers=world.auth("canton"),
    )
    assert response.status_code == 201, response.get_json()


def _report(client: Any, world: Any) -> dict[str, Any]:
    response = client.get(f"{API}/reports/ias?as_of={TODAY}", headers=world.auth("canton"))
    assert response.status_code == 200, response.get_json()
    body: dict[str, Any] = response.get_json()
    return body


def _goal(body: dict[str, Any], indicator_id: str) -> dict[str, Any]:
    [found] = [i for i in body["indicators"] if i["id"] == indicator_id]
    return found


def _cohorts(goal: dict[str, Any]) -> dict[int, tuple[int, int, int, int]]:
    """year → (numerator, denominator, pending, pending_reached)."""
    return {
        c["year"]: (c["numerator"], c["denominator"], c["pending"], c["pending_reached"])
        for c in goal["cohorts"]
    }


@pytest.fixture
def people(client, world) -> dict[str, str]:
    """Persons whose membership in each goal is worked out in the comments."""
    ids = {
        # Status N, adult: in no goal until the PATCH below gives F (regulated 4 years ago,
        # entered 6 years ago); A1 four years after entry = two years after regulation.
        "n_adult": _case(client, world, birth=dt.date(1985, 4, 4), entry=_d(6, 1, 15), status="N"),
        # Status N child who would be a goal-2 child (and reached it) if N counted.
        "n_child": _case(client, world, birth=_d(8, 1, 1), entry=_d(7, 2, 1), status="N"),
        # Adult F regulated 8 years ago: goal 1 (no A1) and goal 5 (reached) are due.
        "old_adult": _case(
            client,
            world,
            birth=dt.date(1980, 2, 2),
            entry=_d(9, 1, 1),
            status="F",
            regulation=_d(8, 3, 1),
        ),
        # Adult B regulated 2 years ago: goals 1 and 5 pending; goal 5 already reached.
        "young_adult": _case(
            client,
            world,
            birth=dt.date(1990, 3, 3),
            entry=_d(3, 1, 1),
            status="B",
            regulation=_d(2, 3, 1),
        ),
        # Child aged 2 at regulation, turns 4 in March: school entry 1 August Y-3; can
        # communicate: goal 2 numerator; a small child, so out of goal 1.
        "child_reached": _case(
            client,
            world,
            birth=_d(7, 3, 10),
            entry=_d(6, 1, 10),
            status="F",
            regulation=_d(5, 6, 1),
        ),
        # Turns 4 on 1 October (after the 31 July cut-off): school entry 1 August Y-2;
        # assessed "not yet": goal 2 denominator only.
        "child_not_reached": _case(
            client,
            world,
            birth=_d(7, 10, 1),
            entry=_d(6, 1, 10),
            status="F",
            regulation=_d(5, 6, 1),
        ),
        # Turns 4 after the cut-off next year: school entry in two years: goal 2 pending.
        "child_too_young": _case(
            client,
            world,
            birth=_d(3, 9, 1),
            entry=_d(2, 1, 5),
            status="F",
            regulation=_d(1, 2, 1),
        ),
        # Aged 7 at regulation (already at school): goal 1 (due), not goal 2.
        "school_child": _case(
            client,
            world,
            birth=_d(12, 5, 5),
            entry=_d(6, 1, 10),
            status="F",
            regulation=_d(5, 6, 1),
        ),
        # F without a known regulation date: its cohort counts from entry (last year).
        "no_date": _case(client, world, birth=dt.date(1975, 5, 5), entry=_d(1, 1, 2), status="F"),
    }
    _milestone(client, world, ids["n_adult"], "language_level", "A1", _d(2, 1, 15))
    _milestone(client, world, ids["n_child"], "school_language", "achieved", _d(4, 9, 1))
    _milestone(client, world, ids["old_adult"], "social_life", "achieved", _d(3, 5, 1))
    _milestone(client, world, ids["young_adult"], "social_life", "achieved", _d(1, 6, 1))
    _milestone(client, world, ids["child_reached"], "school_language", "achieved", _d(3, 9, 15))
    _milestone(
        client, world, ids["child_not_reached"], "school_language", "not_achieved", _d(2, 9, 1)
    )
    return ids


def test_only_f_and_b_persons_are_counted_and_the_fallback_is_reported(client, world, people):
    body = _report(client, world)
    assert body["population"] == {
        "regulated": 7,
        "excluded_status_n": 2,
        "cohort_from_entry_date": 1,
    }
    school = _goal(body, "school_language_at_school_entry")
    # The N child reached the goal but is not counted: 1 of 2 F children.
    assert (school["numerator"], school["denominator"], school["share"]) == (1, 2, 0.5)
    assert school["target_share"] == 0.8


def test_small_children_leave_goal_1_and_school_children_stay(client, world, people):
    a1 = _goal(_report(client, world), "language_a1_within_3_years")
    # Due: old_adult and school_child (no A1); small children: the three goal-2 children;
    # pending: young_adult (regulated 2 years ago) and no_date (entered last year).
    assert (a1["numerator"], a1["denominator"]) == (0, 2)
    assert a1["excluded_small_child"] == 3
    assert (a1["pending"], a1["pending_reached"]) == (2, 0)
    assert _cohorts(a1) == {
        Y - 8: (0, 1, 0, 0),
        Y - 5: (0, 1, 0, 0),
        Y - 2: (0, 0, 1, 0),
        Y - 1: (0, 0, 1, 0),
    }


def test_children_count_in_goal_2_only_once_at_school(client, world, people):
    school = _goal(_report(client, world), "school_language_at_school_entry")
    # child_too_young has not started school: pending, not in the denominator; the school
    # child was at school at regulation and is not in goal 2 at all.
    assert (school["pending"], school["pending_reached"]) == (1, 0)
    assert _cohorts(school) == {Y - 5: (1, 2, 0, 0), Y - 1: (0, 0, 1, 0)}


def test_cohort_counts_from_the_regulation_date_not_the_entry(client, world, people):
    before = _report(client, world)
    assert before["population"]["excluded_status_n"] == 2
    response = client.patch(
        f"{API}/cases/{people['n_adult']}/person",
        json={
            "residence_status": "F",
            "regulation_date": _d(4, 1, 15).isoformat(),
            "reason": "Vorläufige Aufnahme verfügt",
        },
        headers=world.auth("canton"),
    )
    assert response.status_code == 200, response.get_json()
    after = _report(client, world)
    assert after["population"]["excluded_status_n"] == 1
    a1 = _goal(after, "language_a1_within_3_years")
    # A1 came 4 years after entry but 2 years after regulation: reached, in cohort Y-4
    # (counted from entry the window would have closed a year before the A1 and the
    # cohort would be Y-6).
    assert (a1["numerator"], a1["denominator"]) == (1, 3)
    assert _cohorts(a1)[Y - 4] == (1, 1, 0, 0)
    assert Y - 6 not in _cohorts(a1)


def test_goal_5_after_seven_years_with_progress_of_younger_cohorts(client, world, people):
    social = _goal(_report(client, world), "social_life_7_years")
    assert social["goal"] == "IAS-Ziel 5" and social["years_after_entry"] == 7
    # Due: old_adult only (reached); every other F/B person is pending, young_adult has
    # already reached it.
    assert (social["numerator"], social["denominator"], social["share"]) == (1, 1, 1.0)
    assert (social["pending"], social["pending_reached"]) == (6, 1)
    assert _cohorts(social)[Y - 8] == (1, 1, 0, 0)
    assert _cohorts(social)[Y - 2] == (0, 0, 1, 1)


def test_csv_and_german_page_show_goals_2_and_5_per_cohort(client, world, container, people):
    csv = client.get(
        f"{API}/reports/ias?as_of={TODAY}&format=csv", headers=world.auth("canton")
    ).get_data(as_text=True)
    assert f"Kohorte {Y - 5};school_language_at_school_entry;" in csv
    assert "Grundgesamtheit;excluded_status_n;Personen mit Status N (nicht gezählt);2" in csv
    set_passwords(container, "canton")
    login(client, "canton")
    page = client.get(f"/reports/ias?as_of={TODAY}").get_data(as_text=True)
    assert "Kinder verständigen sich beim Schuleintritt in der Ortssprache" in page
    assert "IAS-Ziel 2" in page and "IAS-Ziel 5" in page
    assert "Kohorten nach Jahr der Regelung" in page
    assert "7 Jahre nach Regelung vertraut mit dem Leben in der Schweiz" in page
    assert "Gezählt werden nur Personen mit Status F oder B (7); 2 Personen mit Status N" in page
    assert f'<tr><th scope="row">{Y - 5}</th><td>1</td><td>2</td><td>50' in page


def test_goal_milestones_are_recorded_via_api_and_web(client, world, container):
    set_passwords(container, "canton")
    cid = _case(
        client, world, birth=_d(6, 1, 1), entry=_d(5, 1, 1), status="F", regulation=_d(4, 1, 1)
    )
    _milestone(client, world, cid, "social_life", "not_achieved", _d(1, 1, 1))
    wrong = client.post(
        f"{API}/cases/{cid}/milestones",
        json={"kind": "school_language", "value": "A1", "date": _d(1, 1, 1).isoformat()},
        headers=world.auth("canton"),
    )
    assert wrong.status_code == 422
    login(client, "canton")
    page = client.get(f"/cases/{cid}").get_data(as_text=True)
    assert '<optgroup label="Verständigung in der Ortssprache beim Schuleintritt">' in page
    done = post(
        client,
        f"/cases/{cid}/milestones",
        {"milestone": "school_language:achieved", "date": _d(1, 9, 1).strftime("%d.%m.%Y")},
    )
    assert done.status_code == 303
    page = client.get(f"/cases/{cid}").get_data(as_text=True)
    assert "kann sich in der Ortssprache verständigen" in page
    assert "Vertraut mit dem Leben in der Schweiz, Kontakte zur Bevölkerung" in page
    items = client.get(f"{API}/cases/{cid}/milestones", headers=world.auth("canton")).get_json()
    assert {(m["kind"], m["value"]) for m in items["items"]} == {
        ("social_life", "not_achieved"),
        ("school_language", "achieved"),
    }


@pytest.mark.parametrize(
    ("birth", "entry"),
    [
        (dt.date(2020, 7, 31), dt.date(2024, 8, 1)),  # 4 on the cut-off day
        (dt.date(2020, 8, 1), dt.date(2025, 8, 1)),  # a day later: a year later
        (dt.date(2020, 1, 1), dt.date(2024, 8, 1)),
    ],
)
def test_school_entry_by_the_31_july_cut_off(birth, entry):
    assert school_entry(birth) == entry


def test_school_entry_of_partial_birth_dates():
    assert school_entry_bounds("2020") == (dt.date(2024, 8, 1), dt.date(2025, 8, 1))
    assert school_entry_bounds("2020-03") == (dt.date(2024, 8, 1), dt.date(2024, 8, 1))
