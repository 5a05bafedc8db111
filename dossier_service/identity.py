"""The authenticated caller as the services see it (no Flask, no ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Identity:
    """Who is acting: user, role and the unit the role is bound to."""

    user_id: int
    username: str
    role: str
    unit_id: int
    unit_code: str
    unit_kind: str
    ip: str | None = None


@dataclass(frozen=True)
class Anonymous:
    """A caller without valid credentials (used only for audit entries)."""

    ip: str | None = None
    username: str | None = None
