"""The case journal: notes, conversations, calls and meetings (append-only)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify

from dossier_service.api.context import json_body
from dossier_service.bodies.journal import JournalInput
from dossier_service.bodies.parse import parse
from dossier_service.http.context import audit_context, identity, session
from dossier_service.services import journal


def list_journal(case_id: str) -> Response:
    """GET /cases/{id}/journal: the entries, latest first, with who corrected what."""
    audit_context("journal.list", case_id=case_id)
    entries = journal.list_entries(session(), identity(), case_id)
    corrections = journal.corrected_by(entries)
    return jsonify({"items": [journal.entry_json(e, corrections) for e in entries]})


def add_journal_entry(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/journal: write an entry (or a correction of one)."""
    audit_context("journal.create", case_id=case_id)
    body = parse(JournalInput, json_body())
    entry = journal.add_entry(session(), identity(), case_id, body)
    return jsonify(journal.entry_json(entry, {})), 201


def register(bp: Blueprint) -> None:
    """Add the journal routes to the API blueprint."""
    bp.add_url_rule("/cases/<case_id>/journal", view_func=list_journal, methods=["GET"])
    bp.add_url_rule("/cases/<case_id>/journal", view_func=add_journal_entry, methods=["POST"])
