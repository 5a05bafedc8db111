"""Merging two cases of one person: the dossier of one moves into the other, for good.

The canton merges ``from_case`` into the surviving case. Documents (every version, also
withdrawn ones; each notes the move in its history, as a single move does), the plan
(measures, milestones, target-group periods), cost approvals, household links, the
journal, the follow-ups (the horizon follow-up only if the survivor has none) and the
person's correction and residence-status histories move to the surviving case. What stays
with the merged case, as its own history: its person record, its responsibility and
delegation periods, its closures and the tombstones of documents purged there. It keeps
only ``merged_into_id``; the policy then treats it as gone (410 ``case_merged``).

Responsibility is not merged: the surviving case keeps its unit and delegations, so a
unit that held only the merged case reads neither case afterwards. The search follows at
once: the merged case leaves the readable set, each moved document's index entry is
rewritten after commit, and until then the search drops hits whose entry names a case the
document has left.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm import Session

from dossier_service.bodies.cases import MergeInput
from dossier_service.dates import utcnow
from dossier_service.errors import Conflict, Gone, NotFound, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import (
    Case,
    CaseMerge,
    CostApproval,
    Document,
    FollowUp,
    HouseholdLink,
    JournalEntry,
    Measure,
    Milestone,
    PersonChange,
    ResidenceStatusChange,
    TargetGroupAssignment,
)
from dossier_service.policy import Action, load_case, require
from dossier_service.services import audit, notifications, outbox
from dossier_service.services.cases import touch
from dossier_service.services.document_corrections import relocate
from dossier_service.services.person import REINDEX_CASE_TASK

#: Rows that simply change case, by the name their count carries in the audit log.
_SIMPLE_MOVES: dict[str, Any] = {
    "measures": Measure,
    "milestones": Milestone,
    "cost_approvals": CostApproval,
    "person_changes": PersonChange,
    "status_changes": ResidenceStatusChange,
    # Corrections point at entries of the same journal, so the whole journal moves together.
    "journal_entries": JournalEntry,
}


def _move_follow_ups(session: Session, surviving: Case, merged: Case) -> int:
    """Move the follow-ups; the monitoring's horizon follow-up only if the survivor has none
    (one per case: the surviving case's own horizon is the one that counts)."""
    survivor_has_horizon = session.execute(
        select(FollowUp.id).where(FollowUp.case_id == surviving.id, FollowUp.source == "horizon")
    ).first()
    condition = FollowUp.case_id == merged.id
    if survivor_has_horizon is not None:
        condition = and_(condition, FollowUp.source != "horizon")
    result = session.execute(
        update(FollowUp)
        .where(condition)
        .values(case_id=surviving.id)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def _load_both(
    session: Session, identity: Identity, case_id: str, from_id: str
) -> tuple[Case, Case]:
    """Lock the surviving and the merged case, in id order (two merges of the same pair in
    opposite directions then wait for each other instead of deadlocking)."""
    loaded: dict[str, Case] = {}
    for which in sorted({case_id, from_id}):
        if which == case_id:
            loaded[which] = load_case(session, identity, case_id, Action.CASE_MERGE)
            continue
        try:
            loaded[which] = load_case(session, identity, from_id, Action.CASE_MERGE)
        except NotFound:
            raise Unprocessable(
                "'from_case' names no case.", code="merge_case_not_found", field="from_case"
            ) from None
        except Gone:
            raise Conflict(
                "The case named in 'from_case' has been merged already.",
                code="case_already_merged",
            ) from None
    return loaded[case_id], loaded[from_id]


def _check_same_person(surviving: Case, merged: Case) -> None:
    """Refuse two cases that cannot be one person (422).

    The ZEMIS numbers of two cases always differ (the database keeps them unique; a second
    registration under a new or mistyped number is what a merge repairs), so only the AHV
    number decides: both present and different means two people.
    """
    if surviving.ahv_number and merged.ahv_number and surviving.ahv_number != merged.ahv_number:
        raise Unprocessable(
            "The two cases carry different AHV numbers, so they are not one person; correct "
            "the wrong number first if they are.",
            code="different_persons",
            field="from_case",
        )


def _move_household(session: Session, surviving: Case, merged: Case) -> int:
    """Re-point the merged case's household links; drop a link to the surviving case itself
    and one that the surviving case already has with the same person."""
    links = session.execute(
        select(HouseholdLink).where(
            or_(HouseholdLink.case_a_id == merged.id, HouseholdLink.case_b_id == merged.id)
        )
    ).scalars()
    linked = {
        other
        for a, b in session.execute(
            select(HouseholdLink.case_a_id, HouseholdLink.case_b_id).where(
                or_(
                    HouseholdLink.case_a_id == surviving.id,
                    HouseholdLink.case_b_id == surviving.id,
                )
            )
        ).all()
        for other in (a, b)
        if other != surviving.id
    }
    moved = 0
    for link in list(links):
        other = link.case_b_id if link.case_a_id == merged.id else link.case_a_id
        if other == surviving.id or other in linked:
            session.delete(link)
            continue
        if link.case_a_id == merged.id:
            link.case_a_id = surviving.id
        else:
            link.case_b_id = surviving.id
        linked.add(other)
        moved += 1
    return moved


def _move_target_groups(session: Session, surviving: Case, merged: Case) -> int:
    """Move the target-group periods; the surviving case's open period stays the open one."""
    now = utcnow()
    surviving_open = session.execute(
        select(TargetGroupAssignment.id).where(
            TargetGroupAssignment.case_id == surviving.id,
            TargetGroupAssignment.ended_at.is_(None),
        )
    ).first()
    rows = list(
        session.execute(
            select(TargetGroupAssignment).where(TargetGroupAssignment.case_id == merged.id)
        ).scalars()
    )
    for row in rows:
        if row.ended_at is None and surviving_open is not None:
            row.ended_at = now
    session.flush()
    for row in rows:
        row.case_id = surviving.id
    return len(rows)


def merge_cases(session: Session, identity: Identity, case_id: str, body: MergeInput) -> Case:
    """Merge ``body.from_case`` into the case (canton); audited as case.merge on both."""
    require(identity, Action.CASE_MERGE)
    if body.from_case == case_id:
        raise Unprocessable(
            "A case cannot be merged into itself.", code="merge_same_case", field="from_case"
        )
    surviving, merged = _load_both(session, identity, case_id, body.from_case)
    _check_same_person(surviving, merged)
    reason = body.reason
    moved: dict[str, int] = {}
    documents = list(
        session.execute(select(Document).where(Document.case_id == merged.id)).scalars()
    )
    for document in documents:
        relocate(session, identity, document, merged, surviving, reason)
    moved["documents"] = len(documents)
    moved["versions"] = sum(len(document.versions) for document in documents)
    moved["target_groups"] = _move_target_groups(session, surviving, merged)
    for name, model in _SIMPLE_MOVES.items():
        result = session.execute(
            update(model).where(model.case_id == merged.id).values(case_id=surviving.id)
        )
        moved[name] = int(getattr(result, "rowcount", 0) or 0)
    moved["household_links"] = _move_household(session, surviving, merged)
    moved["follow_ups"] = _move_follow_ups(session, surviving, merged)
    merged.merged_into_id = surviving.id
    # Cases merged into this one earlier now point straight to the survivor.
    session.execute(
        update(Case).where(Case.merged_into_id == merged.id).values(merged_into_id=surviving.id)
    )
    session.add(
        CaseMerge(
            surviving_case_id=surviving.id,
            merged_case_id=merged.id,
            reason=reason,
            moved=moved,
            merged_by_id=identity.user_id,
            merged_at=utcnow(),
        )
    )
    touch(surviving)
    touch(merged)
    session.flush()
    detail = {
        "surviving_case": surviving.id,
        "merged_case": merged.id,
        "reason": reason,
        "moved": moved,
    }
    # Both dossiers' access logs name the merge: the person may ask for either.
    audit.record(session, identity, "case.merge", case_id=surviving.id, detail=detail)
    audit.record(session, identity, "case.merge", case_id=merged.id, detail=detail)
    # The index entries carry the case and the person: rewrite the survivor's after commit.
    outbox.enqueue(session, REINDEX_CASE_TASK, case_id=surviving.id)
    notifications.notify(
        session,
        [
            *notifications.case_parties(session, surviving.id),
            notifications.responsible_unit_id(session, merged.id),
        ],
        notifications.CASE_MERGED,
        surviving.id,
        merged.id,
    )
    session.expire(surviving)
    return surviving


def merges_into(session: Session, case_id: str) -> list[tuple[CaseMerge, Case]]:
    """The merges into a case with each merged case, oldest first (for a page that has read
    the case already)."""
    return [
        (merge, merged)
        for merge, merged in session.execute(
            select(CaseMerge, Case)
            .join(Case, Case.id == CaseMerge.merged_case_id)
            .where(CaseMerge.surviving_case_id == case_id)
            .order_by(CaseMerge.merged_at, CaseMerge.id)
        ).all()
    ]


def merge_json(merge: CaseMerge, merged: Case) -> dict[str, Any]:
    """The API shape of one merge into a case."""
    return {
        "merged_case_id": merged.id,
        "merged_reference": merged.reference,
        "reason": merge.reason,
        "moved": dict(merge.moved),
        "at": merge.merged_at.isoformat(),
    }
