"""Archival exports (Ablieferung): request, build as a worker task, download, acknowledge.

Lifecycle: ``queued`` (requested; the task is in the outbox) → ``running`` → ``done`` (the
ZIP is in object storage under ``exports/<id>.zip`` with its size and SHA-256) or
``failed`` (with the reason, e.g. an altered version or an invalid metadata.xml).

Safe to repeat after a crash: each run claims the export with a fresh ``run_id`` and writes
progress, the result and the failure only while it still owns it. A run writes a heartbeat
as it goes; a ``running`` export whose heartbeat is older than ``STALE_AFTER`` belongs to a
dead worker, and the next delivery of the task (Celery redelivers unacknowledged tasks, and
``resume_stalled`` re-sends them periodically) takes it over and builds it again from
scratch, replacing any ZIP the dead run left behind. A live run's export is left alone.

Access: only archivists of the canton (Action.EXPORT); open cases are refused (409).
Everything is audited: ``export.create``, ``export.download`` and ``export.acknowledge``
once per case in the package (so each case's own log shows it went to the archive), and
``export.build`` when a run ends.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import and_, exists, func, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from dossier_service.bodies.archive import MAX_CASES, AcknowledgeInput, ExportInput
from dossier_service.dates import day_start, utcnow
from dossier_service.errors import Conflict, NotFound, Unprocessable
from dossier_service.identity import Anonymous, Identity
from dossier_service.models import (
    Case,
    CaseClosure,
    Document,
    DocumentVersion,
    Export,
    ExportCase,
)
from dossier_service.policy import Action, exportable_cases, require
from dossier_service.services import audit, journal, outbox, person, sip
from dossier_service.services.closing import open_closure
from dossier_service.services.snapshot import case_snapshot
from storage import StorageError, StorageUnavailable

if TYPE_CHECKING:
    from dossier_service.container import Container

log = logging.getLogger(__name__)

BUILD_TASK = "dossier.build_export"
#: Most version files one package may hold: metadata.xml is built and validated in memory,
#: about 40 KB per file (bench/export.py: +77 MiB RSS for 2,000 files, whatever their size).
MAX_FILES = 10_000
#: A running export without a heartbeat for this long belongs to a dead worker.
STALE_AFTER = dt.timedelta(minutes=30)
#: A queued export whose task has not started after this long is sent again.
QUEUED_RESEND_AFTER = dt.timedelta(minutes=15)
#: Least seconds between two progress writes of a run.
HEARTBEAT_EVERY_S = 5.0
#: Who the worker is in the audit log.
WORKER = Anonymous(username="system:export")


class Superseded(Exception):
    """Another run took the export over; this one stops without writing anything."""


class TransientError(Exception):
    """Storage or database were unavailable; the export is queued again and the task retried."""


class ExportRefused(Exception):
    """The export cannot be built as requested (e.g. a case was reopened meanwhile)."""


def export_key(export_id: str) -> str:
    """Object key of an export's ZIP."""
    return f"exports/{export_id}.zip"


# --- Requests from the API ---------------------------------------------------------------------


def _archived(case_id_column: Any, closed_at_column: Any) -> Any:
    """SQL: the case is in an acknowledged export made under its current closure."""
    return exists(
        select(ExportCase.case_id)
        .join(Export, Export.id == ExportCase.export_id)
        .where(
            ExportCase.case_id == case_id_column,
            ExportCase.closed_at == closed_at_column,
            Export.status == "done",
            Export.acknowledged_at.is_not(None),
        )
    )


def _select_by_ids(
    session: Session, identity: Identity, ids: list[str]
) -> list[tuple[Case, CaseClosure]]:
    found = {
        c.id: c
        for c in session.execute(
            select(Case).where(Case.id.in_(ids), exportable_cases(identity))
        ).scalars()
    }
    selected = []
    for case_id in ids:
        case = found.get(case_id)
        if case is None:
            raise NotFound(f"No such case: {case_id[:64]}.", code="case_not_found")
        closure = open_closure(session, case.id)
        if case.status != "closed" or closure is None:
            raise Conflict(
                f"Case {case.reference} is open; only closed cases go to the archive.",
                code="case_open",
            )
        selected.append((case, closure))
    return selected


def _select_closed_before(session: Session, day: dt.date) -> list[tuple[Case, CaseClosure]]:
    rows = session.execute(
        select(Case, CaseClosure)
        .join(CaseClosure, CaseClosure.case_id == Case.id)
        .where(
            Case.status == "closed",
            CaseClosure.reopened_at.is_(None),
            CaseClosure.closed_at < day_start(day),
            # Periodic deliveries do not send a case again once the archive has it.
            ~_archived(Case.id, CaseClosure.closed_at),
        )
        .order_by(CaseClosure.closed_at, Case.id)
        .limit(MAX_CASES + 1)
    ).all()
    if not rows:
        raise Unprocessable(
            f"No closed case that is not archived yet was closed before {day.isoformat()}.",
            code="no_cases",
            field="closed_before",
        )
    if len(rows) > MAX_CASES:
        raise Unprocessable(
            f"More than {MAX_CASES} cases were closed before {day.isoformat()}; "
            "choose an earlier date and export in several packages.",
            code="too_many_cases",
            field="closed_before",
        )
    return [(case, closure) for case, closure in rows]


def _audit_cases(
    session: Session,
    who: Identity | Anonymous,
    action: str,
    export: Export,
    detail: dict[str, Any] | None = None,
) -> None:
    """One entry per case of the package, so every case's log shows the disclosure."""
    for item in export.cases:
        audit.record(
            session,
            who,
            action,
            case_id=item.case_id,
            detail={"export_id": export.id, **(detail or {})},
        )


def create_export(session: Session, identity: Identity, body: ExportInput) -> Export:
    """Queue the export of the chosen closed cases (caller commits, then sends the outbox)."""
    require(identity, Action.EXPORT)
    if (body.case_ids is None) == (body.closed_before is None):
        raise Unprocessable(
            "Give either 'case_ids' or 'closed_before' (YYYY-MM-DD).", field="case_ids"
        )
    if body.case_ids is not None:
        ids = body.case_ids
        selected = _select_by_ids(session, identity, ids)
        criteria: dict[str, Any] = {"case_ids": ids}
    else:
        day = body.closed_before
        assert day is not None  # one of the two is given
        if day.year < 1900:  # nothing was closed then; and year 1 cannot be shifted to UTC
            raise Unprocessable("'closed_before' must be after 1900.", field="closed_before")
        selected = _select_closed_before(session, day)
        criteria = {"closed_before": day.isoformat()}
    files = session.execute(
        select(func.count(DocumentVersion.id))
        .join(Document, Document.id == DocumentVersion.document_id)
        .where(Document.case_id.in_([case.id for case, _ in selected]))
    ).scalar_one()
    if files > MAX_FILES:
        raise Unprocessable(
            f"These cases hold {files} document versions; one package holds at most "
            f"{MAX_FILES}. Export them in several packages.",
            code="too_many_files",
        )
    export = Export(
        id=str(uuid.uuid4()),
        status="queued",
        criteria=criteria,
        created_at=utcnow(),
        created_by_id=identity.user_id,
        warnings=[],
    )
    export.cases = [
        ExportCase(case_id=case.id, position=n, reference=case.reference, closed_at=c.closed_at)
        for n, (case, c) in enumerate(selected)
    ]
    session.add(export)
    session.flush()
    _audit_cases(session, identity, "export.create", export)
    outbox.enqueue(session, BUILD_TASK, export_id=export.id)
    return export


def get_export(session: Session, identity: Identity, export_id: str) -> Export:
    """The export, for archivists of the canton (404 if unknown)."""
    require(identity, Action.EXPORT)
    export = session.get(Export, export_id) if len(export_id) <= 36 else None
    if export is None:
        raise NotFound("No such export.", code="export_not_found")
    return export


def open_content(
    container: Container, session: Session, identity: Identity, export_id: str
) -> tuple[Export, Any]:
    """The finished package as a stream of chunks; audited once per case (export.download)."""
    export = get_export(session, identity, export_id)
    if export.status != "done" or export.storage_key is None:
        raise Conflict(
            f"The export is {export.status}; its package can be downloaded once it is done.",
            code="export_not_ready",
        )
    if export.purged_at is not None:
        raise Conflict(
            "The package was deleted with the cases it holds (retention).", code="export_purged"
        )
    stream = container.store.open(export.storage_key)
    _audit_cases(session, identity, "export.download", export, {"sha256": export.sha256})
    return export, stream


def acknowledge(
    session: Session, identity: Identity, export_id: str, body: AcknowledgeInput
) -> Export:
    """Record the archive's receipt of a finished package with its archive reference."""
    export = get_export(session, identity, export_id)
    reference = body.archive_reference
    session.execute(
        select(Export)
        .where(Export.id == export.id)
        .with_for_update(of=Export)
        .execution_options(populate_existing=True)
    )
    if export.status != "done":
        raise Conflict(
            f"The export is {export.status}; only a finished package can be acknowledged.",
            code="export_not_done",
        )
    if export.acknowledged_at is not None:
        if export.archive_reference == reference:
            return export  # the archive repeated its receipt: nothing changes
        raise Conflict(
            f"The package was acknowledged already as {export.archive_reference}.",
            code="already_acknowledged",
        )
    export.acknowledged_at = utcnow()
    export.acknowledged_by_id = identity.user_id
    export.archive_reference = reference
    _audit_cases(session, identity, "export.acknowledge", export, {"archive_reference": reference})
    return export


def export_json(export: Export) -> dict[str, Any]:
    """The API shape of an export."""
    total = export.bytes_total or 0
    done = export.bytes_done or 0
    if export.status == "done":
        percent = 100.0
    elif total:
        percent = round(min(done / total, 1.0) * 100, 1)
    else:
        percent = 0.0
    return {
        "id": export.id,
        "status": export.status,
        "criteria": export.criteria,
        "cases": [{"id": c.case_id, "reference": c.reference} for c in export.cases],
        "created_at": export.created_at.isoformat(),
        "created_by": export.created_by.username,
        "started_at": export.started_at.isoformat() if export.started_at else None,
        "finished_at": export.finished_at.isoformat() if export.finished_at else None,
        "attempts": export.attempts,
        "progress": {
            "files_done": export.files_done,
            "files_total": export.files_total,
            "bytes_done": done,
            "bytes_total": total,
            "percent": percent,
        },
        "size": export.size,
        "sha256": export.sha256,
        "error": export.error,
        "warnings": export.warnings or [],
        "acknowledged_at": export.acknowledged_at.isoformat() if export.acknowledged_at else None,
        "archive_reference": export.archive_reference,
        "purged_at": export.purged_at.isoformat() if export.purged_at else None,
    }


# --- The worker task ---------------------------------------------------------------------------


def _claim(container: Container, export_id: str, run_id: str) -> str | None:
    """Take the export for this run; None if taken, else why not (done, failed, busy, missing)."""
    now = utcnow()
    with container.db.transaction() as session:
        # OF exports: PostgreSQL cannot lock the outer-joined creator the model loads along.
        export = session.execute(
            select(Export).where(Export.id == export_id).with_for_update(of=Export)
        ).scalar_one_or_none()
        if export is None:
            return "missing"
        if export.status in ("done", "failed"):
            return export.status
        heartbeat = export.heartbeat_at or export.started_at
        if export.status == "running" and heartbeat and now - heartbeat < STALE_AFTER:
            return "busy"
        if export.status == "running":
            log.warning(
                "export %s: run %s stopped without a trace; building again",
                export_id,
                export.run_id,
            )
        export.status = "running"
        export.run_id = run_id
        export.attempts = (export.attempts or 0) + 1
        export.started_at = now
        export.heartbeat_at = now
        export.files_done = 0
        export.bytes_done = 0
        export.error = None
        export.warnings = []
    return None


class _Heartbeat:
    """Writes progress at most every few seconds, and stops the run if it lost ownership."""

    def __init__(self, container: Container, export_id: str, run_id: str) -> None:
        self.container = container
        self.export_id = export_id
        self.run_id = run_id
        self.last = 0.0
        self.files = 0
        self.bytes = 0

    def __call__(self, files_done: int, bytes_done: int) -> None:
        """Progress callback of the build."""
        self.files, self.bytes = files_done, bytes_done
        if time.monotonic() - self.last >= HEARTBEAT_EVERY_S:
            self.beat()

    def beat(self) -> None:
        """Write progress and heartbeat now; raise Superseded if another run owns the export."""
        with self.container.db.transaction() as session:
            result = session.execute(
                update(Export)
                .where(Export.id == self.export_id, Export.run_id == self.run_id)
                .values(files_done=self.files, bytes_done=self.bytes, heartbeat_at=utcnow())
            )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            raise Superseded(self.export_id)
        self.last = time.monotonic()


def _load_facts(session: Session, export: Export) -> sip.PackageFacts:
    """A snapshot of everything the package holds; refuses cases changed since the request."""
    cases = []
    for item in export.cases:
        case = session.get(Case, item.case_id)
        if case is None:
            raise ExportRefused(f"case {item.reference} no longer exists")
        closure = open_closure(session, case.id)
        if case.status != "closed" or closure is None or closure.closed_at != item.closed_at:
            raise ExportRefused(
                f"case {item.reference} was reopened since the export was requested; "
                "request a new export"
            )
        cases.append(_case_facts(session, case, closure))
    creator = export.created_by
    return sip.PackageFacts(
        export_id=export.id,
        created_at=utcnow(),
        created_by=creator.username,
        delivering_unit=creator.unit.name,
        cases=tuple(cases),
    )


def _case_facts(session: Session, case: Case, closure: CaseClosure) -> sip.CaseFacts:
    snapshot = case_snapshot(session, case, documents=True)
    return sip.CaseFacts(
        id=snapshot.id,
        reference=snapshot.reference,
        person=snapshot.person,
        entry_date=snapshot.entry_date,
        closed_at=closure.closed_at,
        close_reason=closure.reason,
        responsibilities=snapshot.responsibilities,
        delegations=snapshot.delegations,
        target_groups=snapshot.target_groups,
        # A withdrawn document was filed in the wrong dossier (or must not be kept): the
        # archive must not receive it as part of this person's record.
        documents=tuple(d for d in snapshot.documents if d.withdrawn_at is None),
        person_history=tuple(person.person_history(session, case.id)),
        status_history=tuple(person.status_history(session, case.id)),
        journal=_journal_facts(session, case.id),
    )


def _journal_facts(session: Session, case_id: str) -> tuple[sip.JournalFact, ...]:
    """The case journal, oldest first, numbered; a correction names the entry's number."""
    entries = list(reversed(journal.entries_of(session, case_id)))
    numbers = {e.id: n for n, e in enumerate(entries, start=1)}
    return tuple(
        sip.JournalFact(
            number=numbers[e.id],
            occurred_on=e.occurred_on,
            kind=e.kind,
            unit_name=e.unit.name,
            participants=tuple(e.participants),
            text=e.text,
            written_at=e.created_at,
            corrects=numbers.get(e.corrects_id) if e.corrects_id else None,
        )
        for e in entries
    )


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as handle:
        while chunk := handle.read(sip.CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _end_run(container: Container, export_id: str, run_id: str, values: dict[str, Any]) -> bool:
    """Write the run's outcome if it still owns the export; audit it. False if superseded."""
    with container.db.transaction() as session:
        result = session.execute(
            update(Export).where(Export.id == export_id, Export.run_id == run_id).values(**values)
        )
        if result.rowcount != 1:  # type: ignore[attr-defined]
            return False
        detail = {"export_id": export_id, "status": values["status"]}
        for key in ("size", "sha256", "error"):
            if values.get(key) is not None:
                detail[key] = values[key]
        if values["status"] != "queued":
            audit.record(session, WORKER, "export.build", detail=detail)
    return True


def run_export(
    container: Container,
    export_id: str,
    *,
    converter: sip.PdfaConverter | str | None = "detect",
) -> str:
    """Build the export's package (the task body); returns the resulting status.

    Returns ``busy`` if another live run holds it, ``superseded`` if this run lost it
    midway, and the final status otherwise; raises TransientError (after queueing the
    export again) when storage or database are unavailable, so the task is retried.
    """
    run_id = str(uuid.uuid4())
    refused = _claim(container, export_id, run_id)
    if refused is not None:
        return refused
    if converter == "detect":
        converter = sip.PdfaConverter.detect(timeout_s=container.settings.extract_timeout)
    assert not isinstance(converter, str)
    beat = _Heartbeat(container, export_id, run_id)
    try:
        with container.db.transaction() as session:
            export = session.get(Export, export_id)
            assert export is not None
            facts = _load_facts(session, export)
        versions = [v for c in facts.cases for d in c.documents for v in d.versions]
        with container.db.transaction() as session:
            session.execute(
                update(Export)
                .where(Export.id == export_id, Export.run_id == run_id)
                .values(files_total=len(versions), bytes_total=sum(v.size for v in versions))
            )
        container.settings.spool_dir.mkdir(parents=True, exist_ok=True)
        # In the spool directory: on the local store put_file is then a hard link, no copy.
        with tempfile.TemporaryDirectory(
            dir=container.settings.spool_dir, prefix="export-"
        ) as work:
            out = Path(work) / "sip.zip"
            result = sip.build_sip(
                container.store,
                facts,
                out,
                work_dir=Path(work),
                converter=converter,
                progress=beat,
            )
            problems = sip.validate_sip(out)
            if problems:
                raise sip.SipError(
                    f"the package does not validate ({len(problems)} problem(s)): "
                    + "; ".join(problems[:5])
                )
            sha256, size = _hash_file(out)
            beat.beat()  # still ours? then replace what a crashed run may have stored
            key = export_key(export_id)
            container.store.delete(key)
            container.store.put_file(key, out, {"export-id": export_id, "sha256": sha256})
        done = _end_run(
            container,
            export_id,
            run_id,
            {
                "status": "done",
                "finished_at": utcnow(),
                "heartbeat_at": utcnow(),
                "files_done": beat.files,
                "bytes_done": beat.bytes,
                "size": size,
                "sha256": sha256,
                "storage_key": key,
                "warnings": result.warnings,
            },
        )
        return "done" if done else "superseded"
    except Superseded:
        log.warning("export %s: run %s was superseded by another run", export_id, run_id)
        return "superseded"
    except (StorageUnavailable, OperationalError) as exc:
        log.warning("export %s: backend unavailable, queued again: %s", export_id, exc)
        try:
            _end_run(container, export_id, run_id, {"status": "queued", "heartbeat_at": None})
        except OperationalError:
            pass  # the heartbeat goes stale and a later delivery takes over
        raise TransientError(str(exc)) from exc
    except (ExportRefused, sip.SipError, StorageError) as exc:
        reason = str(exc)
    except Exception as exc:  # a bug must fail the export visibly, not leave it running
        log.exception("export %s failed unexpectedly", export_id)
        reason = f"internal error ({type(exc).__name__}); see the worker log"
    log.error("export %s failed: %s", export_id, reason)
    _end_run(
        container,
        export_id,
        run_id,
        {"status": "failed", "finished_at": utcnow(), "error": reason[:4000]},
    )
    return "failed"


def resume_stalled(container: Container) -> int:
    """Send the build task again for exports a dead worker left running or nobody started."""
    now = utcnow()
    with container.db.transaction() as session:
        ids = list(
            session.execute(
                select(Export.id).where(
                    or_(
                        and_(Export.status == "running", Export.heartbeat_at < now - STALE_AFTER),
                        and_(
                            Export.status == "queued",
                            Export.created_at < now - QUEUED_RESEND_AFTER,
                            or_(
                                Export.heartbeat_at.is_(None),
                                Export.heartbeat_at < now - QUEUED_RESEND_AFTER,
                            ),
                        ),
                    )
                )
            ).scalars()
        )
        for export_id in ids:
            outbox.enqueue(session, BUILD_TASK, export_id=export_id)
    # The commit hands the build tasks to the broker (see Container).
    return len(ids)
