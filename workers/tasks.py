"""Celery tasks: thin wrappers that call the same domain services as the API."""

from __future__ import annotations

import logging

from celery import shared_task

from dossier_service.config import load_settings
from dossier_service.container import Container
from dossier_service.services import outbox, processing

log = logging.getLogger(__name__)


_current: dict[str, Container] = {}


def use_container(container: Container) -> None:
    """Make tasks in this process use the given container (web process in eager mode)."""
    _current["container"] = container


def container() -> Container:
    """The container tasks use: one per worker process, built from the environment."""
    if "container" not in _current:
        _current["container"] = Container(load_settings())
    return _current["container"]


@shared_task(
    name="dossier.process_version",
    autoretry_for=(processing.TransientError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def process_version(version_id: str) -> str:
    """Check the stored bytes of a version (and, later, extract its text)."""
    return processing.process_version(container(), version_id)


@shared_task(name="dossier.relay_outbox")
def relay_outbox() -> int:
    """Send outbox messages left unsent by a broker outage."""
    c = container()
    return outbox.relay(c.db, c.task_sender)
