"""Small helpers that turn untrusted JSON values into checked Python values (422 on error)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from dossier_service.errors import BadRequest, Unprocessable


def require_object(payload: Any) -> dict[str, Any]:
    """The request body must be a JSON object."""
    if not isinstance(payload, dict):
        raise BadRequest("The request body must be a JSON object.", code="invalid_json")
    return payload


def text_field(
    data: dict[str, Any],
    name: str,
    *,
    required: bool = True,
    max_length: int = 200,
    default: str | None = None,
) -> str | None:
    """A trimmed, bounded, printable string."""
    value = data.get(name)
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise Unprocessable(f"'{name}' is required.", code="validation_failed", field=name)
        return default
    if not isinstance(value, str):
        raise Unprocessable(f"'{name}' must be text.", code="validation_failed", field=name)
    value = value.strip()
    if len(value) > max_length:
        raise Unprocessable(
            f"'{name}' is longer than {max_length} characters.",
            code="validation_failed",
            field=name,
        )
    if any(ord(c) < 32 and c not in "\t\n\r" for c in value) or "\x7f" in value:
        raise Unprocessable(
            f"'{name}' contains control characters.", code="validation_failed", field=name
        )
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            # JSON may carry lone surrogates ("\ud800"), which no database can store.
            raise Unprocessable(
                f"'{name}' contains invalid Unicode characters.",
                code="validation_failed",
                field=name,
            ) from None
    return value


def date_field(data: dict[str, Any], name: str, *, required: bool = True) -> dt.date | None:
    """An ISO date YYYY-MM-DD."""
    value = data.get(name)
    if value is None:
        if required:
            raise Unprocessable(f"'{name}' is required.", code="validation_failed", field=name)
        return None
    if not isinstance(value, str):
        raise Unprocessable(
            f"'{name}' must be a date YYYY-MM-DD.", code="validation_failed", field=name
        )
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise Unprocessable(
            f"'{name}' must be a date YYYY-MM-DD.", code="validation_failed", field=name
        ) from None


def choice_field(
    data: dict[str, Any], name: str, choices: Any, *, required: bool = True
) -> str | None:
    """One of a fixed set of codes."""
    value = data.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or value not in choices:
        allowed = ", ".join(sorted(choices))
        raise Unprocessable(
            f"'{name}' must be one of: {allowed}.", code="validation_failed", field=name
        )
    return value


def int_param(raw: str | None, name: str, *, default: int, minimum: int, maximum: int) -> int:
    """A bounded integer query parameter."""
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"'{name}' must be a whole number.", code="invalid_parameter") from None
    if not minimum <= value <= maximum:
        raise BadRequest(
            f"'{name}' must be between {minimum} and {maximum}.", code="invalid_parameter"
        )
    return value
