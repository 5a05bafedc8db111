"""The one access policy: every read, write, listing and search filter asks this module.

Each rule is expressed once, as a SQL condition on ``cases``. A single-object check runs
that same condition for one id, and listings (and later the search filter) use it as a
WHERE clause, so the check and the filter cannot disagree. Conditions are evaluated
against the database at query time: after a transfer commits, the very next request of the
former unit no longer matches, with no cache or index copy in between.

Rules (see DOMAIN.md):
- canton caseworkers read every case and work on the cases the canton is responsible for;
  they register cases and may transfer any case;
- municipal caseworkers read and work on the cases their unit is responsible for now;
- organisation caseworkers read and work on cases delegated to their unit by the
  municipality that is responsible now;
- auditors read the audit log and nothing else; archivists export closed cases; admins
  manage units and users from the command line. None of them reads case content here.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, false, select, true
from sqlalchemy.orm import Session

from dossier_service.errors import Forbidden, NotFound
from dossier_service.identity import Identity
from dossier_service.models import Case, Delegation, Responsibility


class Action(StrEnum):
    """What a caller wants to do; the policy decides per role and unit."""

    CASE_CREATE = "case.create"
    CASE_READ = "case.read"
    CASE_WRITE = "case.write"
    CASE_TRANSFER = "transfer.create"
    CASE_DELEGATE = "delegation.create"
    AUDIT_READ = "audit.read"


#: Which roles may ever perform an action, whatever the case (else 403).
_ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "caseworker": frozenset(
        {
            Action.CASE_CREATE,
            Action.CASE_READ,
            Action.CASE_WRITE,
            Action.CASE_TRANSFER,
            Action.CASE_DELEGATE,
        }
    ),
    "auditor": frozenset({Action.AUDIT_READ}),
    "archivist": frozenset(),
    "admin": frozenset(),
}
#: Actions further bound to the kind of unit the role sits in.
_UNIT_KIND_ACTIONS: dict[Action, frozenset[str]] = {
    Action.CASE_CREATE: frozenset({"canton"}),
    Action.CASE_TRANSFER: frozenset({"canton", "municipality"}),
    Action.CASE_DELEGATE: frozenset({"municipality"}),
    Action.AUDIT_READ: frozenset({"canton"}),
}

_FORBIDDEN_MESSAGES: dict[Action, str] = {
    Action.CASE_CREATE: "Only caseworkers of the canton register cases.",
    Action.CASE_TRANSFER: "Only the responsible municipality or the canton transfers a case.",
    Action.CASE_DELEGATE: "Only the responsible municipality delegates a case.",
    Action.AUDIT_READ: "Only auditors read the audit log.",
}


def may(identity: Identity, action: Action) -> bool:
    """True if the caller's role and unit kind may perform the action on some case."""
    if action not in _ROLE_ACTIONS.get(identity.role, frozenset()):
        return False
    kinds = _UNIT_KIND_ACTIONS.get(action)
    return kinds is None or identity.unit_kind in kinds


def require(identity: Identity, action: Action) -> None:
    """Raise Forbidden (403) if the role may never perform the action."""
    if not may(identity, action):
        raise Forbidden(
            _FORBIDDEN_MESSAGES.get(action, "Your role does not allow this action."),
            code="forbidden",
        )


def _responsible_now(unit_id: int) -> ColumnElement[bool]:
    """Cases whose open responsibility period belongs to the unit."""
    return exists(
        select(Responsibility.id).where(
            Responsibility.case_id == Case.id,
            Responsibility.unit_id == unit_id,
            Responsibility.ended_at.is_(None),
        )
    )


def _delegated_now(unit_id: int) -> ColumnElement[bool]:
    """Cases delegated to the unit by the municipality that is responsible now."""
    return exists(
        select(Delegation.id)
        .join(
            Responsibility,
            and_(
                Responsibility.case_id == Delegation.case_id,
                Responsibility.unit_id == Delegation.granted_by_unit_id,
                Responsibility.ended_at.is_(None),
            ),
        )
        .where(
            Delegation.case_id == Case.id,
            Delegation.unit_id == unit_id,
            Delegation.ended_at.is_(None),
        )
    )


def readable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may read."""
    if not may(identity, Action.CASE_READ):
        return false()
    if identity.unit_kind == "canton":
        return true()
    if identity.unit_kind == "municipality":
        return _responsible_now(identity.unit_id)
    if identity.unit_kind == "organisation":
        return _delegated_now(identity.unit_id)
    return false()


def writable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may work on (upload, versions)."""
    if not may(identity, Action.CASE_WRITE):
        return false()
    if identity.unit_kind in {"canton", "municipality"}:
        return _responsible_now(identity.unit_id)
    if identity.unit_kind == "organisation":
        return _delegated_now(identity.unit_id)
    return false()


def transferable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may hand over to another unit."""
    if not may(identity, Action.CASE_TRANSFER):
        return false()
    if identity.unit_kind == "canton":
        return true()
    return _responsible_now(identity.unit_id)


def delegable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may delegate or un-delegate."""
    if not may(identity, Action.CASE_DELEGATE):
        return false()
    return _responsible_now(identity.unit_id)


_CASE_CONDITIONS = {
    Action.CASE_READ: readable_cases,
    Action.CASE_WRITE: writable_cases,
    Action.CASE_TRANSFER: transferable_cases,
    Action.CASE_DELEGATE: delegable_cases,
}

_HELD_ELSEWHERE = {
    Action.CASE_WRITE: "The case is held by another unit; you may read it but not change it.",
    Action.CASE_TRANSFER: "Only the responsible unit or the canton transfers this case.",
    Action.CASE_DELEGATE: "Only the municipality responsible for this case delegates it.",
}


def allowed(session: Session, identity: Identity, action: Action, case_id: str) -> bool:
    """Evaluate the action's condition for one case (the same SQL the listings use)."""
    condition = _CASE_CONDITIONS[action](identity)
    return bool(
        session.execute(
            select(exists(select(Case.id).where(Case.id == case_id, condition)))
        ).scalar()
    )


def load_case(session: Session, identity: Identity, case_id: str, action: Action) -> Case:
    """Return the case if the caller may perform the action on it.

    A case the caller may not read answers NotFound (404) so its existence does not
    leak; a readable case the caller may not change answers Forbidden (403).
    """
    require(identity, Action.CASE_READ)
    require(identity, action)
    case = session.execute(
        select(Case).where(Case.id == case_id, readable_cases(identity))
    ).scalar_one_or_none()
    if case is None:
        raise NotFound("No such case.", code="case_not_found")
    if action is not Action.CASE_READ and not allowed(session, identity, action, case_id):
        raise Forbidden(_HELD_ELSEWHERE[action], code="case_not_writable")
    return case
