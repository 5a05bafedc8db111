"""SIP export throughput and memory: one closed case of many documents, built by the worker task.

Run from the project root::

    .venv/bin/python bench/export.py                          # 2,000 documents, 2 GiB
    .venv/bin/python bench/export.py --docs 2000 --size 200M  # a quicker run
    .venv/bin/python bench/export.py --pdfs 50                # plus 50 PDFs (PDF/A renditions)

It creates a fresh data directory under ``./var`` (SQLite, local object store), registers
one case with ``--docs`` documents of random bytes adding up to ``--size`` (stored as TIFF
scans, which need no PDF/A conversion), optionally ``--pdfs`` small real PDFs, closes the
case, requests the export as an archivist, and then runs the export task
(``exports.run_export``: stream every version into the ZIP, build and validate
metadata.xml against the XSDs, re-verify every checksum of the finished ZIP, hash it, store
it) in a child process whose resident memory (with any Ghostscript it starts) is sampled
every 50 ms. Rates are MiB of document content per second of the whole task. Results go
to stdout as Markdown and to ``bench/out/export-<timestamp>.json``; the data directory is
removed unless ``--keep``.

The goal: memory must not grow with the size of the case (a 5 GB case must not need 5 GB
of RAM); the peak is reported beside the child's RSS before the task started.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script (``python bench/export.py``): make ``bench.common`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MIB,
    REPO_ROOT,
    RssSampler,
    bench_person,
    machine_info,
    machine_summary,
    markdown_table,
    parse_size,
    write_json,
)

CHUNK = 1024 * 1024


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--docs", type=int, default=2000, help="documents in the case")
    parser.add_argument("--size", default="2G", help="total bytes of the documents (e.g. 200M)")
    parser.add_argument("--pdfs", type=int, default=0, help="extra small PDFs (PDF/A path)")
    parser.add_argument("--keep", action="store_true", help="keep the data directory")
    parser.add_argument(
        "--child", nargs=2, metavar=("DATA_DIR", "EXPORT_ID"), help=argparse.SUPPRESS
    )
    args = parser.parse_args(argv)
    if args.docs < 1:
        parser.error("--docs must be at least 1")
    return args


def _env(data_dir: Path) -> dict[str, str]:
    """Only our settings: the caller's DOSSIER_* must not point us at a real installation."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
    env.update({"DOSSIER_DATA_DIR": str(data_dir), "DOSSIER_LOG_LEVEL": "WARNING"})
    return env


def setup(data_dir: Path, docs: int, total: int, pdfs: int) -> tuple[str, int]:
    """A closed case with the documents, and a queued export of it; (export id, bytes)."""
    os.environ.update(_env(data_dir))
    from sqlalchemy import select

    from dossier_service import schema
    from dossier_service.bodies.archive import ExportInput
    from dossier_service.bodies.cases import CaseInput
    from dossier_service.bodies.plan import CloseInput
    from dossier_service.config import load_settings
    from dossier_service.container import Container
    from dossier_service.dates import utcnow
    from dossier_service.models import Document, DocumentVersion, User
    from dossier_service.samples import make_pdf
    from dossier_service.services import accounts, cases, closing, exports
    from dossier_service.services.documents import storage_key
    from workers.celery_app import make_sender

    settings = load_settings()
    # An entry point of its own: it hands the container the broker's task sender.
    container = Container(settings, task_sender=make_sender(settings))
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    schema.upgrade(container.db)
    with container.db.transaction() as session:
        accounts.create_unit(session, "ag", "Kanton Aargau KSD", "canton")
        accounts.create_user(session, "canton", "ag", "caseworker")
        accounts.create_user(session, "archivist", "ag", "archivist")

    def identity(name: str) -> Any:
        with container.db.transaction() as session:
            user = session.execute(select(User).where(User.username == name)).scalar_one()
            return accounts.identity_for_user(user)

    canton, archivist = identity("canton"), identity("archivist")
    with container.db.transaction() as session:
        case = cases.create_case(
            session,
            canton,
            CaseInput.model_validate({"person": bench_person(), "entry_date": "2025-03-01"}),
        )
        case_id = case.id

    sizes = [total // docs + (1 if i < total % docs else 0) for i in range(docs)]
    files: list[tuple[bytes, str, str]] = [
        (b"", "image/tiff", f"scan-{i:05d}.tif") for i in range(docs)
    ]
    files += [
        (make_pdf(f"Bericht {i}", [f"Seite {i}"]), "application/pdf", f"bericht-{i}.pdf")
        for i in range(pdfs)
    ]
    sizes += [len(content) for content, _, _ in files[docs:]]
    written = 0
    started = time.monotonic()
    with container.db.transaction() as session:
        for index, ((content, media_type, filename), size) in enumerate(
            zip(files, sizes, strict=True)
        ):
            version_id = str(uuid.uuid4())
            document_id = str(uuid.uuid4())
            spool = settings.spool_dir / f"bench-{version_id}"
            digest = hashlib.sha256()
            with spool.open("wb") as handle:
                if content:
                    handle.write(content)
                    digest.update(content)
                else:
                    remaining = size
                    while remaining:
                        chunk = os.urandom(min(CHUNK, remaining))
                        handle.write(chunk)
                        digest.update(chunk)
                        remaining -= len(chunk)
            key = storage_key(version_id)
            container.store.put_file(key, spool, {"version-id": version_id})
            now = utcnow()
            session.add(
                Document(
                    id=document_id,
                    case_id=case_id,
                    type="other",
                    title=f"Dokument {index + 1}",
                    created_at=now,
                    created_by_id=canton.user_id,
                )
            )
            session.flush()
            session.add(
                DocumentVersion(
                    id=version_id,
                    document_id=document_id,
                    number=1,
                    storage_key=key,
                    sha256=digest.hexdigest(),
                    size=size,
                    media_type=media_type,
                    filename=filename,
                    created_at=now,
                    created_by_id=canton.user_id,
                    processing="ready",
                    flags={},
                )
            )
            written += size
    print(
        f"set-up: {len(files)} documents, {written / MIB:.1f} MiB written in "
        f"{time.monotonic() - started:.1f} s",
        file=sys.stderr,
    )
    with container.db.transaction() as session:
        closing.close_case(session, canton, case_id, CloseInput.model_validate({"reason": "other"}))
    with container.db.transaction() as session:
        export = exports.create_export(
            session, archivist, ExportInput.model_validate({"case_ids": [case_id]})
        )
        export_id = export.id
    container.close()
    return export_id, written


def child(data_dir: str, export_id: str) -> int:
    """Run the export task in this process (the one whose memory is measured)."""
    import psutil

    from dossier_service.config import load_settings
    from dossier_service.container import Container
    from dossier_service.services import exports, sip

    sip.sip_schema()  # parse the XSDs before measuring the baseline, as a warm worker would
    container = Container(load_settings())
    baseline = psutil.Process().memory_info().rss
    print(json.dumps({"event": "ready", "rss": baseline}), flush=True)
    started = time.monotonic()
    status = exports.run_export(container, export_id)
    elapsed = time.monotonic() - started
    print(json.dumps({"event": "done", "status": status, "elapsed_s": elapsed}), flush=True)
    container.close()
    return 0 if status == "done" else 1


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, export in a measured child process, check the result; the report."""
    total = parse_size(args.size)
    data_dir = REPO_ROOT / "var" / f"bench-export-{uuid.uuid4().hex[:8]}"
    data_dir.mkdir(parents=True)
    try:
        export_id, written = setup(data_dir, args.docs, total, args.pdfs)
        process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--child", str(data_dir), export_id],
            env=_env(data_dir),
            cwd=REPO_ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        ready = json.loads(process.stdout.readline())
        with RssSampler(process.pid) as sampler:
            done = json.loads(process.stdout.readline())
            process.wait()
        if done["status"] != "done":
            raise SystemExit(f"export ended {done['status']}")
        from dossier_service.config import load_settings
        from dossier_service.container import Container
        from dossier_service.models import Export
        from dossier_service.services import sip

        container = Container(load_settings())
        with container.db.transaction() as session:
            row = session.get(Export, export_id)
            assert row is not None
            size, warnings = row.size, list(row.warnings or [])
        local = container.settings.storage_root / "objects" / f"exports/{export_id}.zip"
        problems = sip.validate_sip(local)
        container.close()
        elapsed = done["elapsed_s"]
        return {
            "benchmark": "export",
            "at": dt.datetime.now(dt.UTC).isoformat(),
            "machine": machine_info(data_dir),
            "documents": args.docs + args.pdfs,
            "pdfs": args.pdfs,
            "content_bytes": written,
            "sip_bytes": size,
            "elapsed_s": round(elapsed, 2),
            "mib_per_s": round(written / MIB / elapsed, 1),
            "rss_before_mib": round(ready["rss"] / MIB, 1),
            "rss_peak_mib": round(sampler.peak / MIB, 1),
            "rss_growth_mib": round((sampler.peak - ready["rss"]) / MIB, 1),
            "rss_samples": sampler.samples,
            "valid": problems == [],
            "warnings": len(warnings),
        }
    finally:
        if not args.keep:
            shutil.rmtree(data_dir, ignore_errors=True)


def render(report: dict[str, Any]) -> str:
    """The Markdown summary."""
    row = [
        report["documents"],
        f"{report['content_bytes'] / MIB:.1f} MiB",
        f"{report['sip_bytes'] / MIB:.1f} MiB",
        report["elapsed_s"],
        report["mib_per_s"],
        report["rss_before_mib"],
        report["rss_peak_mib"],
        report["rss_growth_mib"],
        "yes" if report["valid"] else "NO",
    ]
    table = markdown_table(
        [
            "documents",
            "content",
            "SIP",
            "seconds",
            "MiB/s",
            "RSS before (MiB)",
            "RSS peak (MiB)",
            "growth (MiB)",
            "valid",
        ],
        [row],
    )
    return f"## SIP export\n\n{machine_summary(report['machine'])}\n\n{table}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    if args.child:
        return child(*args.child)
    report = run(args)
    print(render(report))
    path = write_json("export", report)
    print(f"results: {path}", file=sys.stderr)
    return 0 if report["valid"] else 1


if __name__ == "__main__":
    sys.exit(main())
