"""Bodies of archival exports, their acknowledgement and legal holds."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from dossier_service.bodies.fields import BlankIsNone, IdList, OptionalDate, Text

#: Most cases one package may hold.
MAX_CASES = 500


class ExportInput(BaseModel):
    """Exactly one of case_ids (closed cases) or closed_before (closed before that day)."""

    case_ids: Annotated[
        list[str] | None,
        IdList(MAX_CASES, non_empty=True, canonical=False, too_many="too_many_cases"),
    ] = None
    closed_before: OptionalDate = None


class AcknowledgeInput(BaseModel):
    """The archive's receipt of a package."""

    archive_reference: Annotated[
        Text, Field(max_length=100, description="The archive's number of the delivery.")
    ]


class LegalHoldInput(BaseModel):
    """Putting a case under legal hold."""

    reason: Annotated[Text, Field(max_length=2000)]


class LegalHoldRelease(BaseModel):
    """Releasing a legal hold; the reason is optional."""

    reason: Annotated[Annotated[str, Field(max_length=2000)] | None, BlankIsNone] = None
