"""Bodies of document corrections, withdrawals, purges and moves."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

from dossier_service.bodies.fields import OneOf, OptionalDate, Text
from dossier_service.models import DOCUMENT_TYPES

Reason = Annotated[Text, Field(max_length=2000)]


class DocumentUpdate(BaseModel):
    """A correction of a document's facts; only the fields sent change (null clears the date)."""

    model_config = ConfigDict(extra="forbid")

    title: Annotated[Text, Field(max_length=300)] | None = None
    type: Annotated[str, OneOf(tuple(DOCUMENT_TYPES))] | None = None
    document_date: OptionalDate = None
    tags: Annotated[list[Annotated[str, Field(max_length=200)]], Field(max_length=100)] | None = (
        None
    )
    reason: Reason


class WithdrawInput(BaseModel):
    """Withdrawing a document, or purging a withdrawn one: why."""

    model_config = ConfigDict(extra="forbid")

    reason: Reason


class MoveInput(BaseModel):
    """Moving a document with all its versions to another case."""

    model_config = ConfigDict(extra="forbid")

    to_case: Annotated[Text, Field(max_length=36)]
    reason: Reason
