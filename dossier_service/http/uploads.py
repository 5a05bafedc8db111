"""Request-side limits of a streamed upload."""

from __future__ import annotations

from flask import request

#: The endpoints whose bodies are streamed to a spool file (API and pages): they take files up
#: to DOSSIER_MAX_UPLOAD_BYTES; every other body is held to DOSSIER_MAX_BODY_BYTES.
STREAMED_UPLOADS = frozenset(
    {"api.upload_document", "api.add_version", "web.upload_document", "web.add_version"}
)
#: Room for the multipart envelope and form fields around the file itself.
MULTIPART_OVERHEAD = 1024 * 1024
#: The most of a refused upload's body that is read and discarded before answering.
DRAIN_LIMIT = 16 * 1024 * 1024


def drain_body() -> None:
    """Read and discard what is left of a refused upload, up to a bound.

    Answering before the client finished sending makes many clients report a broken
    connection instead of our error; a body larger than the bound is cut off instead.
    """
    stream = request.stream
    remaining = DRAIN_LIMIT
    while remaining > 0:
        chunk = stream.read(min(remaining, 1024 * 1024))
        if not chunk:
            return
        remaining -= len(chunk)
