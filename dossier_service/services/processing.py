"""Background processing of a stored version: fixity, text extraction, indexing.

Steps (each version, in a worker): re-read the stored object into a private temp file
while hashing it (fixity: the bytes are what was uploaded), extract its text under limits
(PDF text layer + OCR of scans, DOCX, images, plain text), store the text as a derived
object beside the original (never changing the original), and index the version. The
version's ``processing`` state moves pending → processing → ready | failed (with a reason a
person understands). Idempotent: running it again redoes the same work and ends in the same
state; a transient failure (storage or index unreachable) resets it to pending and is retried.

Leases: a worker claims a version with one atomic UPDATE that names it the owner until
``processing_lease_until``; a heartbeat thread renews the lease while the work (OCR) runs, so
a live job is never run twice. A worker killed mid-work stops renewing: once the lease has
expired the periodic ``requeue_stuck`` puts the version back on the queue, and after
``processing_max_attempts`` such claims it marks the version failed with a reason.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.identity import Identity
from dossier_service.models import Document, DocumentVersion
from dossier_service.models.documents import PROCESSING_STATES
from dossier_service.policy import Action, load_case
from dossier_service.services import audit, outbox
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


#: The processing task's name (the same as documents.PROCESS_TASK; not imported: cycle).
PROCESS_TASK = "dossier.process_version"
#: States in which a version still waits for its processing to end.
UNFINISHED = ("pending", "processing")


def new_owner() -> str:
    """A name for one claim: host, process and a random part (unique across workers)."""
    return f"{socket.gethostname()[:80]}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def claim(container: Container, version_id: str, owner: str, *, finished_too: bool = False) -> bool:
    """Take the version for processing if it waits and nobody holds a live lease on it.

    ``finished_too`` also takes a ready or failed version (a deliberate re-run).
    """
    now = utcnow()
    states = PROCESSING_STATES if finished_too else UNFINISHED
    lease = now + dt.timedelta(seconds=container.settings.processing_lease_seconds)
    with container.db.transaction() as session:
        result = session.execute(
            update(DocumentVersion)
            .where(
                DocumentVersion.id == version_id,
                DocumentVersion.processing.in_(states),
                or_(
                    DocumentVersion.processing_lease_until.is_(None),
                    DocumentVersion.processing_lease_until < now,
                ),
            )
            .values(
                processing="processing",
                processing_error=None,
                processing_owner=owner,
                processing_lease_until=lease,
                processing_attempts=DocumentVersion.processing_attempts + 1,
            )
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def renew(container: Container, version_id: str, owner: str) -> bool:
    """Extend the lease of a version this owner holds; False if it holds it no longer."""
    lease = utcnow() + dt.timedelta(seconds=container.settings.processing_lease_seconds)
    with container.db.transaction() as session:
        result = session.execute(
            update(DocumentVersion)
            .where(
                DocumentVersion.id == version_id,
                DocumentVersion.processing == "processing",
                DocumentVersion.processing_owner == owner,
            )
            .values(processing_lease_until=lease)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


class Heartbeat:
    """A thread that renews a claim's lease every third of its length until stopped."""

    def __init__(self, container: Container, version_id: str, owner: str) -> None:
        self.container, self.version_id, self.owner = container, version_id, owner
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"lease-{version_id[:8]}", daemon=True
        )

    def __enter__(self) -> Heartbeat:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _run(self) -> None:
        interval = max(1.0, self.container.settings.processing_lease_seconds / 3)
        while not self._stop.wait(interval):
            try:
                if not renew(self.container, self.version_id, self.owner):
                    # Taken over after a missed renewal: the work is idempotent, finish anyway.
                    log.warning("lease on version %s lost to another worker", self.version_id)
                    self.lost = True
                    return
            except Exception as exc:  # a database hiccup: try again at the next beat
                log.warning("lease on version %s not renewed: %s", self.version_id, exc)


def _finish(container: Container, version_id: str, owner: str, **values: Any) -> None:
    """Write the outcome and end the claim (unless another worker holds the version now)."""
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is None:
            return
        if version.processing_owner not in (owner, None):
            # Its worker will write the same outcome; clearing its lease would invite a third.
            log.warning("version %s is held by %s now", version_id, version.processing_owner)
            return
        for name, value in values.items():
            setattr(version, name, value)
        version.processing_owner = None
        version.processing_lease_until = None


def _release(container: Container, version_id: str, owner: str) -> None:
    """Give the version back after a transient failure: pending, retried by Celery."""
    with container.db.transaction() as session:
        session.execute(
            update(DocumentVersion)
            .where(
                DocumentVersion.id == version_id,
                or_(
                    DocumentVersion.processing_owner == owner,
                    DocumentVersion.processing_owner.is_(None),
                ),
            )
            .values(
                processing="pending",
                processing_owner=None,
                processing_lease_until=None,
                processing_queued_at=utcnow(),
                # Attempts count claims ended by a dead worker; this one ended cleanly.
                processing_attempts=0,
            )
            .execution_options(synchronize_session=False)
        )


def process_version(
    container: Container,
    version_id: str,
    extract: Extractor | None = None,
    *,
    rerun_finished: bool = True,
) -> str:
    """Claim one version, run the pipeline under a renewed lease, return its state.

    A direct call redoes a finished version too; the worker's task passes
    ``rerun_finished=False`` so that a duplicate message (a requeue, a redelivery) of a
    version done meanwhile costs one UPDATE instead of a second OCR run.
    """
    owner = new_owner()
    if not claim(container, version_id, owner, finished_too=rerun_finished):
        with container.db.transaction() as session:
            version = session.get(DocumentVersion, version_id)
            if version is None:
                log.warning("version %s no longer exists; nothing to process", version_id)
                return "missing"
            # Done already (a duplicate message) or held by a live worker: nothing to do.
            log.info("version %s not claimed: %s", version_id, version.processing)
            return "busy" if version.processing in UNFINISHED else version.processing
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is None:
            return "missing"
        key, expected, media_type = version.storage_key, version.sha256, version.media_type
        case_id, document_id, number = version.document.case_id, version.document_id, version.number

    with Heartbeat(container, version_id, owner):
        return _run_pipeline(
            container,
            version_id,
            owner,
            extract,
            key,
            expected,
            media_type,
            case_id,
            document_id,
            number,
        )


def _run_pipeline(
    container: Container,
    version_id: str,
    owner: str,
    extract: Extractor | None,
    key: str,
    expected: str,
    media_type: str,
    case_id: str,
    document_id: str,
    number: int,
) -> str:
    """Fixity, extraction, indexing of a claimed version."""
    path: Path | None = None
    try:
        try:
            path, actual = _fetch(container, key)
            fixity = "ok" if actual == expected else "mismatch"
        except ObjectNotFound:
            fixity = "missing"
        except StorageError as exc:
            _release(container, version_id, owner)
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
            _finish(container, version_id, owner, processing="failed", processing_error=reason)
            return "failed"

        if extract is None:
            _finish(container, version_id, owner, processing="ready")
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
            _finish(
                container,
                version_id,
                owner,
                processing="failed",
                processing_error=f"Text extraction failed: {result.reason}",
                extraction=info,
                text_chars=0,
            )
            return "failed"
        try:
            text_key = _store_text(container, version_id, result.text)
        except StorageError as exc:
            _release(container, version_id, owner)
            raise TransientError(str(exc)) from exc
        _set_state(
            container, version_id, text_key=text_key, text_chars=result.chars, extraction=info
        )
        from dossier_service.services.indexing import index_version

        try:
            index_version(container, version_id)
        except SearchError as exc:
            _release(container, version_id, owner)
            raise TransientError(f"search index: {exc}") from exc
        _finish(container, version_id, owner, processing="ready")
        return "ready"
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


def interrupted_reason(attempts: int) -> str:
    """Why a version failed after its workers died while processing it, for people."""
    return (
        f"Processing was interrupted {attempts} times (the worker ended while processing "
        "this version, e.g. out of memory); it will not be retried on its own."
    )


def requeue_stuck(container: Container) -> dict[str, int]:
    """Queue again versions a dead worker held or nobody took; fail them after too many claims.

    A version counts as stuck when its lease expired (its worker died), when it is
    ``processing`` without a lease (left by a release before leases), or when it waited
    unclaimed on the queue longer than the overdue bound (a lost message). Returns counts of
    ``requeued`` and ``failed`` versions. Every update repeats its condition, so a worker
    claiming or renewing at the same moment wins and the version is left alone.
    """
    settings = container.settings
    now = utcnow()
    unclaimed_before = now - dt.timedelta(minutes=settings.processing_overdue_minutes)
    v = DocumentVersion
    expired = (v.processing == "processing") & or_(
        v.processing_lease_until < now,
        v.processing_lease_until.is_(None) & (v.processing_queued_at < unclaimed_before),
        v.processing_lease_until.is_(None) & v.processing_queued_at.is_(None),
    )
    unclaimed = (v.processing == "pending") & or_(
        v.processing_queued_at < unclaimed_before, v.processing_queued_at.is_(None)
    )
    requeued = failed = 0
    with container.db.transaction() as session:
        rows = session.execute(
            select(v.id, v.processing_attempts, v.processing_owner)
            .where(expired | unclaimed)
            .order_by(v.processing_since)
            .limit(1000)
        ).all()
        for version_id, attempts, owner in rows:
            condition = (v.id == version_id) & (expired | unclaimed)
            if owner is not None and attempts >= settings.processing_max_attempts:
                values: dict[str, Any] = {
                    "processing": "failed",
                    "processing_error": interrupted_reason(attempts),
                }
            else:
                values = {"processing": "pending", "processing_queued_at": now}
            result = session.execute(
                update(v)
                .where(condition)
                .values(processing_owner=None, processing_lease_until=None, **values)
                .execution_options(synchronize_session=False)
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                continue
            if values["processing"] == "failed":
                failed += 1
                log.error("version %s failed: %s", version_id, values["processing_error"])
            else:
                requeued += 1
                log.warning("version %s requeued (stuck, %s claim(s))", version_id, attempts)
                outbox.enqueue(session, PROCESS_TASK, version_id=version_id)
    return {"requeued": requeued, "failed": failed}


def overdue_query(container: Container) -> Any:
    """Versions neither ready nor failed although asked for longer than the overdue bound."""
    bound = utcnow() - dt.timedelta(minutes=container.settings.processing_overdue_minutes)
    v = DocumentVersion
    return (
        select(v.id, v.processing, v.processing_since, v.processing_attempts)
        .where(v.processing.in_(UNFINISHED))
        .where(or_(v.processing_since < bound, v.processing_since.is_(None)))
        .order_by(v.processing_since, v.id)
    )


def overdue(
    container: Container, limit: int = 1000
) -> list[tuple[str, str, dt.datetime | None, int]]:
    """(version id, state, processing since, claims) of overdue versions, oldest first."""
    with container.db.transaction() as session:
        return [
            (vid, state, since, attempts)
            for vid, state, since, attempts in session.execute(
                overdue_query(container).limit(limit)
            )
        ]


def overdue_count(container: Container) -> int:
    """How many versions are overdue (for the health endpoint)."""
    with container.db.transaction() as session:
        sub = overdue_query(container).order_by(None).subquery()
        return int(session.execute(select(func.count()).select_from(sub)).scalar_one())
