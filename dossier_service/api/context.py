"""Per-request access to the container, the database session and the caller."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import Session

from dossier_service.container import Container
from dossier_service.errors import BadRequest
from dossier_service.identity import Identity
from dossier_service.services import accounts

#: Endpoints that answer without a token.
PUBLIC_ENDPOINTS = frozenset({"api.health", "api.openapi"})


def container() -> Container:
    """The application's container."""
    return current_app.extensions["dossier"]


def session() -> Session:
    """The request's database session (opened on first use, closed at teardown)."""
    if "db_session" not in g:
        g.db_session = container().db.session()
    return g.db_session


def close_session(_exc: BaseException | None = None) -> None:
    """Roll back anything uncommitted and close the request's session."""
    db_session = g.pop("db_session", None)
    if db_session is not None:
        db_session.rollback()
        db_session.close()


def identity() -> Identity:
    """The authenticated caller of this request."""
    return g.identity


def client_ip() -> str | None:
    """The client's address (ProxyFix applies DOSSIER_TRUSTED_PROXIES before this)."""
    return request.remote_addr


def authenticate() -> None:
    """Resolve the bearer token before every non-public API request."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.method == "OPTIONS":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip() if scheme.lower() == "bearer" else ""
    g.identity = accounts.authenticate_token(session(), token or None, client_ip())


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


def audit_context(action: str, **ids: Any) -> None:
    """Name the action and objects of this request, so a denial can be logged with them."""
    g.audit_context = {"action": action, **ids}


def json_body() -> Any:
    """The parsed JSON body, or a 400 that says what is wrong."""
    if not request.is_json:
        raise BadRequest(
            "Send a JSON body with 'Content-Type: application/json'.", code="invalid_json"
        )
    data = request.get_json(silent=True)
    if data is None:
        raise BadRequest("The body is not valid JSON.", code="invalid_json")
    return data
