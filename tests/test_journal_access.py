"""The journal follows the case's access: every user × case state, as the policy matrix says.

A journal entry is read by whoever reads the case and written by whoever may add a
document to it, so each cell's expectation is taken from the matrix's ``case`` and
``upload`` columns rather than written down a second time.
"""

from __future__ import annotations

from typing import Any

import pytest
from flask.testing import FlaskClient

from tests.factories import World
from tests.test_policy_matrix import (
    API,
    COLUMNS,
    ENDPOINTS,
    MATRIX,
    STATES,
    USERS,
    _latest_audit_entry,
    build_dossier,
    expected_status,
)

ENTRY = {"kind": "meeting", "text": "Standortgespräch.", "participants": ["Klient"]}


def _check(
    client: FlaskClient,
    world: World,
    user: str,
    response: Any,
    like: str,
    audit_action: str,
    expectation: Any,
    case_id: str,
) -> list[str]:
    """Mismatches of one cell: status, error code, and the denied audit entry."""
    status, code = expected_status(expectation, ENDPOINTS[like])
    body = response.get_json(silent=True) or {}
    problems = []
    if response.status_code != status:
        return [f"{user} {audit_action}: expected {status}, got {response.status_code} {body}"]
    if code is not None:
        if body.get("error", {}).get("code") != code:
            problems.append(f"{user} {audit_action}: expected code {code}, got {body}")
        entry = _latest_audit_entry(client, world, user) or {}
        got = (entry.get("action"), entry.get("outcome"), entry.get("case_id"))
        if got != (audit_action, "denied", case_id):
            problems.append(f"{user} {audit_action}: no denied audit entry, latest {entry}")
    elif audit_action == "journal.create" and body.get("created_by") != user:
        problems.append(f"{user}: the entry is not by {user}: {body}")
    return problems


@pytest.mark.parametrize("state_name", list(STATES))
def test_journal_access_matrix(client: FlaskClient, world: World, state_name: str) -> None:
    state, rows = STATES[state_name], MATRIX[state_name]
    dossier = build_dossier(client, world, state.steps)
    url = f"{API}/cases/{dossier.case_id}/journal"
    problems: list[str] = []
    writers = []
    for user in USERS:
        read = rows[user][COLUMNS.index("case")]
        write = rows[user][COLUMNS.index("upload")]
        response = client.get(url, headers=world.auth(user))
        problems += _check(
            client, world, user, response, "case", "journal.list", read, dossier.case_id
        )
        response = client.post(url, json=ENTRY, headers=world.auth(user))
        problems += _check(
            client, world, user, response, "upload", "journal.create", write, dossier.case_id
        )
        if response.status_code == 201:
            writers.append(user)
    assert not problems, "\n".join(problems)
    # Every reader sees exactly the entries the writers wrote.
    reader = next(u for u in USERS if rows[u][COLUMNS.index("case")] == "ok")
    items = client.get(url, headers=world.auth(reader)).get_json()["items"]
    assert sorted(e["created_by"] for e in items) == sorted(writers)
    assert writers, "no unit could write in this state"
