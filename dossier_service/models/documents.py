"""Documents of a dossier and their immutable, numbered versions."""

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
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dossier_service.dates import utcnow
from dossier_service.db import Base, UTCDateTime
from dossier_service.labels import DOCUMENT_TYPE
from dossier_service.models.units import User

#: Document types by code; their words are in labels.DOCUMENT_TYPE (one table for every output).
DOCUMENT_TYPES = DOCUMENT_TYPE

PROCESSING_STATES = ("pending", "processing", "ready", "failed")


class Document(Base):
    """A logical document in a case's dossier; its content lives in versions."""

    __tablename__ = "documents"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32), index=True)
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The date written on the document (a letter's date), not when it was uploaded.
    document_date: Mapped[dt.date | None] = mapped_column(Date)
    #: Free keywords, normalised (see services.document_fields); searchable and a facet.
    tags: Mapped[list[str]] = mapped_column(JSON, default=list, server_default=text("'[]'"))
    #: Set when the document was withdrawn: hidden from every reader but the canton.
    withdrawn_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), index=True)
    #: Username as text (like the audit log), so it stays meaningful if the user goes.
    withdrawn_by: Mapped[str | None] = mapped_column(String(64))
    withdrawn_reason: Mapped[str | None] = mapped_column(Text)

    versions: Mapped[list[DocumentVersion]] = relationship(
        back_populates="document", order_by="DocumentVersion.number", lazy="selectin"
    )


class DocumentVersion(Base):
    """One immutable upload of a document: bytes in object storage, facts here."""

    __tablename__ = "document_versions"
    __table_args__ = (
        # Two concurrent uploads cannot both become version n: one fails and retries.
        UniqueConstraint("document_id", "number", name="uq_document_versions_number"),
        CheckConstraint("number >= 1", name="number_positive"),
        CheckConstraint(
            "processing IN ('pending','processing','ready','failed')", name="processing"
        ),
        # Finds the few versions not ready yet (overdue report, periodic requeue).
        Index("ix_document_versions_processing", "processing", "processing_since"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    number: Mapped[int] = mapped_column(Integer)
    storage_key: Mapped[str] = mapped_column(String(200), unique=True)
    sha256: Mapped[str] = mapped_column(String(64), index=True)
    size: Mapped[int] = mapped_column(BigInteger)
    media_type: Mapped[str] = mapped_column(String(100))
    #: Sanitised original filename, for display and downloads only, never for storage keys.
    filename: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    processing: Mapped[str] = mapped_column(String(16), default="pending")
    processing_error: Mapped[str | None] = mapped_column(Text)
    #: When the current round of processing was asked for (upload, reprocess): overdue after.
    processing_since: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    #: When the processing task was last put on the queue (requeued if nobody claims it).
    processing_queued_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime(), default=utcnow)
    #: The worker holding the version while it processes it, and until when (its lease).
    processing_owner: Mapped[str | None] = mapped_column(String(120))
    processing_lease_until: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Claims since the last success or manual reprocess; too many: the version fails.
    processing_attempts: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    #: Findings of the upload inspection: encrypted, active_content, pages, ...
    flags: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: Key of the derived plain-text object (extracted text), beside the original.
    text_key: Mapped[str | None] = mapped_column(String(200))
    text_chars: Mapped[int | None] = mapped_column(Integer)
    #: How the text was obtained: method, pages, ocr_pages, warnings.
    extraction: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    #: When the current text was written to the search index (None: not indexed).
    indexed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    fixity_status: Mapped[str] = mapped_column(String(16), default="unchecked")
    fixity_checked_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: Why this version was uploaded (optional, given by the uploader).
    reason: Mapped[str | None] = mapped_column(Text)

    document: Mapped[Document] = relationship(back_populates="versions")
    created_by: Mapped[User] = relationship(lazy="joined")


class DocumentChange(Base):
    """One corrected metadata field of a document: old and new value, why, by whom, when."""

    __tablename__ = "document_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), index=True
    )
    #: title, type, document_date, tags, case (a move), withdrawn
    field: Mapped[str] = mapped_column(String(32))
    #: Values as JSON (a list for tags, ISO text for dates, None for "not set").
    old_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    new_value: Mapped[Any] = mapped_column(JSON, nullable=True)
    reason: Mapped[str] = mapped_column(Text)
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    changed_by: Mapped[User] = relationship(lazy="joined")


class DocumentTombstone(Base):
    """What remains of a purged document: which case, what type, who purged it, when and why.

    Holds no title and no file names (they may name the person the document was wrongly
    filed for); ``pending_objects`` lists storage keys still to delete, emptied once gone.
    """

    __tablename__ = "document_tombstones"

    document_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    type: Mapped[str] = mapped_column(String(32))
    versions: Mapped[int] = mapped_column(Integer)
    withdrawn_at: Mapped[dt.datetime] = mapped_column(UTCDateTime())
    withdrawn_by: Mapped[str] = mapped_column(String(64))
    withdrawn_reason: Mapped[str] = mapped_column(Text)
    purged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    purged_by: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    pending_objects: Mapped[list[str]] = mapped_column(JSON, default=list)
    objects_deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
