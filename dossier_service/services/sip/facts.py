"""What a package says about its cases: the snapshot the export service hands the writer.

The writer knows no database: these frozen records are all it reads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class UnitPeriod:
    """A dated period of a unit: a responsibility, or a delegation (with who granted it)."""

    unit_code: str
    unit_name: str
    unit_kind: str
    start: dt.datetime
    end: dt.datetime | None
    reason: str = ""
    granted_by: str | None = None


@dataclass(frozen=True)
class GroupPeriod:
    """A dated period in which the case belonged to a target group."""

    group: str
    start: dt.datetime
    end: dt.datetime | None


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


@dataclass(frozen=True)
class DocumentFacts:
    """A document of the dossier with all its versions (oldest first)."""

    id: str
    type: str
    title: str
    created_at: dt.datetime
    versions: tuple[VersionFacts, ...]


@dataclass(frozen=True)
class CaseFacts:
    """Everything the SIP says about one case."""

    id: str
    reference: str
    person: dict[str, str | None]
    entry_date: dt.date
    closed_at: dt.datetime
    close_reason: str
    responsibilities: tuple[UnitPeriod, ...]
    delegations: tuple[UnitPeriod, ...]
    target_groups: tuple[GroupPeriod, ...]
    documents: tuple[DocumentFacts, ...]


@dataclass(frozen=True)
class PackageFacts:
    """One delivery: who delivers, when, and the cases."""

    export_id: str
    created_at: dt.datetime
    created_by: str
    delivering_unit: str
    cases: tuple[CaseFacts, ...]
