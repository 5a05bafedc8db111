"""The case journal: dated, append-only notes of conversations, calls and meetings."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import JSON, CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dossier_service.dates import utcnow
from dossier_service.db import Base, UTCDateTime
from dossier_service.models.units import Unit, User

#: Kinds of journal entries, with the German word the pages use.
JOURNAL_KINDS: dict[str, str] = {
    "note": "Notiz",
    "conversation": "Gespräch",
    "phone": "Telefonat",
    "meeting": "Sitzung",
}


class JournalEntry(Base):
    """One entry of a case's journal; never changed, corrected by a later entry.

    ``corrects_id`` points from the correcting entry to the one it corrects, so the old
    text stays readable (and in the audit) while readers see that it was corrected.
    """

    __tablename__ = "journal_entries"
    __table_args__ = (
        CheckConstraint("kind IN (" + ",".join(f"'{k}'" for k in JOURNAL_KINDS) + ")", name="kind"),
        CheckConstraint("corrects_id IS NULL OR corrects_id <> id", name="not_itself"),
        Index("ix_journal_entries_case_occurred", "case_id", "occurred_on"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    #: The day the conversation, call or meeting took place (not the day it was written).
    occurred_on: Mapped[dt.date] = mapped_column(Date)
    text: Mapped[str] = mapped_column(Text)
    participants: Mapped[list[str]] = mapped_column(
        JSON, default=list, server_default=sql_text("'[]'")
    )
    corrects_id: Mapped[str | None] = mapped_column(
        ForeignKey("journal_entries.id"), index=True, unique=True
    )
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The unit the author wrote for (the author may later move to another unit).
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))

    created_by: Mapped[User] = relationship(lazy="joined")
    unit: Mapped[Unit] = relationship(lazy="joined")
