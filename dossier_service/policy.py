"""The one access policy: every read, write, listing and search filter asks this module.

Each rule is expressed once, as a SQL condition on ``cases``. A single-object check runs
that same condition for one id, and listings and the search filter use it as a WHERE
clause, so the check and the filter cannot disagree. Conditions are evaluated
against the database at query time: after a transfer commits, the very next request of the
former unit no longer matches, with no cache or index copy in between.

The interfaces ask it too: ``rights`` names the actions the caller may perform on one case
now (the buttons and forms a page offers), ``reads_every_case`` whether a listing or a
search needs a case filter at all. No other module tests a role, a unit kind or a case
status to decide access (tests/test_policy_single_source.py checks this).

Rules (the roles of the Integrationsagenda, canton -> municipality -> organisation):
- canton caseworkers read every case and work on the cases the canton is responsible for;
  they register cases and may transfer any case;
- municipal caseworkers read and work on the cases their unit is responsible for now;
- organisation caseworkers read and work on cases delegated to their unit by the
  municipality that is responsible now;
- auditors read the audit log and nothing else; archivists export closed cases; admins
  manage units and users from the command line. None of them reads case content here.

Case process:
- cost approvals are requested by the unit responsible for the case now, a municipality or
  the canton. Not by a delegated organisation: delegation hands over day-to-day support,
  while the municipality stays legally responsible and commits its budget, so it files the
  request (an organisation uploads the supporting documents the request then attaches);
- only canton caseworkers decide cost approvals, on any case (they read every case);
- the responsible canton or municipality, or any canton caseworker, closes a case; only
  the canton reopens it;
- the responsible municipality, or any canton caseworker, corrects the person's data (a
  delegated organisation supports the person but does not change the record);
- the unit responsible now (municipality or canton) sets the target group: the triage
  decides which programmes the municipality pays for, so it stays with the responsible
  unit. A delegated organisation works on the plan (documents, measures, milestones and
  their notes) but does not set the target group, close, transfer, delegate or request
  cost approvals; ``delegation_scope`` names what it gains, for the delegation dialog;
- a closed case is read-only: every action on it except reading and reopening answers
  Conflict (409, ``case_closed``), decided here once for uploads, versions, transfers,
  delegations, the plan and cost approvals alike;
- notifications belong to a unit and are read by its caseworkers; the canton's
  caseworkers read the reports (indicators, stalled cases).

Archives:
- archivists of the canton export closed cases as SIPs (any case: the canton's archive
  duty spans every case); they never read a case through the case API;
- canton caseworkers set and release legal holds and produce the person's disclosure
  (right of access), on any case, open or closed: both are allowed on a closed case.

Merges:
- canton caseworkers merge two open cases of one person (they read every case); the
  merged case then leaves every condition here (``readable_cases`` excludes it), so it
  vanishes from listings and the search filter, and ``load_case`` answers 410
  ``case_merged`` with the surviving case to whoever could read it before. Responsibility
  is not merged: the surviving case keeps its unit, so the units of the merged case gain
  nothing.
"""

from __future__ import annotations

from enum import StrEnum

from sqlalchemy import ColumnElement, and_, exists, false, select, true
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import False_

from dossier_service.errors import Conflict, Forbidden, Gone, NotFound
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
    COST_APPROVAL_REQUEST = "cost_approval.request"
    COST_APPROVAL_DECIDE = "cost_approval.decide"
    CASE_CLOSE = "case.close"
    CASE_REOPEN = "case.reopen"
    NOTIFICATION_READ = "notification.read"
    REPORT_READ = "report.read"
    EXPORT = "export.create"
    LEGAL_HOLD = "legal_hold.set"
    DISCLOSURE = "disclosure.create"
    DOCUMENT_WITHDRAW = "document.withdraw"
    DOCUMENT_READ_WITHDRAWN = "document.read_withdrawn"
    DOCUMENT_PURGE = "document.purge"
    DOCUMENT_MOVE = "document.move"
    PERSON_CORRECT = "person.correct"
    CASE_MERGE = "case.merge"
    TARGET_GROUP_SET = "target_group.set"


#: Which roles may ever perform an action, whatever the case (else 403).
_ROLE_ACTIONS: dict[str, frozenset[Action]] = {
    "caseworker": frozenset(
        {
            Action.CASE_CREATE,
            Action.CASE_READ,
            Action.CASE_WRITE,
            Action.CASE_TRANSFER,
            Action.CASE_DELEGATE,
            Action.COST_APPROVAL_REQUEST,
            Action.COST_APPROVAL_DECIDE,
            Action.CASE_CLOSE,
            Action.CASE_REOPEN,
            Action.NOTIFICATION_READ,
            Action.REPORT_READ,
            Action.LEGAL_HOLD,
            Action.DISCLOSURE,
            Action.DOCUMENT_WITHDRAW,
            Action.DOCUMENT_READ_WITHDRAWN,
            Action.DOCUMENT_PURGE,
            Action.DOCUMENT_MOVE,
            Action.PERSON_CORRECT,
            Action.CASE_MERGE,
            Action.TARGET_GROUP_SET,
        }
    ),
    "auditor": frozenset({Action.AUDIT_READ}),
    "archivist": frozenset({Action.EXPORT}),
    "admin": frozenset(),
}
#: Actions further bound to the kind of unit the role sits in.
_UNIT_KIND_ACTIONS: dict[Action, frozenset[str]] = {
    Action.CASE_CREATE: frozenset({"canton"}),
    Action.CASE_TRANSFER: frozenset({"canton", "municipality"}),
    Action.CASE_DELEGATE: frozenset({"municipality"}),
    Action.AUDIT_READ: frozenset({"canton"}),
    Action.COST_APPROVAL_REQUEST: frozenset({"canton", "municipality"}),
    Action.COST_APPROVAL_DECIDE: frozenset({"canton"}),
    Action.CASE_CLOSE: frozenset({"canton", "municipality"}),
    Action.CASE_REOPEN: frozenset({"canton"}),
    Action.REPORT_READ: frozenset({"canton"}),
    Action.EXPORT: frozenset({"canton"}),
    Action.LEGAL_HOLD: frozenset({"canton"}),
    Action.DISCLOSURE: frozenset({"canton"}),
    Action.DOCUMENT_WITHDRAW: frozenset({"canton", "municipality"}),
    Action.DOCUMENT_READ_WITHDRAWN: frozenset({"canton"}),
    Action.DOCUMENT_PURGE: frozenset({"canton"}),
    Action.DOCUMENT_MOVE: frozenset({"canton"}),
    Action.PERSON_CORRECT: frozenset({"canton", "municipality"}),
    Action.CASE_MERGE: frozenset({"canton"}),
    Action.TARGET_GROUP_SET: frozenset({"canton", "municipality"}),
}

_FORBIDDEN_MESSAGES: dict[Action, str] = {
    Action.CASE_CREATE: "Only caseworkers of the canton register cases.",
    Action.CASE_TRANSFER: "Only the responsible municipality or the canton transfers a case.",
    Action.CASE_DELEGATE: "Only the responsible municipality delegates a case.",
    Action.AUDIT_READ: "Only auditors read the audit log.",
    Action.COST_APPROVAL_REQUEST: (
        "Only the responsible municipality or the canton requests a cost approval."
    ),
    Action.COST_APPROVAL_DECIDE: "Only caseworkers of the canton decide cost approvals.",
    Action.CASE_CLOSE: "Only the responsible unit or the canton closes a case.",
    Action.CASE_REOPEN: "Only caseworkers of the canton reopen a case.",
    Action.NOTIFICATION_READ: "Only caseworkers receive notifications.",
    Action.REPORT_READ: "Only caseworkers of the canton read the reports.",
    Action.EXPORT: "Only archivists of the canton export cases to the archive.",
    Action.LEGAL_HOLD: "Only caseworkers of the canton set or release a legal hold.",
    Action.DISCLOSURE: "Only caseworkers of the canton produce a disclosure.",
    Action.DOCUMENT_WITHDRAW: "Only the responsible unit or the canton withdraws documents.",
    Action.DOCUMENT_READ_WITHDRAWN: "Only caseworkers of the canton read withdrawn documents.",
    Action.DOCUMENT_PURGE: "Only caseworkers of the canton purge a withdrawn document.",
    Action.DOCUMENT_MOVE: "Only caseworkers of the canton move a document to another case.",
    Action.PERSON_CORRECT: "Only the responsible municipality or the canton corrects person data.",
    Action.CASE_MERGE: "Only caseworkers of the canton merge cases.",
    Action.TARGET_GROUP_SET: (
        "Only the responsible municipality or the canton sets the target group."
    ),
}


def may(identity: Identity, action: Action) -> bool:
    """True if the caller's role and unit kind may perform the action on some case."""
    if action not in _ROLE_ACTIONS.get(identity.role, frozenset()):
        return False
    kinds = _UNIT_KIND_ACTIONS.get(action)
    return kinds is None or identity.unit_kind in kinds


#: Actions that only read: a role with nothing beyond them sends no body worth reading.
_READ_ACTIONS = frozenset(
    {
        Action.CASE_READ,
        Action.AUDIT_READ,
        Action.NOTIFICATION_READ,
        Action.REPORT_READ,
        Action.DOCUMENT_READ_WITHDRAWN,
    }
)


def changes_anything(identity: Identity) -> bool:
    """True if the caller's role may perform some action that changes data (on some case)."""
    return any(may(identity, action) for action in Action if action not in _READ_ACTIONS)


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


#: Kinds of unit whose caseworkers read every case (the canton's oversight).
_READS_EVERY_CASE = frozenset({"canton"})


def unit_reads_every_case(unit_kind: str) -> bool:
    """True if the caseworkers of a unit of this kind read every case, wherever it is held."""
    return unit_kind in _READS_EVERY_CASE


def reads_every_case(identity: Identity) -> bool:
    """True if the caller reads every case, so listings and searches need no case filter."""
    return may(identity, Action.CASE_READ) and unit_reads_every_case(identity.unit_kind)


def readable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may read (never a merged one)."""
    return and_(_readable_unless_merged(identity), Case.merged_into_id.is_(None))


def _readable_unless_merged(identity: Identity) -> ColumnElement[bool]:
    """The cases the caller would read if merged ones still stood on their own."""
    if not may(identity, Action.CASE_READ):
        return false()
    if reads_every_case(identity):
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


def cost_requestable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may request a cost approval for."""
    if not may(identity, Action.COST_APPROVAL_REQUEST):
        return false()
    return _responsible_now(identity.unit_id)


def cost_decidable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases whose cost approvals the caller may decide."""
    return true() if may(identity, Action.COST_APPROVAL_DECIDE) else false()


def closable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may close."""
    if not may(identity, Action.CASE_CLOSE):
        return false()
    if identity.unit_kind == "canton":
        return true()
    return _responsible_now(identity.unit_id)


def reopenable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may reopen."""
    return true() if may(identity, Action.CASE_REOPEN) else false()


def exportable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may export to the archive (any state;
    the export service refuses open ones with 409)."""
    return true() if may(identity, Action.EXPORT) else false()


def legal_hold_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may put under (or release from) legal hold."""
    return true() if may(identity, Action.LEGAL_HOLD) else false()


def disclosable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases whose data the caller may disclose to the person."""
    return true() if may(identity, Action.DISCLOSURE) else false()


def withdrawable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases whose documents the caller may withdraw."""
    if not may(identity, Action.DOCUMENT_WITHDRAW):
        return false()
    if identity.unit_kind == "canton":
        return true()
    return _responsible_now(identity.unit_id)


def person_correctable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases whose person data the caller may correct."""
    if not may(identity, Action.PERSON_CORRECT):
        return false()
    if identity.unit_kind == "canton":
        return true()
    return _responsible_now(identity.unit_id)


def mergeable_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases the caller may merge another case into (the canton
    on any case: it reads both, and the surviving case keeps its responsible unit)."""
    if not may(identity, Action.CASE_MERGE):
        return false()
    return true() if reads_every_case(identity) else false()
def target_group_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: the cases whose target group the caller may set."""
    if not may(identity, Action.TARGET_GROUP_SET):
        return false()
    return _responsible_now(identity.unit_id)


def canton_document_cases(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Case: where the caller reads withdrawn documents, purges or moves them.

    The canton on any case; ``may`` (checked first by ``load_case`` and ``rights``) binds
    each of the three actions to canton caseworkers.
    """
    return true() if reads_every_case(identity) else false()


_CASE_CONDITIONS = {
    Action.CASE_READ: readable_cases,
    Action.CASE_WRITE: writable_cases,
    Action.CASE_TRANSFER: transferable_cases,
    Action.CASE_DELEGATE: delegable_cases,
    Action.COST_APPROVAL_REQUEST: cost_requestable_cases,
    Action.COST_APPROVAL_DECIDE: cost_decidable_cases,
    Action.CASE_CLOSE: closable_cases,
    Action.CASE_REOPEN: reopenable_cases,
    Action.LEGAL_HOLD: legal_hold_cases,
    Action.DISCLOSURE: disclosable_cases,
    Action.DOCUMENT_WITHDRAW: withdrawable_cases,
    Action.DOCUMENT_READ_WITHDRAWN: canton_document_cases,
    Action.DOCUMENT_PURGE: canton_document_cases,
    Action.DOCUMENT_MOVE: canton_document_cases,
    Action.PERSON_CORRECT: person_correctable_cases,
    Action.CASE_MERGE: mergeable_cases,
    Action.TARGET_GROUP_SET: target_group_cases,
}

_HELD_ELSEWHERE = {
    Action.CASE_WRITE: "The case is held by another unit; you may read it but not change it.",
    Action.CASE_TRANSFER: "Only the responsible unit or the canton transfers this case.",
    Action.CASE_DELEGATE: "Only the municipality responsible for this case delegates it.",
    Action.COST_APPROVAL_REQUEST: "Only the unit responsible for this case requests costs.",
    Action.COST_APPROVAL_DECIDE: "Only caseworkers of the canton decide cost approvals.",
    Action.CASE_CLOSE: "Only the unit responsible for this case or the canton closes it.",
    Action.CASE_REOPEN: "Only caseworkers of the canton reopen a case.",
    Action.LEGAL_HOLD: "Only caseworkers of the canton set or release a legal hold.",
    Action.DISCLOSURE: "Only caseworkers of the canton produce a disclosure.",
    Action.DOCUMENT_WITHDRAW: "Only the unit responsible for this case or the canton withdraws.",
    Action.DOCUMENT_READ_WITHDRAWN: "Only caseworkers of the canton read withdrawn documents.",
    Action.DOCUMENT_PURGE: "Only caseworkers of the canton purge a withdrawn document.",
    Action.DOCUMENT_MOVE: "Only caseworkers of the canton move a document to another case.",
    Action.PERSON_CORRECT: "Only the unit responsible for this case or the canton corrects it.",
    Action.CASE_MERGE: "Only caseworkers of the canton merge cases.",
    Action.TARGET_GROUP_SET: "Only the unit responsible for this case sets its target group.",
}

#: Actions a closed case still allows; everything else on it is a write and answers 409.
#: A legal hold matters most on a closed case (it stops deletion) and a disclosure is a read.
#: A misfiled document is a data-protection breach whether or not the case is closed, so
#: withdrawing, reading withdrawn documents and purging stay possible on a closed case
#: (moving does not: it changes the dossier of a closed case for good).
_ALLOWED_WHEN_CLOSED = frozenset(
    {
        Action.CASE_READ,
        Action.CASE_REOPEN,
        Action.LEGAL_HOLD,
        Action.DISCLOSURE,
        Action.DOCUMENT_WITHDRAW,
        Action.DOCUMENT_READ_WITHDRAWN,
        Action.DOCUMENT_PURGE,
    }
)


def allowed(session: Session, identity: Identity, action: Action, case_id: str) -> bool:
    """Evaluate the action's condition for one case (the same SQL the listings use)."""
    condition = _CASE_CONDITIONS[action](identity)
    return bool(
        session.execute(
            select(exists(select(Case.id).where(Case.id == case_id, condition)))
        ).scalar()
    )


#: Actions that only make sense on a closed case (``load_case`` lets them through on an
#: open one so that the service can answer 409 ``case_not_closed``).
_ONLY_WHEN_CLOSED = frozenset({Action.CASE_REOPEN})


def rights(session: Session, identity: Identity, case: Case) -> frozenset[Action]:
    """The case-bound actions the caller may perform on this case now.

    The actions ``load_case`` would grant (the case is readable, the action's condition
    holds, and on a closed case only those a closed case allows), less reopening while
    the case is open. One query evaluates every condition as a column, so a page asks
    once, not once per action.
    """
    if not may(identity, Action.CASE_READ):
        return frozenset()
    candidates = [action for action in _CASE_CONDITIONS if may(identity, action)]
    row = session.execute(
        select(
            Case.status,
            *(_CASE_CONDITIONS[action](identity).label(action.name) for action in candidates),
        ).where(Case.id == case.id, readable_cases(identity))
    ).one_or_none()
    if row is None:
        return frozenset()
    closed = row.status == "closed"
    return frozenset(
        action
        for action, granted in zip(candidates, row[1:], strict=True)
        if granted
        and (action in _ALLOWED_WHEN_CLOSED if closed else action not in _ONLY_WHEN_CLOSED)
    )


def load_case(session: Session, identity: Identity, case_id: str, action: Action) -> Case:
    """Return the case if the caller may perform the action on it.

    A case the caller may not read answers NotFound (404) so its existence does not
    leak; a merged case answers Gone (410) with the surviving case to whoever could read
    it before the merge; a readable case the caller may not change answers Forbidden (403);
    a closed case answers Conflict (409) to every action but reading and reopening. The closed check
    comes last, so a caller who could never act on the case learns 403, not the state.
    """
    require(identity, Action.CASE_READ)
    require(identity, action)
    query = select(Case).where(Case.id == case_id, readable_cases(identity))
    if action is not Action.CASE_READ:
        # Writers lock the case row first (a no-op on SQLite, whose BEGIN IMMEDIATE already
        # serialises writers): a concurrent close then waits for this change, or this
        # change sees the committed close, and lock order is the same for every writer.
        query = query.with_for_update(of=Case).execution_options(populate_existing=True)
    case = session.execute(query).scalar_one_or_none()
    if case is None:
        _refuse_if_merged(session, identity, case_id)
        raise NotFound("No such case.", code="case_not_found")
    if action is not Action.CASE_READ and not allowed(session, identity, action, case_id):
        raise Forbidden(_HELD_ELSEWHERE[action], code="case_not_writable")
    if case.status == "closed" and action not in _ALLOWED_WHEN_CLOSED:
        raise Conflict(
            "The case is closed and can no longer be changed; the canton may reopen it.",
            code="case_closed",
        )
    return case


def _refuse_if_merged(session: Session, identity: Identity, case_id: str) -> None:
    """Raise Gone (410 ``case_merged``) naming the surviving case, if the caller could read
    the case before it was merged; otherwise return (the caller then learns 404)."""
    surviving_id = session.execute(
        select(Case.merged_into_id).where(
            Case.id == case_id,
            Case.merged_into_id.is_not(None),
            _readable_unless_merged(identity),
        )
    ).scalar_one_or_none()
    if surviving_id is None:
        return
    reference = session.execute(
        select(Case.reference).where(Case.id == surviving_id)
    ).scalar_one_or_none()
    raise Gone(
        f"The case was merged into case {reference}; its dossier is there now.",
        code="case_merged",
        public={"surviving_case_id": surviving_id, "surviving_reference": reference},
    )


def delegation_scope() -> frozenset[Action]:
    """The case-bound actions a delegation gives an organisation on the open delegated case.

    Derived from the tables above, not listed by hand: the actions an organisation
    caseworker's role and unit kind allow whose case condition is not refused outright,
    as ``rights`` would grant them on an open case delegated to the unit.
    """
    organisation = Identity(
        user_id=0,
        username="",
        role="caseworker",
        unit_id=0,
        unit_code="",
        unit_kind="organisation",
    )
    return frozenset(
        action
        for action, condition in _CASE_CONDITIONS.items()
        if may(organisation, action)
        and action not in _ONLY_WHEN_CLOSED
        and not isinstance(condition(organisation), False_)
    )
