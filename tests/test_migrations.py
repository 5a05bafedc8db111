"""Alembic migrations produce exactly the schema the models declare, on every backend."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from dossier_service.db import Base, Database


def test_migrated_schema_matches_models(database_url: str) -> None:
    db = Database(database_url)
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"compare_type": True})
        diff = compare_metadata(context, Base.metadata)
    db.dispose()
    assert diff == [], f"models and migrations disagree; write a migration: {diff}"
