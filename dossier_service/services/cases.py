"""Registering, reading and listing cases, and their JSON shape."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import ColumnElement, and_, false, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dossier_service import identifiers
from dossier_service.bodies.cases import CaseInput
from dossier_service.dates import local_today, utcnow
from dossier_service.errors import Unprocessable
from dossier_service.folding import fold, name_key
from dossier_service.identity import Identity
from dossier_service.models import (
    Case,
    ReferenceCounter,
    Responsibility,
    Unit,
)
from dossier_service.policy import Action, load_case, readable_cases, require
from dossier_service.services import audit, duplicates
from dossier_service.services.person import check_regulation_date
from dossier_service.services.snapshot import UnitRef, case_snapshot

#: Continuous case management ends at the latest seven years after entry (IAS).
HORIZON_YEARS = 7
#: Orders of the case list (``list_cases(sort=...)``).
SORT_KEYS: dict[str, tuple[Any, ...]] = {
    "activity": (Case.updated_at,),
    "reference": (Case.reference,),
    "name": (Case.family_name, Case.given_names),
    "entry": (Case.entry_date,),
    "status": (Case.status,),
}


def _next_reference(session: Session, year: int) -> str:
    """Allocate IAS-<year>-<n> atomically (an UPDATE … RETURNING on one counter row)."""
    for _ in range(3):
        number = session.execute(
            update(ReferenceCounter)
            .where(ReferenceCounter.year == year)
            .values(last=ReferenceCounter.last + 1)
            .returning(ReferenceCounter.last)
        ).scalar_one_or_none()
        if number is not None:
            return f"IAS-{year}-{number:06d}"
        try:
            with session.begin_nested():
                session.execute(insert(ReferenceCounter).values(year=year, last=0))
        except IntegrityError:
            pass  # another transaction created the row first; retry the update
    raise RuntimeError("could not allocate a case reference")


def create_case(session: Session, identity: Identity, body: CaseInput) -> Case:
    """Register a new case; the caller's canton unit becomes responsible."""
    require(identity, Action.CASE_CREATE)
    person = body.person
    entry_date = body.entry_date
    if entry_date > local_today():
        raise Unprocessable("'entry_date' lies in the future.", field="entry_date")
    if entry_date.year < 1990:
        raise Unprocessable("'entry_date' is implausibly early.", field="entry_date")
    check_regulation_date(
        person.residence_status, person.regulation_date, entry_date, required=False
    )
    zemis_normalized = identifiers.normalize_zemis(person.zemis_number)
    duplicates.ensure_unique_for(session, identity, None, zemis_normalized, person.ahv_number)
    now = utcnow()
    case = Case(
        id=str(uuid.uuid4()),
        reference=_next_reference(session, now.year),
        status="open",
        entry_date=entry_date,
        created_at=now,
        updated_at=now,
        created_by_id=identity.user_id,
        family_name=person.family_name,
        given_names=person.given_names,
        nationality=person.nationality,
        sex=person.sex,
        residence_status=person.residence_status,
        birth_date=person.birth_date,
        zemis_number=person.zemis_number,
        # Validated by the model, so the search key can be formed.
        zemis_normalized=zemis_normalized,
        ahv_number=person.ahv_number,
        regulation_date=person.regulation_date,
        name_key=name_key(person.family_name, person.given_names),
    )
    # A concurrent registration of the same person that commits first makes this flush
    # fail on the unique indexes: answered as the same 409.
    with duplicates.unique_person(session, identity, None, zemis_normalized, person.ahv_number):
        session.add(case)
        session.flush()
    session.add(
        Responsibility(
            case_id=case.id,
            unit_id=identity.unit_id,
            started_at=now,
            # A new case has no index entries yet: every entry will carry this unit.
            index_synced_at=now,
            reason="Registrierung des Falls",
            created_by_id=identity.user_id,
        )
    )
    session.flush()
    audit.record(session, identity, "case.create", case_id=case.id)
    return case


def text_condition(text: str) -> ColumnElement[bool]:
    """SQL condition on Case: the reference, ZEMIS or AHV number, or names match ``text``.

    Names match folded (accents, umlauts and their e-spellings ignored), every word of the
    text somewhere in the family or given names; identifiers match however they are typed.
    """
    conditions: list[ColumnElement[bool]] = []
    cleaned = text.lower().replace("\\", "").replace("%", "").replace("_", "")
    if cleaned.strip():
        conditions.append(func.lower(Case.reference).like(f"%{cleaned.strip()}%"))
    words = fold(text).split()
    if words:
        # fold() leaves only letters, digits and spaces: nothing LIKE would read as a wildcard.
        conditions.append(and_(*(Case.name_key.like(f"%{word}%") for word in words)))
    try:
        conditions.append(Case.zemis_normalized == identifiers.normalize_zemis(text))
    except ValueError:
        pass  # not shaped like a ZEMIS number
    try:
        conditions.append(Case.ahv_number == identifiers.normalize_ahv(text))
    except ValueError:
        pass  # not a valid AHV number
    return or_(*conditions) if conditions else false()


def get_case(session: Session, identity: Identity, case_id: str) -> Case:
    """Read one case (404 if the caller may not see it); audited as case.read."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    audit.record(session, identity, "case.read", case_id=case.id)
    return case


def list_cases(
    session: Session,
    identity: Identity,
    *,
    page: int = 1,
    per_page: int = 50,
    status: str | None = None,
    unit_code: str | None = None,
    sort: str = "-activity",
    text: str | None = None,
) -> tuple[list[Case], int]:
    """The page of cases the caller may read and the total.

    ``sort`` is one of SORT_KEYS, "-" first for descending (default: newest activity
    first); ``text`` keeps the cases it finds (``text_condition``).
    """
    require(identity, Action.CASE_READ)
    descending = sort.startswith("-")
    sort_columns = SORT_KEYS.get(sort.lstrip("-"))
    if sort_columns is None:
        raise Unprocessable(
            "'sort' must be one of: " + ", ".join(SORT_KEYS) + " (optionally with '-').",
            field="sort",
        )
    query = select(Case).where(readable_cases(identity))
    if text:
        query = query.where(text_condition(text))
    if status:
        query = query.where(Case.status == status)
    if unit_code:
        query = query.where(
            Case.id.in_(
                select(Responsibility.case_id)
                .join(Unit, Unit.id == Responsibility.unit_id)
                .where(Unit.code == unit_code, Responsibility.ended_at.is_(None))
            )
        )
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    cases = list(
        session.execute(
            query.order_by(*(c.desc() if descending else c.asc() for c in sort_columns), Case.id)
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).scalars()
    )
    audit.record(
        session,
        identity,
        "case.list",
        detail={"page": page, "returned": len(cases), "total": total},
    )
    return cases, total


def responsible_unit(session: Session, case_id: str) -> Unit:
    """The unit responsible for the case now."""
    return session.execute(
        select(Unit)
        .join(Responsibility, Responsibility.unit_id == Unit.id)
        .where(Responsibility.case_id == case_id, Responsibility.ended_at.is_(None))
    ).scalar_one()


def responsible_units(session: Session, case_ids: list[str]) -> dict[str, Unit]:
    """The unit responsible now for each of these cases (the caller has listed them)."""
    if not case_ids:
        return {}
    rows = session.execute(
        select(Responsibility.case_id, Unit)
        .join(Unit, Unit.id == Responsibility.unit_id)
        .where(Responsibility.case_id.in_(case_ids), Responsibility.ended_at.is_(None))
    ).all()
    return {case_id: unit for case_id, unit in rows}


def units_of_kinds(session: Session, kinds: tuple[str, ...]) -> list[Unit]:
    """Units of the given kinds by kind and name (the choices of filters and dialogs)."""
    return list(
        session.execute(
            select(Unit).where(Unit.kind.in_(kinds)).order_by(Unit.kind, Unit.name)
        ).scalars()
    )


def unit_json(unit: Unit | UnitRef) -> dict[str, str]:
    """Short JSON of a unit."""
    return {"code": unit.code, "name": unit.name, "kind": unit.kind}


def horizon_date(entry_date: dt.date) -> dt.date:
    """The last day of the seven-year IAS horizon (29 Feb maps to 28 Feb)."""
    try:
        return entry_date.replace(year=entry_date.year + HORIZON_YEARS)
    except ValueError:
        return entry_date.replace(year=entry_date.year + HORIZON_YEARS, day=28)


def case_json(session: Session, case: Case) -> dict[str, Any]:
    """The API shape of a case (from its snapshot)."""
    snapshot = case_snapshot(session, case)
    closure = snapshot.open_closure
    return {
        "id": snapshot.id,
        "reference": snapshot.reference,
        "status": snapshot.status,
        "person": snapshot.person,
        "entry_date": snapshot.entry_date.isoformat(),
        "horizon_date": horizon_date(snapshot.entry_date).isoformat(),
        "created_at": snapshot.created_at.isoformat(),
        "updated_at": snapshot.updated_at.isoformat(),
        "responsible_unit": unit_json(snapshot.responsible.unit),
        "delegations": [
            {"unit": unit_json(d.unit), "from": d.start.isoformat()}
            for d in snapshot.active_delegations
        ],
        "target_group": snapshot.target_group,
        "closed_at": closure.closed_at.isoformat() if closure else None,
        "close_reason": closure.reason if closure else None,
    }


def responsibilities_json(
    session: Session, identity: Identity, case_id: str
) -> list[dict[str, Any]]:
    """The dated responsibility history of a case (audited as case.read)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    audit.record(
        session, identity, "case.read", case_id=case.id, detail={"part": "responsibilities"}
    )
    rows = session.execute(
        select(Responsibility)
        .where(Responsibility.case_id == case.id)
        .order_by(Responsibility.started_at, Responsibility.id)
    ).scalars()
    return [
        {
            "unit": unit_json(r.unit),
            "from": r.started_at.isoformat(),
            "to": r.ended_at.isoformat() if r.ended_at else None,
            "reason": r.reason,
        }
        for r in rows
    ]


def touch(case: Case) -> None:
    """Record activity on the case now."""
    case.updated_at = utcnow()
