"""Alembic environment: runs migrations on the URL the service is configured with."""

from __future__ import annotations

from alembic import context

from dossier_service import models  # noqa: F401  (registers every table)
from dossier_service.db import Base, make_engine

config = context.config
_url = config.get_main_option("sqlalchemy.url")
assert _url, "sqlalchemy.url must be set by the caller"
url: str = _url


def run_offline() -> None:
    """Emit SQL without a connection (alembic --sql)."""
    context.configure(
        url=url, target_metadata=Base.metadata, literal_binds=True, render_as_batch=True
    )
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    """Apply migrations over a live connection."""
    connection = config.attributes.get("connection")
    if connection is not None:
        context.configure(
            connection=connection, target_metadata=Base.metadata, render_as_batch=True
        )
        with context.begin_transaction():
            context.run_migrations()
        return
    engine = make_engine(url)
    with engine.connect() as conn:
        context.configure(connection=conn, target_metadata=Base.metadata, render_as_batch=True)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
