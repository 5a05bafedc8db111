"""Archives: SIP exports and their cases, legal holds, tombstones of deleted cases.

Only new tables, so no server defaults are needed for existing rows.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 21:22:39.636106
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "exports",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("criteria", sa.JSON(), nullable=False),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("run_id", sa.String(length=36), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("started_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("heartbeat_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("finished_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("files_done", sa.Integer(), nullable=False),
        sa.Column("files_total", sa.Integer(), nullable=False),
        sa.Column("bytes_done", sa.BigInteger(), nullable=False),
        sa.Column("bytes_total", sa.BigInteger(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("storage_key", sa.String(length=200), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("warnings", sa.JSON(), nullable=False),
        sa.Column("acknowledged_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("acknowledged_by_id", sa.Integer(), nullable=True),
        sa.Column("archive_reference", sa.String(length=100), nullable=True),
        sa.Column("purged_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "acknowledged_at IS NULL OR (status = 'done' AND archive_reference IS NOT NULL)",
            name=op.f("ck_exports_acknowledged_done"),
        ),
        sa.CheckConstraint(
            "status IN ('queued','running','done','failed')", name=op.f("ck_exports_status")
        ),
        sa.ForeignKeyConstraint(
            ["acknowledged_by_id"], ["users.id"], name=op.f("fk_exports_acknowledged_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_exports_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_exports")),
    )
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.create_index(
            "ix_exports_status_heartbeat", ["status", "heartbeat_at"], unique=False
        )

    op.create_table(
        "case_tombstones",
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("entry_date", sa.Date(), nullable=False),
        sa.Column("closed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("export_id", sa.String(length=36), nullable=False),
        sa.Column("archive_reference", sa.String(length=100), nullable=False),
        sa.Column("deleted_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deleted_by", sa.String(length=64), nullable=False),
        sa.Column("documents", sa.Integer(), nullable=False),
        sa.Column("versions", sa.Integer(), nullable=False),
        sa.Column("bytes", sa.BigInteger(), nullable=False),
        sa.Column("pending_objects", sa.JSON(), nullable=False),
        sa.Column("purged_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["export_id"], ["exports.id"], name=op.f("fk_case_tombstones_export_id_exports")
        ),
        sa.PrimaryKeyConstraint("case_id", name=op.f("pk_case_tombstones")),
        sa.UniqueConstraint("reference", name=op.f("uq_case_tombstones_reference")),
    )
    with op.batch_alter_table("case_tombstones", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_case_tombstones_export_id"), ["export_id"], unique=False
        )
        batch_op.create_index(
            batch_op.f("ix_case_tombstones_purged_at"), ["purged_at"], unique=False
        )

    op.create_table(
        "export_cases",
        sa.Column("export_id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("reference", sa.String(length=32), nullable=False),
        sa.Column("closed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["export_id"],
            ["exports.id"],
            name=op.f("fk_export_cases_export_id_exports"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("export_id", "case_id", name=op.f("pk_export_cases")),
    )
    with op.batch_alter_table("export_cases", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_export_cases_case_id"), ["case_id"], unique=False)

    op.create_table(
        "legal_holds",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=False),
        sa.Column("released_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("released_by_id", sa.Integer(), nullable=True),
        sa.Column("release_reason", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_legal_holds_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["released_by_id"], ["users.id"], name=op.f("fk_legal_holds_released_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["set_by_id"], ["users.id"], name=op.f("fk_legal_holds_set_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_legal_holds")),
    )
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_legal_holds_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "uq_legal_holds_open",
            ["case_id"],
            unique=True,
            sqlite_where=sa.text("released_at IS NULL"),
            postgresql_where=sa.text("released_at IS NULL"),
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("legal_holds", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_legal_holds_open",
            sqlite_where=sa.text("released_at IS NULL"),
            postgresql_where=sa.text("released_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_legal_holds_case_id"))

    op.drop_table("legal_holds")
    with op.batch_alter_table("export_cases", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_export_cases_case_id"))

    op.drop_table("export_cases")
    with op.batch_alter_table("case_tombstones", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_case_tombstones_purged_at"))
        batch_op.drop_index(batch_op.f("ix_case_tombstones_export_id"))

    op.drop_table("case_tombstones")
    with op.batch_alter_table("exports", schema=None) as batch_op:
        batch_op.drop_index("ix_exports_status_heartbeat")

    op.drop_table("exports")
