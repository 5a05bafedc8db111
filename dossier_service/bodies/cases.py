"""Bodies of registering a case, handing it over and delegating it."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

from dossier_service import identifiers
from dossier_service.bodies.fields import (
    BlankIsNone,
    Date,
    OneOf,
    OptionalDate,
    OptionalText,
    PresentDate,
    PresentText,
    Text,
)


class PersonInput(BaseModel):
    """Text is trimmed; control characters are refused. Unknown fields are ignored."""

    family_name: Annotated[Text, Field(max_length=200)]
    given_names: Annotated[Text, Field(max_length=200)]
    birth_date: Annotated[
        Text,
        Field(
            max_length=10,
            description="YYYY, YYYY-MM or YYYY-MM-DD (eCH-0044); year 1900–2100.",
            json_schema_extra={"pattern": "^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"},
        ),
    ]
    sex: Annotated[str, OneOf(identifiers.SEX_CODES)]
    nationality: Annotated[Text, Field(max_length=64)]
    zemis_number: Annotated[
        Text, Field(max_length=40, json_schema_extra={"pattern": "^[0-9A-Za-z./ -]+$"})
    ]
    ahv_number: Annotated[
        Annotated[str, Field(max_length=20)] | None,
        BlankIsNone,
        Field(description="AHVN13 with a valid check digit, with or without dots."),
    ] = None
    residence_status: Annotated[str, OneOf(identifiers.RESIDENCE_STATUSES)]

    regulation_date: Annotated[
        OptionalDate,
        Field(
            description="Date of the decision (Regelung) that gave status F or B; "
            "not in the future, not before entry."
        ),
    ] = None

    @field_validator("birth_date")
    @classmethod
    def _partial_date(cls, value: str) -> str:
        """The eCH-0044 date, written as YYYY, YYYY-MM or YYYY-MM-DD."""
        return check_birth_date(value)

    @field_validator("zemis_number")
    @classmethod
    def _zemis(cls, value: str) -> str:
        """A ZEMIS number as entered, once its search key can be formed."""
        return check_zemis(value)

    @field_validator("ahv_number")
    @classmethod
    def _ahv(cls, value: str | None) -> str | None:
        """The 13 digits of a valid AHV number, or None."""
        return check_ahv(value)


def check_birth_date(value: str) -> str:
    """The eCH-0044 date as ISO text; a partial_date refusal otherwise."""
    try:
        return identifiers.parse_partial_date(value).isoformat()
    except ValueError as exc:
        raise PydanticCustomError("partial_date", "{reason}", {"reason": str(exc)}) from None


def check_zemis(value: str) -> str:
    """A ZEMIS number as entered, once its search key can be formed."""
    try:
        identifiers.normalize_zemis(value)
    except ValueError as exc:
        raise PydanticCustomError("identifier", "{reason}", {"reason": str(exc)}) from None
    return value


def check_ahv(value: str | None) -> str | None:
    """The 13 digits of a valid AHV number, or None."""
    if value is None:
        return None
    try:
        return identifiers.normalize_ahv(value)
    except ValueError as exc:
        raise PydanticCustomError("identifier", "{reason}", {"reason": str(exc)}) from None


class PersonCorrection(BaseModel):
    """Corrected fields of the person (only those sent change) and why; validated as at
    registration. A change of residence status to F or B carries its regulation_date."""

    # Only the fields sent change (the service reads model_fields_set): null clears only
    # the AHV number, every other field must keep a value.
    model_config = ConfigDict(extra="forbid")

    family_name: Annotated[PresentText, Field(max_length=200)] = None
    given_names: Annotated[PresentText, Field(max_length=200)] = None
    birth_date: Annotated[
        PresentText,
        Field(
            max_length=10,
            description="YYYY, YYYY-MM or YYYY-MM-DD (eCH-0044); year 1900–2100.",
            json_schema_extra={"pattern": "^[0-9]{4}(-[0-9]{2}(-[0-9]{2})?)?$"},
        ),
    ] = None
    sex: Annotated[str | None, OneOf(identifiers.SEX_CODES)] = None
    nationality: Annotated[PresentText, Field(max_length=64)] = None
    zemis_number: Annotated[
        PresentText, Field(max_length=40, json_schema_extra={"pattern": "^[0-9A-Za-z./ -]+$"})
    ] = None
    ahv_number: Annotated[
        Annotated[str, Field(max_length=20)] | None,
        BlankIsNone,
        Field(description="AHVN13 with a valid check digit; null or blank removes it."),
    ] = None
    residence_status: Annotated[str | None, OneOf(identifiers.RESIDENCE_STATUSES)] = None
    regulation_date: Annotated[
        PresentDate,
        Field(description="Date of the decision on F or B; not in the future, not before entry."),
    ] = None
    reason: Annotated[Text, Field(max_length=2000)]

    @field_validator("birth_date")
    @classmethod
    def _partial_date(cls, value: str | None) -> str | None:
        """The eCH-0044 date, written as YYYY, YYYY-MM or YYYY-MM-DD."""
        return None if value is None else check_birth_date(value)

    @field_validator("zemis_number")
    @classmethod
    def _zemis(cls, value: str | None) -> str | None:
        """A ZEMIS number as entered, once its search key can be formed."""
        return None if value is None else check_zemis(value)

    @field_validator("ahv_number")
    @classmethod
    def _ahv(cls, value: str | None) -> str | None:
        """The 13 digits of a valid AHV number, or None."""
        return check_ahv(value)


class CaseInput(BaseModel):
    """A new case: the person and the day of entry into the canton."""

    person: PersonInput
    entry_date: Annotated[
        Date, Field(description="Entry into the canton; not in the future, not before 1990.")
    ]


class TransferInput(BaseModel):
    """Handing the case to another canton or municipality unit, with a reason."""

    to_unit: Annotated[
        Text, Field(max_length=32, description="Code of a canton or municipality unit.")
    ]
    reason: Annotated[Text, Field(max_length=2000)]


class DelegationInput(BaseModel):
    """Delegating day-to-day support to an organisation."""

    to_unit: Annotated[Text, Field(max_length=32, description="Code of an organisation unit.")]
    reason: Annotated[OptionalText, Field(max_length=2000)] = ""


class MergeInput(BaseModel):
    """Merging another case of the same person into this one, with a reason."""

    model_config = ConfigDict(extra="forbid")

    from_case: Annotated[
        Text,
        Field(max_length=36, description="Id of the case merged into this one."),
    ]
    reason: Annotated[Text, Field(max_length=2000)]
