"""Domain errors raised by services; the API maps each to one HTTP status.

Exception tree::

    DossierError                 base; carries a snake_case ``code`` and a message
    ├── BadRequest        400    malformed request (not JSON, missing multipart part)
    ├── Unauthenticated   401    no token, unknown or revoked token
    ├── Forbidden         403    the role may never do this action
    ├── NotFound          404    does not exist, or the caller may not know it exists
    ├── Conflict          409    the case's state forbids it (e.g. end_report_required)
    ├── Gone              410    the case was merged into another (``case_merged``)
    ├── PreconditionFailed 412   If-Match did not match the current version
    ├── PayloadTooLarge   413    upload larger than DOSSIER_MAX_UPLOAD_BYTES
    ├── UnsupportedMediaType 415 bytes are not an accepted document type
    ├── Unprocessable     422    well-formed but invalid values
    ├── TooManyRequests   429    the client address failed to authenticate too often
    └── ServiceUnavailable 503   storage, database or broker unreachable
"""

from __future__ import annotations

from typing import Any, ClassVar


class DossierError(Exception):
    """Base of every error a service raises on purpose."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, code: str | None = None, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details


class BadRequest(DossierError):
    """The request is malformed."""

    status = 400
    default_code = "bad_request"


class Unauthenticated(DossierError):
    """No valid credentials were presented."""

    status = 401
    default_code = "unauthenticated"


class Forbidden(DossierError):
    """The caller's role may never perform this action."""

    status = 403
    default_code = "forbidden"


class NotFound(DossierError):
    """The object does not exist or is not visible to the caller."""

    status = 404
    default_code = "not_found"


class Conflict(DossierError):
    """The object's current state forbids the action."""

    status = 409
    default_code = "conflict"


class Gone(DossierError):
    """The object no longer stands on its own (a merged case); ``public`` points onward."""

    status = 410
    default_code = "gone"


class PreconditionFailed(DossierError):
    """A conditional request's precondition (If-Match) failed."""

    status = 412
    default_code = "precondition_failed"


class PayloadTooLarge(DossierError):
    """The upload exceeds the configured limit."""

    status = 413
    default_code = "payload_too_large"


class UnsupportedMediaType(DossierError):
    """The uploaded bytes are not an accepted document type."""

    status = 415
    default_code = "unsupported_media_type"


class Unprocessable(DossierError):
    """The request is well-formed but its values are invalid."""

    status = 422
    default_code = "validation_failed"


class TooManyRequests(DossierError):
    """Too many failed authentications from the client's address; ``retry_after`` seconds."""

    status = 429
    default_code = "too_many_requests"


class ServiceUnavailable(DossierError):
    """A backend (storage, database, broker) cannot be reached."""

    status = 503
    default_code = "service_unavailable"
