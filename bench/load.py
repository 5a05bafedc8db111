"""Load run with faults: the production topology on this machine, many caseworkers, three faults.

Starts PostgreSQL's fresh database (on the server at 127.0.0.1:5432), its own Redis and
moto S3 server on free ports, ``dossier serve`` (gunicorn, several workers, no proxy when
the command offers ``--no-proxy``) and two Celery workers (one with the beat), all with one
environment. Seeds units, caseworkers and tokens, then lets simulated caseworkers upload
(PDF from tests/data, DOCX, scans), read, download, search and transfer cases while it
restarts Redis, SIGKILLs a Celery worker (and restarts it, as a supervisor would) and
SIGKILLs a gunicorn worker. Afterwards it checks that every accepted upload downloads with
its SHA-256, every version ends ``ready`` or ``failed``, ``fsck``, ``audit verify`` and
``index verify`` exit 0, and no request got a 5xx outside a fault window. Traffic goes to
127.0.0.1 only; the run stops by itself and stops everything it started.

    .venv/bin/python -m bench.load                      # 10 minutes, 50 caseworkers
    .venv/bin/python -m bench.load --duration 60 --users 10   # smoke run
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

from bench.common import (
    REPO_ROOT,
    bench_person,
    free_port,
    machine_info,
    machine_summary,
    markdown_table,
    write_json,
)

CORPUS = REPO_ROOT / "tests" / "data" / "py-pdf-sample-files"
VENV_BIN = Path(sys.executable).parent
PG_ADMIN_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
FILLER = (
    "Die Klientin hat den Integrationskurs besucht und eine Wohnung gefunden. "
    "Am Standortgespräch wurde die Kostengutsprache für den Sprachkurs besprochen."
)
SEARCH_WORDS = ["Integrationskurs", "Wohnung", "Kostengutsprache", "Sprachkurs", "Bericht*"]
#: Document types a caseworker files day to day (end reports are added before a hand-over).
DOC_TYPES = ["meeting_record", "correspondence", "short_assessment", "certificate", "other"]


def log(message: str) -> None:
    """One timestamped line on stderr (the result tables go to stdout)."""
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process in its own process group, with its output in a log file."""

    def __init__(self, name: str, argv: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.log_path = log_dir / f"{name}.log"
        self.popen: subprocess.Popen[bytes] | None = None
        self.starts = 0

    def start(self) -> None:
        """Start (or restart) the process, appending to its log."""
        self.starts += 1
        with self.log_path.open("ab") as out:
            out.write(f"\n=== start {self.starts} at {time.strftime('%H:%M:%S')} ===\n".encode())
            out.flush()
            # Own session: Ctrl-C in the terminal reaches only this script, which then
            # stops every child in order instead of leaving half of them running.
            self.popen = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=REPO_ROOT,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        """Process id of the current incarnation."""
        assert self.popen is not None
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen is not None and self.popen.poll() is None

    def tree(self) -> list[psutil.Process]:
        """The process and its descendants (empty when it is gone)."""
        if self.popen is None:
            return []
        try:
            root = psutil.Process(self.popen.pid)
            return [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return []

    def kill_tree(self) -> None:
        """SIGKILL the process and every descendant, by id (a container's death)."""
        for proc in self.tree():
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if self.popen is not None:
            self.popen.wait()

    def stop(self, timeout_s: float = 20) -> None:
        """SIGTERM, wait, then SIGKILL what is left of the tree."""
        if self.popen is None:
            return
        tree = self.tree()
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                pass
        for proc in tree:
            try:
                proc.kill()
            except psutil.NoSuchProcess:
                pass
        if self.popen.poll() is None:
            self.popen.wait()

    def tail(self, lines: int = 20) -> str:
        """The end of the process's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def wait_until(what: str, check: Any, timeout_s: float, proc: Proc | None = None) -> None:
    """Poll *check* until it is true; fail early when *proc* exited."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{proc.name} exited while waiting for {what}:\n{proc.tail()}")
        try:
            if check():
                return
        except Exception:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"timed out after {timeout_s} s waiting for {what}")


def redis_ping(port: int) -> bool:
    """True when the Redis on *port* answers PING."""
    import redis

    return bool(redis.Redis(host="127.0.0.1", port=port, socket_timeout=1).ping())


def known_variables() -> frozenset[str]:
    """The DOSSIER_* variables this checkout understands (unknown ones are refused at start)."""
    from dossier_service.config import KNOWN_VARIABLES

    return frozenset(KNOWN_VARIABLES)


def command_has_option(env: dict[str, str], command: str, option: str) -> bool:
    """True when ``dossier COMMAND --help`` lists *option*."""
    done = subprocess.run(
        [sys.executable, "-m", "dossier_service.cli", command, "--help"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    return option in done.stdout


class Topology:
    """Every server of one run; ``stop`` ends them all (also after a failed start)."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.data_dir = work / "data"
        self.log_dir = work / "logs"
        self.log_dir.mkdir(parents=True, exist_ok=True)
        self.db_name = f"dossier_load_{os.getpid()}_{secrets.token_hex(3)}"
        self.db_created = False
        self.redis_port = free_port()
        self.s3_port = free_port()
        self.web_port = free_port()
        self.url = f"http://127.0.0.1:{self.web_port}"
        self.procs: dict[str, Proc] = {}
        self.env = self._environment()

    def _environment(self) -> dict[str, str]:
        # Only our settings: a DOSSIER_* variable of the caller's shell must never point
        # the run at a real installation.
        env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
        known = known_variables()
        pg = PG_ADMIN_URL.rsplit("/", 1)[0] + "/" + self.db_name
        redis_url = f"redis://127.0.0.1:{self.redis_port}/{self.args.redis_db}"
        wanted = {
            "DOSSIER_DATA_DIR": str(self.data_dir),
            "DOSSIER_DATABASE_URL": pg,
            "DOSSIER_BROKER_URL": redis_url,
            "DOSSIER_STORAGE": "s3",
            "DOSSIER_S3_ENDPOINT": f"127.0.0.1:{self.s3_port}",
            "DOSSIER_S3_ACCESS_KEY": "testing",
            "DOSSIER_S3_SECRET_KEY": "testing",
            "DOSSIER_S3_BUCKET": "dossier-load",
            "DOSSIER_S3_REGION": "us-east-1",
            "DOSSIER_S3_SECURE": "false",
            "DOSSIER_SECRET_KEY": secrets.token_hex(32),
            "DOSSIER_LOG_LEVEL": "INFO",
            # Settings of newer releases: set only where this checkout knows them, since
            # an unknown DOSSIER_* variable stops the service at start.
            "DOSSIER_AUDIT_KEY": secrets.token_hex(32),
            "DOSSIER_REDIS_URL": redis_url,
            "DOSSIER_SESSION_REDIS_URL": redis_url,
        }
        for name, value in wanted.items():
            if name in known:
                env[name] = value
        # moto reads its region from here; the SDKs of the service do not need it.
        env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _proc(self, name: str, argv: list[str]) -> Proc:
        proc = Proc(name, argv, self.env, self.log_dir)
        self.procs[name] = proc
        return proc

    def cli(self, *args: str, timeout_s: float = 600) -> subprocess.CompletedProcess[str]:
        """Run ``dossier ARGS`` with the run's environment."""
        return subprocess.run(
            [sys.executable, "-m", "dossier_service.cli", *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )

    def start(self) -> None:
        """Bring up every server and wait until each answers."""
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{self.db_name}"')
        self.db_created = True
        log(f"database {self.db_name} created")

        redis_dir = self.work / "redis"
        redis_dir.mkdir()
        # Persistence as a production Redis has it (AOF, fsync every second), so a restart
        # loses at most the last second of queued tasks, not the whole queue.
        redis = self._proc(
            "redis",
            [
                shutil.which("redis-server") or "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.redis_port),
                "--dir",
                str(redis_dir),
                "--appendonly",
                "yes",
                "--appendfsync",
                "everysec",
                "--save",
                "",
                "--protected-mode",
                "yes",
            ],
        )
        redis.start()
        wait_until("redis", lambda: redis_ping(self.redis_port), 20, redis)

        moto = self._proc(
            "moto",
            [str(VENV_BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(self.s3_port)],
        )
        moto.start()
        wait_until(
            "moto",
            lambda: requests.get(f"http://127.0.0.1:{self.s3_port}/", timeout=2).ok,
            60,
            moto,
        )

        done = self.cli("init")
        if done.returncode != 0:
            raise RuntimeError(f"dossier init failed: {done.stderr or done.stdout}")

        serve = [
            "serve",
            "--no-worker",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.web_port),
            "--workers",
            str(self.args.web_workers),
            "--threads",
            str(self.args.threads),
        ]
        # Gunicorn straight on the port, as production behind its own proxy would run it;
        # the kill of a worker then hits gunicorn, not a proxy.
        if command_has_option(self.env, "serve", "--no-proxy"):
            serve.append("--no-proxy")
        web = self._proc("web", [sys.executable, "-m", "dossier_service.cli", *serve])
        web.start()
        wait_until(
            "the web server",
            lambda: requests.get(f"{self.url}/api/v1/health", timeout=3).status_code == 200,
            120,
            web,
        )
        for index in (1, 2):
            worker = self._proc(f"celery-{index}", self.worker_argv(beat=index == 1))
            worker.start()
        time.sleep(3)
        for index in (1, 2):
            if not self.procs[f"celery-{index}"].alive():
                raise RuntimeError(
                    f"celery-{index} exited:\n{self.procs[f'celery-{index}'].tail()}"
                )
        log(f"topology up: web {self.url}, redis :{self.redis_port}, s3 :{self.s3_port}")

    def worker_argv(self, *, beat: bool) -> list[str]:
        """The command line of a Celery worker (exactly one runs the beat)."""
        return [
            sys.executable,
            "-m",
            "dossier_service.cli",
            "worker",
            "--concurrency",
            str(self.args.celery_concurrency),
            "--beat" if beat else "--no-beat",
        ]

    def gunicorn_workers(self) -> list[int]:
        """Process ids of the gunicorn workers: the children of the master.

        The master is the highest process of the web tree with at least two children
        other than nginx: ``dossier serve`` itself when it runs gunicorn in-process, or a
        child of it when it also starts a reverse proxy.
        """

        def python_children(proc: psutil.Process) -> list[psutil.Process]:
            kids = []
            for child in proc.children():
                try:
                    if "nginx" not in child.name():
                        kids.append(child)
                except psutil.NoSuchProcess:
                    continue
            return kids

        try:
            queue = [psutil.Process(self.procs["web"].pid)]
            while queue:
                proc = queue.pop(0)
                kids = python_children(proc)
                if len(kids) >= 2 or (self.args.web_workers == 1 and kids):
                    return [kid.pid for kid in kids]
                queue.extend(kids)
        except psutil.NoSuchProcess:
            pass
        return []

    def stop(self) -> None:
        """Stop workers, web, S3 and Redis; drop the database."""
        for name in ("celery-2", "celery-1", "web", "moto", "redis"):
            proc = self.procs.get(name)
            if proc is not None:
                log(f"stopping {name}")
                try:
                    proc.stop()
                except Exception as exc:
                    log(f"stopping {name}: {exc}")
        if self.db_created and not self.args.keep:
            try:
                import psycopg

                with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
                    conn.execute(f'DROP DATABASE IF EXISTS "{self.db_name}" WITH (FORCE)')
                self.db_created = False
            except Exception as exc:
                log(f"dropping database {self.db_name}: {exc}")


# --------------------------------------------------------------------------- faults


@dataclass
class FaultWindow:
    """When a fault began and when the faulted part answered again (monotonic seconds)."""

    name: str
    start: float
    end: float | None = None
    detail: str = ""


class Faults:
    """Injects the three faults at set times and records their windows."""

    def __init__(self, topo: Topology, t0: float, duration: float) -> None:
        self.topo = topo
        self.t0 = t0
        self.windows: list[FaultWindow] = []
        self.lock = threading.Lock()
        self.plan = [
            (0.25 * duration, "redis_restart", self.restart_redis),
            (0.50 * duration, "celery_worker_sigkill", self.kill_celery),
            (0.75 * duration, "gunicorn_worker_sigkill", self.kill_gunicorn),
        ]

    def run(self, stop: threading.Event) -> None:
        """Inject each fault at its time (until *stop*)."""
        for at, name, action in self.plan:
            if stop.wait(max(0.0, self.t0 + at - time.monotonic())):
                return
            window = FaultWindow(name, time.monotonic())
            with self.lock:
                self.windows.append(window)
            log(f"fault: {name}")
            try:
                window.detail = action()
            except Exception as exc:
                window.detail = f"fault injection failed: {exc}"
                log(window.detail)
            window.end = time.monotonic()
            log(f"fault {name} over after {window.end - window.start:.1f} s: {window.detail}")

    def restart_redis(self) -> str:
        redis = self.topo.procs["redis"]
        redis.stop(timeout_s=30)
        time.sleep(self.topo.args.redis_down_s)
        redis.start()
        wait_until("redis after restart", lambda: redis_ping(self.topo.redis_port), 30, redis)
        return f"SIGTERM, down {self.topo.args.redis_down_s} s, restarted (pid {redis.pid})"

    def kill_celery(self) -> str:
        worker = self.topo.procs["celery-2"]
        pids = [p.pid for p in worker.tree()]
        worker.kill_tree()
        # A supervisor's restart delay.
        time.sleep(5)
        worker.start()
        wait_until(
            "celery-2 after restart", lambda: worker.alive() and len(worker.tree()) > 1, 60, worker
        )
        return f"SIGKILL of pids {pids} (worker and its pool), restarted as pid {worker.pid}"

    def kill_gunicorn(self) -> str:
        before = self.topo.gunicorn_workers()
        if not before:
            raise RuntimeError("no gunicorn worker found")
        victim = random.choice(before)
        os.kill(victim, signal.SIGKILL)

        def replaced() -> bool:
            now = self.topo.gunicorn_workers()
            return victim not in now and len(now) >= len(before)

        wait_until("a replacement gunicorn worker", replaced, 60)
        time.sleep(2)  # the new worker imports the app before it accepts
        return f"SIGKILL of worker pid {victim}; master replaced it"

    def covering(self, t: float, grace_s: float, seconds: float = 0.0) -> str | None:
        """The fault whose window (plus grace) overlaps a request from *t* for *seconds*.

        A request that started before a fault and was still running when it struck (a
        slow request on the killed gunicorn worker, a health probe of the broker just before
        Redis went down) fails because of it, so the request's whole span counts.
        """
        with self.lock:
            for window in self.windows:
                end = window.end if window.end is not None else time.monotonic()
                if t + seconds >= window.start - 1.0 and t <= end + grace_s:
                    return window.name
        return None


# --------------------------------------------------------------------------- traffic


@dataclass
class Sample:
    """One request's outcome."""

    endpoint: str
    t: float
    seconds: float
    status: int  # 0 = no response (connection error, timeout)
    error: str = ""


@dataclass
class Upload:
    """An upload the service accepted with 201."""

    document_id: str
    case_id: str
    sha256: str
    size: int
    kind: str
    token: str
    t: float


@dataclass
class Stats:
    """Everything the users observed (thread-safe appends)."""

    samples: list[Sample] = field(default_factory=list)
    uploads: list[Upload] = field(default_factory=list)
    mismatches: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, sample: Sample) -> None:
        with self.lock:
            self.samples.append(sample)


class Content:
    """Upload bodies: corpus PDFs, generated PDFs and DOCX, and scans (image-only PDFs)."""

    def __init__(self, scans: int) -> None:
        from tests.sample_files import image_only_pdf, scanned_page

        self.corpus = [p for p in sorted(CORPUS.rglob("*.pdf")) if p.stat().st_size < 512 * 1024]
        self.scans = [
            image_only_pdf(
                [
                    scanned_page(
                        [f"Gesprächsprotokoll Nr. {i}", FILLER[:70], FILLER[70:140]], dpi=100
                    )
                ],
                dpi=100,
            )
            for i in range(scans)
        ]

    def make(self, rng: random.Random, marker: str) -> tuple[bytes, str, str, str]:
        """(bytes, filename, media type, kind) of one upload."""
        from dossier_service.samples import make_docx, make_pdf

        roll = rng.random()
        paragraphs = [f"Notiz {marker} zum Dossier.", FILLER]
        if roll < 0.35:
            return (
                make_pdf(f"Bericht {marker}", paragraphs),
                "bericht.pdf",
                "application/pdf",
                "pdf",
            )
        if roll < 0.65:
            return (
                make_docx(f"Protokoll {marker}", paragraphs),
                "protokoll.docx",
                "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
                "docx",
            )
        if roll < 0.9 and self.corpus:
            path = rng.choice(self.corpus)
            return path.read_bytes(), path.name, "application/pdf", "corpus_pdf"
        return rng.choice(self.scans), "scan.pdf", "application/pdf", "scan"


class Caseworker:
    """One simulated caseworker: a thread with its own HTTP session and random walk."""

    def __init__(
        self,
        name: str,
        unit: str,
        kind: str,
        token: str,
        ctx: RunContext,
        seed: int,
    ) -> None:
        self.name = name
        self.unit = unit
        self.kind = kind
        self.token = token
        self.ctx = ctx
        self.rng = random.Random(seed)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"
        self.counter = 0

    def call(
        self, endpoint: str, method: str, path: str, **kwargs: Any
    ) -> requests.Response | None:
        """One request, timed and recorded; None when no response came."""
        kwargs.setdefault("timeout", (5, 60))
        start = time.monotonic()
        try:
            response = self.http.request(method, self.ctx.url + path, **kwargs)
            # The body is part of the latency a caseworker sees.
            _ = response.content
        except requests.RequestException as exc:
            self.ctx.stats.add(
                Sample(endpoint, start, time.monotonic() - start, 0, type(exc).__name__)
            )
            return None
        error = ""
        if response.status_code >= 400:
            error = response.text[:200]
        self.ctx.stats.add(
            Sample(endpoint, start, time.monotonic() - start, response.status_code, error)
        )
        return response

    def my_cases(self, *, own: bool = False) -> list[str]:
        """Ids of the cases the caseworker sees (own: those their unit is responsible for)."""
        response = self.call("GET /cases", "GET", "/api/v1/cases", params={"per_page": 50})
        if response is None or response.status_code != 200:
            return []
        items = response.json().get("items", [])
        if own:
            # The canton reads every case but writes only its own: write where we may.
            items = [i for i in items if (i.get("responsible_unit") or {}).get("code") == self.unit]
        return [item["id"] for item in items]

    def run(self, stop: threading.Event) -> None:
        """Work until *stop*, with think time between actions."""
        actions: list[tuple[int, Callable[[], object]]] = [
            (25, self.read_case),
            (20, self.download),
            (15, self.search),
            (20, self.upload),
            (4, self.transfer),
        ]
        if self.kind == "canton":
            actions.append((4, self.create_case))
        weights = [w for w, _ in actions]
        while not stop.is_set():
            action = self.rng.choices([a for _, a in actions], weights)[0]
            try:
                action()
            except Exception as exc:
                self.ctx.stats.add(Sample("client-exception", time.monotonic(), 0, -1, repr(exc)))
            stop.wait(self.rng.expovariate(1 / self.ctx.think_s))

    def create_case(self) -> None:
        self.call(
            "POST /cases",
            "POST",
            "/api/v1/cases",
            json={"person": bench_person(), "entry_date": "2025-03-01"},
        )

    def read_case(self) -> None:
        cases = self.my_cases()
        if not cases:
            return
        case_id = self.rng.choice(cases)
        self.call("GET /cases/{id}", "GET", f"/api/v1/cases/{case_id}")
        self.call("GET /cases/{id}/documents", "GET", f"/api/v1/cases/{case_id}/documents")

    def download(self) -> None:
        cases = self.my_cases()
        if not cases:
            return
        case_id = self.rng.choice(cases)
        response = self.call(
            "GET /cases/{id}/documents", "GET", f"/api/v1/cases/{case_id}/documents"
        )
        if response is None or response.status_code != 200:
            return
        docs = response.json().get("items", [])
        if not docs:
            return
        doc = self.rng.choice(docs)
        version = doc["versions"][-1]
        got = self.call(
            "GET /documents/{id}/content", "GET", f"/api/v1/documents/{doc['id']}/content"
        )
        if got is not None and got.status_code == 200:
            digest = hashlib.sha256(got.content).hexdigest()
            if digest != version["sha256"]:
                with self.ctx.stats.lock:
                    self.ctx.stats.mismatches.append(
                        f"{doc['id']} v{version['number']}: listed {version['sha256']}, "
                        f"downloaded {digest}"
                    )

    def search(self) -> None:
        query = self.rng.choice(SEARCH_WORDS + self.ctx.recent_markers())
        self.call("GET /search", "GET", "/api/v1/search", params={"q": query})

    def upload(self, case_id: str | None = None, doc_type: str | None = None) -> bool:
        if case_id is None:
            cases = self.my_cases(own=True)
            if not cases:
                return False
            case_id = self.rng.choice(cases)
        self.counter += 1
        marker = f"last{self.name}n{self.counter}wort".replace("-", "")
        data, filename, media_type, kind = self.ctx.content.make(self.rng, marker)
        response = self.call(
            "POST /cases/{id}/documents",
            "POST",
            f"/api/v1/cases/{case_id}/documents",
            data={"type": doc_type or self.rng.choice(DOC_TYPES), "title": f"Dokument {marker}"},
            files={"file": (filename, data, media_type)},
            timeout=(5, 120),
        )
        if response is None or response.status_code != 201:
            return False
        body = response.json()
        sha = hashlib.sha256(data).hexdigest()
        listed = body["versions"][-1]["sha256"]
        with self.ctx.stats.lock:
            self.ctx.stats.uploads.append(
                Upload(body["id"], case_id, sha, len(data), kind, self.token, time.monotonic())
            )
            if listed != sha:
                self.ctx.stats.mismatches.append(f"{body['id']}: sent {sha}, service says {listed}")
            if kind in ("pdf", "docx"):
                self.ctx.markers.append(marker)
        return True

    def transfer(self) -> None:
        cases = self.my_cases(own=True)
        if not cases:
            return
        case_id = self.rng.choice(cases)
        targets = [u for u in self.ctx.municipalities if u != self.unit]
        if not targets:
            return
        if self.kind == "canton":
            # The canton hands a case to a municipality only with an end report in it.
            if not self.upload(case_id, "end_report"):
                return
        self.call(
            "POST /cases/{id}/transfers",
            "POST",
            f"/api/v1/cases/{case_id}/transfers",
            json={"to_unit": self.rng.choice(targets), "reason": "Wohnortwechsel"},
        )


def watch_health(worker: Caseworker, stop: threading.Event) -> None:
    """Poll the health endpoint every 5 s, recorded like any other request."""
    while not stop.wait(5):
        # The same patience as every other request: the verdict is about errors, and
        # a slow answer on a saturated machine shows in the latency columns.
        worker.call("GET /health", "GET", "/api/v1/health")


@dataclass
class RunContext:
    """What the caseworkers share."""

    url: str
    stats: Stats
    content: Content
    municipalities: list[str]
    think_s: float
    markers: list[str] = field(default_factory=list)

    def recent_markers(self) -> list[str]:
        """The words of a few recent uploads (they may or may not be indexed yet)."""
        return self.markers[-5:]


# --------------------------------------------------------------------------- seed


def seed(topo: Topology, users: int, units: int) -> list[tuple[str, str, str, str]]:
    """Create a canton and municipalities, *users* caseworkers with tokens.

    Returns (username, unit code, unit kind, token) per caseworker.
    """
    from dossier_service.config import load_settings
    from dossier_service.container import Container
    from dossier_service.services import accounts

    container = Container(load_settings(topo.env))
    unit_specs = [("kt", "Kanton Last KSD", "canton")] + [
        (f"gem{i}", f"Gemeinde Last {i}", "municipality") for i in range(1, max(2, units))
    ]
    people: list[tuple[str, str, str, str]] = []
    try:
        with container.db.transaction() as session:
            for code, name, kind in unit_specs:
                accounts.create_unit(session, code, name, kind)
            for i in range(users):
                code, _, kind = unit_specs[i % len(unit_specs)]
                username = f"cw{i:03d}-{code}"
                accounts.create_user(session, username, code, "caseworker")
                people.append((username, code, kind, ""))
        tokens = []
        with container.db.transaction() as session:
            for username, code, kind, _ in people:
                tokens.append((username, code, kind, accounts.create_token(session, username)))
        return tokens
    finally:
        close = getattr(container, "close", None)
        if callable(close):
            close()


def seed_cases(ctx: RunContext, workers: list[Caseworker], per_unit: int) -> None:
    """Canton caseworkers register cases and hand some to each municipality."""
    canton = [w for w in workers if w.kind == "canton"]
    if not canton:
        raise RuntimeError("no canton caseworker")
    for unit in ctx.municipalities:
        for n in range(per_unit):
            worker = canton[n % len(canton)]
            response = worker.call(
                "POST /cases",
                "POST",
                "/api/v1/cases",
                json={"person": bench_person(), "entry_date": "2025-03-01"},
            )
            if response is None or response.status_code != 201:
                raise RuntimeError(f"seeding a case failed: {response and response.text}")
            case_id = response.json()["id"]
            if not worker.upload(case_id, "end_report"):
                raise RuntimeError("seeding an end report failed")
            moved = worker.call(
                "POST /cases/{id}/transfers",
                "POST",
                f"/api/v1/cases/{case_id}/transfers",
                json={"to_unit": unit, "reason": "Zuweisung"},
            )
            if moved is None or moved.status_code != 201:
                raise RuntimeError(f"seeding a transfer failed: {moved and moved.text}")
    for n in range(per_unit):
        canton[n % len(canton)].create_case()


# --------------------------------------------------------------------------- checks


def percentile(values: list[float], q: float) -> float:
    """The q-quantile (0..1) by nearest rank."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))
    return ordered[index]


def fetch_document(
    url: str, upload: Upload, tokens: list[str]
) -> tuple[dict[str, Any], str] | None:
    """The document's JSON and a token that may read it (cases move between units)."""
    for token in [upload.token, *tokens]:
        try:
            response = requests.get(
                f"{url}/api/v1/documents/{upload.document_id}",
                headers={"Authorization": f"Bearer {token}"},
                timeout=30,
            )
        except requests.RequestException:
            continue
        if response.status_code == 200:
            return response.json(), token
    return None


def check_after(
    topo: Topology, stats: Stats, unit_tokens: list[str], settle_s: float
) -> dict[str, Any]:
    """The post-load checks: downloads, processing states, fsck/audit/index verify."""
    url = topo.url
    result: dict[str, Any] = {}
    unreadable: list[str] = []
    bad_sha: list[str] = []
    for upload in stats.uploads:
        found = fetch_document(url, upload, unit_tokens)
        if found is None:
            unreadable.append(upload.document_id)
            continue
        doc, token = found
        first = doc["versions"][0]
        response = requests.get(
            f"{url}/api/v1/documents/{upload.document_id}/versions/{first['number']}/content",
            headers={"Authorization": f"Bearer {token}"},
            timeout=60,
        )
        if response.status_code != 200:
            unreadable.append(f"{upload.document_id} (content {response.status_code})")
        elif hashlib.sha256(response.content).hexdigest() != upload.sha256:
            bad_sha.append(upload.document_id)
    result["uploads_201"] = len(stats.uploads)
    result["uploads_unreadable"] = unreadable
    result["uploads_sha_mismatch"] = bad_sha
    log(
        f"downloads checked: {len(stats.uploads)} uploads, {len(unreadable)} unreadable, "
        f"{len(bad_sha)} with a wrong SHA-256"
    )

    # Every version must leave pending/processing within the bound.
    deadline = time.monotonic() + settle_s
    started = time.monotonic()
    pending = {u.document_id: u for u in stats.uploads}
    states: Counter[str] = Counter()
    # The versions as last seen per document: a finished document is not fetched again.
    latest: dict[str, list[dict[str, Any]]] = {}
    while True:
        states = Counter()
        for doc_id, upload in list(pending.items()):
            found = fetch_document(url, upload, unit_tokens)
            if found is None:
                states["unreadable"] += 1
                continue
            latest[doc_id] = found[0]["versions"]
            open_versions = [
                v for v in found[0]["versions"] if v["processing"] not in ("ready", "failed")
            ]
            if not open_versions:
                del pending[doc_id]
            else:
                states[open_versions[0]["processing"]] += 1
        if not pending or time.monotonic() > deadline:
            break
        log(f"waiting for processing: {dict(states)} of {len(stats.uploads)} documents open")
        time.sleep(10)
    result["settle_seconds"] = round(time.monotonic() - started, 1)
    result["documents_not_final"] = sorted(pending)
    result["documents_not_final_states"] = dict(states) if pending else {}
    final: Counter[str] = Counter(
        version["processing"] for versions in latest.values() for version in versions
    )
    result["version_states"] = dict(final)
    log(f"processing: {dict(final)}; not final after {result['settle_seconds']} s: {len(pending)}")

    commands = {}
    for name, argv in (
        ("fsck", ["fsck"]),
        ("audit verify", ["audit", "verify"]),
        ("index verify", ["index", "verify"]),
    ):
        done = topo.cli(*argv, timeout_s=1200)
        commands[name] = {
            "exit": done.returncode,
            "output": (done.stdout + done.stderr)[-3000:],
        }
        log(f"dossier {name}: exit {done.returncode}")
    result["commands"] = commands
    return result


def summarize(
    stats: Stats, faults: Faults, t_start: float, t_end: float, grace_s: float
) -> dict[str, Any]:
    """Latency per endpoint, errors, throughput and 5xx outside the fault windows."""
    by_endpoint: dict[str, list[Sample]] = defaultdict(list)
    for sample in stats.samples:
        by_endpoint[sample.endpoint].append(sample)
    endpoints = {}
    for name, samples in sorted(by_endpoint.items()):
        ok = [s.seconds * 1000 for s in samples if 200 <= s.status < 400]
        statuses = Counter(str(s.status) for s in samples)
        endpoints[name] = {
            "requests": len(samples),
            "p50_ms": round(percentile(ok, 0.5), 1) if ok else None,
            "p95_ms": round(percentile(ok, 0.95), 1) if ok else None,
            "statuses": dict(sorted(statuses.items())),
        }
    outside: list[dict[str, Any]] = []
    inside = 0
    for sample in stats.samples:
        failed = sample.status >= 500 or sample.status == 0 or sample.status == -1
        if not failed:
            continue
        window = faults.covering(sample.t, grace_s, sample.seconds) if sample.status != -1 else None
        if window is None:
            outside.append(
                {
                    "endpoint": sample.endpoint,
                    "at_s": round(sample.t - t_start, 1),
                    "status": sample.status,
                    "error": sample.error,
                }
            )
        else:
            inside += 1
    elapsed = max(1e-9, t_end - t_start)
    uploaded = sum(u.size for u in stats.uploads)
    return {
        "endpoints": endpoints,
        "requests": len(stats.samples),
        "requests_per_s": round(len(stats.samples) / elapsed, 1),
        "uploads_per_s": round(len(stats.uploads) / elapsed, 2),
        "upload_mib_per_s": round(uploaded / elapsed / 2**20, 2),
        "uploads_by_kind": dict(Counter(u.kind for u in stats.uploads)),
        "errors_in_fault_windows": inside,
        "errors_outside_fault_windows": outside,
        "status_4xx": sum(1 for s in stats.samples if 400 <= s.status < 500),
        "sha_mismatches_during_load": stats.mismatches,
    }


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=600, help="Seconds of load (600).")
    parser.add_argument("--users", type=int, default=50, help="Simulated caseworkers (50).")
    parser.add_argument(
        "--units", type=int, default=5, help="Units: one canton and UNITS-1 municipalities (5)."
    )
    parser.add_argument("--redis-db", type=int, default=6, help="Redis db number (6).")
    parser.add_argument("--web-workers", type=int, default=3, help="Gunicorn workers (3).")
    parser.add_argument("--threads", type=int, default=4, help="Threads per gunicorn worker.")
    parser.add_argument(
        "--celery-concurrency", type=int, default=2, help="Pool processes per Celery worker (2)."
    )
    parser.add_argument(
        "--think",
        type=float,
        default=2.0,
        help="Mean think time between a caseworker's actions, seconds (2).",
    )
    parser.add_argument(
        "--cases-per-unit",
        type=int,
        default=4,
        help="Cases seeded per municipality before the load (4).",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=600,
        help="Bound for every version to reach ready/failed after the load (600).",
    )
    parser.add_argument(
        "--grace",
        type=float,
        default=10,
        help="Seconds after a fault in which 5xx/connection errors are accepted.",
    )
    parser.add_argument(
        "--redis-down",
        dest="redis_down_s",
        type=float,
        default=3,
        help="Seconds Redis stays down during its restart (3).",
    )
    parser.add_argument("--seed", type=int, default=20261205)
    parser.add_argument(
        "--keep",
        action="store_true",
        help="Keep the work directory and the database for inspection.",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    """Run the load with faults; 0 on PASS, 1 on FAIL, 2 when the setup failed."""
    args = parse_args(argv)
    random.seed(args.seed)
    work = Path(tempfile.mkdtemp(prefix="dossier-load-"))
    log(f"work directory {work}")
    topo = Topology(args, work)
    stop = threading.Event()

    def on_term(signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, on_term)
    info = machine_info(work)
    try:
        topo.start()
        people = seed(topo, args.users, args.units)
        stats = Stats()
        content = Content(scans=4)
        municipalities = sorted({unit for _, unit, kind, _ in people if kind == "municipality"})
        ctx = RunContext(topo.url, stats, content, municipalities, args.think)
        workers = [
            Caseworker(name, unit, kind, token, ctx, args.seed + i)
            for i, (name, unit, kind, token) in enumerate(people)
        ]
        seed_cases(ctx, workers, args.cases_per_unit)
        # Seeding requests are not part of the measured load.
        stats.samples.clear()
        log(f"seeded {len(people)} caseworkers in {len(municipalities) + 1} units; load starts")

        t_start = time.monotonic()
        faults = Faults(topo, t_start, args.duration)
        threads = [
            threading.Thread(target=w.run, args=(stop,), name=w.name, daemon=True) for w in workers
        ]
        fault_thread = threading.Thread(target=faults.run, args=(stop,), name="faults", daemon=True)
        unplanned: list[dict[str, Any]] = []
        health = threading.Thread(
            target=watch_health, args=(workers[0], stop), name="health", daemon=True
        )
        for thread in threads:
            thread.start()
        fault_thread.start()
        health.start()
        last = t_start
        while time.monotonic() - t_start < args.duration:
            time.sleep(1)
            if time.monotonic() - last >= 30:
                last = time.monotonic()
                log(
                    f"{last - t_start:.0f} s: {len(stats.samples)} requests, "
                    f"{len(stats.uploads)} uploads"
                )
            # A supervisor restarts what died outside a planned fault (and we note it).
            for name in ("celery-1", "celery-2"):
                proc = topo.procs[name]
                if not proc.alive() and faults.covering(time.monotonic(), 0) is None:
                    log(f"{name} died unplanned; restarting:\n{proc.tail(5)}")
                    unplanned.append(
                        {
                            "process": name,
                            "at_s": round(time.monotonic() - t_start, 1),
                            "exit": proc.popen.returncode if proc.popen else None,
                        }
                    )
                    proc.start()
            for name in ("web", "moto"):
                if not topo.procs[name].alive():
                    raise RuntimeError(f"{name} died during the load")
        stop.set()
        for thread in threads:
            thread.join(timeout=150)
        fault_thread.join(timeout=150)
        t_end = time.monotonic()
        log("load over; checking")

        summary = summarize(stats, faults, t_start, t_end, args.grace)
        unit_tokens = []
        seen_units: set[str] = set()
        for _, unit, _, token in people:
            if unit not in seen_units:
                seen_units.add(unit)
                unit_tokens.append(token)
        checks = check_after(topo, stats, unit_tokens, args.settle)
    except KeyboardInterrupt:
        log("interrupted; stopping everything")
        stop.set()
        topo.stop()
        return 130
    except Exception:
        stop.set()
        for proc in topo.procs.values():
            log(f"--- {proc.name} log tail ---\n{proc.tail()}")
        topo.stop()
        raise
    stop.set()
    topo.stop()

    failures = []
    if summary["errors_outside_fault_windows"]:
        failures.append(
            f"{len(summary['errors_outside_fault_windows'])} 5xx/connection errors "
            "outside fault windows"
        )
    if summary["sha_mismatches_during_load"]:
        failures.append("SHA-256 mismatches during the load")
    if checks["uploads_unreadable"] or checks["uploads_sha_mismatch"]:
        failures.append("accepted uploads unreadable or with a wrong SHA-256")
    if checks["documents_not_final"]:
        failures.append(
            f"{len(checks['documents_not_final'])} documents not ready/failed after {args.settle} s"
        )
    for name, outcome in checks["commands"].items():
        if outcome["exit"] != 0:
            failures.append(f"dossier {name} exited {outcome['exit']}")
    if len(faults.windows) < 3 or any("failed" in w.detail for w in faults.windows):
        failures.append("not every fault was injected")
    if not stats.uploads:
        failures.append("no upload succeeded")

    windows = [
        {
            "fault": w.name,
            "start_s": round(w.start - t_start, 1),
            "end_s": round((w.end or w.start) - t_start, 1),
            "detail": w.detail,
        }
        for w in faults.windows
    ]
    result = {
        "verdict": "FAIL" if failures else "PASS",
        "failures": failures,
        "args": vars(args),
        "machine": info,
        "fault_windows": windows,
        "summary": summary,
        "checks": checks,
        "restarts": {name: proc.starts for name, proc in topo.procs.items()},
        "unplanned_restarts": unplanned,
        "work_dir": str(work) if args.keep else None,
    }
    path = write_json("load", result)
    # The servers' logs are the evidence of what a fault did: keep them beside the result.
    logs = path.with_name(path.stem + "-logs")
    shutil.copytree(topo.log_dir, logs, dirs_exist_ok=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)

    rows = [
        [
            name,
            e["requests"],
            e["p50_ms"] if e["p50_ms"] is not None else "-",
            e["p95_ms"] if e["p95_ms"] is not None else "-",
            ", ".join(f"{k}: {v}" for k, v in e["statuses"].items()),
        ]
        for name, e in summary["endpoints"].items()
    ]
    print(f"\nMachine: {machine_summary(info)}")
    print(
        f"{args.users} caseworkers, {args.duration:.0f} s, {args.web_workers} gunicorn workers "
        f"x {args.threads} threads, 2 Celery workers x {args.celery_concurrency}\n"
    )
    print(markdown_table(["endpoint", "requests", "p50 ms", "p95 ms", "statuses"], rows))
    print(
        f"\nthroughput: {summary['requests_per_s']} requests/s, {summary['uploads_per_s']} "
        f"uploads/s ({summary['upload_mib_per_s']} MiB/s); uploads by kind "
        f"{summary['uploads_by_kind']}"
    )
    print("faults: " + "; ".join(f"{w['fault']} {w['start_s']}–{w['end_s']} s" for w in windows))
    print(
        f"errors inside fault windows: {summary['errors_in_fault_windows']}, outside: "
        f"{len(summary['errors_outside_fault_windows'])}, 4xx: {summary['status_4xx']}"
    )
    print(f"versions: {checks['version_states']}; settle {checks['settle_seconds']} s")
    for name, outcome in checks["commands"].items():
        print(f"dossier {name}: exit {outcome['exit']}")
    for restart in unplanned:
        print(
            f"warning: {restart['process']} died unplanned at {restart['at_s']} s "
            f"(exit {restart['exit']}) and was restarted (see {logs})"
        )
    print(f"results: {path}, logs: {logs}")
    print("\n" + ("FAIL: " + "; ".join(failures) if failures else "PASS"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
