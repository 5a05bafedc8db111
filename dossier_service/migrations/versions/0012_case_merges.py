"""Case merges: the pointer of a merged case to the surviving one, and the merge record.

Existing cases stand on their own (no pointer); no merge has happened yet.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 02:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    # Plain ADD COLUMN, no batch copy: recreating "cases" on SQLite would cascade-delete
    # every row that references it.
    op.add_column("cases", sa.Column("merged_into_id", sa.String(length=36), nullable=True))
    op.create_index(op.f("ix_cases_merged_into_id"), "cases", ["merged_into_id"], unique=False)
    op.create_table(
        "case_merges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("surviving_case_id", sa.String(length=36), nullable=False),
        sa.Column("merged_case_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("moved", sa.JSON(), nullable=False),
        sa.Column("merged_by_id", sa.Integer(), nullable=False),
        sa.Column("merged_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["merged_by_id"], ["users.id"], name=op.f("fk_case_merges_merged_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["merged_case_id"],
            ["cases.id"],
            name=op.f("fk_case_merges_merged_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["surviving_case_id"],
            ["cases.id"],
            name=op.f("fk_case_merges_surviving_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_merges")),
        sa.UniqueConstraint("merged_case_id", name=op.f("uq_case_merges_merged_case_id")),
    )
    op.create_index(
        op.f("ix_case_merges_surviving_case_id"),
        "case_merges",
        ["surviving_case_id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this migration (merge records and pointers are dropped)."""
    op.drop_index(op.f("ix_case_merges_surviving_case_id"), table_name="case_merges")
    op.drop_table("case_merges")
    op.drop_index(op.f("ix_cases_merged_into_id"), table_name="cases")
    # SQLite has dropped columns natively since 3.35; no table copy, no cascade.
    op.drop_column("cases", "merged_into_id")
