"""Background processing of a stored version: fixity, text extraction, indexing.

Steps (each version, in a worker): re-read the stored object into a private temp file
while hashing it (fixity: the bytes are what was uploaded), extract its text under limits
(PDF text layer + OCR of scans, DOCX, images, plain text), store the text as a derived
object beside the original (never changing the original), and index the version. The
version's ``processing`` state moves pending → processing → ready | failed (with a reason a
person understands). Idempotent: running it again redoes the same work and ends in the same
state; a transient failure (storage or index unreachable) resets it to pending and is retried.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.identity import Identity
from dossier_service.models import Document, DocumentVersion
from dossier_service.policy import Action, load_case
from dossier_service.services import audit
from search import SearchError
from storage import ObjectNotFound, StorageError

if TYPE_CHECKING:
    from dossier_service.container import Container

log = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying later (storage or index unreachable)."""


class ExtractionResult(Protocol):
    """What an extractor returns (workers.extract.Extraction satisfies it)."""

    ok: bool
    text: str
    reason: str | None
    pages: int | None
    ocr_pages: int
    chars: int
    method: str
    warnings: list[str]


#: Extracts the text of a file: (path, media_type) -> result. Injected by the worker so
#: that domain services do not import the worker package.
Extractor = Callable[[Path, str], ExtractionResult]


def version_states(
    session: Session, identity: Identity, case_id: str, version_ids: list[str] | None = None
) -> dict[str, tuple[str, str | None]]:
    """{version id: (processing state, reason of a failure)} of the case's versions.

    Only the wanted versions when ``version_ids`` is given. Checked by the read policy but
    not audited: it tells states only (no titles or content), and pages poll it.
    """
    case = load_case(session, identity, case_id, Action.CASE_READ)
    query = (
        select(DocumentVersion.id, DocumentVersion.processing, DocumentVersion.processing_error)
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.case_id == case.id)
    )
    if version_ids:
        query = query.where(DocumentVersion.id.in_(version_ids))
    return {vid: (state, error) for vid, state, error in session.execute(query)}


def hash_object(container: Container, key: str) -> tuple[str, int]:
    """Stream an object and return its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    for chunk in container.store.open(key):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def _fetch(container: Container, key: str) -> tuple[Path, str]:
    """Copy an object into a private temp file, hashing it on the way."""
    spool = container.settings.spool_dir
    spool.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix="process-", dir=spool)
    digest = hashlib.sha256()
    try:
        with os.fdopen(fd, "wb") as handle:
            for chunk in container.store.open(key):
                digest.update(chunk)
                handle.write(chunk)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name), digest.hexdigest()


def _set_state(container: Container, version_id: str, **values: Any) -> None:
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is not None:
            for name, value in values.items():
                setattr(version, name, value)


def _store_text(container: Container, version_id: str, text: str) -> str:
    """Write the extracted text as a derived object (replacing an earlier extraction)."""
    from dossier_service.services.indexing import text_key

    key = text_key(version_id)
    # Derived data may be redone by `dossier reprocess`; originals are never touched.
    container.store.delete(key)
    container.store.put_bytes(
        key, text.encode("utf-8"), {"version-id": version_id, "kind": "extracted-text"}
    )
    return key


def process_version(container: Container, version_id: str, extract: Extractor | None = None) -> str:
    """Run the pipeline for one version and return its final processing state."""
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is None:
            log.warning("version %s no longer exists; nothing to process", version_id)
            return "missing"
        key, expected, media_type = version.storage_key, version.sha256, version.media_type
        case_id, document_id, number = version.document.case_id, version.document_id, version.number
        version.processing = "processing"
        version.processing_error = None

    path: Path | None = None
    try:
        try:
            path, actual = _fetch(container, key)
            fixity = "ok" if actual == expected else "mismatch"
        except ObjectNotFound:
            fixity = "missing"
        except StorageError as exc:
            _set_state(container, version_id, processing="pending")
            raise TransientError(str(exc)) from exc
        with container.db.transaction() as session:
            version = session.get(DocumentVersion, version_id)
            if version is None:
                return "missing"
            version.fixity_status = fixity
            version.fixity_checked_at = utcnow()
            audit.record(
                session,
                None,
                "fixity.check",
                case_id=case_id,
                document_id=document_id,
                version=number,
                detail={"status": fixity},
            )
        if fixity != "ok":
            log.error("fixity of version %s (%s): %s", version_id, key, fixity)
            reason = (
                "The stored object is missing."
                if fixity == "missing"
                else "The stored bytes do not match the checksum recorded at upload."
            )
            _set_state(container, version_id, processing="failed", processing_error=reason)
            return "failed"

        if extract is None:
            _set_state(container, version_id, processing="ready")
            return "ready"

        assert path is not None
        result = extract(path, media_type)
        info = {
            "method": result.method,
            "pages": result.pages,
            "ocr_pages": result.ocr_pages,
            "warnings": list(result.warnings)[:20],
        }
        if not result.ok:
            _set_state(
                container,
                version_id,
                processing="failed",
                processing_error=f"Text extraction failed: {result.reason}",
                extraction=info,
                text_chars=0,
            )
            return "failed"
        try:
            text_key = _store_text(container, version_id, result.text)
        except StorageError as exc:
            _set_state(container, version_id, processing="pending")
            raise TransientError(str(exc)) from exc
        _set_state(
            container, version_id, text_key=text_key, text_chars=result.chars, extraction=info
        )
        from dossier_service.services.indexing import index_version

        try:
            index_version(container, version_id)
        except SearchError as exc:
            _set_state(container, version_id, processing="pending")
            raise TransientError(f"search index: {exc}") from exc
        _set_state(container, version_id, processing="ready")
        return "ready"
    finally:
        if path is not None:
            path.unlink(missing_ok=True)
