"""Filesystem object store: atomic, durable, never-overwriting writes under one root directory."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat as stat_mod
import tempfile
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

from storage.base import (
    CHUNK_SIZE,
    ByteStream,
    InvalidKey,
    ObjectExists,
    ObjectInfo,
    ObjectNotFound,
    StorageError,
    StorageUnavailable,
    validate_key,
    validate_metadata,
    validate_range,
)

__all__ = ["LocalStore"]

log = logging.getLogger(__name__)

# Stored objects are immutable: drop write permission as a guard against accidental edits.
_OBJECT_MODE = 0o440
# os.link failures that mean "no hard link possible here", not "storage broken":
# other filesystem, links not supported (e.g. some FUSE/SMB mounts), link count limit,
# or fs.protected_hardlinks refusing to link a file owned by someone else. EACCES/EROFS/
# ENOSPC are deliberately absent: they concern the target directory, so copying would
# fail the same way and only obscure the real cause.
_NO_LINK_ERRNOS = frozenset({errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP})


def _fsync_dir(path: Path) -> None:
    """Flush a directory entry change (new link/rename) to disk."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _makedirs_durable(path: Path) -> None:
    """Create ``path`` and missing parents, fsyncing each parent so new dirs survive a crash."""
    missing: list[Path] = []
    current = path
    while not current.is_dir():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for directory in reversed(missing):
        try:
            directory.mkdir()
        except FileExistsError:
            if not directory.is_dir():
                raise
            continue  # created concurrently by another writer
        _fsync_dir(directory.parent)


def _copy_fd_to(src_fd: int, dst_fd: int) -> None:
    """Copy the whole content of ``src_fd`` (from offset 0) into ``dst_fd``."""
    offset = 0
    while True:
        chunk = os.pread(src_fd, CHUNK_SIZE, offset)
        if not chunk:
            return
        view = memoryview(chunk)
        while view:
            written = os.write(dst_fd, view)
            view = view[written:]
        offset += len(chunk)


class LocalStore:
    """Object store on a local (or mounted) filesystem.

    Layout: ``root/objects/<key>`` (data), ``root/meta/<key>.json`` (metadata sidecar),
    ``root/tmp/`` (write staging; may hold leftovers after a crash, safe to purge when
    older than any running upload).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        """Create a store rooted at ``root``; does no I/O (directories appear on first write)."""
        self.root = Path(root).absolute()
        self._objects = self.root / "objects"
        self._meta = self.root / "meta"
        self._tmp = self.root / "tmp"

    def describe(self) -> str:
        """Return ``local:<root>`` for logs."""
        return f"local:{self.root}"

    def __repr__(self) -> str:
        """Return a debug representation."""
        return f"LocalStore({str(self.root)!r})"

    # -- writes -------------------------------------------------------------------------

    def put_file(
        self, key: str, path: str | os.PathLike[str], metadata: Mapping[str, str]
    ) -> ObjectInfo:
        """Move the file at ``path`` into the store (hard link if possible, else copy)."""
        validate_key(key)
        meta = validate_metadata(metadata)
        source = Path(path)
        self._prepare(key)
        try:
            src_fd = os.open(source, os.O_RDONLY | os.O_CLOEXEC)
        except OSError as exc:
            raise StorageError(f"cannot read source file {str(source)!r}: {exc.strerror}") from exc
        try:
            st = os.fstat(src_fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise StorageError(f"source {str(source)!r} is not a regular file")
            # The caller may not have flushed its upload: make the data durable before it
            # becomes reachable under the key (works on a read-only descriptor on Linux).
            os.fsync(src_fd)
            target = self._object_path(key)
            try:
                self._link(source, target, key)
                zero_copy = True
            except _CannotLink:
                zero_copy = False
            if zero_copy:
                try:
                    os.chmod(target, _OBJECT_MODE)
                except OSError as exc:
                    # Only a hardening measure; a foreign-owned source must not fail the put.
                    log.debug("could not make %s read-only: %s", target, exc)
            else:
                # Different filesystem (or no hard links): stage a private copy inside the
                # root, then link that into place so the object still appears atomically.
                self._store_via_tmp(key, lambda fd: _copy_fd_to(src_fd, fd))
            self._finish(key, meta)
        except OSError as exc:
            raise self._os_error("put", key, exc) from exc
        finally:
            os.close(src_fd)
        try:
            source.unlink()
        except FileNotFoundError:
            pass
        except OSError as exc:
            # The object is stored; a leftover source is the caller's litter, not a failure.
            log.warning("stored %s but could not remove source %s: %s", key, source, exc)
        return ObjectInfo(key=key, size=st.st_size, metadata=meta)

    def put_bytes(self, key: str, data: bytes, metadata: Mapping[str, str]) -> ObjectInfo:
        """Store ``data`` under ``key``; never overwrites."""
        validate_key(key)
        meta = validate_metadata(metadata)
        payload = bytes(data)
        self._prepare(key)

        def write(fd: int) -> None:
            """Write the payload fully (os.write may be partial)."""
            view = memoryview(payload)
            while view:
                view = view[os.write(fd, view) :]

        try:
            self._store_via_tmp(key, write)
            self._finish(key, meta)
        except OSError as exc:
            raise self._os_error("put", key, exc) from exc
        return ObjectInfo(key=key, size=len(payload), metadata=meta)

    def delete(self, key: str) -> None:
        """Delete ``key`` and its metadata; a missing key is not an error."""
        validate_key(key)
        target = self._object_path(key)
        try:
            # Data first: once it is gone the key reads as missing, a leftover sidecar is
            # harmless (it is replaced by the next put of the same key).
            target.unlink(missing_ok=True)
            self._meta_path(key).unlink(missing_ok=True)
        except NotADirectoryError:
            problem = self._root_problem()
            if problem is not None:
                raise StorageUnavailable(problem) from None
            return  # a parent segment is an object file, so the key cannot exist
        except IsADirectoryError:
            return  # ``key`` is only a prefix of other keys
        except OSError as exc:
            raise self._os_error("delete", key, exc) from exc
        self._prune_empty_dirs(target.parent, self._objects)
        self._prune_empty_dirs(self._meta_path(key).parent, self._meta)

    # -- reads --------------------------------------------------------------------------

    def stat(self, key: str) -> ObjectInfo:
        """Return size and metadata of ``key``; ObjectNotFound if missing."""
        validate_key(key)
        try:
            st = os.stat(self._object_path(key))
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._os_error("stat", key, exc) from exc
        if not stat_mod.S_ISREG(st.st_mode):
            raise ObjectNotFound(key)
        return ObjectInfo(key=key, size=st.st_size, metadata=self._read_meta(key))

    def open(self, key: str, start: int = 0, length: int | None = None) -> ByteStream:
        """Stream a byte range of ``key`` in ≤1 MiB chunks; ObjectNotFound at call time."""
        validate_key(key)
        validate_range(start, length)
        try:
            fd = os.open(self._object_path(key), os.O_RDONLY | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            raise self._not_found(key) from None
        except OSError as exc:
            raise self._os_error("open", key, exc) from exc
        try:
            st = os.fstat(fd)
            if not stat_mod.S_ISREG(st.st_mode):
                raise ObjectNotFound(key)
        except BaseException:
            os.close(fd)
            raise
        end = st.st_size if length is None else min(st.st_size, start + length)
        return ByteStream(self._read_range(fd, key, start, end), lambda: os.close(fd))

    def iter_keys(self, prefix: str = "") -> Iterator[str]:
        """Yield object keys starting with ``prefix``, sorted, without scanning everything."""
        try:
            if not self._objects.is_dir():
                problem = self._root_problem()
                if problem is not None:
                    raise StorageUnavailable(problem)
                return
            yield from self._walk(self._objects, "", prefix)
        except OSError as exc:
            raise self._os_error("list", prefix, exc) from exc

    def check(self) -> None:
        """Create the layout if needed and prove the root is writable; else StorageUnavailable."""
        try:
            self._ensure_layout()
            fd, probe = tempfile.mkstemp(prefix="check-", dir=self._tmp)
            try:
                os.write(fd, b"ok")
            finally:
                os.close(fd)
                os.unlink(probe)
        except OSError as exc:
            raise StorageUnavailable(
                f"local storage {self.root} is not usable: {exc.strerror or exc}"
            ) from exc

    # -- internals ----------------------------------------------------------------------

    def _object_path(self, key: str) -> Path:
        """Path of the data file (key must be validated)."""
        return self._objects / key

    def _meta_path(self, key: str) -> Path:
        """Path of the metadata sidecar (key must be validated)."""
        return self._meta / f"{key}.json"

    def _ensure_layout(self) -> None:
        """Create root, objects/, meta/ and tmp/ if missing."""
        for directory in (self._objects, self._meta, self._tmp):
            _makedirs_durable(directory)

    def _prepare(self, key: str) -> None:
        """Create the layout and the parent directory of the object for a write."""
        try:
            self._ensure_layout()
            _makedirs_durable(self._object_path(key).parent)
        except (NotADirectoryError, FileExistsError) as exc:
            if self._root_problem() is None:
                # The root is fine, so a parent segment of the key is an existing object.
                raise InvalidKey(
                    f"key {key!r} is below an existing object; keys cannot be both an "
                    "object and a prefix in the local store"
                ) from None
            raise self._os_error("put", key, exc) from exc
        except OSError as exc:
            raise self._os_error("put", key, exc) from exc

    def _link(self, source: Path, target: Path, key: str) -> None:
        """Hard-link ``source`` to ``target``; ObjectExists if taken, _CannotLink if no link."""
        for _attempt in range(3):
            try:
                # os.link never replaces an existing name, so there is no check-then-write
                # race between concurrent writers of the same key.
                os.link(source, target)
            except FileExistsError:
                if target.is_dir():
                    raise InvalidKey(
                        f"key {key!r} is a prefix of existing objects in the local store"
                    ) from None
                raise ObjectExists(key) from None
            except FileNotFoundError:
                if not source.exists():
                    raise
                # A concurrent delete pruned the (empty) parent directory: recreate, retry.
                _makedirs_durable(target.parent)
                continue
            except OSError as exc:
                if exc.errno in _NO_LINK_ERRNOS:
                    raise _CannotLink from exc
                raise
            _fsync_dir(target.parent)
            return
        raise StorageUnavailable(f"could not create {key!r}: parent directory keeps vanishing")

    def _store_via_tmp(self, key: str, fill: Callable[[int], None]) -> None:
        """Write via ``fill`` into a temp file in tmp/, fsync, and link it under ``key``."""
        fd, tmp_name = tempfile.mkstemp(prefix="obj-", dir=self._tmp)
        tmp = Path(tmp_name)
        try:
            try:
                fill(fd)
                os.fchmod(fd, _OBJECT_MODE)
                os.fsync(fd)
            finally:
                os.close(fd)
            try:
                self._link(tmp, self._object_path(key), key)
            except _CannotLink as exc:
                # tmp/ and objects/ share the root, so this means the root is broken.
                raise StorageUnavailable(f"cannot hard-link inside {self.root}") from exc
        finally:
            tmp.unlink(missing_ok=True)

    def _finish(self, key: str, meta: dict[str, str]) -> None:
        """Write the metadata sidecar after the data is in place; roll the data back on error."""
        try:
            self._write_meta(key, meta)
        except BaseException:
            # Without this the key would be taken forever by an object lacking its metadata.
            self._object_path(key).unlink(missing_ok=True)
            raise

    def _write_meta(self, key: str, meta: dict[str, str]) -> None:
        """Atomically write the sidecar: temp file, fsync, rename, fsync directory."""
        target = self._meta_path(key)
        try:
            _makedirs_durable(target.parent)
        except (NotADirectoryError, FileExistsError):
            raise InvalidKey(
                f"key {key!r} collides with the metadata sidecar of another object"
            ) from None
        fd, tmp_name = tempfile.mkstemp(prefix="meta-", dir=self._tmp)
        try:
            with os.fdopen(fd, "w", encoding="ascii") as fh:
                json.dump(meta, fh, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            # Replacing is fine: the data link just succeeded, so any existing sidecar is
            # an orphan left by an interrupted delete.
            os.replace(tmp_name, target)
        except BaseException:
            Path(tmp_name).unlink(missing_ok=True)
            raise
        _fsync_dir(target.parent)

    def _read_meta(self, key: str) -> dict[str, str]:
        """Load the sidecar; a missing sidecar means empty metadata."""
        try:
            with open(self._meta_path(key), encoding="ascii") as fh:
                data = json.load(fh)
        except (FileNotFoundError, NotADirectoryError):
            return {}
        except OSError as exc:
            raise self._os_error("read metadata of", key, exc) from exc
        except ValueError as exc:
            raise StorageError(f"corrupt metadata sidecar for {key!r}: {exc}") from exc
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise StorageError(f"corrupt metadata sidecar for {key!r}: not a string map")
        return data

    def _read_range(self, fd: int, key: str, start: int, end: int) -> Iterator[bytes]:
        """Yield ``[start, end)`` of ``fd`` in ≤1 MiB chunks (positional reads, no seek state)."""
        offset = start
        while offset < end:
            try:
                chunk = os.pread(fd, min(CHUNK_SIZE, end - offset), offset)
            except OSError as exc:
                raise self._os_error("read", key, exc) from exc
            if not chunk:
                return  # cannot happen for immutable objects; never loop forever
            offset += len(chunk)
            yield chunk

    def _walk(self, directory: Path, rel: str, prefix: str) -> Iterator[str]:
        """Depth-first walk in key order, descending only into dirs that can match ``prefix``."""
        try:
            with os.scandir(directory) as it:
                entries = [(e.name, e.is_dir(follow_symlinks=False), e) for e in it]
        except FileNotFoundError:
            if rel == "":
                raise
            return  # pruned by a concurrent delete: it held nothing any more
        # Sorting a directory as "name/" yields global lexicographic key order: all keys
        # under "a/" sort exactly where the string "a/" sorts among siblings like "a.b".
        entries.sort(key=lambda item: item[0] + "/" if item[1] else item[0])
        for name, is_dir, entry in entries:
            key = rel + name
            if is_dir:
                sub = key + "/"
                if sub.startswith(prefix) or prefix.startswith(sub):
                    yield from self._walk(Path(entry.path), sub, prefix)
            elif entry.is_file(follow_symlinks=False) and key.startswith(prefix):
                try:
                    yield validate_key(key)
                except InvalidKey:
                    log.warning("ignoring foreign file in object store: %s", entry.path)

    def _prune_empty_dirs(self, directory: Path, stop: Path) -> None:
        """Remove now-empty parent directories up to (excluding) ``stop``; best effort."""
        while directory != stop and stop in directory.parents:
            try:
                directory.rmdir()
            except OSError:
                return  # not empty (or gone, or not permitted): stop pruning
            directory = directory.parent

    def _root_problem(self) -> str | None:
        """Describe why the root is unusable (missing, not a directory), or None if fine."""
        if not self.root.is_dir():
            return f"local storage root {self.root} does not exist or is not a directory"
        if self._objects.exists() and not self._objects.is_dir():
            return f"local storage {self._objects} is not a directory"
        return None

    def _not_found(self, key: str) -> StorageError:
        """ObjectNotFound, unless the miss is really a broken/missing root (e.g. unmounted)."""
        problem = self._root_problem()
        return ObjectNotFound(key) if problem is None else StorageUnavailable(problem)

    def _os_error(self, op: str, key: str, exc: OSError) -> StorageError:
        """Translate an OSError into a StorageError with a message an operator can act on."""
        problem = self._root_problem()
        path = exc.filename2 or exc.filename or self.root  # filename2: target of link/rename
        reason = problem or f"{exc.strerror or exc} ({path})"
        # Permission, read-only fs, full disk, I/O error, missing root: all operational.
        return StorageUnavailable(f"local storage cannot {op} {key!r}: {reason}")


class _CannotLink(Exception):
    """Internal: a hard link is impossible here (other filesystem, unsupported, ...)."""
