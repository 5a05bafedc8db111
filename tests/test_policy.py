"""Direct tests of dossier_service.policy: role table, SQL conditions and single-case checks."""

from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event, select, update
from sqlalchemy.orm import Session

from dossier_service.container import Container
from dossier_service.errors import DossierError, Forbidden, NotFound
from dossier_service.identity import Identity
from dossier_service.models import ROLES, UNIT_KINDS, Case, Delegation, Responsibility, Unit, User
from dossier_service.policy import (
    Action,
    allowed,
    delegable_cases,
    delegation_scope,
    load_case,
    may,
    readable_cases,
    reads_every_case,
    require,
    rights,
    transferable_cases,
    writable_cases,
)
from dossier_service.services import accounts
from tests.factories import World

A = Action
#: The actions of the access rules proved here; the case-process actions (cost approvals,
#: closing, notifications, reports) belong to their own tests. Setting the target group is
#: here because it splits the plan: an organisation works on it but never sets the group.
CORE_ACTIONS = (
    A.CASE_CREATE,
    A.CASE_READ,
    A.CASE_WRITE,
    A.CASE_TRANSFER,
    A.CASE_DELEGATE,
    A.AUDIT_READ,
    A.TARGET_GROUP_SET,
)
#: What each role may ever do, per kind of unit it sits in.
ROLE_TABLE: dict[tuple[str, str], set[Action]] = {
    ("caseworker", "canton"): {
        A.CASE_CREATE,
        A.CASE_READ,
        A.CASE_WRITE,
        A.CASE_TRANSFER,
        A.TARGET_GROUP_SET,
    },
    ("caseworker", "municipality"): {
        A.CASE_READ,
        A.CASE_WRITE,
        A.CASE_TRANSFER,
        A.CASE_DELEGATE,
        A.TARGET_GROUP_SET,
    },
    ("caseworker", "organisation"): {A.CASE_READ, A.CASE_WRITE},
    ("auditor", "canton"): {A.AUDIT_READ},
    # The audit log is the canton's; an auditor role elsewhere reads nothing.
    ("auditor", "municipality"): set(),
    ("auditor", "organisation"): set(),
    **{("archivist", kind): set() for kind in UNIT_KINDS},
    **{("admin", kind): set() for kind in UNIT_KINDS},
}


def _identity(role: str, kind: str) -> Identity:
    return Identity(user_id=1, username="x", role=role, unit_id=1, unit_code="x", unit_kind=kind)


def test_role_table_covers_every_role_and_unit_kind():
    """The table below is complete, so no role × kind combination goes unchecked."""
    assert set(ROLE_TABLE) == set(itertools.product(ROLES, UNIT_KINDS))


@pytest.mark.parametrize(("role", "kind"), sorted(ROLE_TABLE))
def test_may_and_require_follow_the_role_table(role, kind):
    """may() is true exactly for the table's actions; require() raises 403 forbidden otherwise."""
    identity = _identity(role, kind)
    for action in CORE_ACTIONS:
        expected = action in ROLE_TABLE[(role, kind)]
        assert may(identity, action) is expected, (role, kind, action)
        if expected:
            require(identity, action)
        else:
            with pytest.raises(Forbidden) as refused:
                require(identity, action)
            assert refused.value.code == "forbidden" and refused.value.message


# ---- the SQL conditions against a crafted database --------------------------------------

#: Each case: its responsibility periods (oldest first, last one open) and its delegations
#: as (organisation, granted by, still open).
CASES: dict[str, dict[str, Any]] = {
    "at_canton": {"periods": ["ag"], "delegations": []},
    "at_aarau": {"periods": ["ag", "aarau"], "delegations": [("ors", "aarau", False)]},
    "aarau_to_caritas": {"periods": ["ag", "aarau"], "delegations": [("caritas", "aarau", True)]},
    # Inconsistent data a transfer should have cleaned up: the delegation is still open but
    # its granter is no longer responsible, so it must not count.
    "stale_delegation": {
        "periods": ["ag", "aarau", "baden"],
        "delegations": [("caritas", "aarau", True)],
    },
    # A delegation "granted" by a unit that never held the case counts for nothing either.
    "foreign_granter": {"periods": ["ag", "wettingen"], "delegations": [("ors", "baden", True)]},
    "back_at_canton": {"periods": ["ag", "aarau", "ag"], "delegations": []},
}
ALL = set(CASES)
AARAU = {"at_aarau", "aarau_to_caritas"}
NOTHING: set[str] = set()

#: Expected case sets per user and action.
EXPECTED: dict[str, dict[Action, set[str]]] = {
    "canton": {
        A.CASE_READ: ALL,
        A.CASE_WRITE: {"at_canton", "back_at_canton"},
        A.CASE_TRANSFER: ALL,
        A.CASE_DELEGATE: NOTHING,
    },
    "aarau": {
        A.CASE_READ: AARAU,
        A.CASE_WRITE: AARAU,
        A.CASE_TRANSFER: AARAU,
        A.CASE_DELEGATE: AARAU,
    },
    "baden": {
        A.CASE_READ: {"stale_delegation"},
        A.CASE_WRITE: {"stale_delegation"},
        A.CASE_TRANSFER: {"stale_delegation"},
        A.CASE_DELEGATE: {"stale_delegation"},
    },
    "wettingen": {
        A.CASE_READ: {"foreign_granter"},
        A.CASE_WRITE: {"foreign_granter"},
        A.CASE_TRANSFER: {"foreign_granter"},
        A.CASE_DELEGATE: {"foreign_granter"},
    },
    "caritas": {
        A.CASE_READ: {"aarau_to_caritas"},
        A.CASE_WRITE: {"aarau_to_caritas"},
        A.CASE_TRANSFER: NOTHING,
        A.CASE_DELEGATE: NOTHING,
    },
    "ors": {
        A.CASE_READ: NOTHING,
        A.CASE_WRITE: NOTHING,
        A.CASE_TRANSFER: NOTHING,
        A.CASE_DELEGATE: NOTHING,
    },
    **{
        outsider: dict.fromkeys(
            (A.CASE_READ, A.CASE_WRITE, A.CASE_TRANSFER, A.CASE_DELEGATE), NOTHING
        )
        for outsider in ("auditor", "archivist", "admin")
    },
}
CONDITIONS = {
    A.CASE_READ: readable_cases,
    A.CASE_WRITE: writable_cases,
    A.CASE_TRANSFER: transferable_cases,
    A.CASE_DELEGATE: delegable_cases,
}


def _insert_cases(session: Session) -> None:
    """Write CASES as rows, with dated periods one day apart."""
    units = {u.code: u.id for u in session.execute(select(Unit)).scalars()}
    creator = session.execute(select(User).where(User.username == "canton")).scalar_one().id
    start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
    for n, (name, spec) in enumerate(CASES.items()):
        session.add(
            Case(
                id=name,
                reference=f"IAS-2024-{n:06d}",
                status="open",
                family_name="Test",
                given_names=name,
                birth_date="1990",
                sex="unknown",
                nationality="ER",
                zemis_number=str(n + 1),
                zemis_normalized=str(n + 1),
                ahv_number=None,
                residence_status="F",
                entry_date=dt.date(2024, 1, 1),
                created_at=start,
                updated_at=start,
                created_by_id=creator,
            )
        )
        session.flush()
        periods = spec["periods"]
        for i, code in enumerate(periods):
            ended = start + dt.timedelta(days=i + 1) if i < len(periods) - 1 else None
            session.add(
                Responsibility(
                    case_id=name,
                    unit_id=units[code],
                    reason="",
                    started_at=start + dt.timedelta(days=i),
                    ended_at=ended,
                    created_by_id=creator,
                )
            )
            session.flush()
        for org, granter, still_open in spec["delegations"]:
            session.add(
                Delegation(
                    case_id=name,
                    unit_id=units[org],
                    granted_by_unit_id=units[granter],
                    started_at=start,
                    ended_at=None if still_open else start + dt.timedelta(days=1),
                    reason="",
                    created_by_id=creator,
                )
            )
        session.flush()


@pytest.fixture
def crafted(container: Container, world: World) -> Iterator[tuple[Session, dict[str, Identity]]]:
    """A session over the crafted cases and the identity of every test user."""
    with container.db.transaction() as session:
        _insert_cases(session)
    session = container.db.session()
    try:
        identities = {
            user.username: accounts.identity_for_user(user)
            for user in session.execute(select(User)).scalars()
        }
        yield session, identities
    finally:
        session.rollback()
        session.close()


def test_conditions_select_exactly_the_expected_cases(crafted):
    """Each SQL condition, as a listing filter, yields the expected cases for every user."""
    session, identities = crafted
    assert set(identities) == set(EXPECTED)
    problems = []
    for user, per_action in EXPECTED.items():
        for action, expected in per_action.items():
            condition = CONDITIONS[action](identities[user])
            listed = set(session.execute(select(Case.id).where(condition)).scalars())
            if listed != expected:
                problems.append(
                    f"{user} {action.value}: expected {sorted(expected)}, listed {sorted(listed)}"
                )
    assert not problems, "\n".join(problems)


def test_single_case_check_agrees_with_the_listing_filter(crafted):
    """allowed() for one case and the WHERE clause never disagree (one policy, two outputs)."""
    session, identities = crafted
    for user, identity in identities.items():
        for action, condition in CONDITIONS.items():
            listed = set(session.execute(select(Case.id).where(condition(identity))).scalars())
            checked = {case for case in CASES if allowed(session, identity, action, case)}
            assert checked == listed, (user, action.value)


def test_load_case_answers_404_for_unseen_and_403_for_unchangeable(crafted):
    """Role refusal → 403 forbidden; unreadable → 404; readable but not allowed → 403."""
    session, identities = crafted
    problems = []
    for user, per_action in EXPECTED.items():
        identity = identities[user]
        for action in CONDITIONS:
            for case in [*CASES, "no-such-case"]:
                if not (may(identity, A.CASE_READ) and may(identity, action)):
                    expected: tuple[type[Exception] | None, str | None] = (Forbidden, "forbidden")
                elif case not in per_action[A.CASE_READ]:
                    expected = (NotFound, "case_not_found")
                elif case not in per_action[action]:
                    expected = (Forbidden, "case_not_writable")
                else:
                    expected = (None, None)
                try:
                    got_case = load_case(session, identity, case, action)
                    got: tuple[type[Exception] | None, str | None] = (None, None)
                    if got_case.id != case:
                        problems.append(f"{user} {action.value} {case}: returned {got_case.id}")
                except (Forbidden, NotFound) as exc:
                    got = (type(exc), exc.code)
                if got != expected:
                    problems.append(f"{user} {action.value} {case}: expected {expected}, got {got}")
    assert not problems, "\n".join(problems)


def test_conditions_follow_the_database_at_query_time(crafted, container):
    """Ending a period in another transaction takes effect on the next query, no cache."""
    session, identities = crafted
    aarau, caritas = identities["aarau"], identities["caritas"]
    assert allowed(session, caritas, A.CASE_READ, "aarau_to_caritas")
    session.rollback()  # end the read transaction, as a request would
    with container.db.transaction() as other:
        period = other.execute(
            select(Responsibility).where(
                Responsibility.case_id == "aarau_to_caritas", Responsibility.ended_at.is_(None)
            )
        ).scalar_one()
        period.ended_at = dt.datetime.now(dt.UTC)
    # Nobody is responsible now: neither Aarau nor its delegate sees the case any more.
    assert not allowed(session, aarau, A.CASE_READ, "aarau_to_caritas")
    assert not allowed(session, caritas, A.CASE_READ, "aarau_to_caritas")
    assert allowed(session, identities["canton"], A.CASE_READ, "aarau_to_caritas")


# ---- policy.rights: what the pages may offer on one case ---------------------------------

#: Every case-bound action: the ones rights() answers for.
CASE_ACTIONS = (
    A.CASE_READ,
    A.CASE_WRITE,
    A.CASE_TRANSFER,
    A.CASE_DELEGATE,
    A.COST_APPROVAL_REQUEST,
    A.COST_APPROVAL_DECIDE,
    A.CASE_CLOSE,
    A.CASE_REOPEN,
    A.LEGAL_HOLD,
    A.DISCLOSURE,
    A.DOCUMENT_WITHDRAW,
    A.DOCUMENT_READ_WITHDRAWN,
    A.DOCUMENT_PURGE,
    A.DOCUMENT_MOVE,
    A.PERSON_CORRECT,
    A.CASE_MERGE,
    A.TARGET_GROUP_SET,
)

#: What the canton may do with any case's documents: withdraw, read withdrawn, purge, move.
CANTON_DOCUMENTS = {
    A.DOCUMENT_WITHDRAW,
    A.DOCUMENT_READ_WITHDRAWN,
    A.DOCUMENT_PURGE,
    A.DOCUMENT_MOVE,
}


def _every_role_in_every_unit(session: Session) -> dict[str, Identity]:
    """One identity per role and crafted unit (canton, municipalities, organisations)."""
    return {
        f"{role}@{unit.code}": Identity(
            user_id=1,
            username=f"{role}-{unit.code}",
            role=role,
            unit_id=unit.id,
            unit_code=unit.code,
            unit_kind=unit.kind,
        )
        for role in ROLES
        for unit in session.execute(select(Unit)).scalars()
    }


def _close_every_case(session: Session) -> None:
    session.execute(update(Case).values(status="closed"))
    session.flush()


@pytest.mark.parametrize("state", ["open", "closed"])
def test_rights_are_exactly_what_load_case_grants(crafted, state):
    """rights() names each action load_case() lets through, for every role × unit × case,
    open and closed; reopening an open case is the one action it leaves out."""
    session, _users = crafted
    if state == "closed":
        _close_every_case(session)
    identities = _every_role_in_every_unit(session)
    assert {i.unit_kind for i in identities.values()} == set(UNIT_KINDS)
    problems = []
    for name, identity in identities.items():
        for case_id in CASES:
            expected = set()
            for action in CASE_ACTIONS:
                try:
                    load_case(session, identity, case_id, action)
                except DossierError:
                    continue
                expected.add(action)
            if state == "open":
                expected.discard(A.CASE_REOPEN)
            case = session.get(Case, case_id)
            assert case is not None
            granted = rights(session, identity, case)
            if granted != expected:
                problems.append(
                    f"{name} {case_id} ({state}): expected "
                    f"{sorted(expected)}, got {sorted(granted)}"
                )
    assert not problems, "\n".join(problems)


#: Hand-written answers for the cases people ask about (an oracle independent of load_case).
RIGHTS_EXAMPLES = [
    # The responsible municipality works on its case; closed, it only reads it.
    (
        "aarau",
        "at_aarau",
        "open",
        {
            A.CASE_READ,
            A.CASE_WRITE,
            A.CASE_TRANSFER,
            A.CASE_DELEGATE,
            A.COST_APPROVAL_REQUEST,
            A.CASE_CLOSE,
            A.DOCUMENT_WITHDRAW,
            A.PERSON_CORRECT,
            A.TARGET_GROUP_SET,
        },
    ),
    # Closed, it still withdraws a misfiled document (a data-protection breach either way).
    ("aarau", "at_aarau", "closed", {A.CASE_READ, A.DOCUMENT_WITHDRAW}),
    # The organisation the case is delegated to reads and works on the plan and documents,
    # nothing more: no target group, closing, transfer, delegation or cost request.
    ("caritas", "aarau_to_caritas", "open", {A.CASE_READ, A.CASE_WRITE}),
    ("caritas", "aarau_to_caritas", "closed", {A.CASE_READ}),
    # A delegation granted by a unit no longer responsible gives nothing.
    ("caritas", "stale_delegation", "open", set()),
    # The canton on a case a municipality holds: reads, transfers, decides costs, closes,
    # merges another case of the person into it (the holder stays).
    (
        "canton",
        "at_aarau",
        "open",
        {
            A.CASE_READ,
            A.CASE_TRANSFER,
            A.COST_APPROVAL_DECIDE,
            A.CASE_CLOSE,
            A.LEGAL_HOLD,
            A.DISCLOSURE,
            A.PERSON_CORRECT,
            A.CASE_MERGE,
            *CANTON_DOCUMENTS,
        },
    ),
    # The canton on its own case also writes and requests costs.
    (
        "canton",
        "at_canton",
        "open",
        {
            A.CASE_READ,
            A.CASE_WRITE,
            A.CASE_TRANSFER,
            A.COST_APPROVAL_REQUEST,
            A.COST_APPROVAL_DECIDE,
            A.CASE_CLOSE,
            A.LEGAL_HOLD,
            A.DISCLOSURE,
            A.PERSON_CORRECT,
            A.CASE_MERGE,
            A.TARGET_GROUP_SET,
            *CANTON_DOCUMENTS,
        },
    ),
    # Closed: the canton reads, reopens, holds, discloses, withdraws and purges (no move,
    # no merge).
    (
        "canton",
        "at_aarau",
        "closed",
        {
            A.CASE_READ,
            A.CASE_REOPEN,
            A.LEGAL_HOLD,
            A.DISCLOSURE,
            *(CANTON_DOCUMENTS - {A.DOCUMENT_MOVE}),
        },
    ),
    # A municipality that no longer holds the case, and the roles that never read cases.
    ("aarau", "back_at_canton", "open", set()),
    ("auditor", "at_canton", "open", set()),
    ("archivist", "at_canton", "closed", set()),
]


def test_delegation_scope_is_what_the_delegated_organisation_is_granted(crafted):
    """delegation_scope() names exactly the rights of an organisation on an open case
    delegated to it (computed here by rights() on the crafted world), and none of the
    rights that stay with the responsible unit."""
    session, identities = crafted
    case = session.get(Case, "aarau_to_caritas")
    assert case is not None
    granted = rights(session, identities["caritas"], case)
    assert delegation_scope() == granted == {A.CASE_READ, A.CASE_WRITE}
    kept = {
        A.TARGET_GROUP_SET,
        A.CASE_CLOSE,
        A.CASE_TRANSFER,
        A.CASE_DELEGATE,
        A.COST_APPROVAL_REQUEST,
    }
    assert kept <= rights(session, identities["aarau"], case)
    assert not kept & delegation_scope()


@pytest.mark.parametrize(("user", "case_id", "state", "expected"), RIGHTS_EXAMPLES)
def test_rights_examples(crafted, user, case_id, state, expected):
    """rights() for the users of the crafted world, as the rules in DOMAIN.md state them."""
    session, identities = crafted
    if state == "closed":
        _close_every_case(session)
    case = session.get(Case, case_id)
    assert case is not None
    assert rights(session, identities[user], case) == expected


def test_rights_ask_the_database_once(crafted, container):
    """One statement evaluates every action's condition (the case page is latency-bound)."""
    session, identities = crafted
    case = session.get(Case, "aarau_to_caritas")
    assert case is not None
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    engine = session.get_bind()
    event.listen(engine, "before_cursor_execute", count)
    try:
        granted = rights(session, identities["canton"], case)
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert A.CASE_TRANSFER in granted
    assert len(statements) == 1, statements


def test_reads_every_case_only_for_canton_caseworkers():
    """The canton's caseworkers read every case; nobody else, whatever the role or unit."""
    for role, kind in itertools.product(ROLES, UNIT_KINDS):
        expected = role == "caseworker" and kind == "canton"
        assert reads_every_case(_identity(role, kind)) is expected, (role, kind)
