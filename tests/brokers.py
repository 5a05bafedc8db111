"""Pytest fixture of the Celery brokers a real worker is tried on: embedded, and Redis if set."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

BROKERS = ["embedded"] + (["redis"] if os.environ.get("DOSSIER_TEST_REDIS_URL") else [])


@pytest.fixture(params=BROKERS)
def broker_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The embedded broker (never redelivers), and Redis (redelivers only after an hour)."""
    if request.param == "embedded":
        return f"sqla+sqlite:///{tmp_path / 'broker.sqlite'}"
    url = os.environ["DOSSIER_TEST_REDIS_URL"]
    import redis

    redis.Redis.from_url(url).flushdb()
    return url
