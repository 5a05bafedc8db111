"""The audit chain's key and checkpoints kept outside the database, and the full verification.

The chain key lives in DOSSIER_AUDIT_KEY or DATA_DIR/audit-chain.key (mode 0600), never in the
database, so whoever can write the database cannot recompute valid entries. Checkpoints (the
newest entry's id and MAC and the entry count, each line keyed and chained to the one before)
are appended to DATA_DIR/audit-checkpoints.jsonl and, with S3 storage, written as object-lock
objects into the bucket ``<bucket>-audit``; they reveal removal of the newest entries or of
all entries, which a chain alone cannot show.
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import fcntl
import hashlib
import hmac
import io
import json
import logging
import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from dossier_service.dates import utcnow
from dossier_service.models import AuditEntry
from dossier_service.services import audit
from dossier_service.services.audit import ChainProblem

if TYPE_CHECKING:
    from dossier_service.config import Settings
    from dossier_service.container import Container

log = logging.getLogger(__name__)

KEY_FILE = "audit-chain.key"
CHECKPOINT_FILE = "audit-checkpoints.jsonl"
#: A checkpoint is written at least this often while entries are appended.
CHECKPOINT_INTERVAL = dt.timedelta(seconds=60)
#: How long S3 object lock keeps a checkpoint object from being deleted or overwritten.
S3_RETENTION = dt.timedelta(days=3650)
_GENESIS = "0" * 64


def key_path(settings: Settings) -> Path:
    """Where the chain key file lives."""
    return settings.data_dir / KEY_FILE


def checkpoint_path(settings: Settings) -> Path:
    """Where the checkpoint lines are appended."""
    return settings.data_dir / CHECKPOINT_FILE


def load_key(settings: Settings) -> bytes | None:
    """The chain key from the setting or the key file; None if neither exists."""
    if settings.audit_key:
        return settings.audit_key.encode("utf-8")
    try:
        text = key_path(settings).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    return text.encode("ascii") if text else None


def ensure_key(settings: Settings) -> bytes:
    """The chain key; creates the key file (mode 0600) if no key exists yet."""
    key = load_key(settings)
    if key is not None:
        return key
    path = key_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        # O_EXCL: two processes starting at once must not each write a different key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        key = load_key(settings)
        if key is None:
            raise RuntimeError(f"audit key file {path} is empty") from None
        return key
    with os.fdopen(fd, "w", encoding="ascii") as handle:
        handle.write(secrets.token_hex(32) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    key = load_key(settings)
    assert key is not None
    return key


@dataclass(frozen=True)
class Head:
    """The newest entry of the log and how many entries there are up to it."""

    last_id: int
    last_hash: str
    count: int


def read_head(session: Session) -> Head:
    """The chain head as committed now."""
    row = session.execute(
        select(AuditEntry.id, AuditEntry.hash).order_by(AuditEntry.id.desc()).limit(1)
    ).first()
    if row is None:
        return Head(0, _GENESIS, 0)
    count = session.execute(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.id <= row.id)
    ).scalar_one()
    return Head(int(row.id), str(row.hash), int(count))


def _mac(key: bytes, body: dict[str, Any]) -> str:
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return hmac.new(key, b"checkpoint\n" + canonical.encode("ascii"), hashlib.sha256).hexdigest()


def _last_line(handle: io.BufferedRandom) -> bytes | None:
    """The last complete line of the file, read from its end."""
    handle.seek(0, os.SEEK_END)
    end = handle.tell()
    if end == 0:
        return None
    size = min(end, 4096)
    while True:
        handle.seek(end - size)
        chunk = handle.read(size)
        lines = chunk.rstrip(b"\n").split(b"\n")
        if len(lines) > 1 or size == end:
            return lines[-1] or None
        size = min(end, size * 2)


@contextlib.contextmanager
def _locked_file(path: Path) -> Iterator[io.BufferedRandom]:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "r+b") as handle:
        # Writers in several processes (server, worker, beat) must not interleave lines.
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield handle
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _legacy_boundary(session: Session, key: bytes) -> Head | None:
    """The newest entry still carrying the unkeyed digest, walking back from the head."""
    last_id: int | None = None
    while True:
        query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(500)
        if last_id is not None:
            query = query.where(AuditEntry.id < last_id)
        rows = list(session.execute(query).scalars())
        if not rows:
            return None
        for entry in rows:
            if audit.entry_matches(entry, key):
                last_id = entry.id
                continue
            if audit.entry_matches_legacy(entry):
                count = session.execute(
                    select(func.count()).select_from(AuditEntry).where(AuditEntry.id <= entry.id)
                ).scalar_one()
                return Head(entry.id, entry.hash, int(count))
            return None  # neither: verify reports it; nothing to adopt
        session.expunge_all()


def write_checkpoint(container: Container, *, force: bool = False) -> dict[str, Any] | None:
    """Append a checkpoint of the current head (if it moved, or ``force``); return it.

    The first checkpoint of a log written by an older release is preceded by a ``legacy``
    line that adopts its unkeyed entries.
    """
    settings = container.settings
    key = ensure_key(settings)
    written: dict[str, Any] | None = None
    with _locked_file(checkpoint_path(settings)) as handle:
        raw = _last_line(handle)
        last = json.loads(raw) if raw else None
        with container.db.transaction() as session:
            head = read_head(session)
            legacy = _legacy_boundary(session, key) if last is None and head.count else None
        lines: list[dict[str, Any]] = []
        seq = int(last["seq"]) + 1 if last else 1
        prev = str(last["mac"]) if last else _GENESIS
        if legacy is not None:
            body = _body("legacy", seq, legacy, prev)
            lines.append({**body, "mac": _mac(key, body)})
            seq, prev = seq + 1, lines[-1]["mac"]
        moved = last is None or (last["last_id"], last["count"]) != (head.last_id, head.count)
        if moved or force:
            body = _body("checkpoint", seq, head, prev)
            lines.append({**body, "mac": _mac(key, body)})
        if not lines:
            return None
        for line in lines:
            handle.write(
                json.dumps(line, sort_keys=True, separators=(",", ":")).encode("ascii") + b"\n"
            )
        handle.flush()
        os.fsync(handle.fileno())
        written = lines[-1]
    if settings.storage == "s3":
        for line in lines:
            _put_s3(container, line)
    return written


def _body(kind: str, seq: int, head: Head, prev: str) -> dict[str, Any]:
    return {
        "kind": kind,
        "seq": seq,
        "at": utcnow().isoformat(timespec="seconds"),
        "last_id": head.last_id,
        "last_hash": head.last_hash,
        "count": head.count,
        "prev": prev,
    }


def audit_bucket(settings: Settings) -> str:
    """The object-lock bucket of the checkpoints."""
    return f"{settings.s3_bucket}-audit"


def _s3_client(settings: Settings) -> Any:
    from minio import Minio

    endpoint = settings.s3_endpoint or ""
    secure = endpoint.startswith("https://") or settings.s3_secure
    host = endpoint.split("://", 1)[-1].rstrip("/")
    return Minio(
        host,
        access_key=settings.s3_access_key,
        secret_key=settings.s3_secret_key,
        secure=secure,
        region=settings.s3_region,
    )


def ensure_bucket(settings: Settings) -> None:
    """Create the object-lock bucket of the checkpoints if it does not exist."""
    from minio.error import S3Error

    client = _s3_client(settings)
    name = audit_bucket(settings)
    if client.bucket_exists(name):
        return
    try:
        client.make_bucket(name, object_lock=True)
    except S3Error as exc:
        if exc.code not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
            raise


def object_name(line: dict[str, Any]) -> str:
    """The S3 name of a checkpoint: ordered by chain head, unique across writers.

    Each process with its own data directory (compose gives app and beat their own volume)
    numbers its file's lines itself, so the sequence number alone could collide.
    """
    return (
        f"checkpoints/{int(line['last_id']):020d}-{int(line['seq']):012d}-{line['mac'][:16]}.json"
    )


def _put_s3(container: Container, line: dict[str, Any]) -> None:
    """Write one checkpoint as an object under compliance-mode retention."""
    from minio.commonconfig import COMPLIANCE
    from minio.retention import Retention

    settings = container.settings
    data = json.dumps(line, sort_keys=True).encode("ascii")
    until = (utcnow() + S3_RETENTION).replace(microsecond=0)
    _s3_client(settings).put_object(
        audit_bucket(settings),
        object_name(line),
        io.BytesIO(data),
        len(data),
        content_type="application/json",
        # S3 refuses object-lock uploads without a checksum (Content-MD5 or this one).
        metadata={
            "x-amz-sdk-checksum-algorithm": "SHA256",
            "x-amz-checksum-sha256": base64.b64encode(hashlib.sha256(data).digest()).decode(),
        },
        retention=Retention(COMPLIANCE, until),
    )


def _s3_latest(settings: Settings) -> dict[str, Any] | None:
    """The newest checkpoint object in the audit bucket."""
    client = _s3_client(settings)
    names = sorted(
        obj.object_name
        for obj in client.list_objects(audit_bucket(settings), prefix="checkpoints/")
        if obj.object_name
    )
    if not names:
        return None
    response = client.get_object(audit_bucket(settings), names[-1])
    try:
        result: dict[str, Any] = json.loads(response.read())
        return result
    finally:
        response.close()
        response.release_conn()


def checkpoint_due(container: Container) -> bool:
    """True if the last checkpoint is older than the interval (or there is none)."""
    try:
        mtime = checkpoint_path(container.settings).stat().st_mtime
    except FileNotFoundError:
        return True
    age = utcnow().timestamp() - mtime
    return age > CHECKPOINT_INTERVAL.total_seconds()


def read_checkpoints(settings: Settings, key: bytes) -> tuple[list[dict[str, Any]], list[str]]:
    """All checkpoint lines and what is wrong with them (bad MAC, broken sequence)."""
    problems: list[str] = []
    lines: list[dict[str, Any]] = []
    try:
        raw_lines = checkpoint_path(settings).read_bytes().splitlines()
    except FileNotFoundError:
        return [], []
    prev = _GENESIS
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
            body = {k: v for k, v in line.items() if k != "mac"}
            mac = str(line["mac"])
        except (ValueError, KeyError, AttributeError):
            problems.append(f"checkpoint line {number} is not readable")
            continue
        if not hmac.compare_digest(mac, _mac(key, body)):
            problems.append(f"checkpoint line {number} has a wrong MAC (altered, or a wrong key)")
        elif body.get("prev") != prev:
            problems.append(f"checkpoint line {number} does not follow the line before it")
        prev = mac
        lines.append(line)
    return lines, problems


def verify(container: Container) -> list[ChainProblem]:
    """Everything wrong with the audit log: the chain, the checkpoints, and truncation."""
    settings = container.settings
    key = load_key(settings)
    if key is None:
        # Reach the database first: an outage is the clearer message.
        with container.db.transaction() as session:
            session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
        return [
            ChainProblem(0, f"no audit key: neither DOSSIER_AUDIT_KEY nor {key_path(settings)}")
        ]
    lines, messages = read_checkpoints(settings, key)
    problems = [ChainProblem(0, m) for m in messages]
    legacy_until = next((int(x["last_id"]) for x in lines if x.get("kind") == "legacy"), 0)
    latest = lines[-1] if lines else None
    if settings.storage == "s3":
        try:
            remote = _s3_latest(settings)
        except Exception as exc:
            problems.append(ChainProblem(0, f"checkpoints in S3 not readable: {exc}"))
            remote = None
        if remote is not None:
            body = {k: v for k, v in remote.items() if k != "mac"}
            if not hmac.compare_digest(str(remote.get("mac")), _mac(key, body)):
                problems.append(ChainProblem(0, "the newest checkpoint in S3 has a wrong MAC"))
            elif latest is None or int(remote["last_id"]) > int(latest["last_id"]):
                # S3 is shared by all writers and cannot be rewritten: the newer one counts.
                latest = remote
    with container.db.transaction() as session:
        problems.extend(audit.verify_chain(session, key=key, legacy_until=legacy_until))
        if latest is not None and int(latest["count"]) > 0:
            problems.extend(_against_checkpoint(session, latest))
    return problems


def _against_checkpoint(session: Session, checkpoint: dict[str, Any]) -> list[ChainProblem]:
    """Is the log still holding everything the checkpoint saw?"""
    last_id = int(checkpoint["last_id"])
    at = checkpoint.get("at")
    total = session.execute(select(func.count()).select_from(AuditEntry)).scalar_one()
    if total == 0:
        return [
            ChainProblem(
                last_id,
                f"the audit log is empty, but the checkpoint of {at} saw "
                f"{checkpoint['count']} entries (all entries deleted)",
            )
        ]
    entry = session.get(AuditEntry, last_id)
    if entry is None:
        return [
            ChainProblem(
                last_id,
                f"entry {last_id}, the head at the checkpoint of {at}, is missing "
                "(newest entries deleted)",
            )
        ]
    if entry.hash != checkpoint["last_hash"]:
        return [ChainProblem(last_id, f"entry {last_id} differs from the checkpoint of {at}")]
    count = session.execute(
        select(func.count()).select_from(AuditEntry).where(AuditEntry.id <= last_id)
    ).scalar_one()
    if count != int(checkpoint["count"]):
        return [
            ChainProblem(
                last_id,
                f"{count} entries up to {last_id}, the checkpoint of {at} saw "
                f"{checkpoint['count']} (entries deleted)",
            )
        ]
    return []
