"""Export the audit log as signed JSON lines to a location apart from the data (DSV Art. 4).

Logs must be kept at least a year and separately from the data they describe, so the
export goes to its own directory (``--out`` or ``DOSSIER_AUDIT_EXPORT_DIR``; typically a
mount only the data-protection office can read), as one new file per run::

    {"type": "header", "format": "dossier-audit-export/1", "algorithm": "HMAC-SHA256", ...}
    {"type": "entry", "id": ..., "at": ..., "actor": ..., ..., "prev_hash": ..., "hash": ...}
    ...
    {"type": "trailer", "count": N, "through_id": ..., "last_hash": ...}

Every line carries ``mac`` = HMAC-SHA256(key, previous line's mac + "\\n" + the line's
canonical JSON without ``mac``), the first line chaining from 64 zeros. So changing,
removing, inserting or reordering a line breaks every later mac, and a cut-off file lacks
its trailer. The entries also keep the log's own hash chain (``prev_hash``/``hash``), which
``dossier audit verify`` checks in the database.

Why HMAC-SHA256 and not Ed25519: it needs only the standard library (``cryptography`` is
not a dependency of the service), and the verifier is the data-protection office, which
holds the key (``DOSSIER_AUDIT_SIGNING_KEY``, at least 32 characters) anyway. Its limit:
whoever can verify could also forge, so it proves integrity against everyone but the key
holders. Should third parties need to verify without that power, Ed25519 signatures are the
upgrade; the header names the algorithm so both formats can coexist.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select

from dossier_service.dates import utcnow
from dossier_service.identity import Anonymous
from dossier_service.models import AuditEntry
from dossier_service.services import audit

if TYPE_CHECKING:
    from dossier_service.container import Container

FORMAT = "dossier-audit-export/1"
ALGORITHM = "HMAC-SHA256"
#: Shortest accepted key: 32 characters, the size of the HMAC-SHA256 output.
MIN_KEY_LENGTH = 32
GENESIS_MAC = "0" * 64
BATCH = 5000


class AuditExportError(Exception):
    """The export cannot run (no key, no target directory) or a file does not verify."""


@dataclass(frozen=True)
class ExportResult:
    """What one export wrote."""

    path: Path
    count: int
    from_id: int | None
    through_id: int | None
    sha256: str


def signing_key(raw: str | None) -> bytes:
    """The key as bytes; AuditExportError with a clear message if it is missing or short."""
    if not raw:
        raise AuditExportError(
            "DOSSIER_AUDIT_SIGNING_KEY is not set: the audit export signs every line and "
            f"needs a secret of at least {MIN_KEY_LENGTH} characters (e.g. from "
            "'python -c \"import secrets; print(secrets.token_hex(32))\"'), kept by the "
            "data-protection office"
        )
    if len(raw) < MIN_KEY_LENGTH:
        raise AuditExportError(
            f"DOSSIER_AUDIT_SIGNING_KEY is too short: {len(raw)} characters, at least "
            f"{MIN_KEY_LENGTH} are needed"
        )
    return raw.encode("utf-8")


def key_id(key: bytes) -> str:
    """A short fingerprint naming the key in the header, revealing nothing about it."""
    return hashlib.sha256(b"dossier-audit-key-id\n" + key).hexdigest()[:16]


def _canonical(obj: dict[str, Any]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _mac(key: bytes, previous: str, body: str) -> str:
    return hmac.new(key, (previous + "\n" + body).encode("ascii"), hashlib.sha256).hexdigest()


class _Signer:
    """Turns objects into chained, MAC'ed lines."""

    def __init__(self, key: bytes) -> None:
        self.key = key
        self.previous = GENESIS_MAC

    def line(self, obj: dict[str, Any]) -> bytes:
        body = _canonical(obj)
        mac = _mac(self.key, self.previous, body)
        self.previous = mac
        return (_canonical({**obj, "mac": mac}) + "\n").encode("ascii")


def _entries(container: Container, since: dt.datetime, through_id: int) -> Iterator[AuditEntry]:
    """Entries from ``since`` up to ``through_id`` in id order, read in batches."""
    last_id = 0
    while True:
        with container.db.transaction() as session:
            batch = list(
                session.execute(
                    select(AuditEntry)
                    .where(
                        AuditEntry.at >= since,
                        AuditEntry.id > last_id,
                        AuditEntry.id <= through_id,
                    )
                    .order_by(AuditEntry.id)
                    .limit(BATCH)
                ).scalars()
            )
        if not batch:
            return
        yield from batch
        last_id = batch[-1].id


def target_dir(container: Container, out: str | os.PathLike[str] | None) -> Path:
    """The directory to write to: ``out``, else DOSSIER_AUDIT_EXPORT_DIR; never the data dir."""
    raw = Path(out) if out else container.settings.audit_export_dir
    if raw is None:
        raise AuditExportError(
            "no target directory: pass --out DIR or set DOSSIER_AUDIT_EXPORT_DIR"
        )
    directory = Path(raw).expanduser().resolve()
    data_dir = container.settings.data_dir.resolve()
    if directory == data_dir or directory.is_relative_to(data_dir):
        raise AuditExportError(
            f"{directory} lies inside the data directory {data_dir}; the audit export must be "
            "kept apart from the data it describes"
        )
    return directory


def export_audit_log(
    container: Container,
    since: dt.datetime,
    out: str | os.PathLike[str] | None = None,
    *,
    actor: str = "system:audit-export",
) -> ExportResult:
    """Write the entries since ``since`` as a new signed file; audited as ``audit.export``."""
    key = signing_key(container.settings.audit_signing_key)
    directory = target_dir(container, out)
    directory.mkdir(parents=True, exist_ok=True)
    with container.db.transaction() as session:
        # Entries committed while we write belong to the next export.
        through_id = session.execute(select(func.max(AuditEntry.id))).scalar_one() or 0
    now = utcnow()
    stamp = now.strftime("%Y%m%dT%H%M%S%fZ")
    path = directory / f"audit-{since.astimezone(dt.UTC):%Y%m%d}-{stamp}.jsonl"
    temp = path.with_suffix(".jsonl.part")
    signer = _Signer(key)
    digest = hashlib.sha256()
    count = 0
    first_id: int | None = None
    last_id: int | None = None
    last_hash: str | None = None
    # 0600: the log is readable by the data-protection office only (the directory's owner).
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    try:
        with os.fdopen(fd, "wb") as handle:

            def write(obj: dict[str, Any]) -> None:
                data = signer.line(obj)
                digest.update(data)
                handle.write(data)

            write(
                {
                    "type": "header",
                    "format": FORMAT,
                    "algorithm": ALGORITHM,
                    "key_id": key_id(key),
                    "since": since.astimezone(dt.UTC).isoformat(),
                    "created_at": now.isoformat(),
                    "through_id": through_id,
                }
            )
            for entry in _entries(container, since, through_id):
                record = audit.serialize(entry)
                write({"type": "entry", **record, "prev_hash": entry.prev_hash, "hash": entry.hash})
                count += 1
                first_id = entry.id if first_id is None else first_id
                last_id, last_hash = entry.id, entry.hash
            write(
                {
                    "type": "trailer",
                    "count": count,
                    "from_id": first_id,
                    "through_id": last_id,
                    "last_hash": last_hash,
                }
            )
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
        dir_fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    result = ExportResult(path, count, first_id, last_id, digest.hexdigest())
    with container.db.transaction() as session:
        audit.record(
            session,
            Anonymous(username=actor[:64]),
            "audit.export",
            detail={
                "since": since.astimezone(dt.UTC).isoformat(),
                "file": path.name,
                "count": count,
                "from_id": first_id,
                "through_id": last_id,
                "sha256": result.sha256,
                "key_id": key_id(key),
            },
        )
    return result


def verify_export(path: Path, raw_key: str | None) -> list[str]:
    """Every problem of an export file (empty: every mac verifies and the trailer matches)."""
    key = signing_key(raw_key)
    problems: list[str] = []
    previous = GENESIS_MAC
    entries = 0
    seen_header = seen_trailer = False
    with path.open("rb") as handle:
        for number, raw in enumerate(handle, start=1):
            try:
                obj = json.loads(raw)
                mac = obj.pop("mac")
            except (ValueError, KeyError, AttributeError):
                problems.append(f"line {number}: not a signed JSON line")
                continue
            if seen_trailer:
                problems.append(f"line {number}: content after the trailer")
            expected = _mac(key, previous, _canonical(obj))
            if not hmac.compare_digest(expected, str(mac)):
                problems.append(
                    f"line {number}: signature does not verify (altered, "
                    "inserted, removed or reordered lines, or another key)"
                )
            previous = str(mac)
            kind = obj.get("type")
            if number == 1 and kind != "header":
                problems.append("line 1: the header is missing")
            if kind == "header":
                seen_header = True
                if obj.get("key_id") != key_id(key):
                    problems.append("the file was signed with another key")
            elif kind == "entry":
                entries += 1
            elif kind == "trailer":
                seen_trailer = True
                if obj.get("count") != entries:
                    problems.append(
                        f"trailer counts {obj.get('count')} entries, the file holds {entries}"
                    )
    if not seen_header:
        problems.append("no header line")
    if not seen_trailer:
        problems.append("no trailer line: the file is incomplete")
    return problems
