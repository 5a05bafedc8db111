"""Body of linking two cases of one household."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field, field_validator
from pydantic_core import PydanticCustomError

from dossier_service.bodies.fields import OneOf, is_id
from dossier_service.models.households import HOUSEHOLD_RELATIONS


class HouseholdInput(BaseModel):
    """The other case and what its person is to this case's person."""

    case_id: Annotated[
        str,
        Field(
            description="Id of the other case.",
            json_schema_extra={"format": "uuid"},
        ),
    ]
    relation: Annotated[
        str,
        OneOf(HOUSEHOLD_RELATIONS),
        Field(description="What the other case's person is to this one's: parent, child, partner."),
    ]

    @field_validator("case_id", mode="before")
    @classmethod
    def _id(cls, value: object) -> str:
        """A case id as this service writes them."""
        if not is_id(value):
            raise PydanticCustomError("id_format", "must be an id (UUID)")
        return str(value)
