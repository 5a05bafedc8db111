"""OpenID Connect login against a stub identity provider served on this machine."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import requests
from authlib.jose import JsonWebKey, jwt
from flask import Flask, jsonify, redirect, request
from sqlalchemy import select
from werkzeug.serving import make_server

from dossier_service.app import create_app
from dossier_service.config import ConfigError, load_settings
from dossier_service.models import AuditEntry

CLIENT_ID = "dossier-web"
CLIENT_SECRET = "stub-secret-0123456789"


class StubProvider:
    """A minimal OpenID Connect provider: discovery, authorize, token, JWKS (RS256)."""

    def __init__(self) -> None:
        self.key = JsonWebKey.generate_key("RSA", 2048, is_private=True, options={"kid": "k1"})
        self.codes: dict[str, dict[str, str]] = {}
        self.username = "aarau"
        self.app = Flask("stub-idp")
        self.app.add_url_rule("/.well-known/openid-configuration", "meta", self.meta)
        self.app.add_url_rule("/authorize", "authorize", self.authorize)
        self.app.add_url_rule("/token", "token", self.token, methods=["POST"])
        self.app.add_url_rule("/jwks", "jwks", self.jwks)
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.issuer = f"http://127.0.0.1:{self.server.server_port}"

    def meta(self):
        """Discovery document."""
        return jsonify(
            issuer=self.issuer,
            authorization_endpoint=f"{self.issuer}/authorize",
            token_endpoint=f"{self.issuer}/token",
            jwks_uri=f"{self.issuer}/jwks",
            response_types_supported=["code"],
            subject_types_supported=["public"],
            id_token_signing_alg_values_supported=["RS256"],
        )

    def authorize(self):
        """Approve at once and send the browser back with a code."""
        assert request.args["client_id"] == CLIENT_ID
        code = uuid.uuid4().hex
        self.codes[code] = {"nonce": request.args["nonce"], "user": self.username}
        query = urlencode({"code": code, "state": request.args["state"]})
        return redirect(f"{request.args['redirect_uri']}?{query}")

    def token(self):
        """Exchange the code for a signed ID token."""
        grant = self.codes.pop(request.form["code"])
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": CLIENT_ID,
            "sub": grant["user"],
            "preferred_username": grant["user"],
            "nonce": grant["nonce"],
            "iat": now,
            "exp": now + 300,
        }
        id_token = jwt.encode({"alg": "RS256", "kid": "k1"}, claims, self.key).decode()
        return jsonify(access_token="at", token_type="Bearer", expires_in=300, id_token=id_token)

    def jwks(self):
        """The public signing key."""
        return jsonify(keys=[self.key.as_dict(is_private=False)])


@pytest.fixture
def provider() -> Iterator[StubProvider]:
    """The stub provider on a free port, stopped after the test."""
    stub = StubProvider()
    thread = threading.Thread(target=stub.server.serve_forever, daemon=True)
    thread.start()
    yield stub
    stub.server.shutdown()
    thread.join(timeout=5)


@pytest.fixture
def oidc_client(container, world, provider):
    """A test client of an app configured with the stub provider."""
    settings = container.settings.with_overrides(
        oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID, oidc_client_secret=CLIENT_SECRET
    )
    container.settings = settings
    app = create_app(container=container)
    app.testing = True
    return app.test_client()


def _through_provider(client) -> requests.Response:
    """Start the login and follow the provider's redirect back to the app."""
    start = client.get("/login/oidc?next=/notifications")
    assert start.status_code == 302
    assert start.headers["Location"].startswith(provider_prefix(start))
    at_provider = requests.get(start.headers["Location"], allow_redirects=False, timeout=10)
    assert at_provider.status_code == 302
    back = urlsplit(at_provider.headers["Location"])
    assert back.path == "/login/oidc/callback" and "code" in parse_qs(back.query)
    return client.get(f"{back.path}?{back.query}")


def provider_prefix(response) -> str:
    """The address the login redirects to (the provider's authorize endpoint)."""
    return response.headers["Location"].split("?")[0]


def test_oidc_login_maps_the_provider_user_to_our_user(oidc_client, provider, container):
    login_page = oidc_client.get("/login").get_data(as_text=True)
    assert "Mit dem Login des Kantons anmelden" in login_page
    answer = _through_provider(oidc_client)
    assert answer.status_code == 302
    assert answer.headers["Location"] == "/notifications"
    assert oidc_client.get("/cases").status_code == 200
    with container.db.transaction() as session:
        entry = session.execute(
            select(AuditEntry).where(AuditEntry.action == "auth.login")
        ).scalar_one()
    assert (entry.actor, entry.detail) == ("aarau", {"method": "oidc"})


def test_oidc_login_of_an_unknown_user_is_refused(oidc_client, provider, container):
    provider.username = "fremd"
    answer = _through_provider(oidc_client)
    assert answer.status_code == 403
    assert "keinen aktiven Benutzer" in answer.get_data(as_text=True)
    assert oidc_client.get("/cases").status_code == 302


def test_oidc_callback_with_a_forged_state_is_refused(oidc_client, provider):
    oidc_client.get("/login/oidc")
    forged = oidc_client.get("/login/oidc/callback?code=abc&state=not-ours")
    assert forged.status_code == 401
    assert "Die Anmeldung beim Kanton ist fehlgeschlagen." in forged.get_data(as_text=True)
    assert oidc_client.get("/cases").status_code == 302


def test_oidc_settings_are_validated(tmp_path):
    base = {"DOSSIER_DATA_DIR": str(tmp_path)}
    with pytest.raises(ConfigError, match="DOSSIER_OIDC_CLIENT_SECRET"):
        load_settings(
            base | {"DOSSIER_OIDC_ISSUER": "https://login.ag.ch", "DOSSIER_OIDC_CLIENT_ID": "x"}
        )
    with pytest.raises(ConfigError, match="https://"):
        load_settings(
            base
            | {
                "DOSSIER_OIDC_ISSUER": "http://login.ag.ch",
                "DOSSIER_OIDC_CLIENT_ID": "x",
                "DOSSIER_OIDC_CLIENT_SECRET": "y",
            }
        )
    ok = load_settings(
        base
        | {
            "DOSSIER_OIDC_ISSUER": "https://login.ag.ch/realms/ag/",
            "DOSSIER_OIDC_CLIENT_ID": "x",
            "DOSSIER_OIDC_CLIENT_SECRET": "geheimnis-4711",
        }
    )
    assert ok.oidc_issuer == "https://login.ag.ch/realms/ag" and ok.oidc_enabled
    assert "geheimnis-4711" not in repr(ok)
