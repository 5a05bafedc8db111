"""Follow-ups (Wiedervorlagen): dated reminders on a case, one horizon follow-up per case.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 02:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "follow_ups",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("due_date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("measure_id", sa.String(length=36), nullable=True),
        sa.Column("cost_approval_id", sa.String(length=36), nullable=True),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=True),
        sa.Column("done_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("done_by_id", sa.Integer(), nullable=True),
        sa.Column("done_note", sa.Text(), nullable=False),
        sa.CheckConstraint(
            "(done_at IS NULL) = (done_by_id IS NULL)", name=op.f("ck_follow_ups_done")
        ),
        sa.CheckConstraint("source IN ('manual','horizon')", name=op.f("ck_follow_ups_source")),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_follow_ups_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["cost_approval_id"],
            ["cost_approvals.id"],
            name=op.f("fk_follow_ups_cost_approval_id_cost_approvals"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_follow_ups_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["done_by_id"], ["users.id"], name=op.f("fk_follow_ups_done_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["measure_id"], ["measures.id"], name=op.f("fk_follow_ups_measure_id_measures")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_follow_ups_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_follow_ups")),
    )
    op.create_index(op.f("ix_follow_ups_case_id"), "follow_ups", ["case_id"], unique=False)
    op.create_index(op.f("ix_follow_ups_unit_id"), "follow_ups", ["unit_id"], unique=False)
    op.create_index("ix_follow_ups_open_due", "follow_ups", ["done_at", "due_date"], unique=False)
    op.create_index(
        "uq_follow_ups_horizon",
        "follow_ups",
        ["case_id"],
        unique=True,
        sqlite_where=sa.text("source = 'horizon'"),
        postgresql_where=sa.text("source = 'horizon'"),
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index("uq_follow_ups_horizon", table_name="follow_ups")
    op.drop_index("ix_follow_ups_open_due", table_name="follow_ups")
    op.drop_index(op.f("ix_follow_ups_unit_id"), table_name="follow_ups")
    op.drop_index(op.f("ix_follow_ups_case_id"), table_name="follow_ups")
    op.drop_table("follow_ups")
