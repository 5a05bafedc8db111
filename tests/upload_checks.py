"""Checks that a refused upload left nothing behind: rows, stored objects, spool files."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import func, select

from dossier_service.config import Settings
from dossier_service.container import Container
from dossier_service.models import Document, DocumentVersion, OutboxMessage


@dataclass(frozen=True)
class Snapshot:
    """What an upload could leave behind: rows, objects, outbox messages."""

    documents: int
    versions: int
    outbox: int
    objects: frozenset[str]


def snapshot(container: Container) -> Snapshot:
    """Count rows and list stored objects now."""
    with container.db.transaction() as session:
        documents = session.execute(select(func.count()).select_from(Document)).scalar_one()
        versions = session.execute(select(func.count()).select_from(DocumentVersion)).scalar_one()
        outbox = session.execute(select(func.count()).select_from(OutboxMessage)).scalar_one()
    objects = frozenset(container.store.iter_keys("versions/"))
    return Snapshot(documents, versions, outbox, objects)


def spool_entries(settings: Settings) -> list[Path]:
    """Files left in the spool directory (none if it was never created)."""
    return sorted(settings.spool_dir.iterdir()) if settings.spool_dir.exists() else []


def assert_nothing_left(container: Container, before: Snapshot) -> None:
    """No new row, object, outbox message or spool file since ``before``."""
    assert snapshot(container) == before
    assert spool_entries(container.settings) == []
