"""SQLAlchemy models: the system of record."""

from dossier_service.models.audit import AuditEntry
from dossier_service.models.cases import Case, Delegation, ReferenceCounter, Responsibility
from dossier_service.models.documents import DOCUMENT_TYPES, Document, DocumentVersion
from dossier_service.models.outbox import OutboxMessage
from dossier_service.models.units import ROLES, UNIT_KINDS, ApiToken, Unit, User

__all__ = [
    "DOCUMENT_TYPES",
    "ROLES",
    "UNIT_KINDS",
    "ApiToken",
    "AuditEntry",
    "Case",
    "Delegation",
    "Document",
    "DocumentVersion",
    "OutboxMessage",
    "ReferenceCounter",
    "Responsibility",
    "Unit",
    "User",
]
