"""The caseworkers' web interface: server-rendered German pages over the same services.

Every page goes through the domain services and the one access policy, exactly like the
JSON API: a view parses the form or query string, calls a service with the logged-in
caller's Identity and renders the result. No view decides access itself.
"""

from __future__ import annotations

from flask import Blueprint, Flask

from dossier_service.container import Container
from dossier_service.web import (
    audit,
    auth,
    cases,
    cost_approvals,
    document_corrections,
    documents,
    errors,
    follow_ups,
    households,
    i18n,
    journal,
    notifications,
    person,
    plan_forms,
    registration,
    reports,
    search,
    security,
)


def create_blueprint() -> Blueprint:
    """The web blueprint (mounted at /) with every page registered."""
    bp = Blueprint("web", __name__)
    bp.before_request(auth.load_session_user)
    bp.before_request(security.check_csrf)
    bp.context_processor(auth.template_context)
    modules = (
        auth,
        registration,
        cases,
        person,
        plan_forms,
        journal,
        follow_ups,
        households,
        document_corrections,
        documents,
        search,
        audit,
        reports,
        notifications,
        cost_approvals,
    )
    for module in modules:
        module.register(bp)
    errors.register_blueprint(bp)
    return bp


def init_app(app: Flask, container: Container) -> None:
    """Configure sessions, translations, security headers and HTML error pages on the app."""
    auth.init_app(app, container.settings)
    i18n.init_app(app)
    security.init_app(app)
    errors.init_app(app)
