"""The login form, shown by the login view and by a refused login form (an outdated token)."""

from __future__ import annotations

from flask import render_template, request
from flask.typing import ResponseReturnValue

from dossier_service.web.context import container
from dossier_service.web.security import csrf_token


def safe_next(target: str | None) -> str | None:
    """A local path to return to after login; anything else (another site) is dropped."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return None
    if any(ord(c) < 32 for c in target):
        return None
    return target


def login_page(
    *, error: str | None = None, username: str = "", status: int = 200
) -> ResponseReturnValue:
    """The login form (with the username kept after a failed attempt)."""
    csrf_token()  # a login form needs a token before there is any session
    return (
        render_template(
            "login.html",
            error=error,
            username=username,
            next=safe_next(request.values.get("next")) or "",
            oidc_enabled=container().settings.oidc_enabled,
        ),
        status,
    )
