"""Per-request access to the container, the database session, the caller and the audit context."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, request
from sqlalchemy.orm import Session

from dossier_service.container import Container
from dossier_service.identity import Identity


def container() -> Container:
    """The application's container."""
    return current_app.extensions["dossier"]


def session() -> Session:
    """The request's database session (opened on first use, ended by the unit of work)."""
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
    who: Identity = g.identity
    return who


def client_ip() -> str | None:
    """The client's address (ProxyFix applies DOSSIER_TRUSTED_PROXIES before this)."""
    return request.remote_addr


def audit_context(action: str, **ids: Any) -> None:
    """Name the action and objects of this request, so a denial can be logged with them."""
    g.audit_context = {"action": action, **ids}
