"""Per-request helpers of the pages: the caller, rendering, paging (and the shared context)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from flask import render_template, request
from flask.typing import ResponseReturnValue

from dossier_service.http.context import client_ip, container, identity, session

__all__ = [
    "Pager",
    "client_ip",
    "container",
    "identity",
    "page_arg",
    "render",
    "session",
    "wants_json",
]


def render(template: str, status: int = 200, **context: Any) -> ResponseReturnValue:
    """Render a page template with a status code."""
    return render_template(template, **context), status


def wants_json() -> bool:
    """True for the pages' own scripts (they ask for JSON), False for a browser navigation."""
    return request.accept_mimetypes.best == "application/json" or (
        request.headers.get("X-Requested-With") == "XMLHttpRequest"
    )


def page_arg(name: str = "page", maximum: int = 10_000) -> int:
    """A page number from the query string; anything odd becomes page 1."""
    raw = request.args.get(name, "1")
    try:
        value = int(raw)
    except ValueError:
        return 1
    return min(max(value, 1), maximum)


@dataclass(frozen=True)
class Pager:
    """Paging facts for a result list, and links that keep the other filters."""

    page: int
    per_page: int
    total: int

    @property
    def pages(self) -> int:
        """Number of pages (at least 1)."""
        return max(1, math.ceil(self.total / self.per_page))

    @property
    def first_item(self) -> int:
        """1-based number of the first item shown."""
        return 0 if self.total == 0 else (self.page - 1) * self.per_page + 1

    @property
    def last_item(self) -> int:
        """1-based number of the last item shown."""
        return min(self.total, self.page * self.per_page)

    def url(self, page: int) -> str:
        """This page's address with another page number and the same filters."""
        args = [(k, v) for k, vs in request.args.lists() for v in vs if k != "page"]
        args.append(("page", str(page)))
        return request.path + "?" + urlencode(args)
