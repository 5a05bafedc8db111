"""Body of a journal entry: a note, conversation, phone call or meeting of a case."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from dossier_service.bodies.fields import OneOf, PresentDate, Text, is_id
from dossier_service.models.journal import JOURNAL_KINDS

#: At most this many participants per entry, each named in at most 200 characters.
MAX_PARTICIPANTS = 30


class JournalInput(BaseModel):
    """A new journal entry; to correct an entry, write a new one that names it."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[
        str,
        OneOf(tuple(JOURNAL_KINDS)),
        Field(description="note, conversation, phone or meeting."),
    ]
    text: Annotated[Text, Field(max_length=20000)]
    participants: Annotated[
        list[Annotated[Text, Field(max_length=200)]],
        Field(
            max_length=MAX_PARTICIPANTS,
            description="Who took part (names or roles), e.g. the person, an interpreter.",
        ),
    ] = []
    occurred_on: Annotated[
        PresentDate,
        Field(description="The day it took place (default today); not in the future."),
    ] = None
    corrects: Annotated[
        str | None,
        Field(
            description="Id of an entry of the same case that this entry corrects.",
            json_schema_extra={"format": "uuid"},
        ),
    ] = None

    @field_validator("corrects", mode="before")
    @classmethod
    def _id(cls, value: object) -> str | None:
        """An entry id as this service writes them, or nothing."""
        if value is None:
            return None
        if not is_id(value):
            raise PydanticCustomError("id_format", "must be an id (UUID)")
        return str(value)
