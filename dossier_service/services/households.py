"""Household links between the cases of one family, shown only where both cases are readable."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import and_, delete, or_, select
from sqlalchemy.orm import Session

from dossier_service.errors import Conflict, NotFound
from dossier_service.identity import Identity
from dossier_service.models import Case, HouseholdLink
from dossier_service.models.households import INVERSE_RELATION
from dossier_service.policy import Action, load_case, readable_cases
from dossier_service.services import audit
from dossier_service.services.cases import touch


@dataclass(frozen=True)
class Member:
    """A linked case as seen from one case: what its person is to this case's person."""

    case: Case
    relation: str


def members(session: Session, identity: Identity, case_id: str) -> list[Member]:
    """The linked cases the caller may read, with the relation seen from ``case_id``.

    Not audited: for a page that has read (and audited) the case already.
    """
    links = session.execute(
        select(HouseholdLink).where(
            or_(HouseholdLink.case_a_id == case_id, HouseholdLink.case_b_id == case_id)
        )
    ).scalars()
    relation_of: dict[str, str] = {}
    for link in links:
        if link.case_a_id == case_id:
            relation_of[link.case_b_id] = link.relation
        else:
            relation_of[link.case_a_id] = INVERSE_RELATION[link.relation]
    if not relation_of:
        return []
    # A linked case the caller may not read is left out: not even its existence shows.
    readable = session.execute(
        select(Case)
        .where(Case.id.in_(relation_of), readable_cases(identity))
        .order_by(Case.family_name, Case.given_names, Case.id)
    ).scalars()
    return [Member(case, relation_of[case.id]) for case in readable]


def household(session: Session, identity: Identity, case_id: str) -> list[Member]:
    """The readable household of a case (audited as case.read)."""
    case = load_case(session, identity, case_id, Action.CASE_READ)
    audit.record(session, identity, "case.read", case_id=case.id, detail={"part": "household"})
    return members(session, identity, case.id)


def _link_between(session: Session, a: str, b: str) -> HouseholdLink | None:
    """The link between two cases in either direction."""
    return session.execute(
        select(HouseholdLink).where(
            or_(
                and_(HouseholdLink.case_a_id == a, HouseholdLink.case_b_id == b),
                and_(HouseholdLink.case_a_id == b, HouseholdLink.case_b_id == a),
            )
        )
    ).scalar_one_or_none()


def link(
    session: Session, identity: Identity, case_id: str, other_id: str, relation: str
) -> list[Member]:
    """Record that the person of ``other_id`` is the ``relation`` of the person of ``case_id``.

    The caller must be able to change the case and read the other one (an unreadable other
    case answers 404 like one that does not exist).
    """
    case = load_case(session, identity, case_id, Action.CASE_WRITE)
    other = load_case(session, identity, other_id, Action.CASE_READ)
    if other.id == case.id:
        raise Conflict("A case cannot be linked to itself.", code="household_self")
    if _link_between(session, case.id, other.id) is not None:
        raise Conflict(
            f"The cases are already linked; remove the link to change it ({other.reference}).",
            code="household_exists",
        )
    session.add(
        HouseholdLink(
            case_a_id=case.id,
            case_b_id=other.id,
            relation=relation,
            created_by_id=identity.user_id,
        )
    )
    session.flush()
    touch(case)
    audit.record(
        session,
        identity,
        "household.link",
        case_id=case.id,
        detail={"other_case": other.id, "relation": relation},
    )
    return members(session, identity, case.id)


def unlink(session: Session, identity: Identity, case_id: str, other_id: str) -> list[Member]:
    """Remove the link between two cases (the caller may change the first); what remains."""
    case = load_case(session, identity, case_id, Action.CASE_WRITE)
    existing = _link_between(session, case.id, other_id)
    readable = (
        existing is not None
        and session.execute(
            select(Case.id).where(Case.id == other_id, readable_cases(identity))
        ).first()
    )
    if existing is None or not readable:
        raise NotFound("These cases are not linked.", code="household_link_not_found")
    session.execute(delete(HouseholdLink).where(HouseholdLink.id == existing.id))
    touch(case)
    audit.record(
        session, identity, "household.unlink", case_id=case.id, detail={"other_case": other_id}
    )
    return members(session, identity, case.id)


def member_json(member: Member) -> dict[str, str]:
    """The API shape of a household member."""
    return {
        "case_id": member.case.id,
        "reference": member.case.reference,
        "family_name": member.case.family_name,
        "given_names": member.case.given_names,
        "birth_date": member.case.birth_date,
        "relation": member.relation,
    }
