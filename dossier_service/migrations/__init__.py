"""Alembic migrations of the dossier database."""
