"""Archives: SIP exports (Ablieferungen), legal holds and the tombstones of deleted cases."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dossier_service.dates import utcnow
from dossier_service.db import Base, UTCDateTime
from dossier_service.models.units import User

EXPORT_STATUSES = ("queued", "running", "done", "failed")


class Export(Base):
    """One eCH-0160 SIP of one or more closed cases, built by a worker task.

    Lifecycle: queued → running → done | failed. A run owns the row through ``run_id``; a
    crashed run (stale ``heartbeat_at``) is taken over by the next delivery of the task and
    rebuilt from scratch, so a repeat never mixes two runs' output.
    """

    __tablename__ = "exports"
    __table_args__ = (
        CheckConstraint(
            "status IN (" + ",".join(f"'{s}'" for s in EXPORT_STATUSES) + ")", name="status"
        ),
        # An archive reference only exists for a delivered (done) package.
        CheckConstraint(
            "acknowledged_at IS NULL OR (status = 'done' AND archive_reference IS NOT NULL)",
            name="acknowledged_done",
        ),
        Index("ix_exports_status_heartbeat", "status", "heartbeat_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    #: What the archivist asked for: {"case_ids": [...]} or {"closed_before": "YYYY-MM-DD"}.
    criteria: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The run that owns the export now; every write of a run is conditional on it.
    run_id: Mapped[str | None] = mapped_column(String(36))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    heartbeat_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    finished_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    files_done: Mapped[int] = mapped_column(Integer, default=0)
    files_total: Mapped[int] = mapped_column(Integer, default=0)
    bytes_done: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_total: Mapped[int] = mapped_column(BigInteger, default=0)
    #: Size and SHA-256 of the finished ZIP.
    size: Mapped[int | None] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    storage_key: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str | None] = mapped_column(Text)
    #: Non-fatal findings, e.g. PDFs whose PDF/A conversion failed.
    warnings: Mapped[list[Any]] = mapped_column(JSON, default=list)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    acknowledged_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    archive_reference: Mapped[str | None] = mapped_column(String(100))
    #: When the stored ZIP was deleted because a case in it was deleted (retention).
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())

    created_by: Mapped[User] = relationship(foreign_keys=[created_by_id], lazy="joined")
    cases: Mapped[list[ExportCase]] = relationship(
        lazy="selectin", order_by="ExportCase.position", cascade="all, delete-orphan"
    )


class ExportCase(Base):
    """A case in an export, with the closure it was exported under.

    No foreign key to ``cases``: the row records what went to the archive and must outlive
    the case, which retention deletes after the archive acknowledged the package.
    """

    __tablename__ = "export_cases"

    export_id: Mapped[str] = mapped_column(
        ForeignKey("exports.id", ondelete="CASCADE"), primary_key=True
    )
    case_id: Mapped[str] = mapped_column(String(36), primary_key=True, index=True)
    position: Mapped[int] = mapped_column(Integer)
    reference: Mapped[str] = mapped_column(String(32))
    #: The closing time of the closure in force when the export was requested; retention
    #: trusts the export only while the case is still closed under that same closure.
    closed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())


class LegalHold(Base):
    """A period in which a case must not be deleted (litigation, inquiry); released_at NULL =
    in force."""

    __tablename__ = "legal_holds"
    __table_args__ = (
        Index(
            "uq_legal_holds_open",
            "case_id",
            unique=True,
            sqlite_where=text("released_at IS NULL"),
            postgresql_where=text("released_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    reason: Mapped[str] = mapped_column(Text)
    set_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    set_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    released_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    released_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    release_reason: Mapped[str | None] = mapped_column(Text)

    set_by: Mapped[User] = relationship(foreign_keys=[set_by_id], lazy="joined")
    released_by: Mapped[User | None] = relationship(foreign_keys=[released_by_id], lazy="joined")


class CaseTombstone(Base):
    """What remains of a deleted case: reference, dates, the SIP and who deleted it when.

    Holds no personal data (the reference is the case number the archive files it under).
    ``pending_objects`` lists the storage keys still to delete; it is emptied, and
    ``purged_at`` set, once bytes and search entries are gone.
    """

    __tablename__ = "case_tombstones"

    case_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    entry_date: Mapped[dt.date] = mapped_column(Date)
    closed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    export_id: Mapped[str] = mapped_column(ForeignKey("exports.id"), index=True)
    archive_reference: Mapped[str] = mapped_column(String(100))
    deleted_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    deleted_by: Mapped[str] = mapped_column(String(64))
    documents: Mapped[int] = mapped_column(Integer, default=0)
    versions: Mapped[int] = mapped_column(Integer, default=0)
    bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    pending_objects: Mapped[list[str]] = mapped_column(JSON, default=list)
    purged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
