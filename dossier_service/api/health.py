"""Health probe and the OpenAPI document."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from flask import Blueprint, Response, current_app, jsonify

from dossier_service.http.context import container
from dossier_service.services import health as health_service

OPENAPI_PATH = Path(__file__).with_name("openapi.json")


@cache
def _openapi() -> dict[str, Any]:
    return json.loads(OPENAPI_PATH.read_text("utf-8"))


def health() -> tuple[Response, int]:
    """GET /health: 200 when database, storage and broker answer, else 503."""
    healthy, checks = health_service.check(
        container(), current_app.extensions["dossier_broker_probe"]
    )
    return jsonify(
        {"status": "ok" if healthy else "degraded", "checks": checks}
    ), 200 if healthy else 503


def openapi() -> Response:
    """GET /openapi.json: the API description."""
    return jsonify(_openapi())


def register(bp: Blueprint) -> None:
    """Add the public routes to the API blueprint."""
    bp.add_url_rule("/health", endpoint="health", view_func=health, methods=["GET"])
    bp.add_url_rule("/openapi.json", endpoint="openapi", view_func=openapi, methods=["GET"])
