"""Archival exports (SIP), legal holds and the person's disclosure (right of access)."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request

from dossier_service.api.context import json_body
from dossier_service.bodies.archive import (
    AcknowledgeInput,
    ExportInput,
    LegalHoldInput,
    LegalHoldRelease,
)
from dossier_service.bodies.parse import parse
from dossier_service.errors import ServiceUnavailable
from dossier_service.http.context import audit_context, container, identity, session
from dossier_service.http.downloads import content_disposition
from dossier_service.services import disclosure, exports, retention
from storage import ObjectNotFound, StorageError


def create_export() -> tuple[Response, int]:
    """POST /exports: queue the SIP export of closed cases (archivists of the canton)."""
    audit_context("export.create")
    db = session()
    export = exports.create_export(db, identity(), parse(ExportInput, json_body()))
    export_id = export.id
    return jsonify({"id": export_id, "status": "queued"}), 202


def get_export(export_id: str) -> Response:
    """GET /exports/{id}: status, progress, size and SHA-256."""
    audit_context("export.read")
    db = session()
    body = exports.export_json(exports.get_export(db, identity(), export_id))
    return jsonify(body)


def get_export_content(export_id: str) -> Response:
    """GET /exports/{id}/content: the SIP as a ZIP, streamed from storage."""
    audit_context("export.download")
    db = session()
    try:
        export, stream = exports.open_content(container(), db, identity(), export_id)
    except ObjectNotFound:
        raise ServiceUnavailable(
            "The package is missing from storage; operators were alerted.", code="content_missing"
        ) from None
    except StorageError as exc:
        raise ServiceUnavailable(
            "The document store cannot be reached. Please try again later.",
            code="storage_unavailable",
        ) from exc
    headers = {
        "Content-Length": str(export.size),
        "ETag": f'"{export.sha256}"',
        "Cache-Control": "private, no-store",
        "Content-Disposition": content_disposition(f"SIP-{export.id}.zip"),
    }
    return Response(stream, headers=headers, mimetype="application/zip", direct_passthrough=True)


def acknowledge_export(export_id: str) -> Response:
    """POST /exports/{id}/acknowledge: the archive confirms receipt with its reference."""
    audit_context("export.acknowledge")
    db = session()
    export = exports.acknowledge(db, identity(), export_id, parse(AcknowledgeInput, json_body()))
    body = exports.export_json(export)
    return jsonify(body)


def set_legal_hold(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/legal-hold: stop deletion of the case (canton)."""
    audit_context("legal_hold.set", case_id=case_id)
    db = session()
    hold = retention.set_legal_hold(db, identity(), case_id, parse(LegalHoldInput, json_body()))
    body = retention.legal_hold_json(hold)
    return jsonify(body), 201


def release_legal_hold(case_id: str) -> Response:
    """DELETE /cases/{id}/legal-hold: release the hold (canton); a JSON reason is optional."""
    audit_context("legal_hold.release", case_id=case_id)
    db = session()
    release = parse(LegalHoldRelease, json_body() if request.content_length else {})
    hold = retention.release_legal_hold(db, identity(), case_id, release)
    body = retention.legal_hold_json(hold)
    return jsonify(body)


def get_disclosure(case_id: str) -> Response:
    """GET /cases/{id}/disclosure: everything held about the person, as a streamed ZIP."""
    audit_context("disclosure.create", case_id=case_id)
    db = session()
    prepared = disclosure.prepare(container(), db, identity(), case_id)
    headers = {
        "Cache-Control": "private, no-store",
        "Content-Disposition": content_disposition(prepared.filename),
    }
    return Response(
        disclosure.stream(container(), prepared),
        headers=headers,
        mimetype="application/zip",
        direct_passthrough=True,
    )


def register(bp: Blueprint) -> None:
    """Add the archive routes to the API blueprint."""
    bp.add_url_rule("/exports", view_func=create_export, methods=["POST"])
    bp.add_url_rule("/exports/<export_id>", view_func=get_export, methods=["GET"])
    bp.add_url_rule("/exports/<export_id>/content", view_func=get_export_content, methods=["GET"])
    bp.add_url_rule(
        "/exports/<export_id>/acknowledge", view_func=acknowledge_export, methods=["POST"]
    )
    bp.add_url_rule("/cases/<case_id>/legal-hold", view_func=set_legal_hold, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/legal-hold", view_func=release_legal_hold, methods=["DELETE"])
    bp.add_url_rule("/cases/<case_id>/disclosure", view_func=get_disclosure, methods=["GET"])
