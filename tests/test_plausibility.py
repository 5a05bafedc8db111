"""Target groups and programmes the person's age contradicts are refused (422 implausible_age).

Each rule is tried on both sides of each bound: the last day it still holds and the first
day it no longer does, by the API; the web forms say the same in German.
"""

from __future__ import annotations

import datetime as dt

import pytest

from dossier_service.dates import local_today
from dossier_service.services.plausibility import (
    PROGRAMME_AGES,
    TARGET_GROUP_AGES,
    AgeRange,
    age_range,
)
from tests.factories import API, login, new_case, post, set_passwords


def _years_before(day: dt.date, years: int) -> dt.date:
    """The same calendar day ``years`` earlier (28 February for a 29 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _born_aged(age: int, *, birthday_tomorrow: bool = False) -> str:
    """A birth date making the person exactly ``age`` today: on the birthday itself, or on
    the last day before the next one (the birthday is tomorrow)."""
    today = local_today()
    if birthday_tomorrow:
        return _years_before(today + dt.timedelta(days=1), age + 1).isoformat()
    return _years_before(today, age).isoformat()


def _set_group(client, world, case_id, group):
    return client.patch(
        f"{API}/cases/{case_id}", json={"target_group": group}, headers=world.auth("canton")
    )


def _add_measure(client, world, case_id, programme, start):
    return client.post(
        f"{API}/cases/{case_id}/measures",
        json={"programme": programme, "start": start},
        headers=world.auth("canton"),
    )


def _refused(response, field, *words):
    assert response.status_code == 422, response.get_json()
    error = response.get_json()["error"]
    assert error["code"] == "implausible_age" and error["field"] == field
    for word in words:
        assert word in error["message"], error["message"]


def test_the_rules_are_the_documented_ranges():
    """The ranges of DOMAIN.md: Ausbildungsfähige 16–25, BAI 16–21, INVOL and the courses
    and labour-market measures from 16, early language support for small children."""
    assert TARGET_GROUP_AGES == {
        "education": AgeRange(16, 25),
        "labour_market": AgeRange(minimum=16),
    }
    assert PROGRAMME_AGES["BAI"] == AgeRange(16, 21)
    assert PROGRAMME_AGES["INVOL"] == AgeRange(minimum=16)
    assert PROGRAMME_AGES["early_language_support"] == AgeRange(maximum=6)
    assert "language_course" not in PROGRAMME_AGES and "social_integration" not in (
        TARGET_GROUP_AGES
    )


@pytest.mark.parametrize(
    ("birth_date", "on", "expected"),
    [
        ("2010-06-15", dt.date(2026, 6, 14), (15, 15)),
        ("2010-06-15", dt.date(2026, 6, 15), (16, 16)),
        ("2010-06", dt.date(2026, 6, 1), (15, 16)),
        ("2010-06", dt.date(2026, 7, 1), (16, 16)),
        ("2010", dt.date(2026, 6, 1), (15, 16)),
        ("2010", dt.date(2025, 12, 31), (15, 15)),
        ("2010", dt.date(2026, 1, 1), (15, 16)),
        ("2010", dt.date(2026, 12, 31), (16, 16)),
    ],
)
def test_an_incomplete_birth_date_gives_an_age_range(birth_date, on, expected):
    assert age_range(birth_date, on) == expected


@pytest.mark.parametrize(
    ("age", "tomorrow", "accepted"),
    [
        (15, True, False),  # the day before the 16th birthday
        (16, False, True),  # the 16th birthday
        (25, True, True),  # the day before the 26th birthday
        (26, False, False),  # the 26th birthday
        (7, False, False),  # the child of the issue
    ],
)
def test_the_education_group_takes_16_to_25(client, world, age, tomorrow, accepted):
    case = new_case(client, world, birth_date=_born_aged(age, birthday_tomorrow=tomorrow))
    response = _set_group(client, world, case["id"], "education")
    if accepted:
        assert response.status_code == 200, response.get_json()
    else:
        _refused(response, "target_group", f"is {age} years old", "16 to 25", "'education'")
        history = client.get(
            f"{API}/cases/{case['id']}/target-groups", headers=world.auth("canton")
        )
        assert history.get_json()["items"] == []  # nothing stored


@pytest.mark.parametrize(("age", "tomorrow", "accepted"), [(15, True, False), (16, False, True)])
def test_the_labour_market_group_starts_at_16(client, world, age, tomorrow, accepted):
    case = new_case(client, world, birth_date=_born_aged(age, birthday_tomorrow=tomorrow))
    response = _set_group(client, world, case["id"], "labour_market")
    if accepted:
        assert response.status_code == 200, response.get_json()
    else:
        _refused(response, "target_group", "is 15 years old", "at least 16")


def test_social_integration_has_no_age_rule(client, world):
    case = new_case(client, world, birth_date=_born_aged(7))
    assert _set_group(client, world, case["id"], "social_integration").status_code == 200


@pytest.mark.parametrize(
    ("programme", "birth_date", "start", "accepted", "words"),
    [
        ("INVOL", "2010-06-15", "2026-06-14", False, ("is 15 years old", "at least 16")),
        ("INVOL", "2010-06-15", "2026-06-15", True, ()),
        ("INVOL", "2019-05", "2026-06-15", False, ("is 7 years old", "'INVOL'")),
        ("IKG1", "2010-06-15", "2026-06-14", False, ("at least 16",)),
        ("potential_assessment", "2010-06-15", "2026-06-15", True, ()),
        ("BAI", "2010-06-15", "2026-06-14", False, ("16 to 21",)),
        ("BAI", "2000-06-15", "2022-06-14", True, ()),
        ("BAI", "2000-06-15", "2022-06-15", False, ("is 22 years old", "16 to 21")),
        ("AMIplus", "2010-06-15", "2026-06-14", False, ("at least 16",)),
        ("employment_programme", "2010-06-15", "2026-06-15", True, ()),
        ("early_language_support", "2019-06-15", "2026-06-14", True, ()),
        ("early_language_support", "2019-06-15", "2026-06-15", False, ("at most 6",)),
        # An incomplete birth date is refused only if no day of it makes the age possible.
        ("INVOL", "2010", "2026-06-01", True, ()),
        ("INVOL", "2010", "2025-12-31", False, ("is 15 years old",)),
        ("INVOL", "2010-06", "2026-06-01", True, ()),
        ("INVOL", "2010-06", "2026-05-31", False, ("is 15 years old",)),
        ("language_course", "2024-01-01", "2026-06-15", True, ()),
    ],
)
def test_programmes_follow_the_age_on_their_start(
    client, world, programme, birth_date, start, accepted, words
):
    case = new_case(client, world, birth_date=birth_date)
    response = _add_measure(client, world, case["id"], programme, start)
    if accepted:
        assert response.status_code == 201, response.get_json()
    else:
        _refused(response, "programme", f"'{programme}'", f"on {start}", *words)
        listed = client.get(f"{API}/cases/{case['id']}/measures", headers=world.auth("canton"))
        assert listed.get_json()["items"] == []


def test_moving_a_measure_start_is_checked_too(client, world):
    case = new_case(client, world, birth_date="2010-06-15")
    created = _add_measure(client, world, case["id"], "INVOL", "2026-06-15")
    assert created.status_code == 201
    moved = client.patch(
        f"{API}/measures/{created.get_json()['id']}",
        json={"start": "2026-06-14"},
        headers=world.auth("canton"),
    )
    _refused(moved, "programme", "is 15 years old")
    note_only = client.patch(
        f"{API}/measures/{created.get_json()['id']}",
        json={"note": "Anmeldung bestätigt"},
        headers=world.auth("canton"),
    )
    assert note_only.status_code == 200


def test_the_web_forms_explain_the_refusal_in_german(client, world, container):
    set_passwords(container, "canton")
    case = new_case(client, world, birth_date="2019-05")
    cid = case["id"]
    login(client, "canton")
    group = post(client, f"/cases/{cid}/target-group", {"target_group": "education"})
    assert group.status_code == 422
    body = group.get_data(as_text=True)
    today = local_today()
    age = today.year - 2019 - (today.month < 5)
    assert f"Die Person ist am {today:%d.%m.%Y} {age} Jahre alt (geboren 05.2019)." in body
    assert "Die Zielgruppe «Ausbildungsfähige (16–25)» setzt ein Alter von 16 bis 25 Jahren" in body
    measure = post(
        client,
        f"/cases/{cid}/measures",
        {"programme": "INVOL", "provider": "", "start": "01.08.2026", "end": "", "status": ""},
    )
    assert measure.status_code == 422
    body = measure.get_data(as_text=True)
    assert "Die Person ist am 01.08.2026 7 Jahre alt (geboren 05.2019)." in body
    assert (
        "Das Programm «Integrationsvorlehre (INVOL)» setzt ein Alter von mindestens 16 Jahren "
        "voraus."
    ) in body
    assert '<option value="INVOL" selected>' in body  # what was typed is kept
