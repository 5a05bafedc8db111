"""Concurrent writers of the audit log: the hash chain stays one valid, unforked line."""

from __future__ import annotations

import threading

from sqlalchemy import func, select

from dossier_service.container import Container
from dossier_service.identity import Identity
from dossier_service.models import AuditEntry
from dossier_service.services import audit

WRITERS = 8
TRANSACTIONS = 12
ENTRIES_PER_TRANSACTION = 3


def _writer(container: Container, number: int, start: threading.Barrier, errors: list) -> None:
    """Append entries in several short transactions, all writers released at once."""
    who = Identity(
        user_id=number,
        username=f"writer{number}",
        role="caseworker",
        unit_id=1,
        unit_code="ag",
        unit_kind="canton",
    )
    try:
        start.wait(timeout=30)
        for transaction in range(TRANSACTIONS):
            with container.db.transaction() as session:
                for entry in range(ENTRIES_PER_TRANSACTION):
                    audit.record(
                        session, who, "test.concurrent", detail={"t": transaction, "e": entry}
                    )
    except Exception as exc:  # reported by the test, not lost in the thread
        errors.append(exc)


def test_concurrent_writers_keep_the_chain_valid(container: Container):
    start = threading.Barrier(WRITERS)
    errors: list[BaseException] = []
    threads = [
        threading.Thread(target=_writer, args=(container, n, start, errors)) for n in range(WRITERS)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    with container.db.transaction() as session:
        assert list(audit.verify_chain(session)) == []
        count = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        links = session.execute(
            select(func.count(func.distinct(AuditEntry.prev_hash)))
        ).scalar_one()
        writers = session.execute(select(func.count(func.distinct(AuditEntry.actor)))).scalar_one()
    assert count == WRITERS * TRANSACTIONS * ENTRIES_PER_TRANSACTION
    # One line, no fork: every entry follows a different predecessor.
    assert links == count
    assert writers == WRITERS
