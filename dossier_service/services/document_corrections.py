"""Correcting a document's metadata and moving it to the right case, with its history.

A correction (title, type, document date, tags) changes the document, not its content: no
new version is made, each changed field is kept as a ``DocumentChange`` with the reason,
and the index entry is rewritten after commit. A move (canton only) takes the document with
every version to another case; access follows at once because the policy reads the case
from the database, and the index entry is rewritten with the new case's facts.
"""

from __future__ import annotations

import datetime as dt
import re
import unicodedata
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.bodies.documents import DocumentUpdate, MoveInput
from dossier_service.dates import local_today, utcnow
from dossier_service.errors import Conflict, NotFound, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import (
    Case,
    CostApproval,
    CostApprovalDocument,
    Document,
    DocumentChange,
)
from dossier_service.policy import Action, load_case
from dossier_service.services import audit
from dossier_service.services.cases import touch
from dossier_service.services.documents import (
    enqueue_reindex,
    load_document,
    parse_title,
    parse_type,
)

#: Most tags one document carries, and the longest tag.
MAX_TAGS = 20
MAX_TAG_CHARS = 40

#: The fields a correction may change.
FIELDS = ("title", "type", "document_date", "tags")


def parse_tags(raw: object) -> list[str]:
    """Normalised keywords: trimmed, inner spaces collapsed, lower case, unique, sorted."""
    if not isinstance(raw, list) or not all(isinstance(t, str) for t in raw):
        raise Unprocessable("'tags' must be a list of words.", field="tags")
    tags: set[str] = set()
    for item in raw:
        tag = re.sub(r"\s+", " ", unicodedata.normalize("NFC", item)).strip().lower()
        if not tag:
            continue
        if len(tag) > MAX_TAG_CHARS:
            raise Unprocessable(
                f"A tag is longer than {MAX_TAG_CHARS} characters: {tag[:MAX_TAG_CHARS]}...",
                code="tag_too_long",
                field="tags",
            )
        if any(unicodedata.category(c).startswith("C") for c in tag):
            raise Unprocessable("A tag contains control characters.", field="tags")
        tags.add(tag)
    if len(tags) > MAX_TAGS:
        raise Unprocessable(
            f"A document carries at most {MAX_TAGS} tags.", code="too_many_tags", field="tags"
        )
    return sorted(tags)


def check_document_date(value: dt.date | None) -> dt.date | None:
    """The date on the document: not in the future (Zurich calendar), not before 1900."""
    if value is None:
        return None
    if value > local_today():
        raise Unprocessable(
            "'document_date' lies in the future.", code="date_in_future", field="document_date"
        )
    if value.year < 1900:
        raise Unprocessable("'document_date' is before 1900.", field="document_date")
    return value


def _json_value(field: str, value: Any) -> Any:
    if isinstance(value, dt.date):
        return value.isoformat()
    if field == "tags":
        return list(value or [])
    return value


def _record(
    session: Session,
    identity: Identity,
    document: Document,
    field: str,
    old: Any,
    new: Any,
    reason: str,
) -> None:
    session.add(
        DocumentChange(
            document_id=document.id,
            field=field,
            old_value=_json_value(field, old),
            new_value=_json_value(field, new),
            reason=reason,
            changed_at=utcnow(),
            changed_by_id=identity.user_id,
        )
    )


def correct_document(
    session: Session, identity: Identity, document_id: str, update: DocumentUpdate
) -> Document:
    """Change title, type, document date and/or tags with a reason (whoever writes the case)."""
    sent = update.model_fields_set - {"reason"}
    wanted: dict[str, Any] = {}
    for field in ("title", "type", "tags"):
        if field in sent and getattr(update, field) is None:
            raise Unprocessable(f"'{field}' cannot be emptied.", field=field)
    if update.title is not None:
        wanted["title"] = parse_title(update.title, "")
    if update.type is not None:
        wanted["type"] = parse_type(update.type)
    if "document_date" in sent:
        wanted["document_date"] = check_document_date(update.document_date)
    if update.tags is not None:
        wanted["tags"] = parse_tags(update.tags)
    if not wanted:
        raise Unprocessable(
            "Name at least one field to change: " + ", ".join(FIELDS) + ".",
            code="nothing_to_change",
        )
    reason = update.reason
    document, case = load_document(session, identity, document_id, Action.CASE_WRITE)
    changed = {}
    for field, new in wanted.items():
        old = getattr(document, field)
        if field == "tags":
            old = list(old or [])
        if old != new:
            changed[field] = (old, new)
    if not changed:
        raise Conflict("The document already has these values.", code="nothing_changed")
    for field, (old, new) in changed.items():
        setattr(document, field, new)
        _record(session, identity, document, field, old, new, reason)
    touch(case)
    session.flush()
    audit.record(
        session,
        identity,
        "document.correct",
        case_id=case.id,
        document_id=document.id,
        detail={
            "fields": sorted(changed),
            "reason": reason,
            # Old and new values stay in document_changes; the log names what changed.
        },
    )
    enqueue_reindex(session, document)
    return document


def move_document(
    session: Session, identity: Identity, document_id: str, move: MoveInput
) -> Document:
    """Move a document with all its versions to another case (canton), with a reason."""
    target_id, reason = move.to_case, move.reason
    document, source = load_document(session, identity, document_id, Action.DOCUMENT_MOVE)
    try:
        target = load_case(session, identity, target_id, Action.DOCUMENT_MOVE)
    except NotFound:
        raise Unprocessable(
            "'to_case' names no case.", code="target_not_found", field="to_case"
        ) from None
    if target.id == source.id:
        raise Conflict("The document is in this case already.", code="same_case")
    if _supports_cost_approval(session, document.id):
        # The request or decision of the old case would then rest on another person's file.
        raise Conflict(
            "The document belongs to a cost approval of this case (as attachment or decision "
            "letter); it cannot be moved. Withdraw it instead, and file it anew in the right case.",
            code="document_in_use",
        )
    relocate(session, identity, document, source, target, reason)
    touch(source)
    touch(target)
    session.flush()
    detail = {"from_case": source.id, "to_case": target.id, "reason": reason}
    # Both dossiers' access logs name the move: the person of each may ask for them.
    audit.record(
        session,
        identity,
        "document.move",
        case_id=source.id,
        document_id=document.id,
        detail=detail,
    )
    audit.record(
        session,
        identity,
        "document.move_in",
        case_id=target.id,
        document_id=document.id,
        detail=detail,
    )
    return document


def relocate(
    session: Session,
    identity: Identity,
    document: Document,
    source: Case,
    target: Case,
    reason: str,
) -> None:
    """Put the document with all its versions into the target case, noting the move in its
    history and queueing its index rewrite (a move and a case merge share this step)."""
    document.case_id = target.id
    _record(session, identity, document, "case", source.reference, target.reference, reason)
    enqueue_reindex(session, document)


def _supports_cost_approval(session: Session, document_id: str) -> bool:
    """True if a cost approval attaches the document or names it as its decision letter."""
    attached = select(CostApprovalDocument.document_id).where(
        CostApprovalDocument.document_id == document_id
    )
    decided = select(CostApproval.id).where(CostApproval.decision_document_id == document_id)
    return (
        session.execute(attached.limit(1)).first() is not None
        or session.execute(decided.limit(1)).first() is not None
    )


def history(
    session: Session, identity: Identity, document_id: str, *, include_withdrawn: bool = False
) -> list[DocumentChange]:
    """The document's corrections, oldest first; audited as document.history.

    ``include_withdrawn``: the canton reads a withdrawn document's history as well.
    """
    action = Action.DOCUMENT_READ_WITHDRAWN if include_withdrawn else Action.CASE_READ
    document, case = load_document(
        session, identity, document_id, action, include_withdrawn=include_withdrawn
    )
    changes = list(
        session.execute(
            select(DocumentChange)
            .where(DocumentChange.document_id == document.id)
            .order_by(DocumentChange.changed_at, DocumentChange.id)
        ).scalars()
    )
    audit.record(
        session,
        identity,
        "document.history",
        case_id=case.id,
        document_id=document.id,
        detail={"count": len(changes)},
    )
    return changes


def changes_of(session: Session, document_id: str) -> list[DocumentChange]:
    """A document's history without a policy check: for a page that has read it already."""
    return list(
        session.execute(
            select(DocumentChange)
            .where(DocumentChange.document_id == document_id)
            .order_by(DocumentChange.changed_at, DocumentChange.id)
        ).scalars()
    )


def change_json(change: DocumentChange) -> dict[str, Any]:
    """The API shape of one history entry."""
    return {
        "field": change.field,
        "old": change.old_value,
        "new": change.new_value,
        "reason": change.reason,
        "by": change.changed_by.username,
        "at": change.changed_at.isoformat(),
    }


def case_by_reference(session: Session, reference: str) -> Case | None:
    """The case with this reference (for the web form's "move to case" field)."""
    return session.execute(
        select(Case).where(Case.reference == reference.strip().upper())
    ).scalar_one_or_none()
