"""Request body limits: every body is bounded before it is read, chunked ones as they arrive."""

from __future__ import annotations

from collections.abc import Iterable
from typing import IO, Any

from flask import Flask, request
from werkzeug.exceptions import RequestEntityTooLarge

from dossier_service.http.uploads import MULTIPART_OVERHEAD, STREAMED_UPLOADS

#: The WSGI environ key the request hook sets and the counting stream reads.
LIMIT_KEY = "dossier.body_limit"


class CountingInput:
    """``wsgi.input`` of a body without Content-Length (chunked): counted as it is read.

    The limit is looked up at every read, because routing (which decides whether this is
    an upload) happens after the stream was wrapped. Crossing it raises 413, which the
    error handlers render in the one JSON shape or as a German page.
    """

    def __init__(self, stream: IO[bytes], environ: dict[str, Any]) -> None:
        self._stream = stream
        self._environ = environ
        self._count = 0

    def _counted(self, data: bytes) -> bytes:
        self._count += len(data)
        limit = self._environ.get(LIMIT_KEY)
        if limit is not None and self._count > limit:
            raise RequestEntityTooLarge()
        return data

    def read(self, size: int = -1) -> bytes:
        """Read like the wrapped stream and count what came."""
        return self._counted(self._stream.read(size))

    def readline(self, size: int = -1) -> bytes:
        """Read a line like the wrapped stream and count it."""
        return self._counted(self._stream.readline(size))

    def __iter__(self) -> Iterable[bytes]:
        while line := self.readline(64 * 1024):
            yield line

    def close(self) -> None:
        """Close the wrapped stream if it can be closed."""
        close = getattr(self._stream, "close", None)
        if close is not None:
            close()


class BodyLimitMiddleware:
    """Wrap the input of every request that has no Content-Length in a CountingInput."""

    def __init__(self, app: Any) -> None:
        self.app = app

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        """Count a chunked body; a declared length is checked by Flask before reading."""
        if not environ.get("CONTENT_LENGTH") and "wsgi.input" in environ:
            environ["wsgi.input"] = CountingInput(environ["wsgi.input"], environ)
        return self.app(environ, start_response)


def body_limit(max_body_bytes: int, max_upload_bytes: int) -> int:
    """The largest body this request may send: the upload limit on the streamed uploads."""
    if request.endpoint in STREAMED_UPLOADS:
        return max_upload_bytes + MULTIPART_OVERHEAD
    return max_body_bytes


def init_app(app: Flask, max_body_bytes: int, max_upload_bytes: int) -> None:
    """Apply the limits: Flask's for declared lengths and forms, the middleware for chunks."""
    app.config.update(MAX_CONTENT_LENGTH=max_body_bytes, MAX_FORM_MEMORY_SIZE=max_body_bytes)

    @app.before_request
    def _limit_body() -> None:
        # Runs after routing and before any view or blueprint hook touches the body.
        limit = body_limit(max_body_bytes, max_upload_bytes)
        request.environ[LIMIT_KEY] = limit
        if isinstance(request.environ.get("wsgi.input"), CountingInput):
            # Werkzeug would silently cut a chunked body at its limit (and the JSON or form
            # parser would then fail with a misleading 400): let one byte more through, so
            # that the counting stream sees the body cross the limit and answers 413.
            limit += 1
        request.max_content_length = limit

    app.wsgi_app = BodyLimitMiddleware(app.wsgi_app)  # type: ignore[method-assign]
