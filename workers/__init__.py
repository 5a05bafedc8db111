"""Celery application and background tasks of the dossier service."""
