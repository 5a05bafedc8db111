"""Turn an untrusted JSON value into a request model, or into the one error shape.

A body that is not a JSON object is malformed (400 ``invalid_json``); a value of the
wrong kind is refused with 422 and the dotted name of the first bad field, in a sentence
a person understands. Unknown fields are named together, where the model forbids them.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails

from dossier_service.errors import BadRequest, DossierError, Unprocessable

M = TypeVar("M", bound=BaseModel)

#: The sentence for each kind of refusal; {field} is the dotted field name.
MESSAGES = {
    "required": "'{field}' is required.",
    "missing": "'{field}' is required.",
    "text_type": "'{field}' must be text.",
    "string_type": "'{field}' must be text.",
    "text_control": "'{field}' contains control characters.",
    "text_unicode": "'{field}' contains invalid Unicode characters.",
    "string_too_long": "'{field}' is longer than {max_length} characters.",
    "too_long": "'{field}' is longer than {max_length} characters.",
    "string_too_short": "'{field}' is required.",
    "date_format": "'{field}' must be a date YYYY-MM-DD.",
    "choice": "'{field}' must be one of: {allowed}.",
    "amount_not_string": "'{field}' must be a string with the amount in CHF, e.g. \"4800.00\".",
    "amount_negative": "'{field}' must not be negative.",
    "amount_format": (
        "'{field}' must be an amount in CHF with at most two decimals, e.g. \"4800.00\"."
    ),
    "amount_too_large": "'{field}' must not exceed 1000000.00.",
    "id_format": "'{field}' must be an id as this service writes them (a UUID).",
    "id_list": "'{field}' must be a list of ids.",
    "too_many_items": "'{field}' holds at most {max_items} ids.",
    "too_many_cases": "One export holds at most {max_items} cases.",
    "partial_date": "'{field}' must be YYYY, YYYY-MM or YYYY-MM-DD: {reason}",
    "identifier": "'{field}' is invalid: {reason}",
}
#: Refusals with their own error code (clients tell them apart); the rest are validation_failed.
CODES = {"amount_not_string": "amount_not_string", "too_many_cases": "too_many_cases"}
#: A nested object that is not an object is as malformed as a body that is not one.
_NOT_AN_OBJECT = {"model_type", "model_attributes_type", "dict_type"}


def parse(model: type[M], data: Any) -> M:
    """The body as a model; BadRequest if it is not an object, Unprocessable naming a field."""
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise refusal(exc.errors(include_url=False)) from None


def _field(error: ErrorDetails) -> str:
    """The dotted name of the field (list positions left out: the list is the field)."""
    return ".".join(str(part) for part in error["loc"] if isinstance(part, str))


def refusal(errors: list[ErrorDetails]) -> DossierError:
    """The one error to answer for these validation errors."""
    unknown = sorted(_field(e) for e in errors if e["type"] == "extra_forbidden")
    if unknown:
        return Unprocessable("Unknown field(s): " + ", ".join(unknown) + ".", field=unknown[0])
    error = errors[0]
    field = _field(error) or "body"
    kind = error["type"]
    if kind in _NOT_AN_OBJECT:
        if error["input"] is None:
            return Unprocessable(MESSAGES["required"].format(field=field), field=field)
        return BadRequest(f"'{field}' must be a JSON object.", code="invalid_json")
    template = MESSAGES.get(kind)
    if template is None:
        # A refusal of pydantic's own that no field type here anticipates: its sentence.
        message = f"'{field}': {error['msg']}."
    else:
        message = template.format(field=field, **error.get("ctx", {}))
    return Unprocessable(message, code=CODES.get(kind), field=field)
