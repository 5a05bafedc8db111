"""What only the API does with a request: bearer tokens, NUL checks and JSON bodies."""

from __future__ import annotations

from typing import Any

from flask import g, request

from dossier_service import policy
from dossier_service.errors import BadRequest, Forbidden, TooManyRequests, Unauthenticated
from dossier_service.http.context import client_ip, identity, session
from dossier_service.http.unit_of_work import separate_transaction
from dossier_service.services import accounts

#: Endpoints that answer without a token.
PUBLIC_ENDPOINTS = frozenset({"api.health", "api.openapi"})


def authenticate() -> None:
    """Resolve the bearer token before every non-public API request."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    try:
        g.identity = accounts.authenticate_token(session(), token or None, client_ip())
    except Unauthenticated as exc:
        # A refused token is counted (and audited) although the request fails: in a
        # transaction of its own. A valid token is served from any address; only an address
        # that keeps failing gets 429 for its failures.
        with separate_transaction() as db:
            accounts.record_refusal(db, exc, client_ip())
            retry_after = accounts.address_retry_after(db, client_ip())
        if retry_after is not None:
            raise TooManyRequests(
                "Too many failed authentications from this address; try again later.",
                retry_after=retry_after,
            ) from exc
        raise


def reject_nul_characters() -> None:
    """Refuse a NUL character anywhere in the path or query string with 400.

    PostgreSQL text cannot hold NUL, so such a value would otherwise fail deep inside a
    query (or an audit entry) as a 500 instead of being refused as the malformed input it is.
    """
    if request.endpoint in PUBLIC_ENDPOINTS:
        return
    values = [v for v in (request.view_args or {}).values() if isinstance(v, str)]
    values += [v for _, vs in request.args.lists() for v in vs]
    if any("\x00" in value for value in values):
        raise BadRequest("The address contains a NUL character.", code="invalid_parameter")


def json_body() -> Any:
    """The parsed JSON body, or a 400 that says what is wrong.

    A caller whose role changes nothing is refused (403, audited as a denial) before a
    byte of the body is read; the body's size was bounded by ``http.limits`` already.
    """
    if not policy.changes_anything(identity()):
        raise Forbidden("Your role does not change anything here.", code="forbidden")
    if not request.is_json:
        raise BadRequest(
            "Send a JSON body with 'Content-Type: application/json'.", code="invalid_json"
        )
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest("The body is not valid JSON.", code="invalid_json")
    return data
