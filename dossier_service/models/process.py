"""The IAS case process: target group, plan measures, milestones, closures, cost approvals
(Kostengutsprachen), notifications (Meldungen) and the units' notification mailboxes."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from dossier_service.dates import utcnow
from dossier_service.db import Base, BigId, UTCDateTime
from dossier_service.labels import PROGRAMME
from dossier_service.models.units import Unit, User

#: Target groups of the Aargau implementation, with the German term.
TARGET_GROUPS: dict[str, str] = {
    "education": "Ausbildungsfähige (16–25)",
    "labour_market": "Arbeitsmarktfähige",
    "social_integration": "Soziale Integration",
}

#: Programmes a measure or a cost approval refers to, by code; their words are in
#: labels.PROGRAMME (one table for every output).
PROGRAMMES = PROGRAMME

MEASURE_STATUSES: dict[str, str] = {
    "planned": "geplant",
    "running": "laufend",
    "completed": "abgeschlossen",
    "aborted": "abgebrochen",
    "interrupted": "unterbrochen",
}

#: Milestone values per kind. Language levels are ordered (CEFR); pre_A1 is literacy work.
MILESTONE_VALUES: dict[str, tuple[str, ...]] = {
    "language_level": ("pre_A1", "A1", "A2", "B1", "B2", "C1", "C2"),
    "education": (
        "bridge_offer",  # Brückenangebot
        "pre_apprenticeship",  # Integrationsvorlehre
        "apprenticeship_eba",  # berufliche Grundbildung mit Attest (EBA)
        "apprenticeship_efz",  # berufliche Grundbildung mit Fähigkeitszeugnis (EFZ)
        "upper_secondary_school",  # Mittelschule
        "tertiary",
        "completed_upper_secondary",  # Abschluss Sekundarstufe II
        "none",  # keine Ausbildung (mehr)
    ),
    "employment": (
        "first_labour_market_full_time",
        "first_labour_market_part_time",
        "second_labour_market",  # Beschäftigungsprogramm, Teillohn
        "none",  # nicht erwerbstätig
    ),
    # IAS goal 2: the child can communicate in the local language when starting school.
    "school_language": ("achieved", "not_achieved"),
    # IAS goal 5: familiar with Swiss ways of life, social contacts with the population.
    "social_life": ("achieved", "not_achieved"),
}

CLOSE_REASONS: dict[str, str] = {
    "integrated_education": "nachhaltig in Ausbildung integriert",
    "integrated_employment": "nachhaltig im Arbeitsmarkt integriert",
    "seven_years": "7-Jahres-Horizont erreicht",
    "moved_out_of_canton": "Wegzug aus dem Kanton",
    "deceased": "verstorben",
    "other": "anderer Grund",
}

COST_APPROVAL_STATUSES = ("requested", "approved", "partially_approved", "rejected")

#: Amounts in CHF: 12 digits with 2 decimals, exact (never floats).
Money = Numeric(12, 2, asdecimal=True)


def _in(column: str, values: Iterable[str]) -> str:
    """A CHECK expression: the column holds one of the (code, not user-supplied) values."""
    return f"{column} IN (" + ",".join(f"'{v}'" for v in values) + ")"


class TargetGroupAssignment(Base):
    """A dated period in which a case belongs to a target group (ended_at NULL = now)."""

    __tablename__ = "target_group_assignments"
    __table_args__ = (
        CheckConstraint(_in("target_group", TARGET_GROUPS), name="target_group"),
        Index(
            "uq_target_group_assignments_open",
            "case_id",
            unique=True,
            sqlite_where=text("ended_at IS NULL"),
            postgresql_where=text("ended_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    target_group: Mapped[str] = mapped_column(String(24))
    started_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(Text, default="")
    set_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    set_by: Mapped[User] = relationship(lazy="joined")


class Measure(Base):
    """One measure of the integration plan (Massnahme), e.g. a course or programme."""

    __tablename__ = "measures"
    __table_args__ = (
        CheckConstraint(_in("programme", PROGRAMMES), name="programme"),
        CheckConstraint(_in("status", MEASURE_STATUSES), name="status"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="period"),
        Index("ix_measures_status_changed", "status", "status_changed_at"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    programme: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str] = mapped_column(String(200), default="")
    start_date: Mapped[dt.date] = mapped_column(Date)
    end_date: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))
    #: When the status last changed: the start of an interruption, for follow-up monitoring.
    status_changed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)

    created_by: Mapped[User] = relationship(lazy="joined")


class Milestone(Base):
    """A dated, coded fact for the IAS indicators (language, education, employment, goals 2/5)."""

    __tablename__ = "milestones"
    __table_args__ = (
        CheckConstraint(_in("kind", MILESTONE_VALUES), name="kind"),
        Index("ix_milestones_kind_date", "kind", "date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(40))
    date: Mapped[dt.date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))

    created_by: Mapped[User] = relationship(lazy="joined")


class CaseClosure(Base):
    """A period in which a case is closed (Fallabschluss); reopened_at NULL = closed now."""

    __tablename__ = "case_closures"
    __table_args__ = (
        CheckConstraint(_in("reason", CLOSE_REASONS), name="reason"),
        Index(
            "uq_case_closures_open",
            "case_id",
            unique=True,
            sqlite_where=text("reopened_at IS NULL"),
            postgresql_where=text("reopened_at IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    closed_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str] = mapped_column(Text, default="")
    closed_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    reopened_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    reopen_reason: Mapped[str | None] = mapped_column(Text)
    reopened_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class CostApproval(Base):
    """A request for a cost approval (Gesuch um Kostengutsprache) and the canton's decision."""

    __tablename__ = "cost_approvals"
    __table_args__ = (
        CheckConstraint(_in("status", COST_APPROVAL_STATUSES), name="status"),
        CheckConstraint(_in("programme", PROGRAMMES), name="programme"),
        CheckConstraint("amount_chf > 0", name="amount_positive"),
        CheckConstraint(
            "approved_amount_chf IS NULL OR "
            "(approved_amount_chf >= 0 AND approved_amount_chf <= amount_chf)",
            name="approved_amount",
        ),
        CheckConstraint("period_to >= period_from", name="period"),
        # A decided request carries its decision; an open one carries none.
        CheckConstraint(
            "(status = 'requested' AND decided_at IS NULL) OR "
            "(status <> 'requested' AND decided_at IS NOT NULL "
            "AND approved_amount_chf IS NOT NULL)",
            name="decision_complete",
        ),
        Index("ix_cost_approvals_status", "status"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    measure_id: Mapped[str | None] = mapped_column(
        ForeignKey("measures.id", ondelete="SET NULL"), index=True
    )
    programme: Mapped[str] = mapped_column(String(32))
    amount_chf: Mapped[Decimal] = mapped_column(Money)
    period_from: Mapped[dt.date] = mapped_column(Date)
    period_to: Mapped[dt.date] = mapped_column(Date)
    justification: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(24), default="requested")
    requested_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    requested_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    #: The requesting unit: the decision is reported back to it.
    requested_by_unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    decided_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    approved_amount_chf: Mapped[Decimal | None] = mapped_column(Money)
    decision_reason: Mapped[str | None] = mapped_column(Text)
    #: The decision letter (Verfügung), a normal versioned document of the case.
    decision_document_id: Mapped[str | None] = mapped_column(
        ForeignKey("documents.id", ondelete="SET NULL")
    )

    requested_by: Mapped[User] = relationship(foreign_keys=[requested_by_id], lazy="joined")
    requested_by_unit: Mapped[Unit] = relationship(lazy="joined")
    decided_by: Mapped[User | None] = relationship(foreign_keys=[decided_by_id], lazy="joined")
    attachments: Mapped[list[CostApprovalDocument]] = relationship(
        lazy="selectin", order_by="CostApprovalDocument.document_id"
    )


class CostApprovalDocument(Base):
    """A document of the case attached to a cost-approval request (e.g. the programme offer)."""

    __tablename__ = "cost_approval_documents"

    cost_approval_id: Mapped[str] = mapped_column(
        ForeignKey("cost_approvals.id", ondelete="CASCADE"), primary_key=True
    )
    document_id: Mapped[str] = mapped_column(
        ForeignKey("documents.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Notification(Base):
    """A message to a unit (Meldung): only kind, case and link, never personal details."""

    __tablename__ = "notifications"
    __table_args__ = (
        # One row per unit and occurrence: monitoring may run any number of times.
        UniqueConstraint("unit_id", "dedupe_key", name="uq_notifications_unit_occurrence"),
        Index("ix_notifications_unit_created", "unit_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"))
    kind: Mapped[str] = mapped_column(String(48))
    case_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    dedupe_key: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    read_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    read_by_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    #: When the e-mail copy went out (None: not sent, or no mailbox configured).
    emailed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())


class UnitMailbox(Base):
    """A unit's functional e-mail address for copies of its notifications (opt-in)."""

    __tablename__ = "unit_mailboxes"

    unit_id: Mapped[int] = mapped_column(ForeignKey("units.id"), primary_key=True)
    email: Mapped[str] = mapped_column(String(254))
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
