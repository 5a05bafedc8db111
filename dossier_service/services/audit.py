"""Append-only audit log with a hash chain, and its verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.identity import Anonymous, Identity
from dossier_service.models import AuditEntry

GENESIS_HASH = "0" * 64
# Any constant works; it only has to be the same for every writer of the chain.
_PG_AUDIT_LOCK = 0x1A5D055E


def _entry_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """SHA-256 over the previous hash and a canonical JSON of the entry's fields."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hashlib.sha256((prev_hash + "\n" + canonical).encode("ascii")).hexdigest()


def _fields(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at.astimezone(dt.UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "unit": entry.unit,
        "action": entry.action,
        "case_id": entry.case_id,
        "document_id": entry.document_id,
        "version": entry.version,
        "outcome": entry.outcome,
        "ip": entry.ip,
        "detail": entry.detail or {},
    }


def record(
    session: Session,
    who: Identity | Anonymous | None,
    action: str,
    *,
    outcome: str = "ok",
    case_id: str | None = None,
    document_id: str | None = None,
    version: int | None = None,
    detail: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the caller's transaction (it commits with the change it logs)."""
    if outcome not in {"ok", "denied"}:
        raise ValueError(f"unknown audit outcome {outcome!r}")
    if session.get_bind().dialect.name == "postgresql":
        # Serialise writers of the chain until commit; SQLite's BEGIN IMMEDIATE already does.
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_AUDIT_LOCK})
    head = session.execute(
        select(AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).scalar_one_or_none()
    prev_hash = head or GENESIS_HASH
    entry = AuditEntry(
        at=utcnow(),
        actor=getattr(who, "username", None),
        unit=who.unit_code if isinstance(who, Identity) else None,
        action=action,
        case_id=case_id,
        document_id=document_id,
        version=version,
        outcome=outcome,
        ip=getattr(who, "ip", None),
        detail=detail or {},
        prev_hash=prev_hash,
    )
    entry.hash = _entry_digest(prev_hash, _fields(entry))
    session.add(entry)
    session.flush()
    return entry


@dataclass(frozen=True)
class ChainProblem:
    """One place where the audit chain does not verify."""

    entry_id: int
    message: str


def verify_chain(session: Session, batch: int = 5000) -> Iterator[ChainProblem]:
    """Walk the whole log in order and yield every entry that breaks the chain."""
    prev_hash = GENESIS_HASH
    last_id = 0
    while True:
        rows = (
            session.execute(
                select(AuditEntry)
                .where(AuditEntry.id > last_id)
                .order_by(AuditEntry.id)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        for entry in rows:
            if entry.prev_hash != prev_hash:
                yield ChainProblem(entry.id, "prev_hash does not match the previous entry")
            expected = _entry_digest(entry.prev_hash, _fields(entry))
            if entry.hash != expected:
                yield ChainProblem(entry.id, "content does not match its hash (altered)")
            prev_hash = entry.hash
            last_id = entry.id
        session.expunge_all()


def serialize(entry: AuditEntry) -> dict[str, Any]:
    """The API shape of one entry."""
    return {
        "id": entry.id,
        "at": entry.at.isoformat(),
        "actor": entry.actor,
        "unit": entry.unit,
        "action": entry.action,
        "case_id": entry.case_id,
        "document_id": entry.document_id,
        "version": entry.version,
        "outcome": entry.outcome,
        "ip": entry.ip,
        "detail": entry.detail or {},
    }
