"""Reading the audit log: the filtered, paged listing both the API and the pages show."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dossier_service.identity import Identity
from dossier_service.models import AuditEntry
from dossier_service.policy import Action, require
from dossier_service.services import audit


@dataclass(frozen=True)
class AuditFilter:
    """Which entries to list; every field left empty matches all."""

    case_id: str | None = None
    actor: str | None = None
    action: str | None = None
    #: ok or denied.
    outcome: str | None = None
    #: Entries at or after this instant (timezone-aware).
    since: dt.datetime | None = None
    #: Entries strictly before this instant (timezone-aware).
    before: dt.datetime | None = None

    def named(self) -> dict[str, str]:
        """The text filters that are set, as the audit.read entry records them."""
        values = {
            "case_id": self.case_id,
            "actor": self.actor,
            "action": self.action,
            "outcome": self.outcome,
        }
        return {k: v for k, v in values.items() if v}


def list_entries(
    session: Session,
    identity: Identity,
    where: AuditFilter,
    *,
    page: int = 1,
    per_page: int = 100,
    via: str | None = None,
) -> tuple[list[AuditEntry], int]:
    """One page of matching entries, newest first, and the total; audited as audit.read.

    Auditors only (403 otherwise). ``via`` names the interface in the audit.read entry
    when it is not the API.
    """
    require(identity, Action.AUDIT_READ)
    query = select(AuditEntry)
    if where.case_id:
        # A case's log includes the searches whose result pages showed its documents.
        query = query.where(audit.concerning_case(where.case_id))
    if where.actor:
        query = query.where(AuditEntry.actor == where.actor)
    if where.action:
        query = query.where(AuditEntry.action == where.action)
    if where.outcome:
        query = query.where(AuditEntry.outcome == where.outcome)
    if where.since is not None:
        query = query.where(AuditEntry.at >= where.since)
    if where.before is not None:
        query = query.where(AuditEntry.at < where.before)
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    rows = list(
        session.execute(
            query.order_by(AuditEntry.id.desc()).limit(per_page).offset((page - 1) * per_page)
        ).scalars()
    )
    # Reading the log is itself an access to personal data.
    detail: dict[str, object] = {**where.named(), "returned": len(rows)}
    if via:
        detail["via"] = via
    audit.record(session, identity, "audit.read", detail=detail)
    return rows, total
