"""Cases (one per person), responsibility periods and delegations."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    JSON,
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
from dossier_service.models.units import Unit


class ReferenceCounter(Base):
    """Last case number handed out per year, for references like IAS-2026-000123."""

    __tablename__ = "reference_counters"

    year: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    last: Mapped[int] = mapped_column(Integer, default=0)


class Case(Base):
    """One continuous IAS case (durchgehende Fallführung) of one person."""

    __tablename__ = "cases"
    __table_args__ = (
        CheckConstraint("status IN ('open','closed')", name="status"),
        CheckConstraint("residence_status IN ('N','F','B')", name="residence_status"),
        CheckConstraint("sex IN ('female','male','unknown')", name="sex"),
        # One person, one case: the database refuses a second case with the same ZEMIS or
        # AHV number, so two concurrent registrations cannot both win (services/duplicates.py).
        Index("uq_cases_zemis_normalized", "zemis_normalized", unique=True),
        Index(
            "uq_cases_ahv_number",
            "ahv_number",
            unique=True,
            sqlite_where=text("ahv_number IS NOT NULL"),
            postgresql_where=text("ahv_number IS NOT NULL"),
        ),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    reference: Mapped[str] = mapped_column(String(32), unique=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    family_name: Mapped[str] = mapped_column(String(200))
    given_names: Mapped[str] = mapped_column(String(200))
    #: eCH-0044 allows YYYY, YYYY-MM or YYYY-MM-DD; kept as that text.
    birth_date: Mapped[str] = mapped_column(String(10))
    sex: Mapped[str] = mapped_column(String(8))
    nationality: Mapped[str] = mapped_column(String(64))
    zemis_number: Mapped[str] = mapped_column(String(40))
    #: Without separators, so search and lookups match however it was typed.
    zemis_normalized: Mapped[str] = mapped_column(String(32))
    #: AHVN13 as 13 digits, check digit verified.
    ahv_number: Mapped[str | None] = mapped_column(String(13))
    #: Folded "family|given" names (folding.name_key), so SQL search ignores accents and umlauts.
    name_key: Mapped[str] = mapped_column(String(402), index=True, default="", server_default="")
    residence_status: Mapped[str] = mapped_column(String(1))
    entry_date: Mapped[dt.date] = mapped_column(Date)
    #: Date of the decision (Regelung) that gave status F or B; NULL while N or unknown.
    regulation_date: Mapped[dt.date | None] = mapped_column(Date)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: Last change to the case or its dossier (for "last activity" and stall monitoring).
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow, index=True)
    #: The case this one was merged into (NULL while it stands on its own). A merged case
    #: keeps only its person record, its responsibility history and this pointer; its
    #: dossier lives on in the surviving case (services/merges.py). No foreign key: the
    #: column is added in place on SQLite (a table copy would cascade-delete the dossiers);
    #: ``case_merges`` holds the checked references.
    merged_into_id: Mapped[str | None] = mapped_column(String(36), index=True)

    responsibilities: Mapped[list[Responsibility]] = relationship(
        back_populates="case", order_by="Responsibility.started_at, Responsibility.id"
    )


class Responsibility(Base):
    """A dated period in which one unit is responsible for a case (ended_at NULL = now)."""

    __tablename__ = "responsibilities"
    __table_args__ = (
        # At most one open period per case: the database, not the code, guarantees it.
        Index(
            "uq_responsibilities_open",
            "case_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_responsibilities_unit_open", "unit_id", "ended_at"),
        # The search's unit facet looks up the open periods whose index labels are pending.
        Index("ix_responsibilities_unsynced", "ended_at", "index_synced_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    #: When the search index entries of the case were relabelled with this unit (NULL while
    #: a transfer's relabelling is pending; the search corrects its unit facet meanwhile).
    index_synced_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    case: Mapped[Case] = relationship(back_populates="responsibilities")
    unit: Mapped[Unit] = relationship(lazy="joined")


class Delegation(Base):
    """A period in which the responsible municipality delegates support to an organisation."""

    __tablename__ = "delegations"
    __table_args__ = (
        Index(
            "uq_delegations_open",
            "case_id",
            "unit_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
        Index("ix_delegations_unit_open", "unit_id", "ended_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    #: The municipality that delegated; the delegation only counts while it is responsible.
    granted_by_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    end_reason: Mapped[str | None] = mapped_column(Text)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    unit: Mapped[Unit] = relationship(foreign_keys=[unit_id], lazy="joined")
    granted_by: Mapped[Unit] = relationship(foreign_keys=[granted_by_unit_id], lazy="joined")


class PersonChange(Base):
    """One corrected field of a case's person: old and new value, why, by whom, when."""

    __tablename__ = "person_changes"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    field: Mapped[str] = mapped_column(String(32))
    old_value: Mapped[str | None] = mapped_column(Text)
    new_value: Mapped[str | None] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class ResidenceStatusChange(Base):
    """One change of the residence status, with the date of the decision that made it."""

    __tablename__ = "residence_status_changes"
    __table_args__ = (
        CheckConstraint("old_status IN ('N','F','B')", name="old_status"),
        CheckConstraint("new_status IN ('N','F','B')", name="new_status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    old_status: Mapped[str] = mapped_column(String(1))
    new_status: Mapped[str] = mapped_column(String(1))
    #: The decision's date (effective from); NULL only for a change back to N.
    regulation_date: Mapped[dt.date | None] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    changed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)


class CaseMerge(Base):
    """Two cases of one person merged into one: which survived, which was merged, why."""

    __tablename__ = "case_merges"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    surviving_case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), index=True
    )
    #: A case is merged at most once (it is read-only afterwards).
    merged_case_id: Mapped[str] = mapped_column(
        ForeignKey("cases.id", ondelete="CASCADE"), unique=True
    )
    reason: Mapped[str] = mapped_column(Text)
    #: What moved, e.g. {"documents": 3, "measures": 1}: the same counts the audit log names.
    moved: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    merged_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    merged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
