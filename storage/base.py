"""Storage contract: exceptions, object info, the ObjectStore protocol and shared validation."""

# Exception tree (every backend raises only these, never backend/SDK errors):
#
#   StorageError                  base class; "something went wrong in storage"
#   ├── ObjectNotFound            the key does not exist
#   ├── ObjectExists              put_* on an existing key; objects are never overwritten
#   ├── StorageUnavailable        backend unreachable, down, timing out, misconfigured or
#   │                             out of space: retrying later (or fixing ops) may help;
#   │                             callers typically map it to HTTP 503
#   └── InvalidKey (+ValueError)  the key violates the key rules; a caller bug
#
# Invalid metadata raises a plain ValueError (caller bug, nothing storage-specific).

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = [
    "CHUNK_SIZE",
    "MAX_METADATA_BYTES",
    "MAX_SEGMENT_LENGTH",
    "ByteStream",
    "InvalidKey",
    "ObjectExists",
    "ObjectInfo",
    "ObjectNotFound",
    "ObjectStore",
    "StorageError",
    "StorageUnavailable",
    "validate_key",
    "validate_metadata",
    "validate_range",
]

#: Upper bound for the size of each chunk yielded by ``ObjectStore.open``.
CHUNK_SIZE = 1024 * 1024

#: Longest allowed key segment (between slashes).
MAX_SEGMENT_LENGTH = 250

#: S3 limits user metadata to 2 KiB (keys + values); enforce it for every backend so
#: that code tested against the local store cannot break in production on S3.
MAX_METADATA_BYTES = 2048


class StorageError(Exception):
    """Base class of all storage errors."""


class ObjectNotFound(StorageError):
    """The requested object does not exist."""


class ObjectExists(StorageError):
    """An object with this key already exists; stored objects are immutable."""


class StorageUnavailable(StorageError):
    """The backend cannot be used right now (unreachable, down, timeout, disk/permission)."""


class InvalidKey(StorageError, ValueError):
    """The object key violates the key rules."""


@dataclass(frozen=True)
class ObjectInfo:
    """Size and user metadata of a stored object."""

    key: str
    size: int
    metadata: dict[str, str]


class ByteStream(Iterator[bytes]):
    """Iterator over the chunks of an object that releases its file/connection on close.

    The resource is acquired *before* the stream is handed out (so a missing object fails
    at ``open`` time), which a plain generator cannot clean up if it is never started;
    this wrapper always releases it on ``close()``, on exhaustion, on error, and as a last
    resort on garbage collection. WSGI servers call ``close()`` on response iterables, so
    an aborted download frees the file descriptor / pooled connection promptly.
    """

    def __init__(self, chunks: Iterator[bytes], release: Callable[[], None]) -> None:
        """Wrap ``chunks``; ``release`` frees the underlying resource (called once)."""
        self._chunks = chunks
        self._release: Callable[[], None] | None = release

    def __iter__(self) -> ByteStream:
        """Return self (this is a one-shot iterator)."""
        return self

    def __next__(self) -> bytes:
        """Return the next chunk; releases the resource when the stream ends or fails."""
        if self._release is None:
            raise StopIteration
        try:
            return next(self._chunks)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Release the underlying file/connection; safe to call more than once."""
        release, self._release = self._release, None
        if release is None:
            return
        close_chunks = getattr(self._chunks, "close", None)
        try:
            if close_chunks is not None:
                close_chunks()
        finally:
            release()

    def __enter__(self) -> ByteStream:
        """Use the stream as a context manager that closes it on exit."""
        return self

    def __exit__(self, *exc_info: object) -> None:
        """Close the stream."""
        self.close()

    def __del__(self) -> None:
        """Last-resort cleanup if the caller forgot to close the stream."""
        self.close()


@runtime_checkable
class ObjectStore(Protocol):
    """Store of immutable objects (bytes + small string metadata) addressed by key.

    Keys: ``^[a-z0-9][a-z0-9._/-]{0,500}$`` with no empty, ``.`` or ``..`` segment, no
    leading/trailing slash and segments of at most 250 characters (see ``validate_key``).
    Portable callers must also not use a key that is a "directory" of another key (``a``
    and ``a/b``): the local backend maps keys to paths and cannot hold both; it raises
    InvalidKey for the second one.

    Metadata: keys ``[a-z0-9-]+``, values printable ASCII without leading/trailing spaces
    (HTTP strips them), at most 2 KiB in total (see ``validate_metadata``).
    """

    def put_file(
        self, key: str, path: str | os.PathLike[str], metadata: Mapping[str, str]
    ) -> ObjectInfo:
        """Store the file at ``path`` under ``key``; ObjectExists if the key is taken.

        The store may consume (move) the source file: the caller must not use ``path``
        afterwards except to remove it if it still exists. On failure the source is left
        in place.
        """
        ...

    def put_bytes(self, key: str, data: bytes, metadata: Mapping[str, str]) -> ObjectInfo:
        """Store ``data`` under ``key`` (for small derived objects); never overwrites."""
        ...

    def open(self, key: str, start: int = 0, length: int | None = None) -> Iterator[bytes]:
        """Stream bytes ``[start, start+length)`` (clamped to the object) in ≤1 MiB chunks.

        Raises ObjectNotFound at call time. The returned iterator has ``close()``; close
        it (or exhaust it) to release the underlying file or connection.
        """
        ...

    def stat(self, key: str) -> ObjectInfo:
        """Return size and metadata of ``key``; ObjectNotFound if missing."""
        ...

    def delete(self, key: str) -> None:
        """Delete ``key``; deleting a missing key is not an error."""
        ...

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield all object keys starting with ``prefix`` in ascending order."""
        ...

    def check(self) -> None:
        """Cheap health probe; raises StorageUnavailable if the store is not usable."""
        ...

    def describe(self) -> str:
        """Human-readable location for logs (never contains credentials)."""
        ...


_KEY_RE = re.compile(r"[a-z0-9][a-z0-9._/-]{0,500}")
_META_KEY_RE = re.compile(r"[a-z0-9-]+")
_META_VALUE_RE = re.compile(r"[\x20-\x7e]*")


def validate_key(key: str) -> str:
    """Return ``key`` unchanged if it is a valid object key, else raise InvalidKey."""
    if not isinstance(key, str) or _KEY_RE.fullmatch(key) is None:
        raise InvalidKey(f"invalid object key {key!r}")
    # The regex already forbids a leading slash; segments are checked explicitly because
    # '.', '..' and '' segments would alias or escape paths on disk and get normalised
    # away by HTTP clients, so the same key would name different objects per backend.
    segments = key.split("/")
    if any(segment in ("", ".", "..") for segment in segments):
        raise InvalidKey(f"invalid object key {key!r}: empty, '.' or '..' segment")
    # Segments become file names in the local backend: NAME_MAX (255) minus ".json" of
    # the metadata sidecar. Enforced everywhere so keys stay portable between backends.
    if any(len(segment) > MAX_SEGMENT_LENGTH for segment in segments):
        raise InvalidKey(f"invalid object key {key!r}: segment longer than {MAX_SEGMENT_LENGTH}")
    return key


def validate_metadata(metadata: Mapping[str, str]) -> dict[str, str]:
    """Return a plain-dict copy of ``metadata`` after validating it, else raise ValueError."""
    result: dict[str, str] = {}
    total = 0
    for name, value in metadata.items():
        if not isinstance(name, str) or _META_KEY_RE.fullmatch(name) is None:
            raise ValueError(f"invalid metadata key {name!r}: must match [a-z0-9-]+")
        if not isinstance(value, str) or _META_VALUE_RE.fullmatch(value) is None:
            raise ValueError(f"invalid metadata value for {name!r}: must be printable ASCII")
        if value != value.strip(" "):
            # HTTP trims header values, so S3 would silently return a different value.
            raise ValueError(f"invalid metadata value for {name!r}: leading/trailing space")
        total += len(name) + len(value)
        result[name] = value
    if total > MAX_METADATA_BYTES:
        raise ValueError(f"metadata too large: {total} bytes > {MAX_METADATA_BYTES}")
    return result


def validate_range(start: int, length: int | None) -> None:
    """Raise ValueError unless ``start >= 0`` and ``length`` is None or ``>= 0``."""
    if isinstance(start, bool) or not isinstance(start, int) or start < 0:
        raise ValueError(f"invalid range start {start!r}")
    if length is not None and (
        isinstance(length, bool) or not isinstance(length, int) or length < 0
    ):
        raise ValueError(f"invalid range length {length!r}")
