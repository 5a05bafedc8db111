"""A live server with a small canton and a headless Debian chromium for the browser tests.

The app runs in this process on a free port (werkzeug's threaded server in a thread) with
eager tasks, so an upload is processed and indexed before its request returns. The browser
is Debian's /usr/bin/chromium driven by Playwright; no browser is ever downloaded.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from werkzeug.serving import make_server

from dossier_service.app import create_app
from dossier_service.config import load_settings
from dossier_service.container import Container
from dossier_service.schema import upgrade
from dossier_service.services import accounts
from tests.browser.pages import LiveServer
from tests.factories import PASSWORD, UNITS, USERS

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--lang=de-CH",  # the browser's own texts (e.g. the file chooser button) in German
]
VIEWPORT = {"width": 1280, "height": 900}


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """Serve the app on a free port for the whole browser session; stop it afterwards."""
    data_dir = tmp_path_factory.mktemp("browser-data")
    settings = load_settings({"DOSSIER_DATA_DIR": str(data_dir)}).with_overrides(tasks_eager=True)
    container = Container(settings)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    upgrade(container.db)
    with container.db.transaction() as session:
        for code, name, kind in UNITS:
            accounts.create_unit(session, code, name, kind)
        for username, unit, role in USERS:
            accounts.create_user(session, username, unit, role)
            accounts.set_password(session, username, PASSWORD)
    app = create_app(container=container)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, name="live-server", daemon=True)
    thread.start()
    try:
        yield LiveServer(f"http://127.0.0.1:{server.server_port}", container)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        container.close()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's chromium, headless, launched once per session."""
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def context(browser: Browser, live_server: LiveServer) -> Iterator[BrowserContext]:
    """A fresh browser profile (no cookies) per test, German first."""
    ctx = browser.new_context(
        base_url=live_server.url, viewport=VIEWPORT, locale="de-CH", accept_downloads=True
    )
    ctx.set_default_timeout(15_000)
    try:
        yield ctx
    finally:
        ctx.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    """A page in the test's browser profile, failing the test on any script error."""
    new_page = context.new_page()
    errors: list[str] = []
    new_page.on("pageerror", lambda exc: errors.append(str(exc)))
    new_page.on(
        "console",
        lambda msg: (
            errors.append(msg.text)
            if msg.type == "error" and "Content Security Policy" in msg.text
            else None
        ),
    )
    new_page.script_errors = errors  # type: ignore[attr-defined]
    return new_page
