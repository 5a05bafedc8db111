"""S3/MinIO object store built on the minio SDK, translating every SDK error into ours."""

from __future__ import annotations

import io
import os
import stat as stat_mod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import BinaryIO
from xml.etree.ElementTree import ParseError

import certifi
import urllib3
from minio import Minio
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError
from minio.helpers import check_bucket_name
from urllib3.exceptions import HTTPError as Urllib3Error
from urllib3.util import Retry, Timeout

from storage.base import (
    CHUNK_SIZE,
    ByteStream,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_metadata,
    validate_range,
)

__all__ = ["S3Store"]

_META_PREFIX = "x-amz-meta-"

# Fail fast when the server is down: a refused/unroutable connection must surface as
# StorageUnavailable within seconds (the web tier answers 503), not after minio's
# default 5-minute timeouts and 5 retries. Reads get a generous timeout because a slow
# but alive server streaming a large document is normal.
_CONNECT_TIMEOUT_S = 3.0
_READ_TIMEOUT_S = 60.0

# S3 error codes meaning "try again later" rather than "your request is wrong".
_TRANSIENT_CODES = frozenset(
    {
        "InternalError",
        "RequestTimeout",
        "ServiceUnavailable",
        "SlowDown",
        "XMinioServerNotInitialized",
        "XMinioStorageFull",
    }
)


def _http_client() -> urllib3.PoolManager:
    """Build the connection pool with short timeouts and few, bounded retries."""
    retries = Retry(
        total=2,
        connect=1,
        # A read timeout already cost 60 s; retrying would multiply the wait.
        read=0,
        status=2,
        backoff_factor=0.2,
        status_forcelist=(502, 503, 504),
        # Hand the final error response to minio so it can parse the S3 error code.
        raise_on_status=False,
        # A "Retry-After: 3600" from an overloaded server must not block a request thread.
        respect_retry_after_header=False,
    )
    return urllib3.PoolManager(
        timeout=Timeout(connect=_CONNECT_TIMEOUT_S, read=_READ_TIMEOUT_S),
        retries=retries,
        maxsize=10,
        cert_reqs="CERT_REQUIRED",
        # Same CA resolution as minio's own default client (honours SSL_CERT_FILE).
        ca_certs=os.environ.get("SSL_CERT_FILE") or certifi.where(),
    )


def _normalise_metadata(headers: Mapping[str, str]) -> dict[str, str]:
    """Extract user metadata from response headers: lowercase, without ``x-amz-meta-``."""
    return {
        name.lower()[len(_META_PREFIX) :]: value
        for name, value in headers.items()
        if name.lower().startswith(_META_PREFIX)
    }


class S3Store:
    """Object store in one S3 bucket (MinIO in production, moto in tests)."""

    def __init__(
        self,
        endpoint: str,
        access_key: str,
        secret_key: str,
        bucket: str,
        secure: bool = False,
        region: str | None = None,
    ) -> None:
        """Configure the client; no network I/O happens until the first operation."""
        check_bucket_name(bucket)  # ValueError on a bad name: a configuration bug
        self.endpoint = endpoint
        self.bucket = bucket
        self.secure = secure
        self._client = Minio(
            endpoint,
            access_key=access_key,
            secret_key=secret_key,
            secure=secure,
            region=region,
            http_client=_http_client(),
        )
        # Set once the bucket is known to exist; writes create it lazily so a service can
        # start (and report unhealthy) while MinIO is still down.
        self._bucket_ready = False

    def describe(self) -> str:
        """Return ``s3://<endpoint>/<bucket>`` for logs."""
        return f"s3://{self.endpoint}/{self.bucket}"

    def __repr__(self) -> str:
        """Return a debug representation (without credentials)."""
        return f"S3Store({self.describe()!r}, secure={self.secure})"

    def ensure_bucket(self) -> None:
        """Create the bucket if it does not exist (tolerating a concurrent creator)."""
        with self._errors():
            if not self._client.bucket_exists(self.bucket):
                try:
                    self._client.make_bucket(self.bucket)
                except S3Error as exc:
                    if exc.code != "BucketAlreadyOwnedByYou":
                        raise
        self._bucket_ready = True

    # -- writes -------------------------------------------------------------------------

    def put_file(
        self, key: str, path: str | os.PathLike[str], metadata: Mapping[str, str]
    ) -> ObjectInfo:
        """Upload the file at ``path`` (multipart for large files); the source is kept."""
        validate_key(key)
        meta = validate_metadata(metadata)
        try:
            source = open(path, "rb")  # closed in the finally below
        except OSError as exc:
            raise StorageError(f"cannot read source file {os.fspath(path)!r}: {exc}") from exc
        try:
            st = os.fstat(source.fileno())
            if not stat_mod.S_ISREG(st.st_mode):
                raise StorageError(f"source {os.fspath(path)!r} is not a regular file")
            self._put(key, source, st.st_size, meta)
        finally:
            source.close()
        return ObjectInfo(key=key, size=st.st_size, metadata=meta)

    def put_bytes(self, key: str, data: bytes, metadata: Mapping[str, str]) -> ObjectInfo:
        """Upload ``data`` under ``key``; never overwrites."""
        validate_key(key)
        meta = validate_metadata(metadata)
        payload = bytes(data)
        self._put(key, io.BytesIO(payload), len(payload), meta)
        return ObjectInfo(key=key, size=len(payload), metadata=meta)

    def delete(self, key: str) -> None:
        """Delete ``key``; S3 DELETE of a missing key already succeeds, so it is idempotent."""
        validate_key(key)
        try:
            with self._errors(key):
                self._client.remove_object(self.bucket, key)
        except ObjectNotFound:
            pass

    # -- reads --------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Return size and metadata of ``key``; ObjectNotFound if missing."""
        validate_key(key)
        with self._errors(key):
            # A HEAD response has no body, so a missing bucket also reads as NoSuchKey here;
            # open()/iter_keys() do report it as StorageUnavailable.
            obj = self._client.stat_object(self.bucket, key)
        headers: Mapping[str, str] = obj.metadata or {}
        return ObjectInfo(key=key, size=obj.size or 0, metadata=_normalise_metadata(headers))

    def open(self, key: str, start: int = 0, length: int | None = None) -> ByteStream:
        """Stream a byte range of ``key`` in ≤1 MiB chunks; ObjectNotFound at call time."""
        validate_key(key)
        validate_range(start, length)
        if length == 0:
            # minio treats length=0 as "to the end", so answer locally after an existence
            # check (the contract promises ObjectNotFound for a missing key).
            self.stat(key)
            return ByteStream(iter(()), lambda: None)
        try:
            with self._errors(key):
                response = self._client.get_object(
                    self.bucket, key, offset=start, length=length or 0
                )
        except _RangeNotSatisfiable:
            # Range starts at/after the end: the object exists, the clamped range is empty.
            return ByteStream(iter(()), lambda: None)

        def release() -> None:
            """Free the HTTP response and its pooled connection."""
            # close() first so an aborted download does not hand a connection with unread
            # body back to the pool; release_conn() then returns the slot.
            response.close()
            response.release_conn()

        return ByteStream(self._stream(response, key), release)

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield object keys starting with ``prefix`` in ascending order (S3 list order)."""
        with self._errors():
            listing = self._client.list_objects(self.bucket, prefix=prefix or None, recursive=True)
            for obj in listing:
                name = obj.object_name
                if name is not None and not obj.is_dir:
                    yield name

    def check(self) -> None:
        """Probe the server (and create the bucket if missing); else StorageUnavailable."""
        try:
            self.ensure_bucket()
        except StorageUnavailable:
            raise
        except StorageError as exc:
            # Wrong credentials or policy make the store just as unusable as an outage.
            raise StorageUnavailable(f"{self.describe()} is not usable: {exc}") from exc

    # -- internals ----------------------------------------------------------------------

    def _put(self, key: str, data: BinaryIO, size: int, meta: dict[str, str]) -> None:
        """Upload ``size`` bytes from ``data`` under ``key`` unless the key exists."""
        if not self._bucket_ready:
            self.ensure_bucket()
        # S3 has no cheap portable "create only" PUT here, so check first. The window
        # between stat and PUT is a tolerated race: keys are fresh random UUIDs upstream,
        # so two writers never target the same key in practice.
        try:
            self.stat(key)
        except ObjectNotFound:
            pass
        else:
            raise ObjectExists(key)
        with self._errors(key):
            # Prefix explicitly: minio only auto-prefixes names it guesses are not standard
            # headers, so a metadata key like "content-type" would silently be lost.
            headers: dict[str, str | list[str] | tuple[str]] = {
                _META_PREFIX + name: value for name, value in meta.items()
            }
            self._client.put_object(self.bucket, key, data, size, metadata=headers)

    def _stream(self, response: urllib3.BaseHTTPResponse, key: str) -> Iterator[bytes]:
        """Yield the response body in ≤1 MiB chunks, translating network errors."""
        with self._errors(key):
            yield from response.stream(CHUNK_SIZE)

    @contextmanager
    def _errors(self, key: str | None = None) -> Iterator[None]:
        """Translate minio/urllib3/socket errors raised inside the block into StorageErrors."""
        where = self.describe()
        try:
            yield
        except S3Error as exc:
            status = exc.response.status if exc.response is not None else 0
            if exc.code in ("NoSuchKey", "NoSuchObject") and key is not None:
                raise ObjectNotFound(key) from None
            if exc.code == "InvalidRange":
                raise _RangeNotSatisfiable from None
            if exc.code == "NoSuchBucket":
                raise StorageUnavailable(f"bucket of {where} does not exist") from exc
            if exc.code in _TRANSIENT_CODES or status >= 500:
                raise StorageUnavailable(f"{where}: {exc.code}: {exc.message}") from exc
            raise StorageError(f"{where}: {exc.code}: {exc.message}") from exc
        except ServerError as exc:
            cls = StorageUnavailable if exc.status_code >= 500 else StorageError
            raise cls(f"{where}: HTTP {exc.status_code}") from exc
        except InvalidResponseError as exc:
            # Non-XML answer, typically an HTML error page from a proxy in front of MinIO.
            status = getattr(exc, "_code", 0) or 0  # minio keeps the status private
            cls = StorageUnavailable if status >= 500 else StorageError
            raise cls(f"{where}: unexpected response: {exc}") from exc
        except MinioException as exc:
            raise StorageError(f"{where}: {exc}") from exc
        except Urllib3Error as exc:
            # Connection refused/reset, timeouts, TLS failures, exhausted retries.
            raise StorageUnavailable(f"{where} unreachable: {exc}") from exc
        except ParseError as exc:
            raise StorageError(f"{where}: malformed XML response: {exc}") from exc
        except OSError as exc:
            # Socket errors urllib3 did not wrap, or reading the upload source failed.
            raise StorageUnavailable(f"{where}: I/O error: {exc}") from exc


class _RangeNotSatisfiable(StorageError):
    """Internal: the server answered 416 because the range starts past the end."""
