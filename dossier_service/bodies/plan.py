"""Bodies of the case's plan: target group, measures, milestones, closing and reopening."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from dossier_service.bodies.fields import Date, OneOf, OptionalDate, OptionalText, PresentDate, Text
from dossier_service.models.process import (
    CLOSE_REASONS,
    MEASURE_STATUSES,
    MILESTONE_VALUES,
    PROGRAMMES,
    TARGET_GROUPS,
)

#: Every milestone value of any kind, in the order of the kinds.
ALL_MILESTONE_VALUES = tuple(dict.fromkeys(v for vs in MILESTONE_VALUES.values() for v in vs))


class CaseUpdate(BaseModel):
    """Target group triage; starts a new dated period."""

    model_config = ConfigDict(extra="forbid")

    target_group: Annotated[str, OneOf(TARGET_GROUPS)]
    reason: Annotated[OptionalText, Field(max_length=2000)] = ""


class MeasureInput(BaseModel):
    """A measure of the plan; it starts as planned unless a status is given."""

    model_config = ConfigDict(extra="forbid")

    programme: Annotated[str, OneOf(PROGRAMMES)]
    provider: Annotated[OptionalText, Field(max_length=200)] = ""
    start: Date
    end: OptionalDate = None
    status: Annotated[str | None, OneOf(MEASURE_STATUSES, nullable=True)] = None
    note: Annotated[OptionalText, Field(max_length=4000)] = ""


class MeasureUpdate(BaseModel):
    """Setting status interrupted or aborted notifies the responsible unit and the canton."""

    # Only the fields sent change (the service reads model_fields_set): null clears the end.

    model_config = ConfigDict(extra="forbid", json_schema_extra={"minProperties": 1})

    provider: Annotated[OptionalText, Field(max_length=200)] = ""
    start: PresentDate = None
    end: OptionalDate = None
    status: Annotated[str | None, OneOf(MEASURE_STATUSES)] = None
    note: Annotated[OptionalText, Field(max_length=4000)] = ""


class MilestoneInput(BaseModel):
    """A dated language, education, employment, school-language or social-life fact."""

    model_config = ConfigDict(extra="forbid")

    kind: Annotated[str, OneOf(MILESTONE_VALUES)]
    value: Annotated[
        str,
        OneOf(ALL_MILESTONE_VALUES),
        Field(
            description="language_level: "
            + ", ".join(MILESTONE_VALUES["language_level"])
            + "; education: "
            + ", ".join(MILESTONE_VALUES["education"])
            + "; employment: "
            + ", ".join(MILESTONE_VALUES["employment"])
            + "; school_language: "
            + ", ".join(MILESTONE_VALUES["school_language"])
            + "; social_life: "
            + ", ".join(MILESTONE_VALUES["social_life"])
            + "."
        ),
    ]
    date: Date
    note: Annotated[OptionalText, Field(max_length=2000)] = ""

    @field_validator("value")
    @classmethod
    def _value_of_kind(cls, value: str, info: ValidationInfo) -> str:
        """The value must be one of its kind (the kind is checked first, being declared first)."""
        kind = info.data.get("kind")
        if kind is not None and value not in MILESTONE_VALUES[kind]:
            allowed = ", ".join(sorted(MILESTONE_VALUES[kind]))
            raise PydanticCustomError("choice", "must be one of: {allowed}", {"allowed": allowed})
        return value


class CloseInput(BaseModel):
    """Closing a case with a reason and an optional note."""

    reason: Annotated[str, OneOf(CLOSE_REASONS)]
    note: Annotated[OptionalText, Field(max_length=4000)] = ""


class ReopenInput(BaseModel):
    """Reopening a closed case, with a reason."""

    reason: Annotated[Text, Field(max_length=2000)]
