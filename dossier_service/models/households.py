"""Links between the cases of one family (parent, child, partner)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKey, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dossier_service.dates import utcnow
from dossier_service.db import Base, UTCDateTime

#: What case_b is to case_a, and what case_a therefore is to case_b.
INVERSE_RELATION: dict[str, str] = {"parent": "child", "child": "parent", "partner": "partner"}
HOUSEHOLD_RELATIONS: tuple[str, ...] = tuple(INVERSE_RELATION)


class HouseholdLink(Base):
    """Case B is the ``relation`` (parent, child, partner) of the person of case A."""

    __tablename__ = "household_links"
    __table_args__ = (
        CheckConstraint("relation IN ('parent','child','partner')", name="relation"),
        CheckConstraint("case_a_id <> case_b_id", name="two_cases"),
        # One link per pair and direction; the service refuses the reverse direction too.
        UniqueConstraint("case_a_id", "case_b_id", name="uq_household_links_pair"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_a_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    case_b_id: Mapped[str] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    relation: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    created_by_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
