"""Documents and their immutable versions: upload, read metadata, open content.

Upload order (why it is safe):
1. the caller's right to write is checked before the body is read;
2. the body is streamed to a spool file, hashed and sniffed (``uploads``);
3. the file is inspected in a sandboxed child process (``files.inspect``);
4. the bytes go to object storage under a key derived from the new version's id;
5. one transaction re-checks the right to write (the case may have moved meanwhile) and
   inserts document/version rows, the audit entry and the outbox task; the caller's unit
   of work commits it.
A failure in 1–4 leaves no row; a rollback of 5 deletes the object again (``db.on_rollback``);
a crash between 4 and 5 leaves an unreferenced object that ``dossier fsck`` reports as an
orphan. Steps 2–4 run outside any transaction: the read of step 1 is rolled back on
purpose, so no lock is held while the bytes are received, inspected and stored.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.db import on_rollback
from dossier_service.errors import (
    Conflict,
    NotFound,
    PreconditionFailed,
    ServiceUnavailable,
    Unprocessable,
)
from dossier_service.files.inspect import inspect_file
from dossier_service.identity import Identity
from dossier_service.models import DOCUMENT_TYPES, Case, Document, DocumentVersion
from dossier_service.policy import Action, load_case, require
from dossier_service.services import audit, outbox
from dossier_service.services.cases import touch
from dossier_service.uploads import SpooledFile
from storage import ObjectNotFound, StorageError, StorageUnavailable

if TYPE_CHECKING:
    from dossier_service.container import Container

log = logging.getLogger(__name__)

PROCESS_TASK = "dossier.process_version"
#: Rewrites (or removes) a document's index entry after its metadata, case or state changed.
INDEX_TASK = "dossier.index_document"

#: Longest reason a version, a correction, a withdrawal or a move may carry.
MAX_REASON_CHARS = 2000


def parse_reason(raw: object, *, required: bool) -> str | None:
    """A trimmed reason text; 422 ``reason_required`` if required and empty."""
    if raw is not None and not isinstance(raw, str):
        raise Unprocessable("'reason' must be text.", field="reason")
    reason = (raw or "").strip()
    if not reason:
        if required:
            raise Unprocessable(
                "Give a reason for the change.", code="reason_required", field="reason"
            )
        return None
    if len(reason) > MAX_REASON_CHARS:
        raise Unprocessable(
            f"'reason' is longer than {MAX_REASON_CHARS} characters.", field="reason"
        )
    if any(ord(c) < 32 and c not in "\n\r\t" for c in reason):
        raise Unprocessable("'reason' contains control characters.", field="reason")
    return reason


def enqueue_reindex(session: Session, document: Document) -> None:
    """Queue the rewrite (or removal) of the document's index entries after commit."""
    last = document.versions[-1].number if document.versions else 0
    outbox.enqueue(session, INDEX_TASK, document_id=document.id, versions=last)


def storage_key(version_id: str) -> str:
    """The object key of a version: derived from its id, never from a filename."""
    return f"versions/{version_id[:2]}/{version_id}"


def parse_type(raw: str | None) -> str:
    if not raw or raw not in DOCUMENT_TYPES:
        raise Unprocessable(
            "'type' must be one of: " + ", ".join(DOCUMENT_TYPES) + ".", field="type"
        )
    return raw


# Bidi overrides and isolates make "Rechnung\u202egnp.exe" display as "Rechnungexe.png"; a
# title is shown to other caseworkers, so they are removed as from filenames.
_BIDI_CONTROLS = frozenset(chr(cp) for cp in (*range(0x202A, 0x202F), *range(0x2066, 0x206A)))


def parse_title(raw: str | None, fallback: str) -> str:
    cleaned = "".join(c for c in (raw or "") if c not in _BIDI_CONTROLS)
    title = cleaned.strip() or fallback
    if len(title) > 300:
        raise Unprocessable("'title' is longer than 300 characters.", field="title")
    if any(ord(c) < 32 for c in title):
        raise Unprocessable("'title' contains control characters.", field="title")
    return title


def normalise_etag(raw: str | None) -> str | None:
    """The sha256 inside an If-Match/If-None-Match value (quotes and W/ removed)."""
    if raw is None:
        return None
    value = raw.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"').lower()


@dataclass
class _StoredObject:
    key: str
    version_id: str


def _inspect(container: Container, upload: SpooledFile) -> dict[str, Any]:
    report = inspect_file(
        upload.path, upload.media_type, timeout_s=container.settings.inspect_timeout
    )
    if not report.ok:
        raise Unprocessable(
            f"The file was refused: {report.reason}.", code="damaged_file", reason=report.reason
        )
    return dict(report.flags)


def _store(
    container: Container, upload: SpooledFile, case_id: str, document_id: str, number: int
) -> _StoredObject:
    version_id = str(uuid.uuid4())
    key = storage_key(version_id)
    metadata = {
        "case-id": case_id,
        "document-id": document_id,
        "version-id": version_id,
        "version": str(number),
        "sha256": upload.sha256,
        "created-at": utcnow().isoformat(),
    }
    try:
        container.store.put_file(key, upload.path, metadata)
    except StorageUnavailable as exc:
        raise ServiceUnavailable(
            "The document store cannot be reached; nothing was saved. Please try again later.",
            code="storage_unavailable",
        ) from exc
    except StorageError as exc:
        log.error("storing %s failed: %s", key, exc)
        raise ServiceUnavailable(
            "The document could not be stored; nothing was saved.", code="storage_failed"
        ) from exc
    return _StoredObject(key, version_id)


def _discard_object(container: Container, obj: _StoredObject) -> None:
    try:
        container.store.delete(obj.key)
    except StorageError as exc:  # fsck will report it as an orphan
        log.error("could not remove unreferenced object %s: %s", obj.key, exc)


def _write_version(
    container: Container,
    session: Session,
    obj: _StoredObject,
    write: Any,
) -> None:
    """Run ``write`` (rows + audit + outbox); the stored object goes if they do not commit."""
    on_rollback(session, lambda: _discard_object(container, obj))
    write()


def _new_version(
    document: Document,
    number: int,
    upload: SpooledFile,
    obj: _StoredObject,
    identity: Identity,
    flags: dict[str, Any],
) -> DocumentVersion:
    return DocumentVersion(
        id=obj.version_id,
        document_id=document.id,
        number=number,
        storage_key=obj.key,
        sha256=upload.sha256,
        size=upload.size,
        media_type=upload.media_type,
        filename=upload.filename,
        created_at=utcnow(),
        created_by_id=identity.user_id,
        processing="pending",
        flags=flags,
    )


def create_document(
    container: Container,
    session: Session,
    identity: Identity,
    case_id: str,
    upload: SpooledFile,
    fields: dict[str, str],
    *,
    action: Action = Action.CASE_WRITE,
    also_write: Callable[[Session, Document], None] | None = None,
) -> Document:
    """Add a new document (version 1) to a case; the caller's transaction commits it.

    ``action`` is the right the caller needs on the case (a cost decision's letter is filed
    by the canton under COST_APPROVAL_DECIDE); ``also_write`` adds rows to the same
    transaction, so they commit with the document or, like it, not at all.
    """
    doc_type = parse_type(fields.get("type"))
    title = parse_title(fields.get("title"), upload.filename)
    # Validate before the (slow) inspection and storage write.
    load_case(session, identity, case_id, action)
    session.rollback()  # release the read snapshot / SQLite lock while we inspect and store
    flags = _inspect(container, upload)
    document_id = str(uuid.uuid4())
    obj = _store(container, upload, case_id, document_id, 1)
    document = Document(
        id=document_id,
        case_id=case_id,
        type=doc_type,
        title=title,
        created_at=utcnow(),
        created_by_id=identity.user_id,
    )

    def write() -> None:
        case = load_case(session, identity, case_id, action)
        session.add(document)
        session.flush()
        version = _new_version(document, 1, upload, obj, identity, flags)
        session.add(version)
        touch(case)
        session.flush()
        audit.record(
            session,
            identity,
            "document.create",
            case_id=case_id,
            document_id=document.id,
            version=1,
            detail={"type": doc_type, "sha256": upload.sha256, "size": upload.size},
        )
        outbox.enqueue(session, PROCESS_TASK, version_id=version.id)
        if also_write is not None:
            also_write(session, document)

    _write_version(container, session, obj, write)
    return get_document_row(session, document.id)


def add_version(
    container: Container,
    session: Session,
    identity: Identity,
    document_id: str,
    upload: SpooledFile,
    if_match: str | None,
    reason: str | None = None,
) -> Document:
    """Add the next version of a document; If-Match guards against lost updates.

    Bytes identical to the current version answer 409 ``identical_version`` before anything
    is stored; ``reason`` (optional) is kept with the version.
    """
    reason = parse_reason(reason, required=False)
    document, _case = load_document(session, identity, document_id, Action.CASE_WRITE)
    current = document.versions[-1]
    expected = normalise_etag(if_match)
    if expected is not None and expected != "*" and expected != current.sha256:
        raise PreconditionFailed(
            "The document has changed since you loaded it; reload and try again.",
            code="version_conflict",
        )
    if upload.sha256 == current.sha256:
        raise Conflict(
            f"The file is identical to the current version {current.number}; nothing was saved.",
            code="identical_version",
        )
    number = current.number + 1
    case_id = document.case_id
    session.rollback()  # release the read snapshot / SQLite lock while we inspect and store
    flags = _inspect(container, upload)
    obj = _store(container, upload, case_id, document_id, number)

    def write() -> None:
        doc, case = load_document(session, identity, document_id, Action.CASE_WRITE)
        latest = session.execute(
            select(func.max(DocumentVersion.number)).where(DocumentVersion.document_id == doc.id)
        ).scalar_one()
        previous = doc.versions[-1] if doc.versions else None
        if latest == number - 1 and previous is not None and previous.sha256 == upload.sha256:
            # The same bytes became the current version meanwhile: store nothing (the
            # object goes with the rollback).
            raise Conflict(
                "The file is identical to the current version; nothing was saved.",
                code="identical_version",
            )
        if latest != number - 1:
            if expected is not None:
                raise PreconditionFailed(
                    "Another version was added meanwhile; reload and try again.",
                    code="version_conflict",
                )
            raise Conflict(
                "Another version was added at the same time; please try again.",
                code="concurrent_version",
            )
        version = _new_version(doc, number, upload, obj, identity, flags)
        version.reason = reason
        session.add(version)
        touch(case)
        try:
            session.flush()
        except IntegrityError:
            raise Conflict(
                "Another version was added at the same time; please try again.",
                code="concurrent_version",
            ) from None
        audit.record(
            session,
            identity,
            "version.create",
            case_id=case.id,
            document_id=doc.id,
            version=number,
            detail={"sha256": upload.sha256, "size": upload.size, "reason": reason},
        )
        outbox.enqueue(session, PROCESS_TASK, version_id=version.id)

    _write_version(container, session, obj, write)
    session.expire_all()
    return get_document_row(session, document_id)


def get_document_row(session: Session, document_id: str) -> Document:
    """Load a document by id without any policy check (internal use only)."""
    document = session.get(Document, document_id)
    if document is None:
        raise NotFound("No such document.", code="document_not_found")
    return document


def load_document(
    session: Session,
    identity: Identity,
    document_id: str,
    action: Action,
    *,
    include_withdrawn: bool = False,
) -> tuple[Document, Case]:
    """The document and its case, if the caller may perform the action on the case.

    A document in a case the caller may not read answers 404, like the case itself; a role
    that may never perform the action answers 403 whether or not the document exists. A
    withdrawn document answers 404 too, unless ``include_withdrawn`` (the caller's action
    is one on withdrawn documents, which the policy grants the canton only).
    """
    require(identity, Action.CASE_READ)
    require(identity, action)
    row = session.execute(
        select(Document.case_id, Document.withdrawn_at).where(Document.id == document_id)
    ).one_or_none()
    if row is None or (row.withdrawn_at is not None and not include_withdrawn):
        raise NotFound("No such document.", code="document_not_found")
    case_id = row.case_id
    try:
        case = load_case(session, identity, case_id, action)
    except NotFound:
        raise NotFound("No such document.", code="document_not_found") from None
    document = session.get(Document, document_id)
    assert document is not None
    return document, case


def read_document(
    session: Session, identity: Identity, document_id: str, *, withdrawn: bool = False
) -> Document:
    """Document metadata with its versions; audited as document.read.

    With ``withdrawn`` the canton reads a withdrawn document too, audited as the separate
    action document.read_withdrawn.
    """
    if withdrawn:
        document, case = load_document(
            session, identity, document_id, Action.DOCUMENT_READ_WITHDRAWN, include_withdrawn=True
        )
        audit.record(
            session, identity, "document.read_withdrawn", case_id=case.id, document_id=document.id
        )
        return document
    document, case = load_document(session, identity, document_id, Action.CASE_READ)
    audit.record(session, identity, "document.read", case_id=case.id, document_id=document.id)
    return document


def list_documents(
    session: Session, identity: Identity, case_id: str, *, withdrawn: bool = False
) -> list[Document]:
    """The case's documents in upload order; audited as document.list.

    Withdrawn documents are left out; with ``withdrawn`` the canton lists only them,
    audited as document.list_withdrawn.
    """
    action = Action.DOCUMENT_READ_WITHDRAWN if withdrawn else Action.CASE_READ
    case = load_case(session, identity, case_id, action)
    state = Document.withdrawn_at.is_not(None) if withdrawn else Document.withdrawn_at.is_(None)
    docs = list(
        session.execute(
            select(Document)
            .where(Document.case_id == case.id, state)
            .order_by(Document.created_at, Document.id)
        ).scalars()
    )
    audit.record(
        session,
        identity,
        "document.list_withdrawn" if withdrawn else "document.list",
        case_id=case.id,
        detail={"count": len(docs)},
    )
    return docs


def find_version(document: Document, number: int | None) -> DocumentVersion:
    """The numbered version, or the current one when number is None."""
    if number is None:
        return document.versions[-1]
    for version in document.versions:
        if version.number == number:
            return version
    raise NotFound(f"Version {number} does not exist.", code="version_not_found")


def authorize_version(
    session: Session,
    identity: Identity,
    document_id: str,
    number: int | None,
    *,
    withdrawn: bool = False,
) -> tuple[Document, Case, DocumentVersion]:
    """The document, its case and the wanted version (current if number is None), if readable.

    With ``withdrawn`` the canton opens a withdrawn document's versions as well.
    """
    if withdrawn:
        document, case = load_document(
            session, identity, document_id, Action.DOCUMENT_READ_WITHDRAWN, include_withdrawn=True
        )
    else:
        document, case = load_document(session, identity, document_id, Action.CASE_READ)
    return document, case, find_version(document, number)


def open_content(
    container: Container,
    session: Session,
    identity: Identity,
    case: Case,
    version: DocumentVersion,
    byte_range: tuple[int, int | None] | None = None,
    *,
    not_modified: bool = False,
    withdrawn: bool = False,
) -> Iterator[bytes] | None:
    """Audit (content.read) and open a version's bytes or a range (start, length) of them.

    With ``not_modified`` (the client's copy is current) the read is logged, nothing opened.
    """
    detail: dict[str, Any] = {}
    if byte_range is not None:
        detail["range"] = [byte_range[0], byte_range[1]]
    if not_modified:
        detail["not_modified"] = True
    stream: Iterator[bytes] | None = None
    if not not_modified:
        start, length = byte_range or (0, None)
        try:
            stream = container.store.open(version.storage_key, start, length)
        except ObjectNotFound:
            log.error("object %s of version %s is missing", version.storage_key, version.id)
            raise ServiceUnavailable(
                "The document's content is missing from storage; operators were alerted.",
                code="content_missing",
            ) from None
        except StorageError as exc:
            raise ServiceUnavailable(
                "The document store cannot be reached. Please try again later.",
                code="storage_unavailable",
            ) from exc
    audit.record(
        session,
        identity,
        "content.read_withdrawn" if withdrawn else "content.read",
        case_id=case.id,
        document_id=version.document_id,
        version=version.number,
        detail=detail,
    )
    return stream


def version_json(version: DocumentVersion) -> dict[str, Any]:
    """The API shape of a version."""
    return {
        "number": version.number,
        "sha256": version.sha256,
        "size": version.size,
        "media_type": version.media_type,
        "filename": version.filename,
        "created_at": version.created_at.isoformat(),
        "created_by": version.created_by.username,
        "processing": version.processing,
        "processing_error": version.processing_error,
        "flags": version.flags or {},
        "fixity": version.fixity_status,
        "reason": version.reason,
    }


def document_json(document: Document) -> dict[str, Any]:
    """The API shape of a document with all its versions."""
    return {
        "id": document.id,
        "case_id": document.case_id,
        "type": document.type,
        "title": document.title,
        "document_date": document.document_date.isoformat() if document.document_date else None,
        "tags": list(document.tags or []),
        "created_at": document.created_at.isoformat(),
        "current_version": document.versions[-1].number if document.versions else None,
        "versions": [version_json(v) for v in document.versions],
        "withdrawn": document.withdrawn_at is not None,
        "withdrawn_at": document.withdrawn_at.isoformat() if document.withdrawn_at else None,
        "withdrawn_reason": document.withdrawn_reason,
    }
