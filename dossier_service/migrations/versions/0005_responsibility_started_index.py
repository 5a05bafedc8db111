"""Index on responsibilities.started_at: the search looks up recently moved cases.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-26 00:40:00
"""

from __future__ import annotations

from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_index("ix_responsibilities_started", "responsibilities", ["started_at"])


def downgrade() -> None:
    """Revert this migration."""
    op.drop_index("ix_responsibilities_started", table_name="responsibilities")
