"""Server-side web sessions and the per-address counters of failed authentications."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from dossier_service.dates import utcnow
from dossier_service.db import Base, BigId, UTCDateTime


class WebSession(Base):
    """One login of the web interface; the signed cookie only names it.

    ``id`` is the SHA-256 of the random session id in the cookie, so a copy of the table
    opens no session. A session counts while ``ended_at`` is empty, ``expires_at`` lies
    ahead and its user is active; logout, a new password, disabling the user and revoking
    the user's tokens set ``ended_at`` and ``end_reason``.
    """

    __tablename__ = "web_sessions"
    __table_args__ = (Index("ix_web_sessions_user_open", "user_id", "ended_at"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"))
    ip: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_seen_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    ended_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime())
    end_reason: Mapped[str | None] = mapped_column(String(32))


class AuthFailureWindow(Base):
    """Failed authentications of one client address within one minute.

    The first failures of a minute get audit entries of their own (``written``); the
    housekeeping task writes one ``auth.failed_summary`` for the rest once the minute is
    over (``summarized``). The rows of the last minutes also drive the per-address
    throttle (429).
    """

    __tablename__ = "auth_failures"
    __table_args__ = (UniqueConstraint("ip", "window_start", name="uq_auth_failures_ip_window"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    #: The client address ('' when unknown, so the unique constraint also holds then).
    ip: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[dt.datetime] = mapped_column(UTCDateTime(), index=True)
    count: Mapped[int] = mapped_column(Integer, default=0)
    written: Mapped[int] = mapped_column(Integer, default=0)
    first_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    last_at: Mapped[dt.datetime] = mapped_column(UTCDateTime(), default=utcnow)
    summarized: Mapped[bool] = mapped_column(Boolean, default=False)
