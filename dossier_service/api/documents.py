"""Document upload, metadata, versions and streamed content downloads."""

from __future__ import annotations

from flask import Blueprint, Response, jsonify, request
from werkzeug.http import parse_options_header

from dossier_service.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from dossier_service.http.context import audit_context, container, identity, session
from dossier_service.http.downloads import content_disposition
from dossier_service.http.uploads import MULTIPART_OVERHEAD, drain_body
from dossier_service.policy import Action, load_case
from dossier_service.services import documents
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
        document = documents.add_version(
            container(), db, identity(), document_id, parsed.file, request.headers.get("If-Match")
        )
    finally:
        parsed.discard()
    return jsonify(documents.document_json(document)), 201


def list_documents(case_id: str) -> Response:
    """GET /cases/{id}/documents."""
    audit_context("document.list", case_id=case_id)
    db = session()
    items = [documents.document_json(d) for d in documents.list_documents(db, identity(), case_id)]
    return jsonify({"items": items})


def get_document(document_id: str) -> Response:
    """GET /documents/{id}."""
    audit_context("document.read", document_id=document_id)
    db = session()
    body = documents.document_json(documents.read_document(db, identity(), document_id))
    return jsonify(body)


def get_content(document_id: str, number: int | None = None) -> Response:
    """GET /documents/{id}/content and /versions/{n}/content: streamed, ranged, cached."""
    audit_context("content.read", document_id=document_id, version=number)
    db = session()
    who = identity()
    _document, case, version = documents.authorize_version(db, who, document_id, number)
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
        documents.open_content(container(), db, who, case, version, not_modified=True)
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
    stream = documents.open_content(container(), db, who, case, version, byte_range)
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
    bp.add_url_rule("/documents/<document_id>/versions", view_func=add_version, methods=["POST"])
    bp.add_url_rule("/documents/<document_id>/content", view_func=get_content, methods=["GET"])
    bp.add_url_rule(
        "/documents/<document_id>/versions/<int:number>/content",
        view_func=get_content,
        methods=["GET"],
    )
