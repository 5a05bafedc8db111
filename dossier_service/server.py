"""Runs the WSGI app under gunicorn (threaded workers that stream request bodies)."""

from __future__ import annotations

import gc
from pathlib import Path
from typing import Any

from gunicorn.app.base import BaseApplication


class _Gunicorn(BaseApplication):
    """Gunicorn configured from code instead of a config file."""

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self.options.items():
            self.cfg.set(key, value)

    def load(self) -> Any:
        from dossier_service.app import create_app

        return create_app()


def _post_worker_init(_worker: Any) -> None:
    """Move everything loaded at start-up out of the garbage collector's view.

    The app, its modules and templates live as long as the worker; without this, every full
    collection walks them again, which measured as the p95 tail of a 200-document case page
    (159 ms → 61 ms on SQLite in bench/web.py).
    """
    gc.collect()
    gc.freeze()


#: Seconds gunicorn keeps an idle connection open (nginx's upstream keepalive_timeout is less).
KEEPALIVE_S = 75


def run_server(
    bind: str, *, workers: int = 2, threads: int = 4, control_socket: Path | None = None
) -> None:
    """Serve on ``host:port`` or ``unix:PATH`` until interrupted."""
    options: dict[str, Any] = {}
    if control_socket is not None:
        # gunicorn's default (~/.gunicorn/gunicorn.ctl) is shared by every instance of a user.
        options["control_socket"] = str(control_socket)
    _Gunicorn(
        {
            **options,
            "bind": bind,
            "workers": workers,
            "threads": threads,
            "worker_class": "gthread",
            # Threaded workers heartbeat from the main thread: long uploads are not killed.
            "timeout": 120,
            "graceful_timeout": 30,
            # gunicorn closes an idle keep-alive connection after KEEPALIVE_S; a client that
            # reuses it at that moment gets a reset (the load run saw 3 in 600 s with the
            # default of 2 s, against 2 s of think time). Longer than any client's usual pause
            # and than nginx's upstream keepalive_timeout, so it is nginx that closes first.
            "keepalive": KEEPALIVE_S,
            "accesslog": "-",
            "limit_request_line": 8190,
            "post_worker_init": _post_worker_init,
        }
    ).run()
