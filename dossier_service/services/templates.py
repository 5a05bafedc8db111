"""The Jinja environment of generated documents (letters, the disclosure's index.html)."""

from __future__ import annotations

import html
from typing import Any

import jinja2
from markupsafe import Markup

_environment: jinja2.Environment | None = None


def _finalize(value: Any) -> Any:
    """Print None as nothing and escape with the entities these documents always used.

    Autoescaping stays on; this only picks ``&quot;``/``&#x27;`` (``html.escape``) over
    markupsafe's numeric forms, so an escaped value reads the same as in older documents.
    """
    if value is None:
        return ""
    if hasattr(value, "__html__"):
        return value
    return Markup(html.escape(str(value), quote=True))  # noqa: S704 - escaped just here


def environment() -> jinja2.Environment:
    """The package's templates, autoescaped: every value is data, never markup."""
    global _environment
    if _environment is None:
        _environment = jinja2.Environment(
            loader=jinja2.PackageLoader("dossier_service", "templates"),
            autoescape=True,
            finalize=_finalize,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
        )
    return _environment
