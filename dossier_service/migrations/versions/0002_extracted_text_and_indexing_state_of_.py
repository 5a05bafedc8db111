"""Extracted text and indexing state of versions.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 20:50:34.473108
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("document_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("text_key", sa.String(length=200), nullable=True))
        batch_op.add_column(sa.Column("text_chars", sa.Integer(), nullable=True))
        # Existing rows get an empty object; NOT NULL needs a default on a non-empty table.
        batch_op.add_column(
            sa.Column("extraction", sa.JSON(), nullable=False, server_default=sa.text("'{}'"))
        )
        batch_op.add_column(
            sa.Column("indexed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("document_versions", schema=None) as batch_op:
        batch_op.drop_column("indexed_at")
        batch_op.drop_column("extraction")
        batch_op.drop_column("text_chars")
        batch_op.drop_column("text_key")
