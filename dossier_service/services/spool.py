"""Stale files in the spool directory: leftovers of uploads, processing or exports cut by a crash.

Everything in the spool directory is private to one running request or task, which removes
its own file when it ends. A file older than ``spool_max_age_hours`` (at least 2 hours, far
beyond any upload or export) was therefore left by a process that died: it is reported by
``dossier fsck`` and removed at ``serve``/``worker`` start, hourly by the scheduler, and by
``dossier fsck --delete-orphans``.
"""

from __future__ import annotations

import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from dossier_service.config import Settings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StaleEntry:
    """A file or directory in the spool directory nobody touched for too long."""

    path: Path
    size: int
    age_hours: float


def _newest_mtime_and_size(path: Path) -> tuple[float, int]:
    """Newest modification time and total size of a file or directory tree."""
    if not path.is_dir() or path.is_symlink():
        info = path.lstat()
        return info.st_mtime, info.st_size
    newest, size = path.lstat().st_mtime, 0
    for child in path.rglob("*"):
        try:
            info = child.lstat()
        except FileNotFoundError:
            continue
        newest = max(newest, info.st_mtime)
        size += info.st_size
    return newest, size


def find_stale(settings: Settings, *, now: float | None = None) -> list[StaleEntry]:
    """Entries of the spool directory older than the configured age, oldest first."""
    spool = settings.spool_dir
    if not spool.is_dir():
        return []
    now = time.time() if now is None else now
    limit = settings.spool_max_age_hours * 3600
    stale = []
    for entry in spool.iterdir():
        try:
            mtime, size = _newest_mtime_and_size(entry)
        except FileNotFoundError:  # its owner removed it just now
            continue
        if now - mtime > limit:
            stale.append(StaleEntry(entry, size, (now - mtime) / 3600))
    return sorted(stale, key=lambda e: -e.age_hours)


def remove_stale(settings: Settings, *, now: float | None = None) -> list[StaleEntry]:
    """Remove stale spool entries; return what was removed."""
    removed = []
    for entry in find_stale(settings, now=now):
        try:
            if entry.path.is_dir() and not entry.path.is_symlink():
                shutil.rmtree(entry.path)
            else:
                entry.path.unlink()
        except FileNotFoundError:
            continue
        except OSError as exc:
            log.warning("stale spool entry %s not removed: %s", entry.path, exc)
            continue
        removed.append(entry)
    if removed:
        log.warning(
            "removed %d stale spool file(s) older than %d h (%d bytes)",
            len(removed),
            settings.spool_max_age_hours,
            sum(e.size for e in removed),
        )
    return removed
