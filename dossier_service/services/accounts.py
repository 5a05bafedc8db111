"""Units, users and API tokens (administered from the command line)."""

from __future__ import annotations

import hashlib
import re
import secrets

from sqlalchemy import select
from sqlalchemy.orm import Session

from dossier_service.db import utcnow
from dossier_service.errors import Conflict, Unauthenticated, Unprocessable
from dossier_service.identity import Anonymous, Identity
from dossier_service.models import ROLES, UNIT_KINDS, ApiToken, Unit, User
from dossier_service.services import audit

_CODE_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{1,31}$")
_USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{1,63}$")
TOKEN_PREFIX = "dos_"  # noqa: S105  (a public prefix, not a secret)


def create_unit(session: Session, code: str, name: str, kind: str) -> Unit:
    """Create an organisational unit; codes are lowercase and unique."""
    if not _CODE_RE.match(code):
        raise Unprocessable(
            "A unit code is 2–32 lowercase letters, digits, '-' or '_'.", field="code"
        )
    if kind not in UNIT_KINDS:
        raise Unprocessable("kind must be canton, municipality or organisation.", field="kind")
    if not name.strip():
        raise Unprocessable("A unit needs a name.", field="name")
    if session.execute(select(Unit.id).where(Unit.code == code)).first():
        raise Conflict(f"A unit with the code {code!r} exists already.", code="unit_exists")
    unit = Unit(code=code, name=name.strip(), kind=kind, created_at=utcnow())
    session.add(unit)
    session.flush()
    audit.record(session, None, "unit.create", detail={"code": code, "kind": kind})
    return unit


def create_user(
    session: Session, username: str, unit_code: str, role: str, display_name: str | None = None
) -> User:
    """Create a user with one role in one unit."""
    if not _USERNAME_RE.match(username):
        raise Unprocessable(
            "A username is 2–64 lowercase letters, digits, '.', '-' or '_'.", field="username"
        )
    if role not in ROLES:
        raise Unprocessable("role must be one of: " + ", ".join(ROLES) + ".", field="role")
    unit = session.execute(select(Unit).where(Unit.code == unit_code)).scalar_one_or_none()
    if unit is None:
        raise Unprocessable(f"There is no unit with the code {unit_code!r}.", field="unit")
    if role in {"auditor", "archivist"} and unit.kind != "canton":
        raise Unprocessable(f"The role {role} exists only in the canton.", field="role")
    if session.execute(select(User.id).where(User.username == username)).first():
        raise Conflict(f"The user {username!r} exists already.", code="user_exists")
    user = User(
        username=username,
        unit_id=unit.id,
        role=role,
        display_name=display_name,
        created_at=utcnow(),
    )
    session.add(user)
    session.flush()
    audit.record(
        session, None, "user.create", detail={"username": username, "unit": unit_code, "role": role}
    )
    return user


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256 (tokens are 256-bit random, no salt needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def create_token(session: Session, username: str, label: str | None = None) -> str:
    """Create an API token for a user and return it; only its hash is kept."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise Unprocessable(f"There is no user {username!r}.", field="username")
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    session.add(
        ApiToken(user_id=user.id, token_hash=hash_token(token), label=label, created_at=utcnow())
    )
    session.flush()
    audit.record(session, None, "token.create", detail={"username": username})
    return token


def revoke_tokens(session: Session, username: str) -> int:
    """Revoke all tokens of a user; return how many were active."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise Unprocessable(f"There is no user {username!r}.", field="username")
    tokens = (
        session.execute(
            select(ApiToken).where(ApiToken.user_id == user.id, ApiToken.revoked_at.is_(None))
        )
        .scalars()
        .all()
    )
    for token in tokens:
        token.revoked_at = utcnow()
    audit.record(session, None, "token.revoke", detail={"username": username, "count": len(tokens)})
    return len(tokens)


def identity_for_user(user: User, ip: str | None = None) -> Identity:
    """The Identity the services use for a user."""
    return Identity(
        user_id=user.id,
        username=user.username,
        role=user.role,
        unit_id=user.unit_id,
        unit_code=user.unit.code,
        unit_kind=user.unit.kind,
        ip=ip,
    )


def authenticate_token(session: Session, token: str | None, ip: str | None) -> Identity:
    """Resolve a bearer token to an Identity; log and refuse anything else."""
    if not token:
        # A request without credentials is a failed authentication too: log it like one.
        audit.record(
            session,
            Anonymous(ip=ip),
            "auth.failed",
            outcome="denied",
            detail={"reason": "missing_token"},
        )
        session.commit()
        raise Unauthenticated("Send 'Authorization: Bearer <token>'.", code="missing_token")
    row = None
    if token.startswith(TOKEN_PREFIX) and len(token) < 200:
        row = session.execute(
            select(ApiToken).where(ApiToken.token_hash == hash_token(token))
        ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not row.user.active:
        audit.record(
            session,
            Anonymous(ip=ip),
            "auth.failed",
            outcome="denied",
            detail={"reason": "revoked" if row is not None else "unknown_token"},
        )
        session.commit()
        raise Unauthenticated(
            "The token is unknown, revoked or its user is disabled.", code="invalid_token"
        )
    return identity_for_user(row.user, ip)
