"""The JSON HTTP API (/api/v1): thin views over the domain services."""

from __future__ import annotations

from flask import Blueprint

from dossier_service.api import (
    archive,
    audit_log,
    cases,
    cost_approvals,
    documents,
    follow_ups,
    health,
    households,
    journal,
    notifications,
    plan,
    reports,
    search,
)
from dossier_service.api.context import authenticate, reject_nul_characters


def create_blueprint() -> Blueprint:
    """The /api/v1 blueprint with every resource registered."""
    bp = Blueprint("api", __name__, url_prefix="/api/v1")
    bp.before_request(authenticate)
    bp.before_request(reject_nul_characters)
    for module in (
        health,
        cases,
        households,
        journal,
        follow_ups,
        documents,
        audit_log,
        plan,
        cost_approvals,
        notifications,
        reports,
        search,
        archive,
    ):
        module.register(bp)
    return bp
