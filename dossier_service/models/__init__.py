"""SQLAlchemy models: the system of record."""

from dossier_service.models.archive import CaseTombstone, Export, ExportCase, LegalHold
from dossier_service.models.audit import AuditEntry
from dossier_service.models.auth import AuthFailureWindow, WebSession
from dossier_service.models.cases import (
    Case,
    CaseMerge,
    Delegation,
    PersonChange,
    ReferenceCounter,
    ResidenceStatusChange,
    Responsibility,
)
from dossier_service.models.documents import (
    DOCUMENT_TYPES,
    Document,
    DocumentChange,
    DocumentTombstone,
    DocumentVersion,
)
from dossier_service.models.follow_ups import FollowUp
from dossier_service.models.households import HouseholdLink
from dossier_service.models.journal import JOURNAL_KINDS, JournalEntry
from dossier_service.models.outbox import OutboxMessage
from dossier_service.models.process import (
    CaseClosure,
    CostApproval,
    CostApprovalDocument,
    Measure,
    Milestone,
    Notification,
    TargetGroupAssignment,
    UnitMailbox,
)
from dossier_service.models.units import ROLES, UNIT_KINDS, ApiToken, Unit, User

__all__ = [
    "DOCUMENT_TYPES",
    "JOURNAL_KINDS",
    "ROLES",
    "UNIT_KINDS",
    "ApiToken",
    "AuditEntry",
    "AuthFailureWindow",
    "Case",
    "CaseClosure",
    "CaseMerge",
    "CaseTombstone",
    "CostApproval",
    "CostApprovalDocument",
    "Delegation",
    "Document",
    "DocumentChange",
    "DocumentTombstone",
    "DocumentVersion",
    "Export",
    "ExportCase",
    "FollowUp",
    "HouseholdLink",
    "JournalEntry",
    "LegalHold",
    "Measure",
    "Milestone",
    "Notification",
    "OutboxMessage",
    "PersonChange",
    "ReferenceCounter",
    "ResidenceStatusChange",
    "Responsibility",
    "TargetGroupAssignment",
    "Unit",
    "UnitMailbox",
    "User",
    "WebSession",
]
