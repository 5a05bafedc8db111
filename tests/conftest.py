"""Shared fixtures: a migrated database per backend, the app, users with tokens."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, Phase
from hypothesis import settings as hypothesis_settings
from sqlalchemy import create_engine, text

from dossier_service.app import create_app
from dossier_service.config import Settings, load_settings
from dossier_service.container import Container
from dossier_service.db import Base, Database
from dossier_service.schema import upgrade
from tests.factories import World, create_world

#: PostgreSQL runs when this is set (CI and `make test` set it when a server answers).
PG_URL = os.environ.get("DOSSIER_TEST_DATABASE_URL")
DB_BACKENDS = ["sqlite"] + (["postgresql"] if PG_URL else [])

# Hypothesis: "ci" replays the same examples on every run and keeps no example database;
# "dev" explores new examples each run and remembers failures in the git-ignored .hypothesis/.
# The explain phase traces every line on Python < 3.12 and can take minutes per failure.
PHASES = tuple(phase for phase in Phase if phase is not Phase.explain)
hypothesis_settings.register_profile(
    "ci",
    derandomize=True,
    database=None,
    max_examples=200,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow],
    phases=PHASES,
)
hypothesis_settings.register_profile("dev", max_examples=200, deadline=None, phases=PHASES)
hypothesis_settings.load_profile(
    os.environ.get("DOSSIER_TEST_HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
)


def pytest_report_header(config: pytest.Config) -> list[str]:
    """Say which backends this run covers, so a missing one is never silent."""
    lines = [f"dossier database backends: {', '.join(DB_BACKENDS)}"]
    if not PG_URL:
        lines.append("PostgreSQL NOT covered: set DOSSIER_TEST_DATABASE_URL (CI does)")
    if not os.environ.get("DOSSIER_TEST_REDIS_URL"):
        lines.append("Redis broker NOT covered: set DOSSIER_TEST_REDIS_URL (CI does)")
    return lines


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Repeat the coverage note at the end of the run."""
    for line in pytest_report_header(terminalreporter.config):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (migrating per test is slow)."""
    path = tmp_path_factory.mktemp("template") / "template.sqlite"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test session."""
    assert PG_URL is not None
    name = f"dossier_test_{uuid.uuid4().hex[:10]}"
    url = Settings(data_dir=Path("."), database_url=PG_URL).database_url
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://") :]
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    test_url = url.rsplit("/", 1)[0] + "/" + name
    db = Database(test_url)
    upgrade(db)
    db.dispose()
    yield test_url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _truncate_pg(url: str) -> None:
    db = Database(url)
    tables = ", ".join(f'"{t.name}"' for t in Base.metadata.sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    db.dispose()


@pytest.fixture(params=DB_BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> str:
    """A clean, migrated database of each configured backend."""
    if request.param == "sqlite":
        path = tmp_path / "dossier.sqlite"
        shutil.copy(sqlite_template, path)
        return f"sqlite:///{path}"
    url: str = request.getfixturevalue("pg_database")
    _truncate_pg(url)
    return url


@pytest.fixture
def empty_database_url(database_url: str, tmp_path: Path) -> Iterator[str]:
    """An empty, unmigrated database of the same backend as ``database_url``."""
    if database_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'empty.sqlite'}"
        return
    name = f"dossier_empty_{uuid.uuid4().hex[:10]}"
    admin = create_engine(database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield database_url.rsplit("/", 1)[0] + "/" + name
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings for one test: its own data dir, eager tasks, local storage."""
    base = load_settings({"DOSSIER_DATA_DIR": str(tmp_path / "data")})
    return base.with_overrides(database_url=database_url, tasks_eager=True, inspect_timeout=30.0)


@pytest.fixture
def container(settings: Settings) -> Iterator[Container]:
    """The container the app under test uses."""
    c = Container(settings)
    yield c
    c.close()


@pytest.fixture
def app(container: Container) -> Flask:
    """The Flask app under test."""
    flask_app = create_app(container=container)
    flask_app.testing = True
    return flask_app


@pytest.fixture
def world(container: Container) -> World:
    """Create the units and users and a token for each user."""
    return create_world(container)


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    """A test client of the app."""
    return app.test_client()
