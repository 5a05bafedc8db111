"""The case journal: append-only entries of notes, conversations, calls and meetings.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-06 02:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "journal_entries",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("occurred_on", sa.Date(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("participants", sa.JSON(), server_default=sa.text("'[]'"), nullable=False),
        sa.Column("corrects_id", sa.String(length=36), nullable=True),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('note','conversation','phone','meeting')",
            name=op.f("ck_journal_entries_kind"),
        ),
        sa.CheckConstraint(
            "corrects_id IS NULL OR corrects_id <> id", name=op.f("ck_journal_entries_not_itself")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_journal_entries_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["corrects_id"],
            ["journal_entries.id"],
            name=op.f("fk_journal_entries_corrects_id_journal_entries"),
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_journal_entries_created_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_journal_entries_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journal_entries")),
    )
    op.create_index(
        "ix_journal_entries_case_occurred",
        "journal_entries",
        ["case_id", "occurred_on"],
        unique=False,
    )
    op.create_index(
        op.f("ix_journal_entries_corrects_id"), "journal_entries", ["corrects_id"], unique=True
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index(op.f("ix_journal_entries_corrects_id"), table_name="journal_entries")
    op.drop_index("ix_journal_entries_case_occurred", table_name="journal_entries")
    op.drop_table("journal_entries")
