"""Wires settings to the database, object store and task sender for one process.

The task sender comes from the entry point (the app factory, the CLI, the worker), which
knows the broker; this module and the services below it never import ``workers``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cached_property
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

from dossier_service.config import Settings
from dossier_service.db import Database
from search import SearchBackend, open_index
from storage import ObjectStore, open_store

log = logging.getLogger(__name__)

#: Sends one task by name with keyword arguments; raises if the broker is unreachable.
TaskSender = Callable[[str, dict[str, Any]], None]


class Container:
    """The long-lived collaborators of the service (one per process)."""

    def __init__(self, settings: Settings, *, task_sender: TaskSender | None = None) -> None:
        self.settings = settings
        self._task_sender = task_sender

    @cached_property
    def db(self) -> Database:
        """The system-of-record database; tasks recorded in a transaction go out after commit."""
        from dossier_service.services import audit, audit_checkpoints

        db = Database(self.settings.database_url)
        # The chain key comes from outside the database (setting or key file, made if missing).
        key = audit_checkpoints.ensure_key(self.settings)
        db.sessionmaker.configure(info={audit.SESSION_KEY: key})
        audit.register_key(db.engine.url.render_as_string(hide_password=False), key)
        event.listen(db.sessionmaker, "after_commit", self._send_outbox_after_commit)
        event.listen(db.sessionmaker, "after_commit", self._checkpoint_after_commit)
        event.listen(db.sessionmaker, "after_rollback", self._forget_outbox_after_rollback)
        return db

    def _checkpoint_after_commit(self, session: Session) -> None:
        """Write an audit checkpoint if this commit appended entries and the last one is old."""
        from dossier_service.services import audit, audit_checkpoints

        if not session.info.pop(audit.WROTE_ENTRY, False):
            return
        if not audit_checkpoints.checkpoint_due(self):
            return
        try:
            audit_checkpoints.write_checkpoint(self)
        except Exception:
            log.exception("audit checkpoint after commit failed")

    @staticmethod
    def _forget_outbox_after_rollback(session: Session) -> None:
        """Rolled-back outbox rows do not exist; never send their ids later."""
        from dossier_service.services import outbox

        outbox.take_pending(session)

    def _send_outbox_after_commit(self, session: Session) -> None:
        """Hand the outbox rows of a just-committed transaction to the broker.

        One hook for every session, so no code path can forget it; a rolled-back
        transaction never gets here, and a broker outage leaves the rows to the relay.
        """
        from dossier_service.services import outbox

        ids = outbox.take_pending(session)
        if ids:
            outbox.send(self.db, self.task_sender, ids)

    @cached_property
    def store(self) -> ObjectStore:
        """The object store holding version bytes."""
        s = self.settings
        if s.storage == "s3":
            return open_store(
                "s3",
                endpoint=s.s3_endpoint,
                access_key=s.s3_access_key,
                secret_key=s.s3_secret_key,
                bucket=s.s3_bucket,
                secure=s.s3_secure,
                region=s.s3_region,
            )
        return open_store("local", root=str(s.storage_root))

    @cached_property
    def search(self) -> SearchBackend:
        """The derived full-text index (tantivy embedded, or Elasticsearch)."""
        s = self.settings
        if s.search == "elasticsearch":
            return open_index("elasticsearch", url=s.elasticsearch_url, prefix=s.search_index)
        return open_index("tantivy", path=str(s.search_dir))

    @property
    def task_sender(self) -> TaskSender:
        """The function that hands a task to the broker (handed in by the entry point)."""
        if self._task_sender is None:
            raise RuntimeError("no task sender: the entry point hands one to the container")
        return self._task_sender

    @property
    def has_task_sender(self) -> bool:
        """True once a task sender was handed in."""
        return self._task_sender is not None

    def use_task_sender(self, sender: TaskSender) -> None:
        """Hand in the function that sends tasks (entry points do, once, at start-up)."""
        self._task_sender = sender

    def close(self) -> None:
        """Release pooled connections."""
        if "db" in self.__dict__:
            self.db.dispose()
        if "search" in self.__dict__:
            self.search.close()
