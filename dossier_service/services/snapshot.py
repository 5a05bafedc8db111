"""One case as plain facts: the person, the dated history and (on request) the documents.

The case JSON of the API, the archive package (SIP) and the person's disclosure all read a
case through :func:`case_snapshot`, so each fact is gathered in one place; the records are
frozen and hold no ORM objects, so the SIP writer can work on them outside any session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service import identifiers
from dossier_service.models import (
    Case,
    CaseClosure,
    Delegation,
    Document,
    DocumentChange,
    Responsibility,
    TargetGroupAssignment,
    Unit,
)


@dataclass(frozen=True)
class UnitRef:
    """A unit as the outputs name it."""

    code: str
    name: str
    kind: str

    def label(self) -> str:
        """Name and code, e.g. "Gemeinde Aarau (aarau)"."""
        return f"{self.name} ({self.code})"


@dataclass(frozen=True)
class UnitPeriod:
    """A dated period of a unit: a responsibility, or a delegation (with who granted it)."""

    unit_code: str
    unit_name: str
    unit_kind: str
    start: dt.datetime
    end: dt.datetime | None
    reason: str = ""
    granted_by: UnitRef | None = None
    end_reason: str | None = None

    @property
    def unit(self) -> UnitRef:
        """The unit of the period."""
        return UnitRef(self.unit_code, self.unit_name, self.unit_kind)


@dataclass(frozen=True)
class GroupPeriod:
    """A dated period in which the case belonged to a target group."""

    group: str
    start: dt.datetime
    end: dt.datetime | None
    reason: str | None = None


@dataclass(frozen=True)
class ClosureFacts:
    """One closing of the case, and its reopening if there was one."""

    closed_at: dt.datetime
    reason: str
    note: str | None
    reopened_at: dt.datetime | None
    reopen_reason: str | None


@dataclass(frozen=True)
class VersionFacts:
    """One immutable version and where its bytes are."""

    id: str
    number: int
    storage_key: str
    sha256: str
    size: int
    media_type: str
    filename: str
    created_at: dt.datetime
    created_by: str
    created_by_unit: str
    created_by_unit_code: str = ""
    #: Why the uploader added this version (None: not said).
    reason: str | None = None


@dataclass(frozen=True)
class ChangeFacts:
    """One correction of a document's facts (or its withdrawal, or a move)."""

    field: str
    old: Any
    new: Any
    reason: str
    by: str
    at: dt.datetime


@dataclass(frozen=True)
class DocumentFacts:
    """A document of the dossier with all its versions (oldest first)."""

    id: str
    type: str
    title: str
    created_at: dt.datetime
    versions: tuple[VersionFacts, ...]
    document_date: dt.date | None = None
    tags: tuple[str, ...] = ()
    #: Withdrawn documents are disclosed (marked) but never delivered to the archive.
    withdrawn_at: dt.datetime | None = None
    withdrawn_reason: str | None = None
    changes: tuple[ChangeFacts, ...] = ()


@dataclass(frozen=True)
class CaseSnapshot:
    """Everything recorded about a case's person and history, oldest period first."""

    id: str
    reference: str
    status: str
    entry_date: dt.date
    created_at: dt.datetime
    updated_at: dt.datetime
    person: dict[str, str | None]
    responsibilities: tuple[UnitPeriod, ...]
    delegations: tuple[UnitPeriod, ...]
    target_groups: tuple[GroupPeriod, ...]
    closures: tuple[ClosureFacts, ...]
    documents: tuple[DocumentFacts, ...] = ()

    @property
    def responsible(self) -> UnitPeriod:
        """The responsibility in force now (a case always has exactly one)."""
        return next(r for r in reversed(self.responsibilities) if r.end is None)

    @property
    def active_delegations(self) -> tuple[UnitPeriod, ...]:
        """Delegations in force now."""
        return tuple(d for d in self.delegations if d.end is None)

    @property
    def target_group(self) -> str | None:
        """The target group now, if one is assigned."""
        return next((g.group for g in self.target_groups if g.end is None), None)

    @property
    def open_closure(self) -> ClosureFacts | None:
        """The closing in force (a closed case has one that was not reopened)."""
        if self.status != "closed":
            return None
        return next((c for c in reversed(self.closures) if c.reopened_at is None), None)


def person_facts(case: Case) -> dict[str, str | None]:
    """The person of a case, with the AHV number written the usual way."""
    return {
        "family_name": case.family_name,
        "given_names": case.given_names,
        "birth_date": case.birth_date,
        "sex": case.sex,
        "nationality": case.nationality,
        "zemis_number": case.zemis_number,
        "ahv_number": identifiers.format_ahv(case.ahv_number) if case.ahv_number else None,
        "residence_status": case.residence_status,
        "regulation_date": case.regulation_date.isoformat() if case.regulation_date else None,
    }


def case_snapshot(session: Session, case: Case, *, documents: bool = False) -> CaseSnapshot:
    """The facts of ``case``; with ``documents``, every document with all its versions."""
    units: dict[int, UnitRef] = {}

    def unit(unit_id: int) -> UnitRef:
        if unit_id not in units:
            row = session.get(Unit, unit_id)
            assert row is not None  # a foreign key
            units[unit_id] = UnitRef(row.code, row.name, row.kind)
        return units[unit_id]

    responsibilities = tuple(
        UnitPeriod(
            *_unit_fields(unit(r.unit_id)),
            start=r.started_at,
            end=r.ended_at,
            reason=r.reason or "",
        )
        for r in session.execute(
            select(Responsibility)
            .where(Responsibility.case_id == case.id)
            .order_by(Responsibility.started_at, Responsibility.id)
        ).scalars()
    )
    delegations = tuple(
        UnitPeriod(
            *_unit_fields(unit(d.unit_id)),
            start=d.started_at,
            end=d.ended_at,
            reason=d.reason or "",
            granted_by=unit(d.granted_by_unit_id),
            end_reason=d.end_reason,
        )
        for d in session.execute(
            select(Delegation)
            .where(Delegation.case_id == case.id)
            .order_by(Delegation.started_at, Delegation.id)
        ).scalars()
    )
    groups = tuple(
        GroupPeriod(group=g.target_group, start=g.started_at, end=g.ended_at, reason=g.reason)
        for g in session.execute(
            select(TargetGroupAssignment)
            .where(TargetGroupAssignment.case_id == case.id)
            .order_by(TargetGroupAssignment.started_at, TargetGroupAssignment.id)
        ).scalars()
    )
    closures = tuple(
        ClosureFacts(c.closed_at, c.reason, c.note, c.reopened_at, c.reopen_reason)
        for c in session.execute(
            select(CaseClosure)
            .where(CaseClosure.case_id == case.id)
            .order_by(CaseClosure.closed_at, CaseClosure.id)
        ).scalars()
    )
    return CaseSnapshot(
        id=case.id,
        reference=case.reference,
        status=case.status,
        entry_date=case.entry_date,
        created_at=case.created_at,
        updated_at=case.updated_at,
        person=person_facts(case),
        responsibilities=responsibilities,
        delegations=delegations,
        target_groups=groups,
        closures=closures,
        documents=_documents(session, case.id) if documents else (),
    )


def _unit_fields(unit: UnitRef) -> tuple[str, str, str]:
    return unit.code, unit.name, unit.kind


def _documents(session: Session, case_id: str) -> tuple[DocumentFacts, ...]:
    """Every document of the case, oldest first, each with its versions."""
    return tuple(
        DocumentFacts(
            id=document.id,
            type=document.type,
            title=document.title,
            created_at=document.created_at,
            versions=tuple(
                VersionFacts(
                    id=v.id,
                    number=v.number,
                    storage_key=v.storage_key,
                    sha256=v.sha256,
                    size=v.size,
                    media_type=v.media_type,
                    filename=v.filename,
                    created_at=v.created_at,
                    created_by=v.created_by.username,
                    # A user belongs to one unit for good: this is the unit at upload time.
                    created_by_unit=v.created_by.unit.name,
                    created_by_unit_code=v.created_by.unit.code,
                    reason=v.reason,
                )
                for v in document.versions
            ),
            document_date=document.document_date,
            tags=tuple(document.tags or ()),
            withdrawn_at=document.withdrawn_at,
            withdrawn_reason=document.withdrawn_reason,
            changes=tuple(
                ChangeFacts(
                    field=c.field,
                    old=c.old_value,
                    new=c.new_value,
                    reason=c.reason,
                    by=c.changed_by.username,
                    at=c.changed_at,
                )
                for c in session.execute(
                    select(DocumentChange)
                    .where(DocumentChange.document_id == document.id)
                    .order_by(DocumentChange.changed_at, DocumentChange.id)
                ).scalars()
            ),
        )
        for document in session.execute(
            select(Document)
            .where(Document.case_id == case_id)
            .order_by(Document.created_at, Document.id)
        ).scalars()
    )
