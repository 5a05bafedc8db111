"""Background processing of a stored version: fixity check now, extraction later.

Idempotent: running it twice for the same version re-checks and ends in the same state.
"""

from __future__ import annotations

import hashlib
import logging

from dossier_service.container import Container
from dossier_service.db import utcnow
from dossier_service.models import DocumentVersion
from dossier_service.services import audit
from storage import ObjectNotFound, StorageError

log = logging.getLogger(__name__)


class TransientError(Exception):
    """A failure worth retrying later (storage unreachable)."""


def hash_object(container: Container, key: str) -> tuple[str, int]:
    """Stream an object and return its SHA-256 and size."""
    digest = hashlib.sha256()
    size = 0
    for chunk in container.store.open(key):
        digest.update(chunk)
        size += len(chunk)
    return digest.hexdigest(), size


def process_version(container: Container, version_id: str) -> str:
    """Verify the stored bytes of a version against its recorded SHA-256; return the state."""
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is None:
            log.warning("version %s no longer exists; nothing to process", version_id)
            return "missing"
        key, expected, case_id = version.storage_key, version.sha256, version.document.case_id
        document_id, number = version.document_id, version.number
        version.processing = "processing"
    try:
        actual, _size = hash_object(container, key)
        status = "ok" if actual == expected else "mismatch"
        reason = (
            None
            if status == "ok"
            else "The stored bytes do not match the checksum recorded at upload."
        )
    except ObjectNotFound:
        status, reason = "missing", "The stored object is missing."
    except StorageError as exc:
        with container.db.transaction() as session:
            version = session.get(DocumentVersion, version_id)
            if version is not None:
                version.processing = "pending"
        raise TransientError(str(exc)) from exc
    with container.db.transaction() as session:
        version = session.get(DocumentVersion, version_id)
        if version is None:
            return "missing"
        version.fixity_status = status
        version.fixity_checked_at = utcnow()
        version.processing = "ready" if status == "ok" else "failed"
        version.processing_error = reason
        audit.record(
            session,
            None,
            "fixity.check",
            case_id=case_id,
            document_id=document_id,
            version=number,
            detail={"status": status},
        )
    if status != "ok":
        log.error("fixity of version %s (%s): %s", version_id, key, status)
    return version.processing
