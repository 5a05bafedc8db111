"""Case process: target groups, measures, milestones, closures, cost approvals, notifications.

Only new tables, so no server defaults are needed for existing rows.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25 20:54:13.326745
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

PROGRAMME_CHECK = (
    "programme IN ('language_course','early_language_support','IKG1','IKG2','BAI','INVOL',"
    "'AMIplus','potential_assessment','employment_programme','childcare','other')"
)


def upgrade() -> None:
    """Apply this migration."""
    op.create_table(
        "unit_mailboxes",
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("updated_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_unit_mailboxes_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("unit_id", name=op.f("pk_unit_mailboxes")),
    )
    op.create_table(
        "case_closures",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("closed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("closed_by_id", sa.Integer(), nullable=False),
        sa.Column("reopened_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reopen_reason", sa.Text(), nullable=True),
        sa.Column("reopened_by_id", sa.Integer(), nullable=True),
        sa.CheckConstraint(
            "reason IN ('integrated_education','integrated_employment','seven_years',"
            "'moved_out_of_canton','deceased','other')",
            name=op.f("ck_case_closures_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_case_closures_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["closed_by_id"], ["users.id"], name=op.f("fk_case_closures_closed_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["reopened_by_id"], ["users.id"], name=op.f("fk_case_closures_reopened_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_case_closures")),
    )
    with op.batch_alter_table("case_closures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_case_closures_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "uq_case_closures_open",
            ["case_id"],
            unique=True,
            sqlite_where=sa.text("reopened_at IS NULL"),
            postgresql_where=sa.text("reopened_at IS NULL"),
        )

    op.create_table(
        "measures",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("programme", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=200), nullable=False),
        sa.Column("start_date", sa.Date(), nullable=False),
        sa.Column("end_date", sa.Date(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "status_changed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False
        ),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.Column("updated_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            PROGRAMME_CHECK,
            name=op.f("ck_measures_programme"),
        ),
        sa.CheckConstraint(
            "status IN ('planned','running','completed','aborted','interrupted')",
            name=op.f("ck_measures_status"),
        ),
        sa.CheckConstraint(
            "end_date IS NULL OR end_date >= start_date", name=op.f("ck_measures_period")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_measures_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_measures_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_measures")),
    )
    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_measures_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_measures_status_changed", ["status", "status_changed_at"], unique=False
        )

    op.create_table(
        "milestones",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("value", sa.String(length=40), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "kind IN ('language_level','education','employment')", name=op.f("ck_milestones_kind")
        ),
        sa.ForeignKeyConstraint(
            ["case_id"], ["cases.id"], name=op.f("fk_milestones_case_id_cases"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_milestones_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_milestones")),
    )
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_milestones_case_id"), ["case_id"], unique=False)
        batch_op.create_index("ix_milestones_kind_date", ["kind", "date"], unique=False)

    op.create_table(
        "notifications",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("unit_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=48), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("dedupe_key", sa.String(length=200), nullable=False),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("read_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("read_by_id", sa.Integer(), nullable=True),
        sa.Column("emailed_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_notifications_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["read_by_id"], ["users.id"], name=op.f("fk_notifications_read_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["unit_id"], ["units.id"], name=op.f("fk_notifications_unit_id_units")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_notifications")),
        sa.UniqueConstraint("unit_id", "dedupe_key", name="uq_notifications_unit_occurrence"),
    )
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_notifications_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            "ix_notifications_unit_created", ["unit_id", "created_at"], unique=False
        )

    op.create_table(
        "target_group_assignments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("target_group", sa.String(length=24), nullable=False),
        sa.Column("started_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("ended_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("set_by_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "target_group IN ('education','labour_market','social_integration')",
            name=op.f("ck_target_group_assignments_target_group"),
        ),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_target_group_assignments_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["set_by_id"], ["users.id"], name=op.f("fk_target_group_assignments_set_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_target_group_assignments")),
    )
    with op.batch_alter_table("target_group_assignments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_target_group_assignments_case_id"), ["case_id"], unique=False
        )
        batch_op.create_index(
            "uq_target_group_assignments_open",
            ["case_id"],
            unique=True,
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )

    op.create_table(
        "cost_approvals",
        sa.Column("id", sa.String(length=36), nullable=False),
        sa.Column("case_id", sa.String(length=36), nullable=False),
        sa.Column("measure_id", sa.String(length=36), nullable=True),
        sa.Column("programme", sa.String(length=32), nullable=False),
        sa.Column("amount_chf", sa.Numeric(precision=12, scale=2), nullable=False),
        sa.Column("period_from", sa.Date(), nullable=False),
        sa.Column("period_to", sa.Date(), nullable=False),
        sa.Column("justification", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=24), nullable=False),
        sa.Column("requested_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("requested_by_id", sa.Integer(), nullable=False),
        sa.Column("requested_by_unit_id", sa.Integer(), nullable=False),
        sa.Column("decided_at", dossier_service.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("decided_by_id", sa.Integer(), nullable=True),
        sa.Column("approved_amount_chf", sa.Numeric(precision=12, scale=2), nullable=True),
        sa.Column("decision_reason", sa.Text(), nullable=True),
        sa.Column("decision_document_id", sa.String(length=36), nullable=True),
        sa.CheckConstraint(
            "(status = 'requested' AND decided_at IS NULL) OR (status <> 'requested' "
            "AND decided_at IS NOT NULL AND approved_amount_chf IS NOT NULL)",
            name=op.f("ck_cost_approvals_decision_complete"),
        ),
        sa.CheckConstraint(
            PROGRAMME_CHECK,
            name=op.f("ck_cost_approvals_programme"),
        ),
        sa.CheckConstraint(
            "status IN ('requested','approved','partially_approved','rejected')",
            name=op.f("ck_cost_approvals_status"),
        ),
        sa.CheckConstraint("amount_chf > 0", name=op.f("ck_cost_approvals_amount_positive")),
        sa.CheckConstraint(
            "approved_amount_chf IS NULL OR "
            "(approved_amount_chf >= 0 AND approved_amount_chf <= amount_chf)",
            name=op.f("ck_cost_approvals_approved_amount"),
        ),
        sa.CheckConstraint("period_to >= period_from", name=op.f("ck_cost_approvals_period")),
        sa.ForeignKeyConstraint(
            ["case_id"],
            ["cases.id"],
            name=op.f("fk_cost_approvals_case_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["decided_by_id"], ["users.id"], name=op.f("fk_cost_approvals_decided_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["decision_document_id"],
            ["documents.id"],
            name=op.f("fk_cost_approvals_decision_document_id_documents"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["measure_id"],
            ["measures.id"],
            name=op.f("fk_cost_approvals_measure_id_measures"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_id"], ["users.id"], name=op.f("fk_cost_approvals_requested_by_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["requested_by_unit_id"],
            ["units.id"],
            name=op.f("fk_cost_approvals_requested_by_unit_id_units"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cost_approvals")),
    )
    with op.batch_alter_table("cost_approvals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_cost_approvals_case_id"), ["case_id"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_cost_approvals_measure_id"), ["measure_id"], unique=False
        )
        batch_op.create_index("ix_cost_approvals_status", ["status"], unique=False)

    op.create_table(
        "cost_approval_documents",
        sa.Column("cost_approval_id", sa.String(length=36), nullable=False),
        sa.Column("document_id", sa.String(length=36), nullable=False),
        sa.ForeignKeyConstraint(
            ["cost_approval_id"],
            ["cost_approvals.id"],
            name=op.f("fk_cost_approval_documents_cost_approval_id_cost_approvals"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["document_id"],
            ["documents.id"],
            name=op.f("fk_cost_approval_documents_document_id_documents"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "cost_approval_id", "document_id", name=op.f("pk_cost_approval_documents")
        ),
    )
    with op.batch_alter_table("cost_approval_documents", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_cost_approval_documents_document_id"), ["document_id"], unique=False
        )


def downgrade() -> None:
    """Revert this migration."""
    with op.batch_alter_table("cost_approval_documents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_cost_approval_documents_document_id"))

    op.drop_table("cost_approval_documents")
    with op.batch_alter_table("cost_approvals", schema=None) as batch_op:
        batch_op.drop_index("ix_cost_approvals_status")
        batch_op.drop_index(batch_op.f("ix_cost_approvals_measure_id"))
        batch_op.drop_index(batch_op.f("ix_cost_approvals_case_id"))

    op.drop_table("cost_approvals")
    with op.batch_alter_table("target_group_assignments", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_target_group_assignments_open",
            sqlite_where=sa.text("ended_at IS NULL"),
            postgresql_where=sa.text("ended_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_target_group_assignments_case_id"))

    op.drop_table("target_group_assignments")
    with op.batch_alter_table("notifications", schema=None) as batch_op:
        batch_op.drop_index("ix_notifications_unit_created")
        batch_op.drop_index(batch_op.f("ix_notifications_case_id"))

    op.drop_table("notifications")
    with op.batch_alter_table("milestones", schema=None) as batch_op:
        batch_op.drop_index("ix_milestones_kind_date")
        batch_op.drop_index(batch_op.f("ix_milestones_case_id"))

    op.drop_table("milestones")
    with op.batch_alter_table("measures", schema=None) as batch_op:
        batch_op.drop_index("ix_measures_status_changed")
        batch_op.drop_index(batch_op.f("ix_measures_case_id"))

    op.drop_table("measures")
    with op.batch_alter_table("case_closures", schema=None) as batch_op:
        batch_op.drop_index(
            "uq_case_closures_open",
            sqlite_where=sa.text("reopened_at IS NULL"),
            postgresql_where=sa.text("reopened_at IS NULL"),
        )
        batch_op.drop_index(batch_op.f("ix_case_closures_case_id"))

    op.drop_table("case_closures")
    op.drop_table("unit_mailboxes")
