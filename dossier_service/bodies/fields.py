"""Field types of request bodies: trimmed text, ISO dates, codes, CHF amounts and ids.

Each type refuses with a custom error type that ``bodies.parse`` turns into a sentence
naming the field; the JSON schema of each is written out so the OpenAPI document says
exactly what is accepted.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import (
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    WithJsonSchema,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import PydanticCustomError, core_schema

#: Largest amount of a cost approval.
MAX_AMOUNT = Decimal("1000000.00")
_AMOUNT = re.compile(r"\d{1,7}(\.\d{1,2})?")
_AMOUNT_SCHEMA = {"type": "string", "pattern": "^[0-9]{1,7}(\\.[0-9]{1,2})?$"}
_DATE_SCHEMA = {"type": "string", "format": "date"}


def _required() -> PydanticCustomError:
    return PydanticCustomError("required", "is required")


def _clean(value: Any) -> str | None:
    """Trimmed printable text; None for a missing or blank value."""
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise PydanticCustomError("text_type", "must be text")
    value = value.strip()
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise PydanticCustomError("text_control", "contains control characters")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # JSON may carry lone surrogates ("\ud800"), which no database can store.
            raise PydanticCustomError("text_unicode", "contains invalid Unicode") from None
    return value


def _required_text(value: Any) -> str:
    text = _clean(value)
    if text is None:
        raise _required()
    return text


def _optional_text(value: Any) -> str:
    return _clean(value) or ""


#: Text that must be given (blank counts as missing); add Field(max_length=…).
Text = Annotated[str, BeforeValidator(_required_text), Field(min_length=1)]
#: Text that may be left out or blank (then "").
OptionalText = Annotated[str, BeforeValidator(_optional_text)]
#: Text that may be left out (None by default), but when sent is non-blank: null is refused.
PresentText = Annotated[str | None, BeforeValidator(_required_text), Field(min_length=1)]
#: Metadata of a ``Annotated[str, Field(max_length=…)] | None`` field: blank text is None.
BlankIsNone = BeforeValidator(_clean)


def _date(value: Any) -> dt.date:
    if value is None:
        raise _required()
    if not isinstance(value, str):
        raise PydanticCustomError("date_format", "must be a date YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise PydanticCustomError("date_format", "must be a date YYYY-MM-DD") from None


def _optional_date(value: Any) -> dt.date | None:
    return None if value is None else _date(value)


#: An ISO date YYYY-MM-DD that must be given (an explicit null counts as missing too).
Date = Annotated[dt.date, BeforeValidator(_date), WithJsonSchema(_DATE_SCHEMA)]
#: A date that may be left out (None by default), but when sent is a date: null is refused.
PresentDate = Annotated[dt.date | None, BeforeValidator(_date), WithJsonSchema(_DATE_SCHEMA)]
#: An ISO date or null.
OptionalDate = Annotated[
    dt.date | None,
    BeforeValidator(_optional_date),
    WithJsonSchema({"type": ["string", "null"], "format": "date"}),
]


@dataclass(frozen=True)
class OneOf:
    """Metadata of a str field that holds one of these codes (listed in this order)."""

    codes: tuple[str, ...]
    nullable: bool = False

    def __init__(self, codes: Iterable[str], *, nullable: bool = False) -> None:
        object.__setattr__(self, "codes", tuple(codes))
        object.__setattr__(self, "nullable", nullable)

    def check(self, value: Any) -> Any:
        """The code, or None where null is allowed; a choice error otherwise."""
        if value is None and self.nullable:
            return None
        if not isinstance(value, str) or value not in self.codes:
            listed = ", ".join(sorted(self.codes))
            raise PydanticCustomError("choice", "must be one of: {allowed}", {"allowed": listed})
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"type": "string", "enum": list(self.codes)}


def _amount(value: Any) -> Decimal | None:
    """A CHF amount from a JSON string "4800.00": ≥ 0, at most 2 decimals, ≤ 1,000,000."""
    if value is None:
        return None
    if not isinstance(value, str):
        # Floats lose cents (0.1 + 0.2); amounts travel as strings, e.g. "4800.00".
        raise PydanticCustomError("amount_not_string", 'must be a string, e.g. "4800.00"')
    text = value.strip()
    if text.startswith("-"):
        raise PydanticCustomError("amount_negative", "must not be negative")
    if not _AMOUNT.fullmatch(text):
        raise PydanticCustomError("amount_format", "must have at most two decimals")
    amount = Decimal(text)
    if amount > MAX_AMOUNT:
        raise PydanticCustomError("amount_too_large", "must not exceed 1000000.00")
    return amount.quantize(Decimal("0.01"))


def _required_amount(value: Any) -> Decimal:
    amount = _amount(value)
    if amount is None:
        raise _required()
    return amount


#: A CHF amount as a string with at most two decimals, e.g. "4800.00".
Amount = Annotated[Decimal, BeforeValidator(_required_amount), WithJsonSchema(_AMOUNT_SCHEMA)]
#: The same, or null / left out.
OptionalAmount = Annotated[Decimal | None, BeforeValidator(_amount), WithJsonSchema(_AMOUNT_SCHEMA)]


def is_id(value: Any) -> bool:
    """True for an id as this service hands them out (a UUID in its canonical form)."""
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _optional_id(value: Any) -> str | None:
    if value is not None and not is_id(value):
        raise PydanticCustomError("id_format", "must be an id (UUID)")
    return value


#: The id (UUID) of an object of this service, or null.
OptionalId = Annotated[
    str | None, BeforeValidator(_optional_id), WithJsonSchema({"type": "string", "format": "uuid"})
]


def _is_text_id(value: Any) -> bool:
    """True for printable text of at most 100 characters without surrounding blanks.

    PostgreSQL cannot compare text holding NUL, so such an "id" is refused here rather
    than failing the query.
    """
    try:
        return isinstance(value, str) and len(value) <= 100 and _clean(value) == value
    except PydanticCustomError:
        return False


@dataclass(frozen=True)
class IdList:
    """Metadata of a list[str] | None field of ids: duplicates dropped, at most max_items.

    Null is None, like a field left out; ``non_empty`` refuses an empty list.
    ``canonical`` asks for ids as this service writes them (UUIDs); otherwise any printable
    text is taken and an unknown id is the service's to refuse. ``too_many`` names the
    error type of a list that is too long (some have their own error code).
    """

    max_items: int
    non_empty: bool = False
    canonical: bool = True
    too_many: str = "too_many_items"

    def check(self, value: Any) -> list[str] | None:
        """The distinct ids in their order; an id_list or too_many_items error otherwise."""
        if value is None:
            return None
        if not isinstance(value, list) or (self.non_empty and not value):
            raise PydanticCustomError("id_list", "must be a list of ids")
        good = is_id if self.canonical else _is_text_id
        if not all(good(v) for v in value):
            raise PydanticCustomError("id_list", "must be a list of ids")
        unique = list(dict.fromkeys(value))
        if len(unique) > self.max_items:
            raise PydanticCustomError(
                self.too_many, "holds at most {max_items} ids", {"max_items": self.max_items}
            )
        return unique

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_before_validator_function(self.check, handler(source))

    def __get_pydantic_json_schema__(
        self, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        items: dict[str, Any] = {"type": "string"}
        if self.canonical:
            items["format"] = "uuid"
        else:
            items.update(minLength=1, maxLength=100)
        result: dict[str, Any] = {"type": "array", "maxItems": self.max_items, "items": items}
        if self.non_empty:
            result["minItems"] = 1
        return result
