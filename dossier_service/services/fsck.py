"""Consistency check of object storage against the database (``dossier fsck``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select

from dossier_service.dates import utcnow
from dossier_service.models import DocumentVersion
from dossier_service.services.processing import hash_object
from storage import ObjectNotFound, StorageError

if TYPE_CHECKING:
    from dossier_service.container import Container

VERSION_PREFIX = "versions/"


@dataclass(frozen=True)
class Finding:
    """One inconsistency: kind is missing, mismatch, size, unreadable or orphan."""

    kind: str
    key: str
    version_id: str | None
    message: str

    @property
    def is_error(self) -> bool:
        """Errors mean recorded content is damaged; orphans are only leftovers."""
        return self.kind != "orphan"


def check(container: Container, *, verify_hashes: bool = True) -> Iterator[Finding]:
    """Check every version's object (exists, size, SHA-256) and find orphaned objects."""
    known: set[str] = set()
    last_id = ""
    while True:
        with container.db.transaction() as session:
            rows = session.execute(
                select(
                    DocumentVersion.id,
                    DocumentVersion.storage_key,
                    DocumentVersion.sha256,
                    DocumentVersion.size,
                )
                .where(DocumentVersion.id > last_id)
                .order_by(DocumentVersion.id)
                .limit(1000)
            ).all()
        if not rows:
            break
        for version_id, key, sha256, size in rows:
            known.add(key)
            last_id = version_id
            yield from _check_one(container, version_id, key, sha256, size, verify_hashes)
    for key in container.store.iter_keys(VERSION_PREFIX):
        if key not in known:
            yield Finding("orphan", key, None, "object has no version in the database")


def _check_one(
    container: Container, version_id: str, key: str, sha256: str, size: int, verify_hashes: bool
) -> Iterator[Finding]:
    try:
        info = container.store.stat(key)
    except ObjectNotFound:
        yield Finding("missing", key, version_id, "object is missing from storage")
        return
    except StorageError as exc:
        yield Finding("unreadable", key, version_id, f"cannot stat object: {exc}")
        return
    if info.size != size:
        yield Finding("size", key, version_id, f"size {info.size} differs from recorded {size}")
        return
    if info.metadata.get("sha256") not in (None, sha256):
        yield Finding("mismatch", key, version_id, "object metadata names another SHA-256")
    if verify_hashes:
        try:
            actual, _ = hash_object(container, key)
        except StorageError as exc:
            yield Finding("unreadable", key, version_id, f"cannot read object: {exc}")
            return
        if actual != sha256:
            yield Finding(
                "mismatch", key, version_id, f"SHA-256 {actual} differs from recorded {sha256}"
            )


def delete_orphans(container: Container, findings: list[Finding], *, min_age: dt.timedelta) -> int:
    """Delete orphaned objects older than min_age (younger ones may be uploads in flight)."""
    removed = 0
    cutoff = utcnow() - min_age
    for finding in findings:
        if finding.kind != "orphan":
            continue
        try:
            info = container.store.stat(finding.key)
        except StorageError:
            continue
        created = info.metadata.get("created-at")
        if created and dt.datetime.fromisoformat(created) > cutoff:
            continue
        container.store.delete(finding.key)
        removed += 1
    return removed
