"""Document upload, metadata, versions and streamed content downloads."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.http import parse_options_header

from dossier_service.api.context import json_body
from dossier_service.bodies.documents import DocumentUpdate, MoveInput, WithdrawInput
from dossier_service.bodies.parse import parse
from dossier_service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from dossier_service.http.context import audit_context, container, identity, session
from dossier_service.http.downloads import content_disposition
from dossier_service.http.uploads import MULTIPART_OVERHEAD, drain_body
from dossier_service.policy import Action, load_case
from dossier_service.services import document_corrections, documents, withdrawal
from dossier_service.uploads import ParsedUpload, parse_multipart


def _receive_upload() -> ParsedUpload:
    """Check the envelope, then stream the multipart body into a spool file."""
    limit = container().settings.max_upload_bytes
    length = request.content_length
    if length is not None and length > limit + MULTIPART_OVERHEAD:
        raise PayloadTooLarge(
            f"The file is larger than the limit of {limit} bytes.", code="file_too_large"
        )
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise UnsupportedMediaType(
            "Send the file as multipart/form-data with a 'file' part.", code="multipart_required"
        )
    try:
        parsed = parse_multipart(
            request.stream.read,
            options["boundary"].encode("latin-1"),
            spool_dir=container().settings.spool_dir,
            max_file_bytes=limit,
        )
    except (UnsupportedMediaType, BadRequest):
        drain_body()
        raise
    if parsed.file is None:
        parsed.discard()
        raise BadRequest("The request has no 'file' part.", code="file_missing")
    return parsed


def upload_document(case_id: str) -> tuple[Response, int]:
    """POST /cases/{id}/documents: a new document with its first version."""
    audit_context("document.create", case_id=case_id)
    db = session()
    # Refuse before reading a single byte of the body if the caller may not write here.
    load_case(db, identity(), case_id, Action.CASE_WRITE)
    db.rollback()
    parsed = _receive_upload()
    try:
        assert parsed.file is not None
        document = documents.create_document(
            container(), db, identity(), case_id, parsed.file, parsed.fields
        )
    finally:
        parsed.discard()
    return jsonify(documents.document_json(document)), 201


def add_version(document_id: str) -> tuple[Response, int]:
    """POST /documents/{id}/versions: the next version; If-Match prevents lost updates."""
    audit_context("version.create", document_id=document_id)
    db = session()
    documents.load_document(db, identity(), document_id, Action.CASE_WRITE)
    db.rollback()
    parsed = _receive_upload()
    try:
        assert parsed.file is not None
        # The reason comes as a form field or, for clients that cannot add one, a query param.
        reason = parsed.fields.get("reason") or request.args.get("reason")
        document = documents.add_version(
            container(),
            db,
            identity(),
            document_id,
            parsed.file,
            request.headers.get("If-Match"),
            reason,
        )
    finally:
        parsed.discard()
    return jsonify(documents.document_json(document)), 201


def _withdrawn_flag() -> bool:
    """?withdrawn=true: the canton asks for withdrawn documents explicitly."""
    raw = request.args.get("withdrawn", "false").lower()
    if raw not in {"true", "false"}:
        raise BadRequest("'withdrawn' must be true or false.", code="invalid_parameter")
    return raw == "true"


def list_documents(case_id: str) -> Response:
    """GET /cases/{id}/documents (?withdrawn=true: the canton lists withdrawn ones)."""
    withdrawn = _withdrawn_flag()
    audit_context("document.list_withdrawn" if withdrawn else "document.list", case_id=case_id)
    db = session()
    listed = documents.list_documents(db, identity(), case_id, withdrawn=withdrawn)
    return jsonify({"items": [documents.document_json(d) for d in listed]})


def get_document(document_id: str) -> Response:
    """GET /documents/{id} (?withdrawn=true: the canton reads a withdrawn one)."""
    withdrawn = _withdrawn_flag()
    audit_context(
        "document.read_withdrawn" if withdrawn else "document.read", document_id=document_id
    )
    db = session()
    document = documents.read_document(db, identity(), document_id, withdrawn=withdrawn)
    return jsonify(documents.document_json(document))


def update_document(document_id: str) -> Response:
    """PATCH /documents/{id}: correct title, type, document date or tags, with a reason."""
    audit_context("document.correct", document_id=document_id)
    db = session()
    update = parse(DocumentUpdate, json_body())
    document = document_corrections.correct_document(db, identity(), document_id, update)
    return jsonify(documents.document_json(document))


def get_history(document_id: str) -> Response:
    """GET /documents/{id}/history: the corrections, oldest first."""
    audit_context("document.history", document_id=document_id)
    db = session()
    changes = document_corrections.history(db, identity(), document_id)
    return jsonify({"items": [document_corrections.change_json(c) for c in changes]})


def withdraw_document(document_id: str) -> Response:
    """POST /documents/{id}/withdraw: hide a misfiled document from every reader."""
    audit_context("document.withdraw", document_id=document_id)
    db = session()
    body = parse(WithdrawInput, json_body())
    document = withdrawal.withdraw(db, identity(), document_id, body.reason)
    return jsonify(documents.document_json(document))


def purge_document(document_id: str) -> Response:
    """POST /documents/{id}/purge: delete a withdrawn document's content; a tombstone stays."""
    audit_context("document.purge", document_id=document_id)
    db = session()
    body = parse(WithdrawInput, json_body())
    tombstone = withdrawal.purge(db, identity(), document_id, body.reason)
    return jsonify(withdrawal.tombstone_json(tombstone))


def move_document(document_id: str) -> Response:
    """POST /documents/{id}/move: the document with all versions goes to another case."""
    audit_context("document.move", document_id=document_id)
    db = session()
    move = parse(MoveInput, json_body())
    document = document_corrections.move_document(db, identity(), document_id, move)
    return jsonify(documents.document_json(document))


def get_content(document_id: str, number: int | None = None) -> Response:
    """GET /documents/{id}/content and /versions/{n}/content: streamed, ranged, cached."""
    withdrawn = _withdrawn_flag()
    action = "content.read_withdrawn" if withdrawn else "content.read"
    audit_context(action, document_id=document_id, version=number)
    db = session()
    who = identity()
    _document, case, version = documents.authorize_version(
        db, who, document_id, number, withdrawn=withdrawn
    )
    etag = version.sha256
    headers = {
        "ETag": f'"{etag}"',
        "Accept-Ranges": "bytes",
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "Content-Disposition": content_disposition(version.filename),
        "Content-Security-Policy": "default-src 'none'; sandbox",
    }
    if_none_match = request.headers.get("If-None-Match")
    if if_none_match and etag in {documents.normalise_etag(v) for v in if_none_match.split(",")}:
        documents.open_content(
            container(), db, who, case, version, not_modified=True, withdrawn=withdrawn
        )
        return Response(status=304, headers=headers)

    byte_range: tuple[int, int | None] | None = None
    status = 200
    length = version.size
    if (
        request.range is not None
        and request.headers.get("If-Range", f'"{etag}"').strip() == f'"{etag}"'
    ):
        bounds = request.range.range_for_length(version.size)
        if bounds is None:
            db.rollback()
            return Response(
                status=416,
                headers={**headers, "Content-Range": f"bytes */{version.size}"},
            )
        start, stop = bounds
        byte_range = (start, stop - start)
        length = stop - start
        status = 206
        headers["Content-Range"] = f"bytes {start}-{stop - 1}/{version.size}"
    stream = documents.open_content(
        container(), db, who, case, version, byte_range, withdrawn=withdrawn
    )
    assert stream is not None
    headers["Content-Length"] = str(length)
    return Response(
        stream, status=status, headers=headers, mimetype=version.media_type, direct_passthrough=True
    )


def register(bp: Blueprint) -> None:
    """Add the document routes to the API blueprint."""
    bp.add_url_rule("/cases/<case_id>/documents", view_func=upload_document, methods=["POST"])
    bp.add_url_rule("/cases/<case_id>/documents", view_func=list_documents, methods=["GET"])
    bp.add_url_rule("/documents/<document_id>", view_func=get_document, methods=["GET"])
    bp.add_url_rule("/documents/<document_id>", view_func=update_document, methods=["PATCH"])
    bp.add_url_rule("/documents/<document_id>/history", view_func=get_history, methods=["GET"])
    bp.add_url_rule(
        "/documents/<document_id>/withdraw", view_func=withdraw_document, methods=["POST"]
    )
    bp.add_url_rule("/documents/<document_id>/purge", view_func=purge_document, methods=["POST"])
    bp.add_url_rule("/documents/<document_id>/move", view_func=move_document, methods=["POST"])
    bp.add_url_rule("/documents/<document_id>/versions", view_func=add_version, methods=["POST"])
    bp.add_url_rule("/documents/<document_id>/content", view_func=get_content, methods=["GET"])
    bp.add_url_rule(
        "/documents/<document_id>/versions/<int:number>/content",
        view_func=get_content,
        methods=["GET"],
    )
