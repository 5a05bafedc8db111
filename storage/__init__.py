"""Object storage for immutable document versions: bytes plus small string metadata."""

from __future__ import annotations

from storage.base import (
    CHUNK_SIZE,
    ByteStream,
    InvalidKey,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    ObjectStore,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_metadata,
)
from storage.local import LocalStore
from storage.s3 import S3Store

__all__ = [
    "CHUNK_SIZE",
    "ByteStream",
    "InvalidKey",
    "LocalStore",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "S3Store",
    "StorageError",
    "StorageUnavailable",
    "open_store",
    "validate_key",
    "validate_metadata",
]


def open_store(
    kind: str,
    *,
    root: str | None = None,
    endpoint: str | None = None,
    access_key: str | None = None,
    secret_key: str | None = None,
    bucket: str | None = None,
    secure: bool = False,
    region: str | None = None,
) -> ObjectStore:
    """Build the configured store ("local" needs root; "s3" needs endpoint, keys, bucket)."""
    if kind == "local":
        if not root:
            raise ValueError("local storage needs a root directory")
        return LocalStore(root)
    if kind == "s3":
        if not (endpoint and access_key and secret_key and bucket):
            given = {
                "endpoint": endpoint,
                "access_key": access_key,
                "secret_key": secret_key,
                "bucket": bucket,
            }
            missing = ", ".join(name for name, value in given.items() if not value)
            raise ValueError(f"s3 storage needs {missing}")
        # No network I/O here: the bucket is created lazily on first write or check(), so
        # the service can start while MinIO is still down and report it via health checks.
        return S3Store(endpoint, access_key, secret_key, bucket, secure=secure, region=region)
    raise ValueError(f"unknown storage kind {kind!r} (expected 'local' or 's3')")
