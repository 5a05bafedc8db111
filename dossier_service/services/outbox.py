"""Transactional outbox: record tasks with the change, send them after commit.

A task row is written in the same transaction as the change that causes it, so a
rollback never invents work. After commit the rows are sent to the broker; if the broker
is down they stay unsent and the relay (a periodic task and ``dossier outbox relay``)
sends them later, so an outage never loses work. Sending twice is harmless because every
task is idempotent.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.db import Database
from dossier_service.models import OutboxMessage

log = logging.getLogger(__name__)

_PENDING_KEY = "dossier_outbox_ids"


def enqueue(session: Session, task: str, **payload: Any) -> OutboxMessage:
    """Record a task to run once the current transaction commits."""
    message = OutboxMessage(task=task, payload=payload, created_at=utcnow())
    session.add(message)
    session.flush()
    session.info.setdefault(_PENDING_KEY, []).append(message.id)
    return message


def take_pending(session: Session) -> list[int]:
    """Ids enqueued in this session since the last call (call after commit)."""
    return list(session.info.pop(_PENDING_KEY, []))


def send(db: Database, sender: Any, ids: list[int]) -> int:
    """Send the given unsent messages; return how many went out. Never raises."""
    if not ids:
        return 0
    sent = 0
    with db.transaction() as session:
        messages = (
            session.execute(
                select(OutboxMessage).where(
                    OutboxMessage.id.in_(ids), OutboxMessage.sent_at.is_(None)
                )
            )
            .scalars()
            .all()
        )
        pending = [(m.id, m.task, dict(m.payload)) for m in messages]
    for message_id, task, payload in pending:
        try:
            sender(task, payload)
        except Exception as exc:  # the broker is down: leave it for the relay
            log.warning("outbox message %s (%s) not sent: %s", message_id, task, exc)
            with db.transaction() as session:
                session.execute(
                    update(OutboxMessage)
                    .where(OutboxMessage.id == message_id)
                    .values(attempts=OutboxMessage.attempts + 1, last_error=str(exc)[:500])
                )
            continue
        with db.transaction() as session:
            session.execute(
                update(OutboxMessage)
                .where(OutboxMessage.id == message_id)
                .values(sent_at=utcnow(), attempts=OutboxMessage.attempts + 1, last_error=None)
            )
        sent += 1
    return sent


def relay(db: Database, sender: Any, *, older_than_s: float = 10.0, limit: int = 500) -> int:
    """Send messages that were not sent right after their commit (the broker was down)."""
    cutoff = utcnow() - dt.timedelta(seconds=older_than_s)
    with db.transaction() as session:
        ids = list(
            session.execute(
                select(OutboxMessage.id)
                .where(OutboxMessage.sent_at.is_(None), OutboxMessage.created_at <= cutoff)
                .order_by(OutboxMessage.id)
                .limit(limit)
            ).scalars()
        )
    return send(db, sender, ids)


def unsent_count(db: Database) -> int:
    """How many messages wait for the broker."""
    from sqlalchemy import func

    with db.transaction() as session:
        return int(
            session.execute(
                select(func.count()).where(OutboxMessage.sent_at.is_(None))
            ).scalar_one()
        )
