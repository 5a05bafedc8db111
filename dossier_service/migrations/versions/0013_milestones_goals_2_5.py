"""Milestones for IAS goals 2 and 5: school_language and social_life.

Only the check constraint on ``milestones.kind`` widens; existing rows are untouched. The
downgrade is refused while milestones of the new kinds exist (they would be lost).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 02:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

OLD_KINDS = "kind IN ('language_level','education','employment')"
NEW_KINDS = "kind IN ('language_level','education','employment','school_language','social_life')"


def _replace_check(expression: str) -> None:
    """Swap the kind constraint (SQLite copies the table, which nothing references)."""
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_milestones_kind"), type_="check")
        batch_op.create_check_constraint(op.f("ck_milestones_kind"), sa.text(expression))


def upgrade() -> None:
    """Apply this migration."""
    _replace_check(NEW_KINDS)


def downgrade() -> None:
    """Revert this migration (refused while milestones of the new kinds exist)."""
    count = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT COUNT(*) FROM milestones WHERE kind IN ('school_language','social_life')"
            )
        )
        .scalar_one()
    )
    if count:
        raise RuntimeError(
            f"{count} milestones for IAS goals 2 and 5 exist; the previous schema cannot hold "
            "them. Keep this release or remove them deliberately first."
        )
    _replace_check(OLD_KINDS)
