"""Document versions: a lease per claimed version, so work of a dead worker is taken up again.

Versions waiting or in processing when this release is installed get their creation time as
the start of processing and of queueing, so the periodic requeue takes them up (a worker of the
old release that died left them in ``processing`` forever).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-05 08:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    with op.batch_alter_table("document_versions") as batch:
        batch.add_column(
            sa.Column("processing_since", dossier_service.db.UTCDateTime(timezone=True))
        )
        batch.add_column(
            sa.Column("processing_queued_at", dossier_service.db.UTCDateTime(timezone=True))
        )
        batch.add_column(sa.Column("processing_owner", sa.String(length=120)))
        batch.add_column(
            sa.Column("processing_lease_until", dossier_service.db.UTCDateTime(timezone=True))
        )
        batch.add_column(
            sa.Column(
                "processing_attempts", sa.Integer(), nullable=False, server_default=sa.text("0")
            )
        )
    op.execute(
        "UPDATE document_versions SET processing_since = created_at, "
        "processing_queued_at = created_at WHERE processing IN ('pending', 'processing')"
    )
    op.create_index(
        "ix_document_versions_processing",
        "document_versions",
        ["processing", "processing_since"],
    )


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index("ix_document_versions_processing", table_name="document_versions")
    with op.batch_alter_table("document_versions") as batch:
        batch.drop_column("processing_attempts")
        batch.drop_column("processing_lease_until")
        batch.drop_column("processing_owner")
        batch.drop_column("processing_queued_at")
        batch.drop_column("processing_since")
