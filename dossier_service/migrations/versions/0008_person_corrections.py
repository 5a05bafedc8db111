"""Corrections of a case's person: the regulation date and the dated change histories.

Existing cases get no regulation date (NULL: the date of their Regelung was never
recorded); the indicators count such F/B cases from their entry date until it is
entered, and report how many they are.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("regulation_date", sa.Date(), nullable=True))
    op.create_table(
        "person_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.Text(), nullable=True),
        sa.Column("new_value", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_person_changes_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"], ["users.id"], name=op.f("fk_person_changes_changed_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_person_changes")),
    )
    op.create_index(op.f("ix_person_changes_case_id"), "person_changes", ["case_id"], unique=False)
    op.create_table(
        "residence_status_changes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("old_status", sa.String(length=1), nullable=False),
        sa.Column("new_status", sa.String(length=1), nullable=False),
        sa.Column("regulation_date", sa.Date(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=False),
        sa.Column("changed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "new_status IN ('N','F','B')", name=op.f("ck_residence_status_changes_new_status")
        ),
        sa.CheckConstraint(
            "old_status IN ('N','F','B')", name=op.f("ck_residence_status_changes_old_status")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_residence_status_changes_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["changed_by_id"],
            ["users.id"],
            name=op.f("fk_residence_status_changes_changed_by_id_users"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_residence_status_changes")),
    )
    op.create_index(
        op.f("ix_residence_status_changes_case_id"),
        "residence_status_changes",
        ["case_id"],
        unique=False,
    )


def downgrade() -> None:
    """Revert this migration (the change histories and regulation dates are dropped)."""
    op.drop_index(
        op.f("ix_residence_status_changes_case_id"), table_name="residence_status_changes"
    )
    op.drop_table("residence_status_changes")
    op.drop_index(op.f("ix_person_changes_case_id"), table_name="person_changes")
    op.drop_table("person_changes")
    # A plain DROP COLUMN (SQLite >= 3.35): a batch rebuild of "cases" would cascade its
    # deletion into every table that references a case.
    op.drop_column("cases", "regulation_date")
