"""Responsibilities: when the search index was relabelled for the period (unit facet).

Existing periods count as synced (a rebuild after this release labels every entry), so the
new column is filled with their start for rows that exist now.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 00:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("responsibilities") as batch:
        batch.add_column(
            sa.Column("index_synced_at", dossier_service.db.UTCDateTime(timezone=True))
        )
    op.execute("UPDATE responsibilities SET index_synced_at = started_at")
    op.create_index(
        "ix_responsibilities_unsynced", "responsibilities", ["ended_at", "index_synced_at"]
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index("ix_responsibilities_unsynced", table_name="responsibilities")
    with op.batch_alter_table("responsibilities") as batch:
        batch.drop_column("index_synced_at")
