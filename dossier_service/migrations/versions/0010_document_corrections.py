"""Document corrections: date on the document, tags, withdrawal, version reasons, history
and tombstones of purged documents.

Existing documents get no date and no tags, are not withdrawn, and their versions no reason.

Revision ID: 0010
Revises: 0007
Create Date: 2026-12-05 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0010"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    # Plain ADD COLUMNs: a batch copy of "documents" on SQLite would drop the table, and
    # with it (ON DELETE CASCADE) every version row.
    op.add_column("documents", sa.Column("document_date", sa.Date(), nullable=True))
    op.add_column(
        "documents", sa.Column("tags", sa.JSON(), server_default=sa.text("'[]'"), nullable=False)
    )
    op.add_column(
        "documents",
        sa.Column("withdrawn_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("documents", sa.Column("withdrawn_by", sa.String(length=64), nullable=True))
    op.add_column("documents", sa.Column("withdrawn_reason", sa.Text(), nullable=True))
    op.create_index(op.f("ix_documents_withdrawn_at"), "documents", ["withdrawn_at"], unique=False)
    op.add_column("document_versions", sa.Column("reason", sa.Text(), nullable=True))
    op.create_table(
        "document_changes",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("field", sa.String(length=32), nullable=False),
        sa.Column("old_value", sa.JSON(), nullable=True),
        sa.Column("new_value", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("changed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("changed_by_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["changed_by_id"], ["users.id"], name=op.f("fk_document_changes_changed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_document_changes_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_document_changes")),
    )
    op.create_index(
        op.f("ix_document_changes_document_id"), "document_changes", ["document_id"], unique=False
    )
    op.create_table(
        "document_tombstones",
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("withdrawn_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("withdrawn_by", sa.String(length=64), nullable=False),
        sa.Column("withdrawn_reason", sa.Text(), nullable=False),
        sa.Column("purged_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("purged_by", sa.String(length=64), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("pending_objects", sa.JSON(), nullable=False),
        sa.Column(
            "objects_deleted_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_document_tombstones_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("document_id", name=op.f("pk_document_tombstones")),
    )
    op.create_index(
        op.f("ix_document_tombstones_case_id"), "document_tombstones", ["case_id"], unique=False
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index(op.f("ix_document_tombstones_case_id"), table_name="document_tombstones")
    op.drop_table("document_tombstones")
    op.drop_index(op.f("ix_document_changes_document_id"), table_name="document_changes")
    op.drop_table("document_changes")
    op.execute("ALTER TABLE document_versions DROP COLUMN reason")
    op.drop_index(op.f("ix_documents_withdrawn_at"), table_name="documents")
    # DROP COLUMN in place (SQLite 3.35+ and PostgreSQL): a batch copy of "documents" would
    # drop the table and, through ON DELETE CASCADE, every version row with it.
    for column in ("withdrawn_reason", "withdrawn_by", "withdrawn_at", "tags", "document_date"):
        op.execute(f"ALTER TABLE documents DROP COLUMN {column}")
