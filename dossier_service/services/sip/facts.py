"""What a package says about its cases: the snapshot the export service hands the writer.

The writer queries no database: these frozen records (built from
``services.snapshot.case_snapshot``) are all it reads.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from dossier_service.services.person import PersonHistoryEntry, StatusHistoryEntry
from dossier_service.services.snapshot import DocumentFacts, GroupPeriod, UnitPeriod


@dataclass(frozen=True)
class JournalFact:
    """One entry of the case journal as the archive keeps it."""

    number: int
    occurred_on: dt.date
    kind: str
    unit_name: str
    participants: tuple[str, ...]
    text: str
    written_at: dt.datetime
    #: The number of the entry this one corrects (None: an entry of its own).
    corrects: int | None = None


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
    #: Corrections of the person's fields and changes of the residence status, oldest first.
    person_history: tuple[PersonHistoryEntry, ...] = ()
    status_history: tuple[StatusHistoryEntry, ...] = ()
    #: The journal, oldest entry first (numbered in that order).
    journal: tuple[JournalFact, ...] = ()


@dataclass(frozen=True)
class PackageFacts:
    """One delivery: who delivers, when, and the cases."""

    export_id: str
    created_at: dt.datetime
    created_by: str
    delivering_unit: str
    cases: tuple[CaseFacts, ...]
