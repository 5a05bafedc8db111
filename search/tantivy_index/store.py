"""Generations of the embedded index in one directory: locks, the live pointer, the journal."""

# Layout of the root directory:
#
#   CURRENT            symlink to the live generation (swapped with an atomic rename)
#   gen-<utc>-<rand>/  one tantivy index + FORMAT (format/analysis versions)
#   write.lock         flock held by every writer (tantivy allows one writer per index;
#                      this also orders writes against a rebuild's final swap)
#   rebuild.lock       flock held for a whole rebuild: a second rebuild is refused
#   rebuild.json       present while a rebuild runs: names the generation being built
#   journal.jsonl      writes made during a rebuild, replayed into the new generation
#                      just before the swap, so no upload is lost to a concurrent rebuild

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import fcntl
import json
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import tantivy

from search.analysis import ANALYSIS_VERSION
from search.base import (
    IndexedDocument,
    IndexOutdated,
    RebuildInProgress,
    SearchError,
    SearchUnavailable,
)
from search.tantivy_index.schema import FORMAT_VERSION

__all__ = ["GenerationStore", "is_tantivy_failure"]

_CURRENT = "CURRENT"
_FORMAT_FILE = "FORMAT"
_WRITE_LOCK = "write.lock"
_REBUILD_LOCK = "rebuild.lock"
_REBUILD_STATE = "rebuild.json"
_JOURNAL = "journal.jsonl"
_GENERATION_RE = re.compile(r"gen-[0-9TZ]+-[0-9a-f]{8}")


def is_tantivy_failure(exc: BaseException) -> bool:
    """True for errors the tantivy binding raises (ValueError/OSError, or a Rust panic)."""
    # A Rust panic surfaces as pyo3's PanicException, which derives from BaseException.
    return isinstance(exc, ValueError | OSError) or type(exc).__name__ == "PanicException"


def _doc_to_json(doc: IndexedDocument) -> dict[str, Any]:
    """Serialise a document for the rebuild journal."""
    data = dataclasses.asdict(doc)
    data["created_at"] = doc.created_at.isoformat()
    return data


def _doc_from_json(data: dict[str, Any]) -> IndexedDocument:
    """Inverse of _doc_to_json."""
    data = dict(data)
    data["created_at"] = dt.datetime.fromisoformat(data["created_at"])
    return IndexedDocument(**data)


class GenerationStore:
    """The generation directories under one root and the open index of the live one."""

    def __init__(self, root: Path, schema: tantivy.Schema, *, lock_timeout: float) -> None:
        """Use (and create on first use) the generations under ``root``; nothing opens yet."""
        self._root = root
        self._schema = schema
        self._lock_timeout = lock_timeout
        self._mutex = threading.RLock()
        self._pid = os.getpid()
        self._generation: str | None = None
        self._index: tantivy.Index | None = None
        self._meta_signature: tuple[str, int, int, int] | None = None
        self._closed = False

    # --- files and locks ---------------------------------------------------------------

    @contextlib.contextmanager
    def _flock(self, name: str, *, timeout: float | None) -> Iterator[None]:
        """Hold an exclusive flock on root/name; None timeout = fail at once if busy."""
        """Hold an exclusive flock on root/name; None timeout = fail at once if busy."""
        try:
            self._root.mkdir(parents=True, exist_ok=True)
            fd = os.open(self._root / name, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise SearchUnavailable(f"search index at {self._root} not usable: {exc}") from None
        try:
            deadline = time.monotonic() + (timeout or 0.0)
            while True:
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if timeout is None:
                        raise RebuildInProgress("a rebuild of this index is running") from None
                    if time.monotonic() >= deadline:
                        raise SearchUnavailable(
                            f"search index at {self._root} busy for {timeout:.0f}s"
                        ) from None
                    time.sleep(0.02)
            yield
        finally:
            os.close(fd)  # closing the descriptor releases the lock

    def write_lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the writers' lock (waits up to the lock timeout)."""
        return self._flock(_WRITE_LOCK, timeout=self._lock_timeout)

    def rebuild_lock(self) -> contextlib.AbstractContextManager[None]:
        """Hold the rebuild lock for a whole rebuild; RebuildInProgress if one runs."""
        return self._flock(_REBUILD_LOCK, timeout=None)

    def rebuild_running(self) -> bool:
        """True if a rebuild (in any process) is loading a new generation right now.

        Call with the write lock held. A state file left by a crashed rebuild is removed.
        """
        state = self._root / _REBUILD_STATE
        if not state.exists():
            return False
        try:
            with self._flock(_REBUILD_LOCK, timeout=None):
                # Nobody holds the rebuild lock: the state is stale (crashed rebuild).
                state.unlink(missing_ok=True)
                (self._root / _JOURNAL).unlink(missing_ok=True)
                return False
        except RebuildInProgress:
            return True

    def _fsync_root(self) -> None:
        fd = os.open(self._root, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    # --- generations -------------------------------------------------------------------

    def _new_generation(self) -> tuple[str, tantivy.Index]:
        """Create an empty generation directory with an index and its FORMAT file."""
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        name = f"gen-{stamp}-{secrets.token_hex(4)}"
        path = self._root / name
        path.mkdir(parents=True)
        index = tantivy.Index(self._schema, path=str(path), reuse=False)
        fmt = {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION}
        (path / _FORMAT_FILE).write_text(json.dumps(fmt), encoding="utf-8")
        return name, index

    def _point_to(self, name: str) -> None:
        """Atomically make ``name`` the live generation (symlink + rename)."""
        tmp = self._root / f".{_CURRENT}.{secrets.token_hex(4)}"
        os.symlink(name, tmp)
        os.replace(tmp, self._root / _CURRENT)
        self._fsync_root()

    def _open_generation(self, name: str) -> tantivy.Index:
        """Open an existing generation after checking that its format is ours."""
        path = self._root / name
        try:
            fmt = json.loads((path / _FORMAT_FILE).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            fmt = None
        expected = {"format": FORMAT_VERSION, "analysis": ANALYSIS_VERSION}
        if fmt != expected:
            raise IndexOutdated(
                f"search index {path} has format {fmt}, expected {expected}: rebuild it"
            )
        return tantivy.Index.open(str(path))

    def live(self, *, locked: bool = False) -> tuple[str, tantivy.Index]:
        """The live generation's name and open index (created on first use).

        ``locked``: the caller holds the write lock (flock is not re-entrant across
        descriptors, so taking it again here would wait for ourselves).
        """
        if self._closed:
            raise SearchError("search index is closed")
        if os.getpid() != self._pid:
            # tantivy's threads do not survive fork(): reopen in the child.
            with self._mutex:
                self._pid, self._generation, self._index = os.getpid(), None, None
        target = self._resolve(locked=locked)
        with self._mutex:
            if self._index is None or self._generation != target:
                try:
                    self._index = self._open_generation(target)
                except SearchError:
                    raise
                except BaseException as exc:
                    if not is_tantivy_failure(exc):
                        raise
                    raise SearchUnavailable(f"cannot open search index {target}: {exc}") from None
                self._generation = target
            return target, self._index

    def _resolve(self, *, locked: bool = False) -> str:
        """Name of the live generation, creating the first one if there is none yet."""
        try:
            return os.readlink(self._root / _CURRENT)
        except FileNotFoundError:
            return self._initialise(locked=locked)
        except OSError as exc:
            raise SearchUnavailable(f"search index at {self._root} not usable: {exc}") from None

    def _initialise(self, *, locked: bool) -> str:
        """Create the first generation if there is none yet; return the live name."""
        with contextlib.nullcontext() if locked else self.write_lock():
            with contextlib.suppress(FileNotFoundError):
                return os.readlink(self._root / _CURRENT)
            try:
                name, _ = self._new_generation()
                self._point_to(name)
            except OSError as exc:
                raise SearchUnavailable(f"cannot create search index: {exc}") from None
            return name

    def current_target(self) -> str | None:
        """Name of the live generation, or None if there is none (or it is unreadable)."""
        try:
            return os.readlink(self._root / _CURRENT)
        except OSError:
            return None

    # --- reading -----------------------------------------------------------------------

    def read(self, run: Callable[[tantivy.Index], Any], *, force_reload: bool = False) -> Any:
        """Run a read against the live generation; retry once if a swap raced with it."""
        for attempt in range(2):
            generation, index = self.live()
            try:
                self._reload_if_changed(generation, index, force=force_reload)
                return run(index)
            except SearchError:
                raise
            except BaseException as exc:
                if not is_tantivy_failure(exc):
                    raise
                # A rebuild in another process may have swapped and deleted this
                # generation between our readlink and the read: try the new one.
                if attempt == 0 and self.current_target() != generation:
                    continue
                raise SearchUnavailable(f"search failed: {exc}") from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _reload_if_changed(self, generation: str, index: tantivy.Index, *, force: bool) -> None:
        """Reload the reader when meta.json changed (a commit, in any process).

        tantivy's own reload policy lags ~0.5 s behind other processes' commits; a stat is
        cheaper than reloading on every read and sees them at once.
        """
        try:
            st = os.stat(self._root / generation / "meta.json")
            signature: tuple[str, int, int, int] | None = (
                generation,
                st.st_ino,
                st.st_mtime_ns,
                st.st_size,
            )
        except OSError:
            signature = None
        if force or signature is None or signature != self._meta_signature:
            index.reload()
            self._meta_signature = signature

    # --- rebuild -----------------------------------------------------------------------

    def begin_rebuild(self) -> tuple[str, tantivy.Index]:
        """Create the generation a rebuild loads and start journaling writes for it.

        Call with the rebuild and the write lock held.
        """
        # Only the pointer is needed: the live generation may be unreadable (outdated
        # format), which is exactly when a rebuild is run.
        self._resolve(locked=True)
        self._remove_stale_generations()
        name, index = self._new_generation()
        # From here on, writers journal their ops (they check under the write lock).
        (self._root / _JOURNAL).write_text("", encoding="utf-8")
        (self._root / _REBUILD_STATE).write_text(
            json.dumps({"generation": name, "pid": os.getpid()}), encoding="utf-8"
        )
        return name, index

    def swap_to(self, name: str) -> None:
        """Make the rebuilt generation live and stop journaling (write lock held)."""
        self._point_to(name)
        (self._root / _REBUILD_STATE).unlink(missing_ok=True)
        (self._root / _JOURNAL).unlink(missing_ok=True)

    def adopt(self, name: str, index: tantivy.Index, old_name: str | None) -> None:
        """Use the rebuilt generation's open index in this process; delete the old one."""
        with self._mutex:
            self._generation, self._index = name, index
        if old_name and old_name != name:
            shutil.rmtree(self._root / old_name, ignore_errors=True)

    def append_journal(self, ops: list[dict[str, Any]]) -> None:
        """Record ops for the rebuild to replay (called with the write lock held)."""
        with open(self._root / _JOURNAL, "a", encoding="utf-8") as journal:
            for op in ops:
                line = dict(op)
                if "docs" in line:
                    line["docs"] = [_doc_to_json(doc) for doc in op["docs"]]
                journal.write(json.dumps(line, ensure_ascii=False) + "\n")
            journal.flush()
            os.fsync(journal.fileno())

    def read_journal(self) -> list[dict[str, Any]]:
        """The ops recorded during a rebuild, documents deserialised."""
        ops: list[dict[str, Any]] = []
        path = self._root / _JOURNAL
        if not path.exists():
            return ops
        with open(path, encoding="utf-8") as journal:
            for line in journal:
                op = json.loads(line)
                if "docs" in op:
                    op["docs"] = [_doc_from_json(data) for data in op["docs"]]
                ops.append(op)
        return ops

    def abandon(self, new_name: str | None) -> None:
        """After a failed rebuild: stop journaling and drop the half-built generation."""
        with contextlib.suppress(SearchError, OSError), self.write_lock():
            (self._root / _REBUILD_STATE).unlink(missing_ok=True)
            (self._root / _JOURNAL).unlink(missing_ok=True)
            if new_name and self.current_target() != new_name:
                shutil.rmtree(self._root / new_name, ignore_errors=True)

    def _remove_stale_generations(self) -> None:
        """Delete generations left by crashed rebuilds (call with both locks held)."""
        live = self.current_target()
        for entry in self._root.iterdir():
            if entry.name != live and _GENERATION_RE.fullmatch(entry.name) and entry.is_dir():
                shutil.rmtree(entry, ignore_errors=True)

    def generations(self) -> list[str]:
        """Names of the generation directories on disk (for tests and operators)."""
        return sorted(
            entry.name
            for entry in self._root.iterdir()
            if _GENERATION_RE.fullmatch(entry.name) and entry.is_dir()
        )

    def close(self) -> None:
        """Drop the open index (its reader threads and file handles)."""
        with self._mutex:
            self._index = None
            self._generation = None
            self._closed = True
