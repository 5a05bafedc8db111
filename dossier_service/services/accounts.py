"""Units, users, API tokens and passwords (administered from the command line), web login."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import delete, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.errors import Conflict, Unauthenticated, Unprocessable
from dossier_service.identity import Anonymous, Identity
from dossier_service.models import (
    ROLES,
    UNIT_KINDS,
    ApiToken,
    AuditEntry,
    AuthFailureWindow,
    Unit,
    User,
    WebSession,
)
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


def list_units(session: Session) -> list[Unit]:
    """Every unit, canton first, then municipalities and organisations, each by code."""
    order = {"canton": 0, "municipality": 1, "organisation": 2}
    found = session.execute(select(Unit)).scalars().all()
    return sorted(found, key=lambda unit: (order.get(unit.kind, 3), unit.code))


def list_users(session: Session, unit_code: str | None = None) -> list[User]:
    """Every user (of one unit if given), by unit and username; 422 for an unknown unit."""
    query = select(User).join(Unit).order_by(Unit.code, User.username)
    if unit_code is not None:
        if session.execute(select(Unit.id).where(Unit.code == unit_code)).first() is None:
            raise Unprocessable(f"There is no unit with the code {unit_code!r}.", field="unit")
        query = query.where(Unit.code == unit_code)
    return list(session.execute(query).scalars().unique())


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
    # Revoking a user's access must not leave a browser session of theirs open.
    end_user_sessions(session, user.id, "tokens_revoked")
    audit.record(session, None, "token.revoke", detail={"username": username, "count": len(tokens)})
    return len(tokens)


def set_active(session: Session, username: str, active: bool) -> bool:
    """Enable or disable a user (audited); disabling ends their sessions. True if it changed."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise Unprocessable(f"There is no user {username!r}.", field="username")
    changed = user.active != active
    user.active = active
    if not active:
        end_user_sessions(session, user.id, "user_disabled")
    audit.record(
        session,
        None,
        "user.enable" if active else "user.disable",
        detail={"username": username, "changed": changed},
    )
    return changed


@dataclass(frozen=True)
class Refusal:
    """What the audit log records about a refused login or token (outcome denied)."""

    action: str
    username: str | None = None
    detail: dict[str, Any] | None = None


def _refused(message: str, code: str, refusal: Refusal, **details: Any) -> Unauthenticated:
    """The error of a refused authentication, carrying what ``record_refusal`` logs."""
    return Unauthenticated(message, code=code, refusal=refusal, **details)


def record_refusal(session: Session, exc: Unauthenticated, ip: str | None) -> None:
    """Audit a refused authentication.

    Called with a transaction of its own: the refused request's transaction rolls back, and
    the failed logins counted by the throttle must be stored all the same.
    """
    refusal: Refusal = exc.details["refusal"]
    # Counted per address and minute; only the first few get an entry of their own, the
    # rest go into one auth.failed_summary (auth_housekeeping), so a flood stays small.
    limit = LOGIN_ENTRIES_PER_MINUTE if refusal.username is not None else 1
    # The username lock counts auth.failed entries: a failure at an existing account that
    # may still bring its lock is always written, or ten sprayed unknown names a minute
    # would let guesses at a real one go unlogged and unlocked. At most THROTTLE_FAILURES
    # per account and address, so a flood stays bounded.
    needed_for_lock = (
        refusal.action == "auth.failed"
        and refusal.username is not None
        and (refusal.detail or {}).get("reason") != "unknown_user"
        and _recent_failures(session, refusal.username, ip) < THROTTLE_FAILURES
    )
    if not _count_failure(session, ip, limit, always=needed_for_lock):
        return
    audit.record(
        session,
        Anonymous(ip=ip, username=refusal.username),
        refusal.action,
        outcome="denied",
        detail=refusal.detail,
    )


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
    """Resolve a bearer token to an Identity; refuse anything else (see ``record_refusal``)."""
    if not token:
        # A request without credentials is a failed authentication too: log it like one.
        raise _refused(
            "Send 'Authorization: Bearer <token>'.",
            "missing_token",
            Refusal("auth.failed", detail={"reason": "missing_token"}),
        )
    row = None
    if token.startswith(TOKEN_PREFIX) and len(token) < 200:
        row = session.execute(
            select(ApiToken).where(ApiToken.token_hash == hash_token(token))
        ).scalar_one_or_none()
    if row is None or row.revoked_at is not None or not row.user.active:
        raise _refused(
            "The token is unknown, revoked or its user is disabled.",
            "invalid_token",
            Refusal(
                "auth.failed", detail={"reason": "revoked" if row is not None else "unknown_token"}
            ),
        )
    return identity_for_user(row.user, ip)


# --- passwords and web login -------------------------------------------------------------

#: Failed logins per username and address within THROTTLE_WINDOW that lock further tries.
THROTTLE_FAILURES = 5
THROTTLE_WINDOW = dt.timedelta(minutes=15)
#: How long logins stay refused after the limit was reached.
THROTTLE_LOCK = dt.timedelta(minutes=15)
MIN_PASSWORD_LENGTH = 10
MAX_PASSWORD_LENGTH = 1024

_hasher = PasswordHasher()
# Verified against when the username is unknown, so the answer takes as long either way.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))


def set_password(session: Session, username: str, password: str) -> None:
    """Store an Argon2id hash of a new password for the user (audited, never logged)."""
    user = session.execute(select(User).where(User.username == username)).scalar_one_or_none()
    if user is None:
        raise Unprocessable(f"There is no user {username!r}.", field="username")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise Unprocessable(
            f"A password has at least {MIN_PASSWORD_LENGTH} characters.", field="password"
        )
    if len(password) > MAX_PASSWORD_LENGTH or any(ord(c) < 32 for c in password):
        raise Unprocessable(
            "A password has no control characters and at most 1024 characters.",
            field="password",
        )
    user.password_hash = _hasher.hash(password)
    # Passwords are set by an administrator (no web form): whoever knew the old one, or
    # holds a session opened with it, is out.
    end_user_sessions(session, user.id, "password_changed")
    audit.record(session, None, "user.password_set", detail={"username": username})


def _login_name(raw: str) -> str:
    """The username as typed, made safe for the audit log (bounded, printable, lowercase)."""
    return "".join(c for c in raw.strip().lower() if c.isprintable())[:64]


def _failures_since_login(
    session: Session, username: str, ip: str | None, since: dt.datetime
) -> list[dt.datetime]:
    """Times of this username's failed logins from this address since ``since``.

    Only those after its last successful login from there: a login forgives what came before.
    """
    rows = session.execute(
        select(AuditEntry.at, AuditEntry.action)
        .where(
            AuditEntry.actor == username,
            AuditEntry.ip == ip if ip is not None else AuditEntry.ip.is_(None),
            AuditEntry.action.in_(("auth.failed", "auth.login")),
            AuditEntry.at >= since,
        )
        .order_by(AuditEntry.id)
    ).all()
    failures: list[dt.datetime] = []
    for at, action in rows:
        if action == "auth.login":
            failures.clear()
        else:
            failures.append(at)
    return failures


def _throttled_until(session: Session, username: str, ip: str | None) -> dt.datetime | None:
    """When the lock on (username, ip) ends, or None if logins are allowed now.

    Computed from the audit log (no extra table): failures since the last successful login
    of this username from this address; any THROTTLE_FAILURES of them within
    THROTTLE_WINDOW lock the pair for THROTTLE_LOCK after the last of them.
    """
    now = utcnow()
    failures = _failures_since_login(session, username, ip, now - THROTTLE_WINDOW - THROTTLE_LOCK)
    until: dt.datetime | None = None
    for i in range(THROTTLE_FAILURES - 1, len(failures)):
        if failures[i] - failures[i - THROTTLE_FAILURES + 1] <= THROTTLE_WINDOW:
            until = failures[i] + THROTTLE_LOCK
    return until if until is not None and until > now else None


def login_with_password(session: Session, username: str, password: str, ip: str | None) -> Identity:
    """Check a username and password; audit auth.login, auth.failed or auth.throttled.

    Raises Unauthenticated with code ``invalid_credentials`` (the same answer for an
    unknown user, a wrong password and a disabled user, so nothing is learned about
    accounts) or ``login_throttled`` with ``retry_after`` seconds in its details; the
    caller stores the refusal with ``record_refusal`` in a transaction of its own.
    """
    name = _login_name(username)
    retry_after = address_retry_after(session, ip)
    if retry_after is not None:
        # The address failed too often (any usernames, tokens): no password check at all.
        raise _refused(
            "Too many failed authentications from this address; try again later.",
            "login_throttled",
            Refusal("auth.throttled", username=name, detail={"reason": "address"}),
            retry_after=retry_after,
        )
    until = _throttled_until(session, name, ip)
    if until is not None:
        retry = max(1, int((until - utcnow()).total_seconds()))
        raise _refused(
            "Too many failed logins; try again later.",
            "login_throttled",
            Refusal("auth.throttled", username=name),
            retry_after=retry,
        )
    user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
    stored = user.password_hash if user is not None and user.active else None
    ok = False
    try:
        ok = _hasher.verify(stored or _DUMMY_HASH, password[:MAX_PASSWORD_LENGTH])
    except (VerificationError, InvalidHashError):
        ok = False
    if not ok or user is None or stored is None:
        reason = "unknown_user" if user is None else ("disabled" if not user.active else "password")
        if user is not None and user.active and stored is None:
            reason = "no_password"
        raise _refused(
            "Username or password is wrong.",
            "invalid_credentials",
            Refusal("auth.failed", username=name, detail={"method": "password", "reason": reason}),
        )
    if _hasher.check_needs_rehash(stored):
        user.password_hash = _hasher.hash(password)
    identity = identity_for_user(user, ip)
    audit.record(session, identity, "auth.login", detail={"method": "password"})
    return identity


def login_with_oidc(session: Session, username: str | None, ip: str | None) -> Identity:
    """Map the identity provider's verified username to an active user; audit the login.

    Users are not created from the provider's claims: the role and unit that decide access
    are assigned here, by an administrator, never by a claim.
    """
    name = _login_name(username or "")
    user = session.execute(select(User).where(User.username == name)).scalar_one_or_none()
    if user is None or not user.active:
        reason = "unknown_user" if user is None else "disabled"
        raise _refused(
            "No active user matches this login.",
            "oidc_unknown_user",
            Refusal(
                "auth.failed", username=name or None, detail={"method": "oidc", "reason": reason}
            ),
        )
    identity = identity_for_user(user, ip)
    audit.record(session, identity, "auth.login", detail={"method": "oidc"})
    return identity


# --- server-side web sessions ------------------------------------------------------------

#: A web session ends this long after login, however active it is.
MAX_SESSION = dt.timedelta(hours=12)
#: last_seen_at is written at most this often (not on every request of a busy page).
SEEN_RESOLUTION = dt.timedelta(seconds=10)
#: Ended and expired sessions are deleted by auth_housekeeping after this long.
KEEP_ENDED_SESSIONS = dt.timedelta(days=7)


def start_web_session(session: Session, who: Identity) -> str:
    """Open a server-side session for a logged-in user; return the id for the cookie."""
    sid = secrets.token_urlsafe(32)
    now = utcnow()
    session.add(
        WebSession(
            id=hash_token(sid),
            user_id=who.user_id,
            ip=who.ip,
            created_at=now,
            last_seen_at=now,
            expires_at=now + MAX_SESSION,
        )
    )
    session.flush()
    return sid


def _end(row: WebSession, reason: str) -> None:
    row.ended_at = utcnow()
    row.end_reason = reason


def resume_web_session(
    session: Session, sid: str, ip: str | None, idle: dt.timedelta, *, activity: bool
) -> Identity | str:
    """The Identity of an open session, or why it is not open.

    The reason is ``unknown``, ``ended``, ``idle``, ``expired`` or ``inactive``; idle and
    expired sessions and those of disabled users are ended here. ``activity`` False (a
    page's background polling) does not move the idle timeout.
    """
    row = session.get(WebSession, hash_token(sid))
    if row is None:
        return "unknown"
    if row.ended_at is not None:
        return "ended"
    now = utcnow()
    if now - row.last_seen_at > idle:
        _end(row, "idle")
        return "idle"
    if now >= row.expires_at:
        _end(row, "expired")
        return "expired"
    user = session.get(User, row.user_id)
    if user is None or not user.active:
        _end(row, "user_disabled")
        return "inactive"
    if activity and now - row.last_seen_at > SEEN_RESOLUTION:
        row.last_seen_at = now
    return identity_for_user(user, ip)


def end_web_session(session: Session, sid: str, reason: str) -> None:
    """End one session (logout); nothing happens if it is unknown or ended already."""
    row = session.get(WebSession, hash_token(sid))
    if row is not None and row.ended_at is None:
        _end(row, reason)


def end_user_sessions(session: Session, user_id: int, reason: str) -> int:
    """End every open session of a user at once; return how many were open."""
    result = session.execute(
        update(WebSession)
        .where(WebSession.user_id == user_id, WebSession.ended_at.is_(None))
        .values(ended_at=utcnow(), end_reason=reason)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- failed authentications per client address --------------------------------------------

#: Failed authentications of one address within ADDRESS_WINDOW that bring 429 responses.
ADDRESS_FAILURES = 100
ADDRESS_WINDOW = dt.timedelta(minutes=15)
#: Failed logins (with a username) per address and minute that get an entry of their own:
#: the per-username login throttle counts them in the audit log (5 failures, then a lock).
LOGIN_ENTRIES_PER_MINUTE = 10
#: Counters are summarised once their minute lies this far back (a late writer may still
#: add to the minute that just ended).
SUMMARY_DELAY = dt.timedelta(minutes=1)


def _minute(moment: dt.datetime) -> dt.datetime:
    return moment.replace(second=0, microsecond=0)


def _recent_failures(session: Session, username: str, ip: str | None) -> int:
    """Failed logins of this username from this address that may still bring its lock."""
    return len(_failures_since_login(session, username, ip, utcnow() - THROTTLE_WINDOW))


def _count_failure(
    session: Session, ip: str | None, entries_per_minute: int, *, always: bool = False
) -> bool:
    """Count one failed authentication of the address; True if it gets its own audit entry.

    ``always`` writes the entry past the per-minute bound (counted as written, so the
    minute's summary does not count it twice).
    """
    now = utcnow()
    table = AuthFailureWindow
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(table)
        .values(
            ip=ip or "",
            window_start=_minute(now),
            count=1,
            written=0,
            first_at=now,
            last_at=now,
            summarized=False,
        )
        .on_conflict_do_update(
            index_elements=["ip", "window_start"],
            set_={"count": table.count + 1, "last_at": now},
        )
        .returning(table.id, table.written)
    )
    # The upsert locks the row until commit, so concurrent failures count one by one.
    row_id, written = session.execute(statement).one()
    if written >= entries_per_minute and not always:
        return False
    session.execute(update(table).where(table.id == row_id).values(written=written + 1))
    return True


def address_retry_after(session: Session, ip: str | None) -> int | None:
    """Seconds until the address may authenticate again, or None if it is not throttled.

    Throttled while its failures within the last ADDRESS_WINDOW reach ADDRESS_FAILURES;
    the throttle lifts once enough old minutes have left the window.
    """
    now = utcnow()
    rows = session.execute(
        select(AuthFailureWindow.window_start, AuthFailureWindow.count)
        .where(
            AuthFailureWindow.ip == (ip or ""),
            AuthFailureWindow.window_start > now - ADDRESS_WINDOW,
        )
        .order_by(AuthFailureWindow.window_start)
    ).all()
    remaining = sum(count for _, count in rows)
    if remaining < ADDRESS_FAILURES:
        return None
    for start, count in rows:
        remaining -= count
        if remaining < ADDRESS_FAILURES:
            return max(1, int((start + ADDRESS_WINDOW - now).total_seconds()) + 1)
    return int(ADDRESS_WINDOW.total_seconds())  # pragma: no cover (the loop always returns)


def auth_housekeeping(session: Session) -> dict[str, int]:
    """Summarise failed authentications per address and minute; drop old counters, sessions.

    Run every minute (beat task ``dossier.auth_housekeeping``). Each minute with more
    failures than got an entry of their own yields one ``auth.failed_summary`` entry.
    """
    now = utcnow()
    windows = (
        session.execute(
            select(AuthFailureWindow)
            .where(
                AuthFailureWindow.summarized.is_(False),
                AuthFailureWindow.window_start < _minute(now) - SUMMARY_DELAY,
            )
            .order_by(AuthFailureWindow.window_start, AuthFailureWindow.id)
        )
        .scalars()
        .all()
    )
    summaries = 0
    for window in windows:
        window.summarized = True
        if window.count <= window.written:
            continue
        audit.record(
            session,
            Anonymous(ip=window.ip or None),
            "auth.failed_summary",
            outcome="denied",
            detail={
                "minute": window.window_start.isoformat(),
                "count": window.count,
                "not_logged_singly": window.count - window.written,
                "first_at": window.first_at.isoformat(),
                "last_at": window.last_at.isoformat(),
            },
        )
        summaries += 1
    old = now - ADDRESS_WINDOW - SUMMARY_DELAY * 2
    counters = session.execute(
        delete(AuthFailureWindow).where(
            AuthFailureWindow.window_start < old, AuthFailureWindow.summarized.is_(True)
        )
    )
    gone = now - KEEP_ENDED_SESSIONS
    sessions = session.execute(
        delete(WebSession).where(
            or_(WebSession.ended_at < gone, WebSession.expires_at < gone),
        )
    )
    return {
        "summaries": summaries,
        "counters_deleted": int(getattr(counters, "rowcount", 0) or 0),
        "sessions_deleted": int(getattr(sessions, "rowcount", 0) or 0),
    }
