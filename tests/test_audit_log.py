"""The audit-log listing service both the API and the Protokoll page call."""

from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import select

from dossier_service.container import Container
from dossier_service.errors import Forbidden
from dossier_service.identity import Identity
from dossier_service.models import AuditEntry, User
from dossier_service.services import accounts, audit, audit_log
from dossier_service.services.audit_log import AuditFilter
from tests.factories import World


def _identity(container: Container, username: str) -> Identity:
    with container.db.transaction() as session:
        user = session.execute(select(User).where(User.username == username)).scalar_one()
        return accounts.identity_for_user(user)


def _entries(container: Container, who: Identity, count: int, **kw: object) -> None:
    with container.db.transaction() as session:
        for n in range(count):
            audit.record(session, who, "case.read", case_id=f"case-{n % 2}", **kw)  # type: ignore[arg-type]


def test_filters_page_and_total(container: Container, world: World):
    """Each filter narrows the listing; pages are newest first; the total counts them all."""
    auditor = _identity(container, "auditor")
    baden = _identity(container, "baden")
    _entries(container, baden, 5)
    _entries(container, baden, 2, outcome="denied")
    with container.db.transaction() as session:
        rows, total = audit_log.list_entries(
            session, auditor, AuditFilter(actor="baden", action="case.read"), per_page=3
        )
        assert total == 7 and len(rows) == 3
        assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True)
        second, _ = audit_log.list_entries(
            session, auditor, AuditFilter(actor="baden", action="case.read"), page=3, per_page=3
        )
        assert len(second) == 1
        denied, total = audit_log.list_entries(session, auditor, AuditFilter(outcome="denied"))
        assert total == 2 and {r.outcome for r in denied} == {"denied"}
        by_case, total = audit_log.list_entries(session, auditor, AuditFilter(case_id="case-1"))
        assert total == 3 and {r.case_id for r in by_case} == {"case-1"}
        newest = rows[0].at
        later, total = audit_log.list_entries(
            session, auditor, AuditFilter(actor="baden", since=newest + dt.timedelta(seconds=1))
        )
        assert (later, total) == ([], 0)
        _, total = audit_log.list_entries(
            session, auditor, AuditFilter(actor="baden", before=newest + dt.timedelta(seconds=1))
        )
        assert total == 7
        _, total = audit_log.list_entries(
            session, auditor, AuditFilter(actor="baden", before=second[0].at)
        )
        assert total == 0  # nothing of baden's before its oldest entry


def test_reading_the_log_is_logged_with_filters_and_interface(container: Container, world: World):
    """Each listing appends audit.read with the filters set, the count and the interface."""
    auditor = _identity(container, "auditor")
    with container.db.transaction() as session:
        audit_log.list_entries(session, auditor, AuditFilter(actor="baden"), via="web")
    with container.db.transaction() as session:
        entry = session.execute(
            select(AuditEntry).order_by(AuditEntry.id.desc()).limit(1)
        ).scalar_one()
    assert entry.action == "audit.read" and entry.actor == "auditor"
    assert entry.detail == {"actor": "baden", "returned": 0, "via": "web"}


@pytest.mark.parametrize("username", ["canton", "aarau", "caritas", "archivist", "admin"])
def test_only_auditors_list_the_log(container: Container, world: World, username: str):
    who = _identity(container, username)
    with container.db.transaction() as session, pytest.raises(Forbidden):
        audit_log.list_entries(session, who, AuditFilter())
