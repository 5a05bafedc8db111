"""One person, one case: unique ZEMIS and AHV numbers, folded name keys, household links.

Existing duplicates cannot be resolved by a migration (which case is the person's real
one is a caseworker's decision), so the upgrade stops with a message naming the cases
that share a number; merge or correct them with the previous release, then upgrade.

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 17:20:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import dossier_service.db
from dossier_service.folding import name_key

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def _duplicates(conn: sa.Connection) -> list[str]:
    """Lines naming the case references that share a ZEMIS or an AHV number."""
    lines = []
    for column, label in (("zemis_normalized", "ZEMIS"), ("ahv_number", "AHV")):
        rows = conn.execute(
            sa.text(
                f"SELECT {column}, reference FROM cases WHERE {column} IN ("  # noqa: S608
                f" SELECT {column} FROM cases WHERE {column} IS NOT NULL"
                f" GROUP BY {column} HAVING COUNT(*) > 1) ORDER BY {column}, reference"
            )
        ).all()
        groups: dict[str, list[str]] = {}
        for key, reference in rows:
            groups.setdefault(key, []).append(reference)
        # The number itself is personal data: the message names only the cases.
        lines += [f"same {label} number: {', '.join(refs)}" for refs in groups.values()]
    return lines


def upgrade() -> None:
    """Apply this migration (refused while two cases share a ZEMIS or AHV number)."""
    conn = op.get_bind()
    duplicates = _duplicates(conn)
    if duplicates:
        raise RuntimeError(
            "Migration 0011 needs one case per person, but these cases share an identifier "
            "(merge or correct them first): " + "; ".join(duplicates)
        )
    # Plain ALTER TABLE, no batch copy: recreating "cases" on SQLite would cascade-delete
    # the rows that reference it. The empty default is overwritten just below.
    op.add_column(
        "cases",
        sa.Column("name_key", sa.String(length=402), server_default="", nullable=False),
    )
    cases = sa.table(
        "cases",
        sa.column("id", sa.String),
        sa.column("family_name", sa.String),
        sa.column("given_names", sa.String),
        sa.column("name_key", sa.String),
    )
    for case_id, family, given in conn.execute(
        sa.select(cases.c.id, cases.c.family_name, cases.c.given_names)
    ).all():
        conn.execute(
            cases.update().where(cases.c.id == case_id).values(name_key=name_key(family, given))
        )
    op.create_index(op.f("ix_cases_name_key"), "cases", ["name_key"], unique=False)
    op.drop_index("ix_cases_zemis_normalized", table_name="cases")
    op.drop_index("ix_cases_ahv_number", table_name="cases")
    op.create_index("uq_cases_zemis_normalized", "cases", ["zemis_normalized"], unique=True)
    op.create_index(
        "uq_cases_ahv_number",
        "cases",
        ["ahv_number"],
        unique=True,
        sqlite_where=sa.text("ahv_number IS NOT NULL"),
        postgresql_where=sa.text("ahv_number IS NOT NULL"),
    )
    op.create_table(
        "household_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("case_a_id", sa.String(length=36), nullable=False),
        sa.Column("case_b_id", sa.String(length=36), nullable=False),
        sa.Column("relation", sa.String(length=16), nullable=False),
        sa.Column("created_at", dossier_service.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), nullable=False),
        sa.CheckConstraint(
            "relation IN ('parent','child','partner')", name=op.f("ck_household_links_relation")
        ),
        sa.CheckConstraint("case_a_id <> case_b_id", name=op.f("ck_household_links_two_cases")),
        sa.ForeignKeyConstraint(
            ["case_a_id"],
            ["cases.id"],
            name=op.f("fk_household_links_case_a_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["case_b_id"],
            ["cases.id"],
            name=op.f("fk_household_links_case_b_id_cases"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"], ["users.id"], name=op.f("fk_household_links_created_by_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_household_links")),
        sa.UniqueConstraint("case_a_id", "case_b_id", name="uq_household_links_pair"),
    )
    op.create_index(
        op.f("ix_household_links_case_a_id"), "household_links", ["case_a_id"], unique=False
    )
    op.create_index(
        op.f("ix_household_links_case_b_id"), "household_links", ["case_b_id"], unique=False
    )


def downgrade() -> None:
    """Revert this migration (household links and the derived name keys are dropped)."""
    op.drop_index(op.f("ix_household_links_case_b_id"), table_name="household_links")
    op.drop_index(op.f("ix_household_links_case_a_id"), table_name="household_links")
    op.drop_table("household_links")
    op.drop_index("uq_cases_ahv_number", table_name="cases")
    op.drop_index("uq_cases_zemis_normalized", table_name="cases")
    op.create_index("ix_cases_ahv_number", "cases", ["ahv_number"], unique=False)
    op.create_index("ix_cases_zemis_normalized", "cases", ["zemis_normalized"], unique=False)
    op.drop_index(op.f("ix_cases_name_key"), table_name="cases")
    # SQLite has dropped columns natively since 3.35; no table copy, no cascade.
    op.drop_column("cases", "name_key")
