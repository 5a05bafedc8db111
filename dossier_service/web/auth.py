"""Login (password or the canton's OpenID Connect provider), logout, session and idle timeout.

The session lives on the server (table web_sessions); Flask's signed cookie (HttpOnly,
SameSite=Lax, Secure behind TLS or when DOSSIER_SECURE_COOKIES is set) only names it and
holds the CSRF token and the language. Every request checks the session's row: not ended,
not idle for DOSSIER_SESSION_IDLE_MINUTES (the pages' background polling does not count as
activity), not older than accounts.MAX_SESSION (12 hours), its user active. Logout, a new password,
disabling the user and revoking their tokens end the row, so a copied cookie opens nothing
afterwards. The user's role and unit are read from the database on every request.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any
from urllib.parse import urlencode

from flask import (
    Blueprint,
    Flask,
    current_app,
    flash,
    g,
    make_response,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSessionInterface
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _

from dossier_service.config import Settings, session_secret
from dossier_service.errors import Unauthenticated
from dossier_service.http.unit_of_work import separate_transaction
from dossier_service.identity import Identity
from dossier_service.models import User
from dossier_service.policy import Action, may
from dossier_service.services import accounts, audit
from dossier_service.web import i18n
from dossier_service.web.context import client_ip, container, wants_json
from dossier_service.web.context import session as db_session
from dossier_service.web.errors import message_for
from dossier_service.web.login_form import login_page, safe_next
from dossier_service.web.security import csrf_token

log = logging.getLogger(__name__)

#: Pages reachable without a session.
PUBLIC_ENDPOINTS = frozenset(
    {"web.login", "web.login_oidc", "web.oidc_callback", "web.set_language"}
)
#: Background requests of open pages: they must not keep an unattended session alive.
PASSIVE_ENDPOINTS = frozenset({"web.case_processing"})


class _SessionInterface(SecureCookieSessionInterface):
    """Signed cookie sessions whose Secure flag also follows the request's scheme."""

    def get_cookie_secure(self, app: Flask) -> bool:
        """Secure when configured, or when this request came over TLS (via trusted proxies)."""
        configured = bool(app.config.get("SESSION_COOKIE_SECURE"))
        try:
            return configured or request.is_secure
        except RuntimeError:  # outside a request
            return configured


def init_app(app: Flask, settings: Settings) -> None:
    """Session key and cookie settings; the OIDC client when configured."""
    app.secret_key = session_secret(settings)
    app.session_interface = _SessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="dossier_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.secure_cookies,
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    if settings.oidc_enabled:
        from authlib.integrations.flask_client import OAuth

        oauth = OAuth(app)
        oauth.register(
            "canton",
            client_id=settings.oidc_client_id,
            client_secret=settings.oidc_client_secret,
            server_metadata_url=f"{settings.oidc_issuer}/.well-known/openid-configuration",
            client_kwargs={"scope": "openid profile email"},
        )
        app.extensions["dossier_oauth"] = oauth


def home_for(who: Identity) -> str:
    """The first page of a role: its cases, the audit log, or the overview."""
    if may(who, Action.CASE_READ):
        return url_for("web.case_list")
    if may(who, Action.AUDIT_READ):
        return url_for("web.audit_log")
    return url_for("web.start")


def _to_login(message: str | None) -> ResponseReturnValue:
    """Send a request without a valid session to the login page (or 401 for scripts)."""
    if wants_json():
        from flask import jsonify

        response = jsonify({"error": {"message": message or _("Bitte melden Sie sich an.")}})
        response.status_code = 401
        return response
    if message:
        flash(message, "info")
    target = request.full_path.rstrip("?") if request.method == "GET" else None
    query = "?" + urlencode({"next": target}) if target and target != "/" else ""
    return redirect(url_for("web.login") + query)


def _clear_session() -> None:
    """Forget the session's id and token; keep the chosen language."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def load_session_user() -> ResponseReturnValue | None:
    """Before every page: resolve the server-side session to an Identity, or send to login."""
    if request.endpoint in PUBLIC_ENDPOINTS or request.endpoint is None:
        return None
    sid = session.get("sid")
    if not sid:
        return _to_login(None)
    minutes = container().settings.session_idle_minutes
    # A transaction of its own: an idle session is ended even if this request then fails,
    # and no row lock is held while the page is built.
    with separate_transaction() as db:
        result = accounts.resume_web_session(
            db,
            str(sid),
            client_ip(),
            dt.timedelta(minutes=minutes),
            activity=request.endpoint not in PASSIVE_ENDPOINTS,
        )
    if isinstance(result, Identity):
        g.identity = result
        return None
    _clear_session()
    if result == "idle":
        return _to_login(
            _("Sie wurden nach %(minutes)d Minuten ohne Aktivität abgemeldet.", minutes=minutes)
        )
    if result == "inactive":
        return _to_login(_("Ihr Zugang ist nicht mehr aktiv."))
    return _to_login(_("Ihre Sitzung ist abgelaufen. Bitte melden Sie sich neu an."))


def template_context() -> dict[str, Any]:
    """What every page template may use: the caller and what the role may open."""
    who: Identity | None = g.get("identity")
    name = unit = ""
    if who is not None:
        user = db_session().get(User, who.user_id)  # loaded already by load_session_user
        if user is not None:
            name, unit = user.display_name or user.username, user.unit.name
    return {
        "me": who,
        "me_name": name,
        "me_unit": unit,
        "can": (lambda action: who is not None and may(who, Action(action))),
        "oidc_enabled": container().settings.oidc_enabled,
    }


def _start_session(who: Identity) -> None:
    """A fresh session for the user (a new id and token: no fixation of an old one)."""
    sid = accounts.start_web_session(db_session(), who)
    _clear_session()
    session["sid"] = sid
    csrf_token()


def _record_refusal(exc: Unauthenticated) -> None:
    """Store a refused login although the request's work rolls back (the throttle counts it)."""
    with separate_transaction() as db:
        accounts.record_refusal(db, exc, client_ip())


def login() -> ResponseReturnValue:
    """GET/POST /login: the password login."""
    if request.method == "GET":
        if session.get("sid") is not None:
            return redirect(url_for("web.start"))
        return login_page()
    username = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    if not username or not password:
        return login_page(
            error=_("Bitte geben Sie Benutzername und Passwort ein."), username=username, status=422
        )
    db = db_session()
    try:
        who = accounts.login_with_password(db, username, password, client_ip())
    except Unauthenticated as exc:
        _record_refusal(exc)
        if exc.code == "login_throttled":
            minutes = max(1, round(int(exc.details.get("retry_after", 900)) / 60))
            response = make_response(
                login_page(
                    error=_(
                        "Zu viele fehlgeschlagene Anmeldungen. Bitte versuchen Sie es in "
                        "%(minutes)d Minuten wieder.",
                        minutes=minutes,
                    ),
                    username=username,
                    status=429,
                )
            )
            response.headers["Retry-After"] = str(int(exc.details.get("retry_after", 900)))
            return response
        return login_page(error=message_for(exc), username=username, status=401)
    _start_session(who)
    return redirect(safe_next(request.form.get("next")) or home_for(who))


def logout() -> ResponseReturnValue:
    """POST /logout: end the session (audited)."""
    db = db_session()
    accounts.end_web_session(db, str(session.get("sid", "")), "logout")
    audit.record(db, g.identity, "auth.logout")
    _clear_session()
    flash(_("Sie sind abgemeldet."), "info")
    return redirect(url_for("web.login"))


def _redirect_uri() -> str:
    """Where the identity provider sends the browser back to."""
    public_url = container().settings.public_url
    if public_url:
        return public_url + url_for("web.oidc_callback")
    return url_for("web.oidc_callback", _external=True)


def login_oidc() -> ResponseReturnValue:
    """GET /login/oidc: off to the canton's identity provider."""
    oauth = current_app.extensions.get("dossier_oauth")
    if oauth is None:
        return redirect(url_for("web.login"))
    session["oidc_next"] = safe_next(request.args.get("next")) or ""
    try:
        answer: ResponseReturnValue = oauth.canton.authorize_redirect(_redirect_uri())
        return answer
    except Exception:
        log.exception("OpenID Connect provider unreachable")
        return login_page(
            error=_("Der Anmeldedienst des Kantons ist nicht erreichbar. Bitte später nochmals."),
            status=503,
        )


def oidc_callback() -> ResponseReturnValue:
    """GET /login/oidc/callback: check the provider's answer (state, nonce, signature)."""
    from authlib.integrations.base_client.errors import OAuthError

    oauth = current_app.extensions.get("dossier_oauth")
    if oauth is None:
        return redirect(url_for("web.login"))
    try:
        token = oauth.canton.authorize_access_token()
    except OAuthError as exc:
        log.warning("OpenID Connect login refused: %s", exc.error)
        return login_page(error=_("Die Anmeldung beim Kanton ist fehlgeschlagen."), status=401)
    except Exception:
        log.exception("OpenID Connect token exchange failed")
        return login_page(
            error=_("Der Anmeldedienst des Kantons ist nicht erreichbar. Bitte später nochmals."),
            status=503,
        )
    claims = token.get("userinfo") or {}
    username = claims.get("preferred_username")
    db = db_session()
    try:
        who = accounts.login_with_oidc(db, username, client_ip())
    except Unauthenticated as exc:
        _record_refusal(exc)
        return login_page(error=message_for(exc), status=403)
    target = safe_next(session.get("oidc_next"))
    _start_session(who)
    return redirect(target or home_for(who))


def set_language() -> ResponseReturnValue:
    """POST /language: switch the language of the pages for this session."""
    lang = request.form.get("lang", "")
    if lang in i18n.LANGUAGES:
        session["lang"] = lang
    return redirect(safe_next(request.form.get("next")) or url_for("web.start"))


def start() -> ResponseReturnValue:
    """GET /: the role's first page."""
    who: Identity = g.identity
    target = home_for(who)
    if target != url_for("web.start"):
        return redirect(target)
    return render_template("start.html")


def register(bp: Blueprint) -> None:
    """Add the login routes."""
    bp.add_url_rule("/", "start", start)
    bp.add_url_rule("/login", "login", login, methods=["GET", "POST"])
    bp.add_url_rule("/logout", "logout", logout, methods=["POST"])
    bp.add_url_rule("/login/oidc", "login_oidc", login_oidc)
    bp.add_url_rule("/login/oidc/callback", "oidc_callback", oidc_callback)
    bp.add_url_rule("/language", "set_language", set_language, methods=["POST"])
