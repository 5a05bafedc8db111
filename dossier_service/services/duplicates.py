"""One person, one case: refusing a second case with the same identifiers, warning on names."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dossier_service.errors import Conflict
from dossier_service.identity import Identity
from dossier_service.models import Case
from dossier_service.policy import readable_cases

#: Index names whose violation means "this person already has a case" (models/cases.py).
_UNIQUE_PERSON_INDEXES = ("uq_cases_zemis_normalized", "uq_cases_ahv_number")


def _duplicate_error(session: Session, identity: Identity, existing: Case | None) -> Conflict:
    """409 duplicate_person naming the existing case only to a caller who may read it."""
    if (
        existing is not None
        and session.execute(
            select(Case.id).where(Case.id == existing.id, readable_cases(identity))
        ).first()
    ):
        return Conflict(
            f"This person already has a case: {existing.reference}.",
            code="duplicate_person",
            case_id=existing.id,
            case_reference=existing.reference,
        )
    # Another unit's case: that it exists is all the caller learns.
    return Conflict(
        "This person already has a case (held by another unit).", code="duplicate_person"
    )


def existing_case_for(
    session: Session, case_id: str | None, zemis_normalized: str, ahv_number: str | None
) -> Case | None:
    """Another case (open or closed) carrying this ZEMIS or AHV number, if any."""
    matches = [Case.zemis_normalized == zemis_normalized]
    if ahv_number is not None:
        matches.append(Case.ahv_number == ahv_number)
    query = select(Case).where(or_(*matches))
    if case_id is not None:
        query = query.where(Case.id != case_id)
    return session.execute(query.order_by(Case.created_at, Case.id).limit(1)).scalar_one_or_none()


def ensure_unique_for(
    session: Session,
    identity: Identity,
    case_id: str | None,
    zemis_normalized: str,
    ahv_number: str | None,
) -> None:
    """Raise 409 duplicate_person if another case carries this ZEMIS or AHV number.

    ``case_id`` is the case being changed (None while registering), which may keep its own
    numbers. The unique indexes catch what a concurrent transaction commits after this check
    (see ``unique_person``).
    """
    existing = existing_case_for(session, case_id, zemis_normalized, ahv_number)
    if existing is not None:
        raise _duplicate_error(session, identity, existing)


def _is_duplicate_person(error: IntegrityError) -> bool:
    """True if the error is a violation of one of the person's unique indexes."""
    text = str(error.orig).lower()
    # PostgreSQL names the index; SQLite names the columns.
    return any(name in text for name in _UNIQUE_PERSON_INDEXES) or (
        "unique" in text and ("cases.zemis_normalized" in text or "cases.ahv_number" in text)
    )


@contextmanager
def unique_person(
    session: Session,
    identity: Identity,
    case_id: str | None,
    zemis_normalized: str,
    ahv_number: str | None,
) -> Iterator[None]:
    """Run the flush of a person's identifiers in a savepoint; a lost race becomes 409."""
    try:
        with session.begin_nested():
            yield
    except IntegrityError as exc:
        if not _is_duplicate_person(exc):
            raise
        existing = existing_case_for(session, case_id, zemis_normalized, ahv_number)
        raise _duplicate_error(session, identity, existing) from None


def possible_duplicates(
    session: Session, case_id: str | None, name_key: str, birth_date: str
) -> list[Case]:
    """Other cases (than ``case_id``) of a person with the same folded names and birth date."""
    query = select(Case).where(Case.name_key == name_key, Case.birth_date == birth_date)
    if case_id is not None:
        query = query.where(Case.id != case_id)
    return list(session.execute(query.order_by(Case.created_at, Case.id)).scalars())


def readable_references(
    session: Session, identity: Identity, others: list[Case]
) -> list[dict[str, Any]]:
    """id and reference of each case, None for those the caller may not read."""
    if not others:
        return []
    readable = set(
        session.execute(
            select(Case.id).where(Case.id.in_([c.id for c in others]), readable_cases(identity))
        ).scalars()
    )
    return [
        {"case_id": c.id, "case_reference": c.reference}
        if c.id in readable
        else {"case_id": None, "case_reference": None}
        for c in others
    ]


def warnings_for(session: Session, identity: Identity, case: Case) -> list[dict[str, Any]]:
    """The ``possible_duplicate`` warnings of a freshly registered case.

    Names the other case only to a caller who may read it.
    """
    others = possible_duplicates(session, case.id, case.name_key, case.birth_date)
    return [
        {"code": "possible_duplicate", **ref}
        if ref["case_id"] is not None
        else {"code": "possible_duplicate", "case_reference": None}
        for ref in readable_references(session, identity, others)
    ]
