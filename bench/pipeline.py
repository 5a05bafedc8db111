"""Pipeline benchmark: PDF/DOCX uploads end to end (upload → searchable) and OCR pages/s.

Runs an in-process app (create_app + a Container with eager tasks, SQLite and a local
store in a temporary data directory): each upload is stored, inspected, extracted and
indexed before it counts, and every document is then looked up by a word only it holds
via GET /api/v1/search. OCR is measured separately on image-only PDFs through
``workers.extract.extract_text``.

    .venv/bin/python -m bench.pipeline --docs 500 --ocr-pages 10
"""

from __future__ import annotations

import argparse
import io
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import bench_person, machine_info, markdown_table, write_json
from dossier_service.app import create_app
from dossier_service.config import load_settings
from dossier_service.container import Container
from dossier_service.files.sniff import PDF
from dossier_service.samples import make_docx, make_pdf
from dossier_service.schema import upgrade
from dossier_service.services import accounts
from tests.test_extract import image_only_pdf, scanned_page
from workers.extract import extract_text

SEED = 20261
CASES = 10
ALPHABET = "bcdfghjklmnpqrstvwxz"
FILLER = (
    "Die Klientin hat den Integrationskurs besucht und eine Wohnung gefunden. "
    "Am Standortgespräch wurde die Kostengutsprache für den Sprachkurs besprochen."
)


def marker(i: int) -> str:
    """A made-up word unique to document *i* (letters only, so every analyzer keeps it)."""
    letters = ""
    while True:
        i, rest = divmod(i, len(ALPHABET))
        letters += ALPHABET[rest]
        if i == 0:
            break
    # The letters sit inside the word: German stemming strips endings, so a marker that
    # ended in them could collide with another after stemming.
    return f"bench{letters}wort"


def document(i: int, rng: random.Random) -> tuple[bytes, str]:
    """Alternately a PDF and a DOCX carrying the marker of document *i*."""
    paragraphs = [f"Notiz {marker(i)} zum Dossier.", FILLER, rng.choice(FILLER.split(". "))]
    if i % 2 == 0:
        return make_pdf(f"Bericht {i}", paragraphs), "bericht.pdf"
    return make_docx(f"Protokoll {i}", paragraphs), "protokoll.docx"


def bench_uploads(count: int, data_dir: Path) -> dict[str, Any]:
    """Upload *count* documents and check each is findable; return the figures."""
    data_dir.mkdir(parents=True, exist_ok=True)
    # Only our settings (no DOSSIER_* of the shell): never touch a real installation.
    settings = load_settings(
        {"DOSSIER_DATA_DIR": str(data_dir), "DOSSIER_LOG_LEVEL": "WARNING"}
    ).with_overrides(tasks_eager=True)
    container = Container(settings)
    try:
        upgrade(container.db)
        with container.db.transaction() as session:
            accounts.create_unit(session, "ag", "Kanton Aargau KSD", "canton")
            accounts.create_user(session, "bench", "ag", "caseworker")
            token = accounts.create_token(session, "bench")
        app = create_app(container=container)
        client = app.test_client()
        auth = {"Authorization": f"Bearer {token}"}
        case_ids = []
        for _ in range(CASES):
            response = client.post(
                "/api/v1/cases",
                json={"person": bench_person(), "entry_date": "2025-03-01"},
                headers=auth,
            )
            if response.status_code != 201:
                raise RuntimeError(f"creating a case failed: {response.get_json()}")
            case_ids.append(response.get_json()["id"])
        rng = random.Random(SEED)
        files = [document(i, rng) for i in range(count)]  # made before the clock starts
        total_bytes = sum(len(data) for data, _ in files)
        upload_latencies = []
        start = time.perf_counter()
        for i, (data, filename) in enumerate(files):
            began = time.perf_counter()
            response = client.post(
                f"/api/v1/cases/{case_ids[i % CASES]}/documents",
                data={"type": "other", "file": (io.BytesIO(data), filename)},
                headers=auth,
                content_type="multipart/form-data",
            )
            upload_latencies.append(time.perf_counter() - began)
            if response.status_code != 201:
                raise RuntimeError(f"upload {i} failed: {response.status_code} "
                                   f"{response.get_json()}")
        uploaded = time.perf_counter() - start
        # Searchable means: GET /api/v1/search by the document's own word returns it.
        missing = []
        for i in range(count):
            response = client.get("/api/v1/search", query_string={"q": marker(i)}, headers=auth)
            if response.status_code != 200 or response.get_json()["total"] != 1:
                missing.append(i)
        searchable = time.perf_counter() - start
        upload_latencies.sort()
        return {
            "docs": count,
            "bytes": total_bytes,
            "upload_seconds": round(uploaded, 2),
            "upload_docs_per_s": round(count / uploaded, 1),
            "upload_p50_ms": round(upload_latencies[len(upload_latencies) // 2] * 1000, 1),
            "upload_p95_ms": round(
                upload_latencies[min(count - 1, int(count * 0.95))] * 1000, 1
            ),
            "searchable_seconds": round(searchable, 2),
            "searchable_docs_per_s": round(count / searchable, 1),
            "not_findable": missing,
        }
    finally:
        container.close()


def bench_ocr(pages: int, work: Path) -> dict[str, Any]:
    """OCR one image-only PDF of *pages* scanned text pages; return pages/s."""
    lines = [
        "Kanton Aargau, Integrationsagenda Schweiz",
        "Gesuch um Kostengutsprache für den Deutschkurs B1",
        "Der Integrationsplan wurde mit dem Sozialdienst besprochen.",
        "Die Teilnehmerin besucht den Integrationskurs regelmässig.",
    ]
    path = work / "scan.pdf"
    path.write_bytes(image_only_pdf([scanned_page(lines) for _ in range(pages)]))
    start = time.perf_counter()
    result = extract_text(path, PDF, timeout_s=600)
    elapsed = time.perf_counter() - start
    if not result.ok or result.ocr_pages != pages:
        raise RuntimeError(f"OCR failed or incomplete: {result}")
    if "kostengutsprache" not in result.text.lower():
        raise RuntimeError("OCR text lacks a word of the page: the figure would be meaningless")
    return {"pages": pages, "seconds": round(elapsed, 2),
            "pages_per_s": round(pages / elapsed, 2)}


def main(argv: list[str] | None = None) -> int:
    """Run both measurements, print Markdown and write bench/out/pipeline-<ts>.json."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=500)
    parser.add_argument("--ocr-pages", type=int, default=10)
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    info = machine_info(work)
    try:
        print(f"uploading {args.docs} documents", file=sys.stderr)
        uploads = bench_uploads(args.docs, work / "data")
        print(f"OCR of {args.ocr_pages} pages", file=sys.stderr)
        ocr = bench_ocr(args.ocr_pages, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"\n**Machine:** {info['cpu_model']}, {info['cpu_cores']} cores, {info['ram_gib']} GiB "
          f"RAM, Python {info['python']}, load average at start {info['load_average_1m']}")
    print("In-process app, SQLite, local store, eager tasks (upload → inspect → extract → "
          "index in the request)\n")
    print(markdown_table(
        ["measure", "docs", "seconds", "docs/s", "upload p50 ms", "upload p95 ms",
         "not findable"],
        [
            ["upload (PDF/DOCX alternating)", uploads["docs"], uploads["upload_seconds"],
             uploads["upload_docs_per_s"], uploads["upload_p50_ms"], uploads["upload_p95_ms"],
             "-"],
            ["upload → searchable (incl. one search each)", uploads["docs"],
             uploads["searchable_seconds"], uploads["searchable_docs_per_s"], "-", "-",
             len(uploads["not_findable"])],
        ],
    ))
    print("\n" + markdown_table(
        ["OCR (image-only PDF, 200 dpi A4, tesseract deu+eng)", "pages", "seconds", "pages/s"],
        [["extract_text", ocr["pages"], ocr["seconds"], ocr["pages_per_s"]]],
    ))
    path = write_json("pipeline", {"machine": info, "uploads": uploads, "ocr": ocr})
    print(f"\nJSON: {path}")
    return 1 if uploads["not_findable"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
