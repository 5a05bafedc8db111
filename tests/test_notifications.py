"""Notifications: per unit, once per occurrence, nothing personal, and e-mail over SMTP."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from click.testing import CliRunner
from sqlalchemy import func, select

from dossier_service.app import create_app
from dossier_service.cli import main as cli
from dossier_service.config import ConfigError, load_settings
from dossier_service.container import Container
from dossier_service.models import Case, Notification, OutboxMessage, Unit
from dossier_service.services import notifications
from tests.factories import (
    file_handover_note,
    held_by,
    kinds,
    new_case,
    notifications_of,
    request_approval,
)

API = "/api/v1"
NOTIFICATION_KEYS = {
    "id",
    "kind",
    "label",
    "case_id",
    "case_reference",
    "person",
    "from_unit",
    "to_unit",
    "link",
    "created_at",
    "read",
    "read_at",
}
CHANGED = "case.responsibility_changed"


def _of_kind(items: list[dict], kind: str) -> list[dict]:
    return [n for n in items if n["kind"] == kind]


# --- In the API ---------------------------------------------------------------------------


def _units(item: dict) -> tuple[str | None, str | None]:
    return (
        item["from_unit"]["code"] if item["from_unit"] else None,
        item["to_unit"]["code"] if item["to_unit"] else None,
    )


def test_transfer_notifies_the_new_unit_and_the_canton_of_every_change(client, world):
    """The unit taking the case is told; the canton hears of every change of responsibility,
    moves between municipalities included, with the case reference and both units."""
    cid = held_by(client, world)
    reference = client.get(f"{API}/cases/{cid}", headers=world.auth("canton")).get_json()[
        "reference"
    ]
    assert kinds(notifications_of(client, world, "aarau"), cid) == ["case.transferred_to_you"]
    assert kinds(notifications_of(client, world, "canton"), cid) == [CHANGED]
    file_handover_note(client, world, "aarau", cid)
    moved = client.post(
        f"{API}/cases/{cid}/transfers",
        json={"to_unit": "baden", "reason": "Umzug"},
        headers=world.auth("aarau"),
    )
    assert moved.status_code == 201
    assert kinds(notifications_of(client, world, "baden"), cid) == ["case.transferred_to_you"]
    # Aarau may no longer read the case, so its notification about it is gone too.
    assert kinds(notifications_of(client, world, "aarau"), cid) == []
    assert (
        client.post(
            f"{API}/cases/{cid}/transfers",
            json={"to_unit": "ag", "reason": "Rückkehr in kantonale Unterkunft"},
            headers=world.auth("baden"),
        ).status_code
        == 201
    )
    changes = notifications_of(client, world, "canton")
    # Newest first: Baden → canton (the canton is told once, as the unit taking the case),
    # Aarau → Baden, canton → Aarau.
    assert [n["kind"] for n in changes] == ["case.transferred_to_you", CHANGED, CHANGED]
    assert [_units(n) for n in changes] == [("baden", "ag"), ("aarau", "baden"), ("ag", "aarau")]
    assert {n["case_reference"] for n in changes} == {reference}
    assert changes[1]["from_unit"]["name"] == "Gemeinde Aarau"
    assert changes[1]["to_unit"] == {"code": "baden", "name": "Stadt Baden", "kind": "municipality"}
    # Other kinds name the case only.
    assert request_approval(client, world, cid, user="canton").status_code == 201
    [requested] = _of_kind(notifications_of(client, world, "canton"), "cost_approval.requested")
    assert _units(requested) == (None, None) and requested["case_reference"] == reference


def test_notifications_end_with_access_to_the_case(client, world):
    """After a transfer the former unit neither lists, counts nor marks the case's notices."""
    cid = held_by(client, world)
    kept = held_by(client, world, family_name="Bleibt")
    old = {n["case_id"]: n for n in notifications_of(client, world, "aarau")}
    assert set(old) == {cid, kept}
    file_handover_note(client, world, "aarau", cid)
    moved = client.post(
        f"{API}/cases/{cid}/transfers",
        json={"to_unit": "baden", "reason": "Umzug"},
        headers=world.auth("aarau"),
    )
    assert moved.status_code == 201
    listed = client.get(f"{API}/notifications", headers=world.auth("aarau")).get_json()
    assert [n["case_id"] for n in listed["items"]] == [kept]
    assert (listed["total"], listed["unread"]) == (1, 1)
    unread = client.get(f"{API}/notifications?unread=true", headers=world.auth("aarau"))
    assert [n["case_id"] for n in unread.get_json()["items"]] == [kept]
    # Marking the old notice read answers exactly like a notification that does not exist.
    gone = client.post(f"{API}/notifications/{old[cid]['id']}/read", headers=world.auth("aarau"))
    missing = client.post(f"{API}/notifications/999999/read", headers=world.auth("aarau"))
    assert gone.status_code == missing.status_code == 404
    assert gone.get_json() == missing.get_json()
    # The new unit sees the case's notice and may mark it read.
    [new] = [n for n in notifications_of(client, world, "baden") if n["case_id"] == cid]
    assert new["kind"] == "case.transferred_to_you"
    read = client.post(f"{API}/notifications/{new['id']}/read", headers=world.auth("baden"))
    assert read.status_code == 200 and read.get_json()["read"] is True
    # Aarau's notice about the case it still holds is untouched by all this.
    still = client.post(f"{API}/notifications/{old[kept]['id']}/read", headers=world.auth("aarau"))
    assert still.status_code == 200


def test_listing_is_per_unit_paginated_and_names_case_and_person(client, world):
    cids = [held_by(client, world, family_name=f"Person{i}") for i in range(3)]
    page = client.get(f"{API}/notifications?per_page=2", headers=world.auth("aarau"))
    assert page.status_code == 200
    body = page.get_json()
    assert (body["total"], body["unread"], body["page"], body["per_page"]) == (3, 3, 1, 2)
    assert len(body["items"]) == 2
    second = client.get(f"{API}/notifications?per_page=2&page=2", headers=world.auth("aarau"))
    listed = [n["case_id"] for n in body["items"] + second.get_json()["items"]]
    assert sorted(listed) == sorted(cids)
    for item in body["items"]:
        assert set(item) == NOTIFICATION_KEYS
        assert item["link"] == f"/cases/{item['case_id']}"
    # The unit reads these cases, so a notification names the person (issue 12: fifteen
    # "Fall ohne Aktivität" without a name help nobody); identifiers stay out.
    names = {
        (n["person"]["family_name"], n["person"]["given_names"])
        for n in body["items"] + second.get_json()["items"]
    }
    assert names == {(f"Person{i}", "Semhar") for i in range(3)}
    text = page.get_data(as_text=True)
    for identifier in ("756", "12345678"):
        assert identifier not in text
    # Other units see none of them.
    assert client.get(f"{API}/notifications", headers=world.auth("baden")).get_json()["total"] == 0


def test_mark_read_and_unread_filter(client, world):
    cid = held_by(client, world)
    [item] = notifications_of(client, world, "aarau")
    # Another unit's notification is not found, whoever asks.
    for user in ("baden", "canton", "caritas"):
        response = client.post(f"{API}/notifications/{item['id']}/read", headers=world.auth(user))
        assert (response.status_code, response.get_json()["error"]["code"]) == (
            404,
            "notification_not_found",
        ), user
    assert (
        client.post(f"{API}/notifications/999999/read", headers=world.auth("aarau")).status_code
        == 404
    )
    # Beyond 64 bits nothing can match (and the database must not be asked).
    huge = client.post(f"{API}/notifications/{10**30}/read", headers=world.auth("aarau"))
    assert huge.status_code == 404
    read = client.post(f"{API}/notifications/{item['id']}/read", headers=world.auth("aarau"))
    assert read.status_code == 200
    assert read.get_json()["read"] is True and read.get_json()["read_at"]
    again = client.post(f"{API}/notifications/{item['id']}/read", headers=world.auth("aarau"))
    assert again.get_json()["read_at"] == read.get_json()["read_at"]
    assert notifications_of(client, world, "aarau", unread="true") == []
    assert len(notifications_of(client, world, "aarau", unread="false")) == 1
    assert (
        client.get(f"{API}/notifications?unread=maybe", headers=world.auth("aarau")).status_code
        == 400
    )
    log = client.get(f"{API}/audit?case_id={cid}", headers=world.auth("auditor")).get_json()
    assert ("aarau", "notification.read", "ok") in {
        (e["actor"], e["action"], e["outcome"]) for e in log["items"]
    }


def test_mark_all_read_marks_only_what_the_unit_sees(client, world, container):
    first = held_by(client, world)
    held_by(client, world)
    gone = held_by(client, world)
    assert (
        client.post(
            f"{API}/cases/{gone}/transfers",
            json={"to_unit": "ag", "reason": "Rückgabe"},
            headers=world.auth("aarau"),
        ).status_code
        == 201
    )
    marked = client.post(f"{API}/notifications/read-all", headers=world.auth("aarau"))
    assert marked.status_code == 200
    assert marked.get_json() == {"marked": 2, "unread": 0}
    assert notifications_of(client, world, "aarau", unread="true") == []
    # The notification about the case Aarau handed back stays as it was (not shown, not
    # touched), and the canton's own notifications are the canton's to mark.
    with container.db.transaction() as session:
        aarau = session.execute(select(Unit.id).where(Unit.code == "aarau")).scalar_one()
        canton = session.execute(select(Unit.id).where(Unit.code == "ag")).scalar_one()
        unread = session.execute(
            select(Notification.unit_id, Notification.case_id).where(Notification.read_at.is_(None))
        ).all()
    assert {c for u, c in unread if u == aarau} == {gone}
    assert {first, gone} <= {c for u, c in unread if u == canton}
    assert client.post(f"{API}/notifications/read-all", headers=world.auth("aarau")).get_json() == {
        "marked": 0,
        "unread": 0,
    }
    log = client.get(f"{API}/audit?actor=aarau", headers=world.auth("auditor")).get_json()
    assert [
        e["detail"]["marked"] for e in log["items"] if e["action"] == "notification.read_all"
    ] == [0, 2]
    assert (
        client.post(f"{API}/notifications/read-all", headers=world.auth("auditor")).status_code
        == 403
    )


@pytest.mark.parametrize("user", ["auditor", "archivist", "admin"])
def test_only_caseworkers_have_notifications(client, world, user):
    assert client.get(f"{API}/notifications", headers=world.auth(user)).status_code == 403
    assert client.post(f"{API}/notifications/1/read", headers=world.auth(user)).status_code == 403


def test_notify_is_once_per_unit_and_occurrence(client, world, container):
    case = new_case(client, world)
    cid = case["id"]
    with container.db.transaction() as session:
        units = list(session.execute(select(Unit.id).order_by(Unit.id)).scalars())[:2]
        first = notifications.notify(session, units + units, "case.stalled", cid, "t1")
        second = notifications.notify(session, units, "case.stalled", cid, "t1")
        third = notifications.notify(session, units[:1], "case.stalled", cid, "t2")
        with pytest.raises(ValueError):
            notifications.notify(session, units, "case.gossip", cid, "t1")
    assert (len(first), second, len(third)) == (2, [], 1)
    with container.db.transaction() as session:
        assert session.execute(select(func.count()).select_from(Notification)).scalar_one() == 3
        # Being notified is not activity on the case.
        row = session.get(Case, cid)
        assert row is not None and row.updated_at.isoformat() == case["updated_at"]


def test_no_mailbox_no_mail_task(client, world, container):
    held_by(client, world)
    with container.db.transaction() as session:
        tasks = session.execute(
            select(func.count()).where(OutboxMessage.task == notifications.EMAIL_TASK)
        ).scalar_one()
    assert tasks == 0


# --- E-mail over SMTP ---------------------------------------------------------------------


@dataclass
class Sink:
    """An SMTP server that keeps what it receives."""

    messages: list[Any] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.messages.append(envelope)
        return "250 Message accepted"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def smtp_sink() -> Iterator[tuple[Sink, int]]:
    """A local SMTP sink on a free port."""
    sink = Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
def mail_container(settings, smtp_sink) -> Iterator[Container]:
    """A container whose settings send notification e-mail to the sink."""
    _sink, port = smtp_sink
    c = Container(
        settings.with_overrides(
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_from="dossier@ag.ch",
            public_url="https://dossier.ag.ch",
        )
    )
    yield c
    c.close()


def _set_mailbox(container: Container, unit: str, email: str | None) -> None:
    with container.db.transaction() as session:
        notifications.set_mailbox(session, unit, email)


def test_notification_mail_has_the_link_and_nothing_personal(world, mail_container, smtp_sink):
    sink, _port = smtp_sink
    app = create_app(container=mail_container)
    client = app.test_client()
    cid = held_by(client, world)
    assert sink.messages == []  # no mailbox yet: the transfer notices stay in the app
    _set_mailbox(mail_container, "ag", "ksd@ag.ch")
    assert request_approval(client, world, cid).status_code == 201

    [envelope] = sink.messages
    assert envelope.rcpt_tos == ["ksd@ag.ch"]
    assert envelope.mail_from == "dossier@ag.ch"
    message = email.message_from_bytes(envelope.content, policy=email.policy.default)
    body = message.get_content()
    assert f"https://dossier.ag.ch/cases/{cid}" in body
    assert message["Subject"] == "IAS-Dossier: Neues Gesuch um Kostengutsprache"
    reference = client.get(f"{API}/cases/{cid}", headers=world.auth("canton")).get_json()[
        "reference"
    ]
    readable = message["Subject"] + "\n" + body
    for personal in (
        "Haile",
        "Semhar",
        "756.9217",
        "7569217",
        "12345678",
        reference,
        "4800",
        "4'800",
        "IKG1",
    ):
        assert personal not in readable, personal

    # Sent once: the notification is marked, and delivering again sends nothing.
    [item] = _of_kind(notifications_of(client, world, "canton"), "cost_approval.requested")
    assert notifications.deliver_email(mail_container, item["id"]) == "already_sent"
    assert len(sink.messages) == 1


def test_smtp_outage_keeps_the_task_for_the_relay(world, settings, container):
    dead = Container(
        settings.with_overrides(
            smtp_host="127.0.0.1",
            smtp_port=_free_port(),  # nothing listens here
            smtp_from="dossier@ag.ch",
            public_url="https://dossier.ag.ch",
        )
    )
    try:
        client = create_app(container=dead).test_client()
        cid = held_by(client, world)
        _set_mailbox(dead, "ag", "ksd@ag.ch")
        assert request_approval(client, world, cid).status_code == 201
        with dead.db.transaction() as session:
            pending = session.execute(
                select(OutboxMessage).where(OutboxMessage.task == notifications.EMAIL_TASK)
            ).scalar_one()
            assert pending.sent_at is None and pending.last_error
        # The notification itself exists in the app regardless of the mail.
        assert kinds(notifications_of(client, world, "canton"), cid) == [
            CHANGED,
            "cost_approval.requested",
        ]
    finally:
        dead.close()


def test_without_smtp_nothing_is_sent(client, world, container):
    _set_mailbox(container, "ag", "ksd@ag.ch")
    cid = held_by(client, world)
    request_approval(client, world, cid)
    [item] = _of_kind(notifications_of(client, world, "canton"), "cost_approval.requested")
    assert notifications.deliver_email(container, item["id"]) == "smtp_disabled"


def test_mailbox_command(world, settings, container):
    env = {
        "DOSSIER_DATA_DIR": str(settings.data_dir),
        "DOSSIER_DATABASE_URL": settings.database_url,
    }
    runner = CliRunner()
    result = runner.invoke(
        cli, ["units", "mailbox", "--unit", "aarau", "--email", "sozialdienst@aarau.ch"], env=env
    )
    assert result.exit_code == 0, result.output
    bad = runner.invoke(cli, ["units", "mailbox", "--unit", "aarau", "--email", "nope"], env=env)
    assert bad.exit_code != 0 and "not an e-mail address" in bad.output
    both = runner.invoke(cli, ["units", "mailbox", "--unit", "aarau"], env=env)
    assert both.exit_code != 0
    from dossier_service.models import UnitMailbox

    with container.db.transaction() as session:
        assert [m.email for m in session.execute(select(UnitMailbox)).scalars()] == [
            "sozialdienst@aarau.ch"
        ]
    cleared = runner.invoke(cli, ["units", "mailbox", "--unit", "aarau", "--clear"], env=env)
    assert cleared.exit_code == 0, cleared.output
    with container.db.transaction() as session:
        assert session.execute(select(func.count()).select_from(UnitMailbox)).scalar_one() == 0


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"DOSSIER_SMTP_HOST": "mail.ag.ch"}, "DOSSIER_SMTP_FROM"),
        (
            {"DOSSIER_SMTP_HOST": "mail.ag.ch", "DOSSIER_SMTP_FROM": "dossier@ag.ch"},
            "DOSSIER_PUBLIC_URL",
        ),
        ({"DOSSIER_SMTP_PORT": "587"}, "DOSSIER_SMTP_HOST is not"),
        ({"DOSSIER_SMTP_HOST": "mail.ag.ch:25"}, "without port"),
        (
            {
                "DOSSIER_SMTP_HOST": "m",
                "DOSSIER_SMTP_FROM": "a@b.ch",
                "DOSSIER_PUBLIC_URL": "https://d.ch",
                "DOSSIER_SMTP_PORT": "70000",
            },
            "65535",
        ),
        (
            {
                "DOSSIER_SMTP_HOST": "m",
                "DOSSIER_SMTP_FROM": "a@b.ch",
                "DOSSIER_PUBLIC_URL": "https://d.ch",
                "DOSSIER_SMTP_USERNAME": "u",
            },
            "go together",
        ),
        ({"DOSSIER_PUBLIC_URL": "dossier.ag.ch"}, "DOSSIER_PUBLIC_URL"),
        ({"DOSSIER_STALL_DAYS": "0"}, "DOSSIER_STALL_DAYS"),
        ({"DOSSIER_STALL_DAYS": "ninety"}, "DOSSIER_STALL_DAYS"),
    ],
)
def test_mail_and_monitoring_settings_are_validated(env, message, tmp_path):
    with pytest.raises(ConfigError, match=message):
        load_settings({"DOSSIER_DATA_DIR": str(tmp_path), **env})


def test_mail_settings_defaults(tmp_path):
    plain = load_settings({"DOSSIER_DATA_DIR": str(tmp_path)})
    assert (plain.smtp_enabled, plain.stall_days, plain.public_url) == (False, 90, None)
    full = load_settings(
        {
            "DOSSIER_DATA_DIR": str(tmp_path),
            "DOSSIER_SMTP_HOST": "mail.ag.ch",
            "DOSSIER_SMTP_FROM": "dossier@ag.ch",
            "DOSSIER_PUBLIC_URL": "https://dossier.ag.ch/",
            "DOSSIER_SMTP_USERNAME": "dossier",
            "DOSSIER_SMTP_PASSWORD": "s3cret",
            "DOSSIER_STALL_DAYS": "60",
        }
    )
    assert (full.smtp_enabled, full.smtp_port, full.public_url, full.stall_days) == (
        True,
        25,
        "https://dossier.ag.ch",
        60,
    )
    assert "s3cret" not in repr(full)
