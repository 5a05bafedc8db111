"""Validation of response bodies against the schemas of the checked-in OpenAPI document."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

DOC_URI = "urn:dossier:openapi"


def schema_validator(doc: dict[str, Any], name: str) -> Draft202012Validator:
    """A validator (formats checked) for one component schema, resolving $refs in the doc.

    OpenAPI 3.1 schemas are JSON Schema 2020-12, so the stock validator applies.
    """
    registry: Registry = Registry().with_resource(
        DOC_URI, Resource.from_contents(doc, default_specification=DRAFT202012)
    )
    return Draft202012Validator(
        {"$ref": f"{DOC_URI}#/components/schemas/{name}"},
        registry=registry,
        format_checker=Draft202012Validator.FORMAT_CHECKER,
    )


def response_schema(doc: dict[str, Any], path: str, method: str, status: int) -> dict[str, Any]:
    """The JSON schema the document gives for one response, with a response $ref followed."""
    response = doc["paths"][path][method]["responses"][str(status)]
    if "$ref" in response:
        response = doc["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
    return response["content"]["application/json"]["schema"]  # type: ignore[no-any-return]


def assert_matches(doc: dict[str, Any], path: str, method: str, status: int, body: Any) -> None:
    """The body validates against the schema documented for this operation and status."""
    schema = response_schema(doc, path, method, status)
    name = schema["$ref"].rsplit("/", 1)[1]
    schema_validator(doc, name).validate(body)
