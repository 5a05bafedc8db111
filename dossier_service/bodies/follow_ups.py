"""Bodies of follow-ups (Wiedervorlagen): setting one and marking it done."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from dossier_service.bodies.fields import Date, OptionalText, Text, is_id


def _optional_id(value: object) -> str | None:
    if value is None:
        return None
    if not is_id(value):
        raise PydanticCustomError("id_format", "must be an id (UUID)")
    return str(value)


class FollowUpInput(BaseModel):
    """A reminder due on a day, optionally about a measure or a cost approval of the case."""

    model_config = ConfigDict(extra="forbid")

    due_date: Annotated[Date, Field(description="The day it is due: today or later.")]
    note: Annotated[Text, Field(max_length=2000, description="What is to be done.")]
    measure: Annotated[
        str | None,
        Field(
            description="Id of a measure of the case it is about.",
            json_schema_extra={"format": "uuid"},
        ),
    ] = None
    cost_approval: Annotated[
        str | None,
        Field(
            description="Id of a cost approval of the case it is about.",
            json_schema_extra={"format": "uuid"},
        ),
    ] = None

    @field_validator("measure", "cost_approval", mode="before")
    @classmethod
    def _ids(cls, value: object) -> str | None:
        """Ids as this service writes them, or nothing."""
        return _optional_id(value)


class FollowUpDone(BaseModel):
    """Marking a follow-up done, with what came of it."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[OptionalText, Field(max_length=2000)] = ""
