"""Withdrawing a misfiled document, and purging a withdrawn one where the law requires.

Withdrawn: the document stays in the database and in storage, but every reader's lists,
downloads and searches leave it out at once (``documents.load_document`` answers 404, the
index entry is removed after commit and the search service drops it meanwhile). It stays
for the audit log, for the disclosure of the person whose dossier holds it (marked as
withdrawn) and for the canton, which lists and reads it explicitly (audited separately).
Withdrawing is for the responsible unit and the canton; SIP exports leave it out, so the
archive never receives content filed under the wrong person.

Purged (canton only, withdrawn first, never under legal hold): the document's rows go, a
``DocumentTombstone`` stays, and after commit every version's bytes, extracted text and
index entries are deleted (``finish_purge``; an unfinished one is retried by the
``dossier.purge_document`` task and reported by fsck as an orphan until then).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import delete, select

from dossier_service.dates import utcnow
from dossier_service.errors import Conflict
from dossier_service.identity import Identity
from dossier_service.models import (
    Document,
    DocumentChange,
    DocumentTombstone,
    LegalHold,
)
from dossier_service.policy import Action
from dossier_service.services import audit, outbox
from dossier_service.services.cases import touch
from dossier_service.services.documents import (
    enqueue_reindex,
    load_document,
    parse_reason,
)
from search import SearchError
from storage import StorageError

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

    from dossier_service.container import Container

log = logging.getLogger(__name__)

#: Deletes a purged document's objects and index entries (idempotent, retried).
PURGE_TASK = "dossier.purge_document"


def withdraw(
    session: Session, identity: Identity, document_id: str, reason_raw: object
) -> Document:
    """Withdraw a document with a reason (responsible unit or canton); 409 if it is already."""
    reason = parse_reason(reason_raw, required=True)
    assert reason is not None
    document, case = load_document(
        session, identity, document_id, Action.DOCUMENT_WITHDRAW, include_withdrawn=True
    )
    if document.withdrawn_at is not None:
        raise Conflict("The document is withdrawn already.", code="already_withdrawn")
    now = utcnow()
    document.withdrawn_at = now
    document.withdrawn_by = identity.username
    document.withdrawn_reason = reason
    session.add(
        DocumentChange(
            document_id=document.id,
            field="withdrawn",
            old_value=None,
            new_value=now.isoformat(),
            reason=reason,
            changed_at=now,
            changed_by_id=identity.user_id,
        )
    )
    touch(case)
    session.flush()
    audit.record(
        session,
        identity,
        "document.withdraw",
        case_id=case.id,
        document_id=document.id,
        detail={"reason": reason},
    )
    enqueue_reindex(session, document)
    return document


def _under_legal_hold(session: Session, case_id: str) -> bool:
    return (
        session.execute(
            select(LegalHold.id).where(
                LegalHold.case_id == case_id, LegalHold.released_at.is_(None)
            )
        ).first()
        is not None
    )


def purge(
    session: Session, identity: Identity, document_id: str, reason_raw: object
) -> DocumentTombstone:
    """Purge a withdrawn document (canton): rows go now, bytes and index entries after commit."""
    reason = parse_reason(reason_raw, required=True)
    assert reason is not None
    document, case = load_document(
        session, identity, document_id, Action.DOCUMENT_PURGE, include_withdrawn=True
    )
    if document.withdrawn_at is None:
        raise Conflict(
            "Only a withdrawn document can be purged; withdraw it first.", code="not_withdrawn"
        )
    if _under_legal_hold(session, case.id):
        raise Conflict(
            "The case is under legal hold: nothing may be deleted until it is released.",
            code="legal_hold",
        )
    pending: list[str] = []
    for version in document.versions:
        pending.append(version.storage_key)
        if version.text_key:
            pending.append(version.text_key)
        # Everything derived from a version lives below this prefix (see indexing.text_key).
        pending.append(f"derived/{version.id[:2]}/{version.id}/")
    tombstone = DocumentTombstone(
        document_id=document.id,
        case_id=case.id,
        type=document.type,
        versions=len(document.versions),
        withdrawn_at=document.withdrawn_at,
        withdrawn_by=document.withdrawn_by or "",
        withdrawn_reason=document.withdrawn_reason or "",
        purged_at=utcnow(),
        purged_by=identity.username,
        reason=reason,
        pending_objects=pending,
    )
    session.add(tombstone)
    versions = len(document.versions)
    session.flush()
    # Versions, history and cost-approval attachments go with the row (ON DELETE CASCADE).
    session.execute(delete(Document).where(Document.id == document.id))
    session.expire_all()
    touch(case)
    audit.record(
        session,
        identity,
        "document.purge",
        case_id=case.id,
        document_id=document_id,
        detail={"reason": reason, "versions": versions, "objects": len(pending)},
    )
    outbox.enqueue(session, PURGE_TASK, document_id=document_id, versions=versions)
    return tombstone


def finish_purge(container: Container, document_id: str, versions: int) -> bool:
    """Delete a purged document's objects and index entries; False if something failed."""
    with container.db.transaction() as session:
        tombstone = session.get(DocumentTombstone, document_id)
        if tombstone is None or tombstone.objects_deleted_at is not None:
            return True
        items = list(tombstone.pending_objects or [])
    store = container.store
    try:
        for item in items:
            if item.endswith("/"):
                for key in list(store.iter_keys(item)):
                    store.delete(key)
            else:
                store.delete(item)
        container.search.delete([f"{document_id}:{n}" for n in range(1, versions + 1)])
        container.search.refresh()
    except (StorageError, SearchError) as exc:
        log.error("purging document %s is unfinished, retried: %s", document_id, exc)
        return False
    with container.db.transaction() as session:
        tombstone = session.get(DocumentTombstone, document_id)
        if tombstone is not None:
            tombstone.pending_objects = []
            tombstone.objects_deleted_at = utcnow()
    return True


def tombstone_json(tombstone: DocumentTombstone) -> dict[str, object]:
    """The API shape of a purged document's tombstone."""
    return {
        "id": tombstone.document_id,
        "case_id": tombstone.case_id,
        "type": tombstone.type,
        "versions": tombstone.versions,
        "withdrawn_at": tombstone.withdrawn_at.isoformat(),
        "withdrawn_by": tombstone.withdrawn_by,
        "withdrawn_reason": tombstone.withdrawn_reason,
        "purged_at": tombstone.purged_at.isoformat(),
        "purged_by": tombstone.purged_by,
        "reason": tombstone.reason,
    }
