"""Document pages: upload (drag and drop, progress bar), new versions, download and preview.

Uploads take the same path as the API's: the right to write is checked before a byte of
the body is read, the body is streamed to a spool file (``uploads.parse_multipart`` via the
API's receiver) and ``services.documents`` inspects, stores, records and audits it.
Downloads and previews go through ``documents.authorize_version`` and ``open_content``,
so every one is checked by the policy and written to the audit log as ``content.read``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from flask import Blueprint, Response, abort, flash, jsonify, redirect, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from werkzeug.exceptions import RequestEntityTooLarge
from werkzeug.http import parse_options_header

from dossier_service.dates import swiss_date, swiss_datetime
from dossier_service.errors import (
    BadRequest,
    DossierError,
    Forbidden,
    NotFound,
    PayloadTooLarge,
    UnsupportedMediaType,
)
from dossier_service.http.context import audit_context
from dossier_service.http.downloads import content_disposition
from dossier_service.http.uploads import MULTIPART_OVERHEAD, drain_body
from dossier_service.models import DOCUMENT_TYPES
from dossier_service.policy import Action, load_case, rights
from dossier_service.services import document_corrections, documents
from dossier_service.uploads import ParsedUpload, parse_multipart
from dossier_service.web.cases import case_page, processing_label
from dossier_service.web.context import container, identity, render, session, wants_json
from dossier_service.web.errors import message_for
from dossier_service.web.security import PREVIEW_CSP, check_streamed_token

#: Media types the browser shows inline in the preview frame.
PREVIEW_TYPES = {
    "application/pdf": "pdf",
    "image/png": "image",
    "image/jpeg": "image",
    "text/plain": "text",
}


#: The words for the fields a document's history names.
HISTORY_FIELDS = {
    "title": _l("Titel"),
    "type": _l("Dokumenttyp"),
    "document_date": _l("Datum des Dokuments"),
    "tags": _l("Stichwörter"),
    "case": _l("Fall"),
    "withdrawn": _l("Zurückgezogen"),
}


def show_value(field: str, value: Any) -> str:
    """A history value as the page shows it (type by its word, dates Swiss, lists joined)."""
    if value is None or value == []:
        return "–"
    if field == "type":
        return str(DOCUMENT_TYPES.get(value, value))
    if field == "document_date":
        return swiss_date(dt.date.fromisoformat(value))
    if field == "withdrawn":
        return swiss_datetime(dt.datetime.fromisoformat(value))
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    return str(value)


#: How much of a refused upload's body is kept to recover the form fields typed before it.
FIELDS_HEAD_BYTES = 64 * 1024


class _FailedUpload(Exception):
    """A refused upload with the form fields that were read before the refusal."""

    def __init__(self, error: DossierError, fields: dict[str, str]) -> None:
        super().__init__(error.message)
        self.error = error
        self.fields = fields


def _fields_before_file(head: bytes, boundary: bytes) -> dict[str, str]:
    """The text fields that came before the file part in the first bytes of the body."""
    from werkzeug.sansio.multipart import Data, Field, File, MultipartDecoder, NeedData

    decoder = MultipartDecoder(boundary, max_parts=20)
    decoder.receive_data(head)
    fields: dict[str, str] = {}
    name: str | None = None
    value = bytearray()
    try:
        while True:
            event = decoder.next_event()
            if isinstance(event, NeedData | File):
                break
            if isinstance(event, Field):
                name, value = event.name, bytearray()
            elif isinstance(event, Data) and name is not None:
                value.extend(event.data)
                if not event.more_data:
                    fields[name] = value.decode("utf-8", "replace")
                    name = None
    except (ValueError, RequestEntityTooLarge):
        return fields  # a malformed body: keep what was recovered before it
    return fields


def _receive_upload() -> ParsedUpload:
    """Stream the multipart body into a spool file, like the API does.

    The same checks as the API's receiver; in addition the first bytes of the body are
    kept, so that when the file is refused (type, size, damage) the page can show the form
    again with the type and title the person chose.
    """
    limit = container().settings.max_upload_bytes
    if request.content_length is not None and request.content_length > limit + MULTIPART_OVERHEAD:
        raise _FailedUpload(PayloadTooLarge("too large", code="file_too_large"), {})
    mimetype, options = parse_options_header(request.headers.get("Content-Type", ""))
    if mimetype != "multipart/form-data" or not options.get("boundary"):
        raise _FailedUpload(
            UnsupportedMediaType("multipart required", code="multipart_required"), {}
        )
    boundary = options["boundary"].encode("latin-1")
    head = bytearray()

    def read(size: int) -> bytes:
        chunk: bytes = request.stream.read(size)
        if len(head) < FIELDS_HEAD_BYTES:
            head.extend(chunk[: FIELDS_HEAD_BYTES - len(head)])
        return chunk

    try:
        parsed = parse_multipart(
            read, boundary, spool_dir=container().settings.spool_dir, max_file_bytes=limit
        )
    except DossierError as exc:
        if isinstance(exc, UnsupportedMediaType | BadRequest):
            drain_body()
        raise _FailedUpload(exc, _fields_before_file(bytes(head), boundary)) from None
    if parsed.file is None:
        fields = parsed.fields
        parsed.discard()
        raise _FailedUpload(BadRequest("no file", code="file_missing"), fields)
    return parsed


def _upload_failed(
    exc: DossierError, *, case_id: str, document_id: str | None, fields: dict[str, str]
) -> ResponseReturnValue:
    """Answer a refused upload where it happened, keeping what the person entered."""
    if isinstance(exc, Forbidden | NotFound) or exc.code == "csrf_invalid":
        raise exc
    message = message_for(exc)
    field = str(exc.details.get("field") or "")
    if wants_json():
        response = jsonify({"error": {"message": message, "field": field or None}})
        response.status_code = exc.status
        return response
    form = {k: fields.get(k, "") for k in ("type", "title")}
    if document_id is not None:
        return document_page(document_id, upload_error=message, status=exc.status)
    return case_page(case_id, upload_error=message, status=exc.status, form=form)


def _uploaded(document: Any, message: str) -> ResponseReturnValue:
    """Answer a stored upload: JSON for the upload script, a redirect for a plain form."""
    target = url_for("web.document_page", document_id=document.id)
    # Shown on the page the browser opens next, whether the script or the form sent it.
    flash(message, "success")
    if wants_json():
        version = document.versions[-1]
        return jsonify(
            {
                "document_id": document.id,
                "version": version.number,
                "processing": version.processing,
                "message": message,
                "redirect": target,
            }
        ), 201
    return redirect(target, code=303)


def upload_document(case_id: str) -> ResponseReturnValue:
    """POST /cases/<id>/documents: a new document (from the drop zone or the plain form)."""
    audit_context("document.create", case_id=case_id)
    who = identity()
    db = session()
    load_case(db, who, case_id, Action.CASE_WRITE)  # before reading a byte of the body
    db.rollback()
    try:
        parsed = _receive_upload()
    except _FailedUpload as failed:
        return _upload_failed(failed.error, case_id=case_id, document_id=None, fields=failed.fields)
    try:
        check_streamed_token(parsed.fields)
        assert parsed.file is not None
        document = documents.create_document(
            container(), db, who, case_id, parsed.file, parsed.fields
        )
    except DossierError as exc:
        db.rollback()
        return _upload_failed(exc, case_id=case_id, document_id=None, fields=parsed.fields)
    finally:
        parsed.discard()
    return _uploaded(
        document, _("Das Dokument «%(title)s» wurde gespeichert.", title=document.title)
    )


def add_version(document_id: str) -> ResponseReturnValue:
    """POST /documents/<id>/versions: the next version of a document."""
    audit_context("version.create", document_id=document_id)
    who = identity()
    db = session()
    _doc, case = documents.load_document(db, who, document_id, Action.CASE_WRITE)
    case_id = case.id
    db.rollback()
    try:
        parsed = _receive_upload()
    except _FailedUpload as failed:
        return _upload_failed(
            failed.error, case_id=case_id, document_id=document_id, fields=failed.fields
        )
    try:
        check_streamed_token(parsed.fields)
        assert parsed.file is not None
        document = documents.add_version(
            container(),
            db,
            who,
            document_id,
            parsed.file,
            parsed.fields.get("if_match") or None,
            parsed.fields.get("reason") or None,
        )
    except DossierError as exc:
        db.rollback()
        return _upload_failed(exc, case_id=case_id, document_id=document_id, fields=parsed.fields)
    finally:
        parsed.discard()
    number = document.versions[-1].number
    return _uploaded(document, _("Version %(number)d wurde gespeichert.", number=number))


def document_page(
    document_id: str,
    *,
    upload_error: str | None = None,
    status: int = 200,
    form_errors: dict[str, str] | None = None,
    form_values: dict[str, dict[str, str]] | None = None,
    withdrawn: bool | None = None,
) -> ResponseReturnValue:
    """GET /documents/<id>: metadata, versions, preview, history and the forms that change it.

    ``?withdrawn=true`` shows the canton a withdrawn document (audited as its own action).
    """
    if withdrawn is None:
        withdrawn = request.args.get("withdrawn") == "true"
    audit_context(
        "document.read_withdrawn" if withdrawn else "document.read", document_id=document_id
    )
    who = identity()
    db = session()
    document = documents.read_document(db, who, document_id, withdrawn=withdrawn)
    case = load_case(db, who, document.case_id, Action.CASE_READ)
    try:
        number = int(request.args["version"]) if "version" in request.args else None
    except ValueError:
        number = None
    try:
        shown = documents.find_version(document, number)
    except DossierError:
        shown = documents.find_version(document, None)
    granted = rights(db, who, case)
    may_write = Action.CASE_WRITE in granted and document.withdrawn_at is None
    # The page's read (document.read above) covers the history shown on it.
    history = document_corrections.changes_of(db, document.id)
    pending = [v.id for v in document.versions if v.processing in {"pending", "processing"}]
    return render(
        "documents/detail.html",
        status=status,
        document=document,
        case=case,
        shown=shown,
        preview=PREVIEW_TYPES.get(shown.media_type),
        type_label=DOCUMENT_TYPES.get(document.type, document.type),
        may_write=may_write,
        may_withdraw=Action.DOCUMENT_WITHDRAW in granted and document.withdrawn_at is None,
        may_move=Action.DOCUMENT_MOVE in granted and document.withdrawn_at is None,
        may_purge=Action.DOCUMENT_PURGE in granted and document.withdrawn_at is not None,
        history=history,
        history_fields=HISTORY_FIELDS,
        show_value=show_value,
        document_types=DOCUMENT_TYPES,
        form_errors=form_errors or {},
        form_values=form_values or {},
        withdrawn=document.withdrawn_at is not None,
        pending_versions=pending,
        processing_label=processing_label,
        upload_error=upload_error,
    )


def _content(document_id: str, number: int, *, inline: bool) -> Response:
    """Stream one version's bytes after the policy check; audited as content.read."""
    withdrawn = request.args.get("withdrawn") == "true"
    action = "content.read_withdrawn" if withdrawn else "content.read"
    audit_context(action, document_id=document_id, version=number)
    who = identity()
    db = session()
    _document, case, version = documents.authorize_version(
        db, who, document_id, number, withdrawn=withdrawn
    )
    kind = PREVIEW_TYPES.get(version.media_type)
    if inline and kind is None:
        db.rollback()
        abort(404)  # nothing to show inline (not a refusal: download works)
    stream = documents.open_content(container(), db, who, case, version, withdrawn=withdrawn)
    assert stream is not None
    headers = {
        "Content-Length": str(version.size),
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        "ETag": f'"{version.sha256}"',
    }
    if inline:
        # Shown inside our own page only; the file itself may run and load nothing.
        headers["Content-Security-Policy"] = PREVIEW_CSP
        headers["X-Frame-Options"] = "SAMEORIGIN"
        headers["Content-Disposition"] = content_disposition(version.filename, "inline")
    else:
        headers["Content-Security-Policy"] = "default-src 'none'; sandbox"
        headers["Content-Disposition"] = content_disposition(version.filename)
    return Response(stream, headers=headers, mimetype=version.media_type, direct_passthrough=True)


def download(document_id: str, number: int) -> ResponseReturnValue:
    """GET /documents/<id>/versions/<n>/download: the version as a file."""
    return _content(document_id, number, inline=False)


def preview(document_id: str, number: int) -> ResponseReturnValue:
    """GET /documents/<id>/versions/<n>/preview: PDFs, images and text shown in the page."""
    return _content(document_id, number, inline=True)


def register(bp: Blueprint) -> None:
    """Add the document routes."""
    bp.add_url_rule(
        "/cases/<case_id>/documents", "upload_document", upload_document, methods=["POST"]
    )
    bp.add_url_rule("/documents/<document_id>", "document_page", document_page)
    bp.add_url_rule(
        "/documents/<document_id>/versions", "add_version", add_version, methods=["POST"]
    )
    bp.add_url_rule("/documents/<document_id>/versions/<int:number>/download", "download", download)
    bp.add_url_rule("/documents/<document_id>/versions/<int:number>/preview", "preview", preview)
