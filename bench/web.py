"""Server time of the case page with many documents, measured with the Flask test client.

Usage: .venv/bin/python bench/web.py [--docs 200] [--runs 50] [--database-url URL]

Builds a case with --docs documents (one to three versions each, rows written directly: the
page never reads the bytes), logs in through the login form, then renders the case page
--runs times and reports p50/p95/max in milliseconds. The goal from the web interface issue:
under 100 ms server time for 200 documents. Not a timed unit test: numbers depend on the
machine, so they are reported, not asserted.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import hashlib
import os
import re
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import create_engine, text

from dossier_service.app import create_app
from dossier_service.bodies.cases import CaseInput
from dossier_service.config import load_settings
from dossier_service.container import Container
from dossier_service.dates import utcnow
from dossier_service.models import DOCUMENT_TYPES, Document, DocumentVersion
from dossier_service.schema import upgrade
from dossier_service.services import accounts, cases

PASSWORD = "Bench-Passwort-2026"


def _setup(container: Container, docs: int) -> str:
    with container.db.transaction() as session:
        accounts.create_unit(session, "ag", "Kanton Aargau KSD", "canton")
        user = accounts.create_user(session, "bench", "ag", "caseworker", "Bench")
        accounts.set_password(session, "bench", PASSWORD)
        case = cases.create_case(
            session,
            accounts.identity_for_user(user),
            CaseInput.model_validate(
                {
                    "person": {
                        "family_name": "Haile",
                        "given_names": "Semhar",
                        "birth_date": "1998-03",
                        "sex": "female",
                        "nationality": "ER",
                        "zemis_number": "12345678.9",
                        "residence_status": "F",
                    },
                    "entry_date": "2022-03-01",
                }
            ),
        )
        types = list(DOCUMENT_TYPES)
        now = utcnow()
        for i in range(docs):
            document = Document(
                id=str(uuid.uuid4()),
                case_id=case.id,
                type=types[i % len(types)],
                title=f"Dokument {i:03d} Standortgespräch",
                created_at=now - dt.timedelta(hours=i),
                created_by_id=user.id,
            )
            session.add(document)
            for number in range(1, 2 + i % 3):
                version_id = str(uuid.uuid4())
                session.add(
                    DocumentVersion(
                        id=version_id,
                        document_id=document.id,
                        number=number,
                        storage_key=f"versions/{version_id[:2]}/{version_id}",
                        sha256=hashlib.sha256(version_id.encode()).hexdigest(),
                        size=120_000 + i,
                        media_type="application/pdf",
                        filename=f"dokument-{i:03d}-v{number}.pdf",
                        created_at=now - dt.timedelta(hours=i, minutes=-number),
                        created_by_id=user.id,
                        processing="ready",
                        flags={},
                    )
                )
        return case.id


@contextmanager
def _database(server_url: str | None, tmp: str) -> Iterator[str]:
    """SQLite in the temp dir, or a throw-away database on the given PostgreSQL server."""
    if not server_url:
        yield f"sqlite:///{tmp}/bench.sqlite"
        return
    base = load_settings({"DOSSIER_DATA_DIR": tmp, "DOSSIER_DATABASE_URL": server_url})
    name = f"dossier_bench_{uuid.uuid4().hex[:10]}"
    admin = create_engine(base.database_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield base.database_url.rsplit("/", 1)[0] + "/" + name
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    """Run the benchmark and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=200)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument(
        "--database-url",
        default=None,
        help="a PostgreSQL server to create a throw-away database on (default: SQLite)",
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, _database(args.database_url, tmp) as url:
        settings = load_settings({"DOSSIER_DATA_DIR": tmp}).with_overrides(database_url=url)
        container = Container(settings)
        upgrade(container.db)
        case_id = _setup(container, args.docs)
        app = create_app(container=container)
        client = app.test_client()
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert token is not None
        answer = client.post(
            "/login",
            data={"username": "bench", "password": PASSWORD, "csrf_token": token.group(1)},
        )
        assert answer.status_code == 302, answer.status_code
        for _ in range(5):  # warm up templates, caches and connections
            assert client.get(f"/cases/{case_id}").status_code == 200
        # Twice: as the process is, and after gc.freeze() (long-lived objects of the app
        # moved out of the collector's sight, as a server can do once after start-up). The
        # difference is the cost of full garbage collections over those objects.
        for label in ("default gc", "after gc.freeze()"):
            if label != "default gc":
                gc.collect()
                gc.freeze()
            timings = []
            size = 0
            for _ in range(args.runs):
                start = time.perf_counter()
                response = client.get(f"/cases/{case_id}")
                timings.append((time.perf_counter() - start) * 1000)
                assert response.status_code == 200
                size = len(response.data)
            timings.sort()
            if os.environ.get("BENCH_DEBUG"):
                print([round(t) for t in timings])
            p95 = timings[min(len(timings) - 1, round(0.95 * len(timings)) - 1)]
            print(
                f"case page, {args.docs} documents, {container.db.dialect}, {label}, "
                f"{args.runs} runs, {size / 1000:.0f} kB HTML: "
                f"p50 {statistics.median(timings):.1f} ms, p95 {p95:.1f} ms, "
                f"max {timings[-1]:.1f} ms (goal: < 100 ms)"
            )
        container.close()


if __name__ == "__main__":
    main()
