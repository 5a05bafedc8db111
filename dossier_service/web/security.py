"""Security headers of the pages and the CSRF check of every form.

CSP: scripts and styles only from this origin, no inline script, no inline event
handlers, no inline styles, nothing from a CDN; the pages may not be framed by anyone
(frame-ancestors 'none' and X-Frame-Options DENY). Only the preview of a document is
framed, by our own pages, and it gets its own, stricter policy (see documents.preview).

CSRF: every form carries a hidden ``csrf_token`` field (the pages' scripts send the same
value in an ``X-CSRF-Token`` header); it must equal the random token kept in the signed
session. A request from another origin is refused as well. Streamed uploads are checked
in their view: their form fields are only known once the body has been read.
"""

from __future__ import annotations

import hmac
import logging
import secrets

from flask import Flask, Response, g, request, session

from dossier_service.errors import BadRequest
from dossier_service.http.unit_of_work import separate_transaction
from dossier_service.identity import Anonymous
from dossier_service.services import audit
from dossier_service.web.context import container

log = logging.getLogger(__name__)

CSP = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "font-src 'self'",
        "connect-src 'self'",
        "frame-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    ]
)
#: Policy of a framed document preview: it may run nothing and load nothing.
PREVIEW_CSP = "default-src 'none'; frame-ancestors 'self'; sandbox"

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Views that read a streamed multipart body and check the token themselves.
STREAMING_ENDPOINTS = frozenset({"web.upload_document", "web.add_version"})
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "X-CSRF-Token"


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return str(token)


def token_valid(candidate: str | None) -> bool:
    """True if the candidate equals the session's token (constant-time comparison)."""
    expected = session.get("csrf")
    if not expected or not candidate:
        return False
    return hmac.compare_digest(str(expected).encode(), candidate.encode("utf-8", "replace"))


def _same_origin() -> bool:
    """False only when the browser names another origin than ours (Origin header)."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    allowed = {request.host_url.rstrip("/")}
    public_url = container().settings.public_url
    if public_url:
        allowed.add(public_url)
    return origin.rstrip("/") in allowed


def refuse(reason: str) -> None:
    """Log the refused form (outcome denied) and raise the 400 the pages explain."""
    who = g.get("identity") or Anonymous(ip=request.remote_addr)
    try:
        # Its own transaction: the refused request's work rolls back, the refusal is stored.
        with separate_transaction() as db:
            audit.record(
                db,
                who,
                "web.csrf_refused",
                outcome="denied",
                detail={"reason": reason, "endpoint": request.endpoint or ""},
            )
    except Exception:
        log.exception("could not write the audit entry of a refused form")
    raise BadRequest("The form is outdated or was not sent by this site.", code="csrf_invalid")


def check_csrf() -> None:
    """Before every state-changing request of the pages: same origin and a valid token."""
    if request.method in SAFE_METHODS:
        return
    if not _same_origin():
        refuse("origin")
    header = request.headers.get(CSRF_HEADER)
    if request.endpoint in STREAMING_ENDPOINTS:
        # Reading form fields here would buffer the whole upload; the view checks them.
        g.csrf_checked = token_valid(header)
        return
    if not token_valid(header or request.form.get(CSRF_FIELD)):
        refuse("token")


def check_streamed_token(fields: dict[str, str]) -> None:
    """For streamed uploads: the header was valid, or the form's field must be."""
    if g.get("csrf_checked") or token_valid(fields.get(CSRF_FIELD)):
        return
    refuse("token")


def _headers(response: Response) -> Response:
    """Add the security headers to every page, static file and error of the web interface."""
    if request.path.startswith("/api/"):
        return response
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers.setdefault("X-Frame-Options", "DENY")
    headers.setdefault("X-Content-Type-Options", "nosniff")
    # same-origin, not no-referrer: with no-referrer browsers send "Origin: null" on our own
    # form posts, and the origin check would refuse them.
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
    headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
    if request.endpoint != "static":
        # Pages show personal data: no copy in shared caches or the back/forward cache.
        headers.setdefault("Cache-Control", "no-store")
    if request.is_secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    return response


def init_app(app: Flask) -> None:
    """Install the header hook (it runs before the app's own defaults)."""
    app.after_request(_headers)
    app.jinja_env.globals["csrf_token"] = csrf_token
