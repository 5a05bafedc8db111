"""Append-only audit log with a keyed (HMAC-SHA256) hash chain, and its verification."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Text, and_, cast, or_, select, text
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.identity import Anonymous, Identity
from dossier_service.models import AuditEntry

GENESIS_HASH = "0" * 64
#: Session.info flag: this transaction appended to the chain.
WROTE_ENTRY = "audit_wrote_entry"
# Any constant works; it only has to be the same for every writer of the chain.
_PG_AUDIT_LOCK = 0x1A5D055E


#: Session.info key under which the container hands the chain key to record().
SESSION_KEY = "audit_chain_key"
#: Chain keys of databases opened without a container (tests, tools), by engine URL.
_KEYS_BY_URL: dict[str, bytes] = {}


class AuditKeyMissing(RuntimeError):
    """No chain key is known for this database: entries cannot be written or verified."""


def _canonical(prev_hash: str, fields: dict[str, Any]) -> bytes:
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return (prev_hash + "\n" + canonical).encode("ascii")


def legacy_digest(prev_hash: str, fields: dict[str, Any]) -> str:
    """The unkeyed SHA-256 of releases before the keyed chain (kept to verify old entries)."""
    return hashlib.sha256(_canonical(prev_hash, fields)).hexdigest()


def _entry_digest(prev_hash: str, fields: dict[str, Any], key: bytes) -> str:
    """HMAC-SHA256 over the previous hash and a canonical JSON of the entry's fields."""
    return hmac.new(key, _canonical(prev_hash, fields), hashlib.sha256).hexdigest()


def _url_of(session: Session) -> str:
    return session.get_bind().engine.url.render_as_string(hide_password=False)


def register_key(url: str, key: bytes) -> None:
    """Remember the chain key of a database for sessions opened without the container."""
    _KEYS_BY_URL[url] = key


def chain_key(session: Session) -> bytes:
    """The chain key for this session's database (AuditKeyMissing if none is known)."""
    key = session.info.get(SESSION_KEY)
    if key is None:
        key = _KEYS_BY_URL.get(_url_of(session))
    if key is None:
        raise AuditKeyMissing(
            "no audit chain key: set DOSSIER_AUDIT_KEY or run `dossier init` to create "
            "DATA_DIR/audit-chain.key"
        )
    return bytes(key)


def entry_fields(entry: AuditEntry) -> dict[str, Any]:
    """The fields of an entry that its hash covers."""
    return _fields(entry)


def entry_matches(entry: AuditEntry, key: bytes) -> bool:
    """True if the entry's stored hash is the keyed digest of its content."""
    return hmac.compare_digest(entry.hash, _entry_digest(entry.prev_hash, _fields(entry), key))


def entry_matches_legacy(entry: AuditEntry) -> bool:
    """True if the entry's stored hash is the old unkeyed digest of its content."""
    return entry.hash == legacy_digest(entry.prev_hash, _fields(entry))


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
    key = chain_key(session)
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
    entry.hash = _entry_digest(prev_hash, _fields(entry), key)
    session.add(entry)
    session.flush()
    # Tells the container's after-commit hook that a checkpoint may be due.
    session.info[WROTE_ENTRY] = True
    return entry


@dataclass(frozen=True)
class ChainProblem:
    """One place where the audit chain does not verify."""

    entry_id: int
    message: str


def verify_chain(
    session: Session,
    batch: int = 5000,
    *,
    key: bytes | None = None,
    legacy_until: int = 0,
) -> Iterator[ChainProblem]:
    """Walk the whole log in order and yield every entry that breaks the chain.

    Entries up to ``legacy_until`` (adopted by ``dossier init`` from an older release) carry
    the unkeyed digest; all later ones the keyed one.
    """
    if key is None:
        key = chain_key(session)
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
            if entry.id <= legacy_until:
                intact = entry_matches_legacy(entry)
            else:
                intact = entry_matches(entry, key)
            if not intact:
                yield ChainProblem(entry.id, "content does not match its hash (altered)")
            prev_hash = entry.hash
            last_id = entry.id
        session.expunge_all()


def concerning_case(case_id: str) -> ColumnElement[bool]:
    """SQL filter: entries about the case, and searches whose results showed it.

    The JSON match is a coarse pre-filter (portable across SQLite and PostgreSQL); callers
    confirm each row with :func:`is_about_case`.
    """
    return or_(
        AuditEntry.case_id == case_id,
        and_(
            AuditEntry.action == "search",
            cast(AuditEntry.detail, Text).like(f'%"{case_id}"%'),
        ),
    )


def is_about_case(entry: AuditEntry, case_id: str) -> bool:
    """True if the entry concerns the case, or is a search whose page showed it."""
    if entry.case_id == case_id:
        return True
    shown = (entry.detail or {}).get("cases") if entry.action == "search" else None
    return isinstance(shown, list) and case_id in shown


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
