"""One person, one case: duplicate identifiers refused, namesakes warned, cases found by q."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text

from dossier_service.bodies.cases import CaseInput
from dossier_service.errors import Conflict
from dossier_service.folding import fold, name_key
from dossier_service.models import User
from dossier_service.schema import alembic_config
from dossier_service.services import cases, duplicates
from dossier_service.services.accounts import identity_for_user
from tests.factories import API, fresh_person, held_by, new_case, small_closed_case


def register(client, world, **person):
    return client.post(
        f"{API}/cases",
        json={"person": fresh_person(**person), "entry_date": "2025-03-01"},
        headers=world.auth("canton"),
    )


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("Müller", "Mueller"),
        ("MÜLLER", "muller"),
        ("José", "Jose"),
        ("Strauß", "Strauss"),
        ("Çelik", "Celik"),
        ("Al-Hassan", "al hassan"),
    ],
)
def test_fold_meets_accents_umlauts_and_their_spellings(a, b):
    assert fold(a) == fold(b)


def test_name_key_keeps_family_and_given_names_apart():
    assert name_key("Haile", "Semhar") != name_key("Semhar", "Haile")
    assert name_key("Gürcan", "Ayşe") == name_key("Guercan", "Ayse")


def test_same_zemis_number_however_typed_is_refused_with_the_existing_reference(client, world):
    first = new_case(client, world, zemis_number="11223344.5")
    again = register(client, world, zemis_number="1122 3344-5", family_name="Anders")
    assert again.status_code == 409
    error = again.get_json()["error"]
    assert error["code"] == "duplicate_person"
    assert first["reference"] in error["message"]


def test_same_ahv_number_is_refused_even_when_the_case_is_closed(client, world):
    first = small_closed_case(client, world, ahv_number="756.9217.0769.85")
    assert (
        client.get(f"{API}/cases/{first.id}", headers=world.auth("canton")).get_json()["status"]
        == "closed"
    )
    again = register(client, world, ahv_number="7569217076985")
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "duplicate_person"
    assert first.reference in again.get_json()["error"]["message"]


def test_a_person_without_ahv_number_does_not_collide_with_another(client, world):
    assert register(client, world, ahv_number=None).status_code == 201
    assert register(client, world, ahv_number=None).status_code == 201


def test_the_database_refuses_what_a_concurrent_registration_committed_first(
    client, world, monkeypatch
):
    """The check sees nothing (the other transaction had not committed): the index decides."""
    first = new_case(client, world, zemis_number="55667788.9")
    monkeypatch.setattr(duplicates, "ensure_unique_for", lambda *args, **kwargs: None)
    again = register(client, world, zemis_number="55667788.9")
    assert again.status_code == 409
    assert again.get_json()["error"]["code"] == "duplicate_person"
    assert first["reference"] in again.get_json()["error"]["message"]
    listed = client.get(
        f"{API}/cases", query_string={"q": "556677889"}, headers=world.auth("canton")
    )
    assert [c["id"] for c in listed.get_json()["items"]] == [first["id"]]


def test_the_duplicate_of_an_unreadable_case_is_refused_without_naming_it(container, world):
    """A caller who may not read the other case learns that it exists, not which it is."""
    with container.db.transaction() as session:
        canton = session.execute(select(User).where(User.username == "canton")).scalar_one()
        aarau = session.execute(select(User).where(User.username == "aarau")).scalar_one()
        case = cases.create_case(
            session,
            identity_for_user(canton),
            CaseInput.model_validate(
                {"person": fresh_person(zemis_number="99887766.5"), "entry_date": "2025-03-01"}
            ),
        )
        reference = case.reference
        with pytest.raises(Conflict) as raised:
            duplicates.ensure_unique_for(session, identity_for_user(aarau), None, "998877665", None)
    assert raised.value.code == "duplicate_person"
    assert reference not in raised.value.message


def test_same_names_and_birth_date_register_with_a_possible_duplicate_warning(client, world):
    first = new_case(client, world, family_name="Müller", given_names="José", birth_date="1990-05")
    second = register(
        client, world, family_name="Mueller", given_names="Jose", birth_date="1990-05"
    )
    assert second.status_code == 201
    assert second.get_json()["warnings"] == [
        {"code": "possible_duplicate", "case_id": first["id"], "case_reference": first["reference"]}
    ]
    other_birth = register(
        client, world, family_name="Mueller", given_names="Jose", birth_date="1991-05"
    )
    assert other_birth.status_code == 201
    assert other_birth.get_json()["warnings"] == []


def _found(client, world, q, user="canton"):
    response = client.get(f"{API}/cases", query_string={"q": q}, headers=world.auth(user))
    assert response.status_code == 200, response.get_json()
    return {c["id"] for c in response.get_json()["items"]}


def test_q_finds_cases_by_folded_names_identifiers_and_reference(client, world):
    mueller = new_case(
        client,
        world,
        family_name="Müller-Gürcan",
        given_names="Ayşe Zoë",
        zemis_number="24681357.9",
        ahv_number="756.9217.0769.85",
    )
    other = new_case(client, world, family_name="Haile", given_names="Semhar")
    assert _found(client, world, "mueller") == {mueller["id"]}
    assert _found(client, world, "GUERCAN ayse") == {mueller["id"]}
    assert _found(client, world, "zoe") == {mueller["id"]}
    assert _found(client, world, "2468.1357-9") == {mueller["id"]}
    assert _found(client, world, "756.9217.0769.85") == {mueller["id"]}
    assert _found(client, world, "7569217076985") == {mueller["id"]}
    assert _found(client, world, other["reference"]) == {other["id"]}
    assert _found(client, world, other["reference"].lower()) == {other["id"]}
    assert _found(client, world, "semhar haile") == {other["id"]}
    assert _found(client, world, "niemand") == set()


def test_q_finds_only_cases_the_caller_may_read(client, world):
    theirs = held_by(client, world, "aarau", family_name="Öztürk")
    mine = held_by(client, world, "baden", family_name="Oeztuerk")
    assert _found(client, world, "ozturk", user="aarau") == {theirs}
    assert _found(client, world, "ozturk", user="baden") == {mine}
    assert _found(client, world, "ozturk", user="canton") == {theirs, mine}


def test_migration_refuses_existing_duplicates_and_names_the_cases(empty_database_url):
    config = alembic_config(empty_database_url)
    command.upgrade(config, "0007")
    engine = create_engine(empty_database_url)
    now = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO units (code, name, kind, created_at)"
                " VALUES ('ag', 'Kanton', 'canton', :now)"
            ),
            {"now": now},
        )
        conn.execute(
            text(
                "INSERT INTO users (username, unit_id, role, display_name, active, created_at)"
                " SELECT 'k', id, 'caseworker', 'K', true, :now FROM units"
            ),
            {"now": now},
        )
        for n in (1, 2):
            conn.execute(
                text(
                    "INSERT INTO cases (id, reference, status, family_name, given_names,"
                    " birth_date, sex, nationality, zemis_number, zemis_normalized,"
                    " residence_status, entry_date, created_at, created_by_id, updated_at)"
                    " SELECT :id, :ref, 'open', 'Haile', 'Semhar', '1998', 'female', 'ER',"
                    " '1234.5', '12345', 'F', :day, :now, id, :now FROM users"
                ),
                {"id": f"case-{n}", "ref": f"IAS-2025-00000{n}", "day": now.date(), "now": now},
            )
    engine.dispose()
    with pytest.raises(RuntimeError) as raised:
        command.upgrade(config, "head")
    message = str(raised.value)
    assert "IAS-2025-000001, IAS-2025-000002" in message
    assert "12345" not in message  # the number itself is personal data


def test_the_demo_people_are_distinct_persons():
    from dossier_service.demo import PEOPLE
    from dossier_service.identifiers import normalize_ahv, normalize_zemis

    zemis = [normalize_zemis(p["zemis_number"]) for p in PEOPLE]
    ahv = [normalize_ahv(p["ahv_number"]) for p in PEOPLE if p.get("ahv_number")]
    assert len(set(zemis)) == len(zemis)
    assert len(set(ahv)) == len(ahv)


def test_a_correction_cannot_give_a_case_another_cases_number(client, world):
    """Correcting the ZEMIS or AHV number to one another case carries is 409, nothing changes."""
    first = new_case(client, world, zemis_number="11223344.5", ahv_number="756.9217.0769.85")
    second = new_case(client, world)
    canton = world.auth("canton")
    for field, value in (("zemis_number", "11223344.5"), ("ahv_number", "756.9217.0769.85")):
        refused = client.patch(
            f"{API}/cases/{second['id']}/person",
            json={field: value, "reason": "Nachtrag"},
            headers=canton,
        )
        assert refused.status_code == 409, field
        assert refused.get_json()["error"]["code"] == "duplicate_person"
        assert first["reference"] in refused.get_json()["error"]["message"]
    after = client.get(f"{API}/cases/{second['id']}", headers=canton).get_json()
    assert after["person"]["zemis_number"] == second["person"]["zemis_number"]
    history = client.get(f"{API}/cases/{second['id']}/person/history", headers=canton)
    assert history.get_json()["items"] == []


def test_q_finds_a_case_by_its_corrected_name(client, world):
    """A corrected family name is what q finds; the misspelt one no longer finds the case."""
    case = new_case(client, world, family_name="Haidary")
    canton = world.auth("canton")
    fixed = client.patch(
        f"{API}/cases/{case['id']}/person",
        json={"family_name": "Haidari", "reason": "Schreibweise laut Pass"},
        headers=canton,
    )
    assert fixed.status_code == 200, fixed.get_json()
    found = client.get(f"{API}/cases?q=haidari", headers=canton).get_json()
    assert [c["id"] for c in found["items"]] == [case["id"]]
    assert client.get(f"{API}/cases?q=haidary", headers=canton).get_json()["items"] == []
