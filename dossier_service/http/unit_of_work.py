"""One unit of work per request: commit once if the request succeeded, else roll back.

Views and services never commit. The request's session (``context.session``) is committed
once, after the view returned and before the response leaves, so a failing commit turns
into an error response instead of a lost write behind a 200, and a streamed body (a
download) starts only after its audit entry is stored. A request during which an
exception was raised (handled by an error handler or not: every 4xx/5xx a handler renders)
rolls back. A view that catches a refusal itself, rolls back the failed change and shows
the form again has handled it: what it does afterwards (the page's audited read) commits.

Writes that must survive a refused request (the audit entry of a denied access, a failed
login) go through ``separate_transaction``. The CLI and the Celery tasks use
``Database.transaction`` instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from flask import Flask, Response, g
from sqlalchemy.orm import Session

from dossier_service.http.context import close_session, container


class UnitOfWorkFlask(Flask):
    """A Flask app whose every request is one unit of work (see the module docstring)."""

    def handle_user_exception(self, e: Exception) -> Any:
        """An exception raised by a hook or view: the request's work must not commit."""
        g.unit_of_work_failed = True
        return super().handle_user_exception(e)

    def handle_exception(self, e: Exception) -> Response:
        """An exception no handler took (or one raised by the commit): roll back too."""
        g.unit_of_work_failed = True
        return super().handle_exception(e)

    def process_response(self, response: Response) -> Response:
        """End the unit of work, then run the after-request hooks on the final response."""
        return super().process_response(self._finish(response))

    def _finish(self, response: Response) -> Response:
        """Commit the request's session, or roll it back after an error."""
        db_session: Session | None = g.get("db_session")
        if db_session is None:
            return response
        if g.get("unit_of_work_failed"):
            db_session.rollback()
            return response
        try:
            db_session.commit()
        except Exception as exc:
            db_session.rollback()
            # The error handlers render it like any other failure of the request.
            return self.make_response(self.handle_user_exception(exc))
        return response


def init_app(app: Flask) -> None:
    """Close the request's session at the end of every request."""
    app.teardown_appcontext(close_session)


@contextmanager
def separate_transaction() -> Iterator[Session]:
    """A transaction of its own for a write that must survive the refused request.

    The request's own transaction ends first (rolled back): on SQLite it holds the write
    lock the new transaction would wait for, and its work must not be stored anyway.
    """
    close_session()
    with container().db.transaction() as db_session:
        yield db_session
