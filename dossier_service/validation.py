"""Checked values from the query string (400 on error); request bodies are ``bodies`` models."""

from __future__ import annotations

from dossier_service.errors import BadRequest


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
