"""The timeline of a case: who was responsible when, and to whom it was delegated."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.identity import Identity
from dossier_service.models import Delegation
from dossier_service.services import cases


def case_timeline(session: Session, identity: Identity, case_id: str) -> list[dict[str, Any]]:
    """Responsibility periods and delegations of the case, oldest first (audited as case.read).

    Each entry has ``kind`` (responsibility or delegation), ``unit``, ``from`` and ``to``
    (datetimes; ``to`` None while in force) and the reasons given.
    """
    # Reads the responsibilities through the policy (404 for a case the caller may not see).
    entries: list[dict[str, Any]] = [
        {"kind": "responsibility", **period}
        for period in cases.responsibilities_json(session, identity, case_id)
    ]
    delegations = session.execute(
        select(Delegation).where(Delegation.case_id == case_id).order_by(Delegation.started_at)
    ).scalars()
    for d in delegations:
        entries.append(
            {
                "kind": "delegation",
                "unit": cases.unit_json(d.unit),
                "granted_by": cases.unit_json(d.granted_by),
                "from": d.started_at.isoformat(),
                "to": d.ended_at.isoformat() if d.ended_at else None,
                "reason": d.reason,
                "end_reason": d.end_reason,
            }
        )
    entries.sort(key=lambda e: e["from"])
    for entry in entries:
        entry["from"] = dt.datetime.fromisoformat(entry["from"])
        entry["to"] = dt.datetime.fromisoformat(entry["to"]) if entry["to"] else None
    return entries
