"""Server-side web sessions and per-address counters of failed authentications.

Only new tables, so existing rows need nothing. Sessions signed before this release carry
no session id and simply lead to the login page once.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 08:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "web_sessions",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("ip", sa.String(length=64), nullable=True),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("end_reason", sa.String(length=32), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_web_sessions_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_web_sessions")),
    )
    op.create_index(
        "ix_web_sessions_user_open", "web_sessions", ["user_id", "ended_at"], unique=False
    )
    op.create_index(
        op.f("ix_web_sessions_expires_at"), "web_sessions", ["expires_at"], unique=False
    )
    op.create_table(
        "auth_failures",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("window_start", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("written", sa.Integer(), nullable=False),
        sa.Column("first_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("summarized", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_auth_failures")),
        sa.UniqueConstraint("ip", "window_start", name="uq_auth_failures_ip_window"),
    )
    op.create_index(
        op.f("ix_auth_failures_window_start"), "auth_failures", ["window_start"], unique=False
    )


def downgrade() -> None:
    """Revert this migration (open sessions and failure counters are dropped)."""
    op.drop_index(op.f("ix_auth_failures_window_start"), table_name="auth_failures")
    op.drop_table("auth_failures")
    op.drop_index(op.f("ix_web_sessions_expires_at"), table_name="web_sessions")
    op.drop_index("ix_web_sessions_user_open", table_name="web_sessions")
    op.drop_table("web_sessions")
