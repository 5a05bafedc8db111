"""Notifications (Meldungen) to units: created once per occurrence, listed, read, e-mailed.

A notification says only what happened (its kind), to which case (its id and reference;
for a change of responsibility also the two units) and where to look (a link). It never
carries a name, AHV or ZEMIS number or document content: the
reader follows the link and the access policy decides what they see there, so a
notification sent before a transfer cannot leak what the unit may no longer read.

Once per occurrence: every notification has a key naming its occurrence (e.g. the stall
that began with the last activity at 2026-03-01T10:00), and (unit, key) is unique in the
database. Rows are inserted with ON CONFLICT DO NOTHING, so running monitoring twice, or
on two workers at once, adds nothing.

E-mail copies (optional): only for units with a registered mailbox and only when SMTP is
configured. The send task is recorded in the outbox in the same transaction as the
notification and handed to the broker after commit, so a rollback sends nothing and a
broker outage delays, not loses, the mail. The mail holds the kind and the link only.
"""

from __future__ import annotations

import logging
import smtplib
from collections.abc import Iterable
from dataclasses import dataclass
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, exists, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from dossier_service.config import Settings, is_email_address
from dossier_service.dates import utcnow
from dossier_service.errors import NotFound, Unprocessable
from dossier_service.identity import Identity
from dossier_service.models import Case, Notification, Responsibility, Unit, UnitMailbox
from dossier_service.policy import Action, readable_cases, require
from dossier_service.services import audit, outbox

if TYPE_CHECKING:
    from dossier_service.container import Container

log = logging.getLogger(__name__)

EMAIL_TASK = "dossier.send_notification_email"
#: Ids are 64-bit; a larger number in the address cannot name one (and would overflow SQL).
MAX_ID = 2**63 - 1

#: The canton's notice of any change of responsibility (transfer to it, from it, or a move).
RESPONSIBILITY_CHANGED = "case.responsibility_changed"

#: A case of the unit (or one it was responsible for) was merged into another case.
CASE_MERGED = "case.merged"

#: Kinds whose occurrence is a responsibility period: they name the units on both sides.
_CHANGES_OF_RESPONSIBILITY = frozenset({"case.transferred_to_you", RESPONSIBILITY_CHANGED})

#: Every kind of notification, with the German wording the reader sees.
KINDS: dict[str, str] = {
    "case.transferred_to_you": "Ein Fall wurde Ihrer Stelle übergeben",
    RESPONSIBILITY_CHANGED: "Die Zuständigkeit für einen Fall hat gewechselt",
    "cost_approval.requested": "Neues Gesuch um Kostengutsprache",
    "cost_approval.decided": "Über ein Gesuch um Kostengutsprache wurde entschieden",
    "measure.interrupted": "Eine Massnahme wurde unterbrochen",
    "measure.aborted": "Eine Massnahme wurde abgebrochen",
    "measure.follow_up_missing": "Unterbrochene Massnahme ohne Anschlusslösung",
    "case.stalled": "Fall ohne Aktivität",
    "case.horizon_approaching": "Der 7-Jahres-Horizont des Falls naht",
    CASE_MERGED: "Zwei Fälle einer Person wurden zusammengeführt",
}


class MailUnavailable(Exception):
    """The SMTP server could not be reached or refused the mail (the task retries)."""


def case_link(case_id: str) -> str:
    """The web interface's path of a case: the only pointer a notification carries."""
    return f"/cases/{case_id}"


def responsible_unit_id(session: Session, case_id: str) -> int:
    """The unit responsible for the case now."""
    return session.execute(
        select(Responsibility.unit_id).where(
            Responsibility.case_id == case_id, Responsibility.ended_at.is_(None)
        )
    ).scalar_one()


def canton_unit_id(session: Session, case_id: str) -> int | None:
    """The canton unit of a case: the canton unit most recently responsible for it.

    Every case is registered by a canton unit, so there is one; with several canton units
    (e.g. one per canton) the notification goes to the one that knows the case.
    """
    return session.execute(
        select(Responsibility.unit_id)
        .join(Unit, Unit.id == Responsibility.unit_id)
        .where(Responsibility.case_id == case_id, Unit.kind == "canton")
        .order_by(Responsibility.started_at.desc(), Responsibility.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def case_parties(session: Session, case_id: str) -> list[int]:
    """The responsible unit and the canton (one unit if the canton is responsible)."""
    units = [responsible_unit_id(session, case_id), canton_unit_id(session, case_id)]
    return [u for u in dict.fromkeys(units) if u is not None]


def _insert_once(session: Session, values: dict[str, Any]) -> int | None:
    """Insert unless (unit, key) exists; return the new id or None (both dialects)."""
    dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
    statement = (
        dialect.insert(Notification)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["unit_id", "dedupe_key"])
        .returning(Notification.id)
    )
    return session.execute(statement).scalar_one_or_none()


def notify(
    session: Session, unit_ids: Iterable[int], kind: str, case_id: str, occurrence: str
) -> list[int]:
    """Notify each unit once per (kind, case, occurrence); return the ids of new rows."""
    if kind not in KINDS:
        raise ValueError(f"unknown notification kind {kind!r}")
    key = f"{kind}:{case_id}:{occurrence}"
    if len(key) > 200:
        raise ValueError("notification occurrence key too long")
    created: list[int] = []
    now = utcnow()
    for unit_id in dict.fromkeys(unit_ids):
        new_id = _insert_once(
            session,
            {
                "unit_id": unit_id,
                "kind": kind,
                "case_id": case_id,
                "dedupe_key": key,
                "created_at": now,
            },
        )
        if new_id is None:
            continue
        created.append(new_id)
        if session.get(UnitMailbox, unit_id) is not None:
            outbox.enqueue(session, EMAIL_TASK, notification_id=new_id)
    return created


@dataclass(frozen=True)
class Subject:
    """What a notification names besides its kind: the case reference and, for a change of
    responsibility (a hand-over), the unit that handed the case over and the unit that took it."""

    case_reference: str
    from_unit: Unit | None = None
    to_unit: Unit | None = None
    #: The person's name: shown to the unit, which reads the case (never in e-mails).
    family_name: str = ""
    given_names: str = ""


def _period_id(notification: Notification) -> int | None:
    """The responsibility period a change of responsibility names (its occurrence key)."""
    occurrence = notification.dedupe_key.rsplit(":", 1)[-1]
    return int(occurrence) if occurrence.isdigit() else None


def subjects(session: Session, items: Iterable[Notification]) -> dict[int, Subject]:
    """The subject of each notification by id, in three queries for a whole page."""
    items = list(items)
    cases = {
        row.id: row
        for row in session.execute(
            select(Case.id, Case.reference, Case.family_name, Case.given_names).where(
                Case.id.in_({n.case_id for n in items})
            )
        )
    }
    periods: dict[int, Responsibility] = {}
    wanted = {
        pid
        for n in items
        if n.kind in _CHANGES_OF_RESPONSIBILITY and (pid := _period_id(n)) is not None
    }
    if wanted:
        periods = {
            p.id: p
            for p in session.execute(
                select(Responsibility).where(Responsibility.id.in_(wanted))
            ).scalars()
        }
    result: dict[int, Subject] = {}
    for n in items:
        period = periods.get(_period_id(n) or 0) if n.kind in _CHANGES_OF_RESPONSIBILITY else None
        before = None
        if period is not None:
            # The period the change ended: the case's latest one that began before it.
            before = session.execute(
                select(Responsibility)
                .where(
                    Responsibility.case_id == period.case_id,
                    Responsibility.started_at <= period.started_at,
                    Responsibility.id != period.id,
                )
                .order_by(Responsibility.started_at.desc(), Responsibility.id.desc())
                .limit(1)
            ).scalar_one_or_none()
        case = cases.get(n.case_id)
        result[n.id] = Subject(
            case_reference=case.reference if case is not None else "",
            from_unit=before.unit if before is not None else None,
            to_unit=period.unit if period is not None else None,
            family_name=case.family_name if case is not None else "",
            given_names=case.given_names if case is not None else "",
        )
    return result


def _unit_ref(unit: Unit | None) -> dict[str, str] | None:
    return None if unit is None else {"code": unit.code, "name": unit.name, "kind": unit.kind}


def notification_json(notification: Notification, subject: Subject) -> dict[str, Any]:
    """The API shape of a notification: kind, case reference, person and link, and for a
    hand-over the two units (listed only while the unit reads the case: ``visible_to``)."""
    return {
        "id": notification.id,
        "kind": notification.kind,
        "label": KINDS.get(notification.kind, notification.kind),
        "case_id": notification.case_id,
        "case_reference": subject.case_reference,
        "person": {"family_name": subject.family_name, "given_names": subject.given_names},
        "from_unit": _unit_ref(subject.from_unit),
        "to_unit": _unit_ref(subject.to_unit),
        "link": case_link(notification.case_id),
        "created_at": notification.created_at.isoformat(),
        "read": notification.read_at is not None,
        "read_at": notification.read_at.isoformat() if notification.read_at else None,
    }


def visible_to(identity: Identity) -> ColumnElement[bool]:
    """SQL condition on Notification: the caller's unit's, about cases it may read now.

    A notification is addressed to a unit but is about a case; once the case is transferred
    away (or a delegation ends) even its case id, kinds and times must no longer show, so
    the case list's own condition (``policy.readable_cases``) trims them.
    """
    return and_(
        Notification.unit_id == identity.unit_id,
        exists(select(Case.id).where(Case.id == Notification.case_id, readable_cases(identity))),
    )


def list_notifications(
    session: Session,
    identity: Identity,
    *,
    unread_only: bool = False,
    page: int = 1,
    per_page: int = 50,
) -> tuple[list[Notification], int, int]:
    """The caller's unit's notifications on readable cases, newest first; total and unread."""
    require(identity, Action.NOTIFICATION_READ)
    mine = visible_to(identity)
    query = select(Notification).where(mine)
    if unread_only:
        query = query.where(Notification.read_at.is_(None))
    total = session.execute(select(func.count()).select_from(query.subquery())).scalar_one()
    unread = session.execute(
        select(func.count()).where(mine, Notification.read_at.is_(None))
    ).scalar_one()
    items = list(
        session.execute(
            query.order_by(Notification.created_at.desc(), Notification.id.desc())
            .limit(per_page)
            .offset((page - 1) * per_page)
        ).scalars()
    )
    audit.record(
        session,
        identity,
        "notification.list",
        detail={"unread_only": unread_only, "page": page, "returned": len(items)},
    )
    return items, total, unread


def mark_read(session: Session, identity: Identity, notification_id: int) -> Notification:
    """Mark one of the unit's notifications read (idempotent).

    Another unit's notification, or one about a case the unit may no longer read, answers
    404 like one that does not exist, so the answer tells nothing about the case.
    """
    require(identity, Action.NOTIFICATION_READ)
    notification = None
    if 0 < notification_id <= MAX_ID:
        notification = session.execute(
            select(Notification).where(Notification.id == notification_id, visible_to(identity))
        ).scalar_one_or_none()
    if notification is None:
        raise NotFound("No such notification.", code="notification_not_found")
    if notification.read_at is None:
        notification.read_at = utcnow()
        notification.read_by_id = identity.user_id
    audit.record(
        session,
        identity,
        "notification.read",
        case_id=notification.case_id,
        detail={"notification_id": notification.id, "kind": notification.kind},
    )
    return notification


def mark_all_read(session: Session, identity: Identity) -> int:
    """Mark every unread notification the unit sees read; how many were marked."""
    require(identity, Action.NOTIFICATION_READ)
    result = session.execute(
        update(Notification)
        .where(visible_to(identity), Notification.read_at.is_(None))
        .values(read_at=utcnow(), read_by_id=identity.user_id)
        .execution_options(synchronize_session=False)
    )
    marked = int(getattr(result, "rowcount", 0) or 0)
    audit.record(session, identity, "notification.read_all", detail={"marked": marked})
    return marked


def set_mailbox(session: Session, unit_code: str, email: str | None) -> None:
    """Register (or with None remove) the unit's address for notification e-mails."""
    unit = session.execute(select(Unit).where(Unit.code == unit_code)).scalar_one_or_none()
    if unit is None:
        raise Unprocessable(f"There is no unit with the code {unit_code!r}.", field="unit")
    mailbox = session.get(UnitMailbox, unit.id)
    if email is None:
        if mailbox is not None:
            session.delete(mailbox)
    else:
        email = email.strip()
        if len(email) > 254 or not is_email_address(email):
            raise Unprocessable(f"{email!r} is not an e-mail address.", field="email")
        if mailbox is None:
            session.add(UnitMailbox(unit_id=unit.id, email=email, updated_at=utcnow()))
        else:
            mailbox.email = email
            mailbox.updated_at = utcnow()
    session.flush()
    audit.record(
        session, None, "unit.mailbox", detail={"unit": unit_code, "set": email is not None}
    )


def build_email(settings: Settings, notification: Notification, to: str) -> EmailMessage:
    """The e-mail copy: the kind in words and the link, and a note why nothing else."""
    assert settings.public_url and settings.smtp_from
    label = KINDS.get(notification.kind, "Neue Meldung")
    message = EmailMessage()
    message["Subject"] = f"IAS-Dossier: {label}"
    message["From"] = settings.smtp_from
    message["To"] = to
    message["Auto-Submitted"] = "auto-generated"
    message.set_content(
        "Guten Tag\n\n"
        f"Im IAS-Dossier liegt eine neue Meldung für Ihre Stelle vor: {label}.\n\n"
        f"Öffnen Sie den Fall nach der Anmeldung hier:\n"
        f"{settings.public_url}{case_link(notification.case_id)}\n\n"
        "Aus Gründen des Datenschutzes enthält diese E-Mail keine Angaben zur Person.\n"
        "Diese Nachricht wurde automatisch erstellt.\n"
    )
    return message


def deliver_email(container: Container, notification_id: int) -> str:
    """Send the e-mail copy of one notification once; return what happened.

    Idempotent: a notification already e-mailed is not sent again. A crash between the
    SMTP hand-over and the commit of ``emailed_at`` can send one duplicate (at least once).
    """
    settings = container.settings
    if not settings.smtp_enabled:
        return "smtp_disabled"
    with container.db.transaction() as session:
        notification = session.get(Notification, notification_id)
        if notification is None:
            return "gone"
        if notification.emailed_at is not None:
            return "already_sent"
        mailbox = session.get(UnitMailbox, notification.unit_id)
        if mailbox is None:
            return "no_mailbox"
        message = build_email(settings, notification, mailbox.email)
    try:
        with smtplib.SMTP(settings.smtp_host or "", settings.smtp_port, timeout=30) as smtp:
            if settings.smtp_starttls:
                smtp.starttls()
            if settings.smtp_username and settings.smtp_password:
                smtp.login(settings.smtp_username, settings.smtp_password)
            smtp.send_message(message)
    except (smtplib.SMTPException, OSError) as exc:
        log.warning("notification %s: e-mail not sent: %s", notification_id, exc)
        raise MailUnavailable(str(exc)) from exc
    with container.db.transaction() as session:
        row = session.get(Notification, notification_id)
        if row is not None:
            row.emailed_at = utcnow()
    return "sent"
