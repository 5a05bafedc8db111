"""Flask application factory."""

from __future__ import annotations

import logging
from typing import Any

from flask import Flask, Response, request
from werkzeug.middleware.proxy_fix import ProxyFix

from dossier_service import web
from dossier_service.api import create_blueprint
from dossier_service.api import errors as api_errors
from dossier_service.config import Settings, load_settings
from dossier_service.container import Container
from dossier_service.http import limits, unit_of_work
from workers.celery_app import make_broker_probe, make_sender
from workers.tasks import use_container


def create_app(settings: Settings | None = None, *, container: Container | None = None) -> Flask:
    """Build the WSGI app from settings (the environment by default)."""
    settings = settings or (container.settings if container else load_settings())
    container = container or Container(settings)
    # The entry point wires the broker: the container sends tasks through Celery (unless a
    # test handed in its own sender), and eager tasks run in this process on this container.
    if not container.has_task_sender:
        container.use_task_sender(make_sender(settings))
    if settings.tasks_eager:
        use_container(container)
    logging.basicConfig(
        level=settings.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    app = unit_of_work.UnitOfWorkFlask(__name__)
    # Every body is bounded before it is read (the streamed uploads by the upload limit).
    limits.init_app(app, settings.max_body_bytes, settings.max_upload_bytes)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.extensions["dossier"] = container
    app.extensions["dossier_broker_probe"] = make_broker_probe(settings)
    if settings.trusted_proxies:
        app.wsgi_app = ProxyFix(  # type: ignore[method-assign]
            app.wsgi_app, x_for=settings.trusted_proxies, x_proto=settings.trusted_proxies
        )
    app.register_blueprint(create_blueprint())
    api_errors.register(app)
    unit_of_work.init_app(app)

    @app.after_request
    def _security_headers(response: Response) -> Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "no-referrer")
        response.headers.setdefault("X-Frame-Options", "DENY")
        if request.path.startswith("/api/"):
            # Answers name people and cases: no cache (browser, proxy) may keep them. Files
            # set "private, no-store" themselves.
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    # The caseworkers' pages at /: sessions, CSRF, translations, headers, HTML errors.
    # Registered after the hook above so that the pages' own headers (run first) win.
    app.register_blueprint(web.create_blueprint())
    web.init_app(app, container)
    return app


def wsgi(*_args: Any) -> Flask:
    """Entry point for WSGI servers: ``gunicorn 'dossier_service.app:wsgi()'``."""
    return create_app()
