"""Pytest fixtures providing an S3 peer: CI's server if configured, else an in-process moto."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest

from dossier_service.config import Settings
from storage.s3 import S3Store

ENDPOINT_ENV = "DOSSIER_TEST_S3_ENDPOINT"
ACCESS_KEY = "testing"  # moto accepts any credentials; CI's server is configured to match
SECRET_KEY = "testing"
REGION = "us-east-1"


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """Yield ``host:port`` of an S3 server: $DOSSIER_TEST_S3_ENDPOINT or a moto thread."""
    configured = os.environ.get(ENDPOINT_ENV)
    if configured:
        yield configured
        return
    # moto's backends read the region from the environment.
    os.environ.setdefault("AWS_DEFAULT_REGION", REGION)
    from moto.server import ThreadedMotoServer  # heavy import: only when actually needed

    # Port 0 lets the kernel pick a free port atomically (no probe-then-bind race).
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def s3_store(s3_endpoint: str) -> Iterator[S3Store]:
    """Return an S3Store on a fresh, uniquely named bucket; empties and drops it afterwards."""
    bucket = f"test-{uuid.uuid4().hex[:20]}"
    store = S3Store(s3_endpoint, ACCESS_KEY, SECRET_KEY, bucket, secure=False, region=REGION)
    store.ensure_bucket()
    yield store
    # Keep a long-lived CI server clean; for moto this is merely tidy.
    for key in list(store.iter_keys()):
        store.delete(key)
    from minio import Minio

    Minio(s3_endpoint, ACCESS_KEY, SECRET_KEY, secure=False, region=REGION).remove_bucket(bucket)


def s3_settings(settings: Settings, endpoint: str) -> Settings:
    """The test's settings with the S3 backend on a fresh, uniquely named bucket at ENDPOINT."""
    return settings.with_overrides(
        storage="s3",
        s3_endpoint=endpoint,
        s3_access_key=ACCESS_KEY,
        s3_secret_key=SECRET_KEY,
        s3_bucket=f"dossier-{uuid.uuid4().hex[:12]}",
        s3_secure=False,
        s3_region=REGION,
    )
