"""Follow-ups (Wiedervorlagen): dated reminders on a case, set by a unit, done once."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, Date, ForeignKey, Index, String, Text
from sqlalchemy import text as sql_text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dossier_service.dates import utcnow
from dossier_service.db import Base, UTCDateTime
from dossier_service.models.units import Unit, User

#: Where a follow-up comes from: set by a caseworker, or by the monitoring at 6.5 years.
FOLLOW_UP_SOURCES = ("manual", "horizon")


class FollowUp(Base):
    """A reminder due on a day, optionally about a measure or a cost approval of the case."""

    __tablename__ = "follow_ups"
    __table_args__ = (
        CheckConstraint("source IN ('manual','horizon')", name="source"),
        CheckConstraint("(done_at IS NULL) = (done_by_id IS NULL)", name="done"),
        Index("ix_follow_ups_open_due", "done_at", "due_date"),
        # The monitoring sets one horizon follow-up per case, however often it runs.
        Index(
            "uq_follow_ups_horizon",
            "case_id",
            unique=True,
            sqlite_where=sql_text("source = 'horizon'"),
            postgresql_where=sql_text("source = 'horizon'"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    #: The unit whose reminder it is (the responsible unit when it was set).
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), index=True)
    due_date: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text)
    measure_id: Mapped[str | None] = mapped_column(ForeignKey("measures.id"))
    cost_approval_id: Mapped[str | None] = mapped_column(ForeignKey("cost_approvals.id"))
    source: Mapped[str] = mapped_column(String(16), default="manual")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    #: None for the monitoring's own follow-ups.
    created_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    done_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    done_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    done_note: Mapped[str] = mapped_column(Text, default="")

    unit: Mapped[Unit] = relationship(lazy="joined")
    created_by: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[created_by_id])
    done_by: Mapped[User | None] = relationship(lazy="joined", foreign_keys=[done_by_id])
