"""Celery tasks: thin wrappers that call the same domain services as the API."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

from celery import shared_task

from dossier_service.container import Container
from dossier_service.dates import local_today
from dossier_service.services import (
    accounts,
    audit_checkpoints,
    documents,
    exports,
    indexing,
    monitoring,
    notifications,
    outbox,
    person,
    processing,
    retention,
    spool,
    transfers,
    withdrawal,
)
from search import SearchUnavailable
from workers.extract import Extraction, extract_text

log = logging.getLogger(__name__)


_current: dict[str, Container] = {}


def use_container(container: Container) -> None:
    """Make tasks in this process use the given container (set by the entry point)."""
    _current["container"] = container


def container() -> Container:
    """The container tasks use: the worker's, or the web process's in eager mode."""
    if "container" not in _current:
        raise RuntimeError("no container: the entry point calls use_container first")
    return _current["container"]


@shared_task(
    name="dossier.process_version",
    autoretry_for=(processing.TransientError,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=8,
)
def process_version(version_id: str) -> str:
    """Check the stored bytes of a version, extract its text and index it."""
    c = container()
    settings = c.settings

    def extract(path: Path, media_type: str) -> Extraction:
        return extract_text(
            path,
            media_type,
            timeout_s=settings.extract_timeout,
            ocr_languages=settings.ocr_languages,
        )

    # A message for a version finished meanwhile (requeued, redelivered) does nothing.
    return processing.process_version(c, version_id, extract, rerun_finished=False)


@shared_task(
    name=transfers.SYNC_UNIT_TASK,
    autoretry_for=(SearchUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def sync_case_unit(case_id: str) -> int:
    """Relabel a moved case's index entries with its responsible unit (idempotent)."""
    return indexing.sync_case_unit(container(), case_id)


@shared_task(
    name=documents.INDEX_TASK,
    autoretry_for=(SearchUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def index_document(document_id: str, versions: int) -> bool:
    """Rewrite a corrected or moved document's entry, remove a withdrawn one (idempotent)."""
    return indexing.index_document(container(), document_id, versions)


class PurgeUnfinished(Exception):
    """Deleting a purged document's objects or index entries failed; retried."""


@shared_task(
    name=withdrawal.PURGE_TASK,
    autoretry_for=(PurgeUnfinished,),
    retry_backoff=True,
    retry_backoff_max=3600,
    max_retries=12,
)
def purge_document(document_id: str, versions: int) -> bool:
    """Delete a purged document's bytes, extracted text and index entries (idempotent)."""
    if not withdrawal.finish_purge(container(), document_id, versions):
        raise PurgeUnfinished(document_id)
    return True


@shared_task(
    name=person.REINDEX_CASE_TASK,
    autoretry_for=(SearchUnavailable,),
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=12,
)
def reindex_case(case_id: str) -> int:
    """Rewrite a case's index entries after its person was corrected (idempotent)."""
    return indexing.reindex_case(container(), case_id)


@shared_task(name="dossier.sync_pending_units")
def sync_pending_units() -> int:
    """Resend relabellings of moved cases that have not finished (periodic)."""
    return indexing.sync_pending(container())


@shared_task(name="dossier.relay_outbox")
def relay_outbox() -> int:
    """Send outbox messages left unsent by a broker outage."""
    c = container()
    return outbox.relay(c.db, c.task_sender)


@shared_task(name="dossier.monitor_run")
def monitor_run(as_of: str | None = None) -> dict[str, object]:
    """Daily continuity monitoring; ``as_of`` (YYYY-MM-DD) defaults to today in Zurich."""
    day = dt.date.fromisoformat(as_of) if as_of else local_today()
    return monitoring.monitor_run(container(), day).as_dict()


@shared_task(
    name=notifications.EMAIL_TASK,
    autoretry_for=(notifications.MailUnavailable,),
    retry_backoff=True,
    retry_backoff_max=3600,
    max_retries=10,
)
def send_notification_email(notification_id: int) -> str:
    """Send the e-mail copy of a notification (only kind and link; idempotent)."""
    return notifications.deliver_email(container(), notification_id)


@shared_task(
    name=exports.BUILD_TASK,
    autoretry_for=(exports.TransientError,),
    retry_backoff=True,
    retry_backoff_max=900,
    max_retries=8,
)
def build_export(export_id: str) -> str:
    """Build an export's SIP (idempotent: a done export stays done, a dead run is redone)."""
    return exports.run_export(container(), export_id)


@shared_task(name="dossier.resume_exports")
def resume_exports() -> int:
    """Send the build task again for exports a dead worker left behind."""
    return exports.resume_stalled(container())


@shared_task(name="dossier.retention_run")
def retention_run(as_of: str | None = None) -> dict[str, object]:
    """Daily retention: delete archived cases past their period (never under legal hold)."""
    day = dt.date.fromisoformat(as_of) if as_of else local_today()
    result = retention.run(container(), day)
    return {
        "as_of": day.isoformat(),
        "deleted": [c.reference for c in result.deleted],
        "held": len(result.plan.held),
        "not_archived": len(result.plan.not_archived),
        "purge_failures": len(result.purge_failures),
    }


@shared_task(name="dossier.auth_housekeeping")
def auth_housekeeping() -> dict[str, int]:
    """Summarise failed authentications per address and minute; prune old sessions (periodic)."""
    with container().db.transaction() as session:
        return accounts.auth_housekeeping(session)


@shared_task(name="dossier.audit_checkpoint")
def audit_checkpoint() -> dict[str, object] | None:
    """Write a checkpoint of the audit chain head outside the database (beat: every minute)."""
    line = audit_checkpoints.write_checkpoint(container())
    return None if line is None else {"seq": line["seq"], "last_id": line["last_id"]}


@shared_task(name="dossier.requeue_stuck_versions")
def requeue_stuck_versions() -> dict[str, int]:
    """Queue again versions whose worker died (lease expired) or nobody took (periodic)."""
    return processing.requeue_stuck(container())


@shared_task(name="dossier.sweep_spool")
def sweep_spool() -> int:
    """Remove spool files left by crashed processes (periodic)."""
    return len(spool.remove_stale(container().settings))
