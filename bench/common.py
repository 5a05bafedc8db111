"""Shared benchmark helpers: a throw-away server, RSS sampling, machine facts and reports."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import re
import secrets
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import psutil
import requests

REPO_ROOT = Path(__file__).resolve().parent.parent
OUT_DIR = Path(__file__).resolve().parent / "out"
MIB = 1024 * 1024
_SIZE_UNITS = {"": 1, "K": 1024, "M": MIB, "G": 1024 * MIB}

#: A fictional person with a checksum-valid AHV number, enough to register a case.
#: One person has one case: register through ``bench_person()``, which varies the numbers.
BENCH_PERSON = {
    "family_name": "Muster",
    "given_names": "Bench",
    "birth_date": "1990-01",
    "sex": "female",
    "nationality": "ER",
    "zemis_number": "12345678.9",
    "ahv_number": "756.9217.0769.85",
    "residence_status": "F",
}


def bench_person() -> dict[str, str]:
    """BENCH_PERSON with a random ZEMIS and AHV number (the service refuses a second case
    of one person, and a bench may register many into a database that already has some)."""
    serial = secrets.randbelow(10**9)
    first12 = f"756{serial:09d}"
    weighted = sum(int(c) * (3 if i % 2 else 1) for i, c in enumerate(first12))
    ahv = first12 + str((10 - weighted % 10) % 10)
    return {**BENCH_PERSON, "zemis_number": f"8{serial:09d}", "ahv_number": ahv}


def parse_size(text: str) -> int:
    """Bytes of a size like ``1M``, ``200M`` or ``1G`` (binary units: 1M = 1 MiB)."""
    match = re.fullmatch(r"\s*(\d+)\s*([KMG]?)(?:i?B)?\s*", text.upper())
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 1M, 200M, 1G)")
    number = int(match.group(1)) * _SIZE_UNITS[match.group(2)]
    if number <= 0:
        raise ValueError(f"size must be positive: {text!r}")
    return number


def format_size(size: int) -> str:
    """Short binary label of a byte count: ``1 MiB``, ``200 MiB``, ``1 GiB``."""
    for unit, factor in (("GiB", 1024 * MIB), ("MiB", MIB), ("KiB", 1024)):
        if size >= factor and size % factor == 0:
            return f"{size // factor} {unit}"
    return f"{size} B"


def median(values: Sequence[float]) -> float:
    """Median of a non-empty sequence."""
    return float(statistics.median(values))


def free_port() -> int:
    """A TCP port on the loopback interface that nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _filesystem_of(path: Path) -> dict[str, Any]:
    """Mount point, device, type and (for a block device) rotational flag of *path*."""
    resolved = path.resolve()
    best: Any = None
    # The longest mount point that contains the path is the filesystem it lives on.
    for part in psutil.disk_partitions(all=True):
        if resolved.is_relative_to(part.mountpoint) and (
            best is None or len(part.mountpoint) > len(best.mountpoint)
        ):
            best = part
    if best is None:
        return {"mountpoint": None, "device": None, "fstype": None, "rotational": None}
    rotational: bool | None = None
    device_name = Path(best.device).name
    flag = Path("/sys/block") / device_name / "queue" / "rotational"
    if flag.exists():
        rotational = flag.read_text().strip() == "1"
    return {
        "mountpoint": best.mountpoint,
        "device": best.device,
        "fstype": best.fstype,
        "rotational": rotational,
    }


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def machine_info(data_dir: Path) -> dict[str, Any]:
    """Facts that make a benchmark figure comparable: CPU, RAM, disk, software versions."""
    return {
        "cpu_model": _cpu_model(),
        "cpu_cores": os.cpu_count(),
        "ram_gib": round(psutil.virtual_memory().total / (1024 * MIB), 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        # Other work on the machine skews every wall-clock figure: record how busy it was.
        "load_average_1m": round(os.getloadavg()[0], 2),
        "data_dir": str(data_dir),
        "filesystem": _filesystem_of(data_dir),
        "packages": {
            name: _version(name) for name in ("gunicorn", "werkzeug", "flask", "requests")
        },
    }


def machine_summary(info: dict[str, Any]) -> str:
    """One Markdown line describing the machine of *info*."""
    fs = info["filesystem"]
    disk = f"{fs['fstype']} on {fs['device']}"
    if fs.get("rotational") is not None:
        # The kernel's flag, not a verdict: virtual disks often claim to be rotational.
        disk += " (rotational)" if fs["rotational"] else " (non-rotational)"
    return (
        f"{info['cpu_model']}, {info['cpu_cores']} cores, {info['ram_gib']} GiB RAM, {disk}, "
        f"Linux {info['kernel']}, Python {info['python']}, "
        f"gunicorn {info['packages']['gunicorn']}, load average at start {info['load_average_1m']}"
    )


def tree_rss(pid: int) -> int:
    """Resident memory in bytes of a process and all its descendants (0 if it is gone)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    total = 0
    for proc in procs:
        try:
            total += proc.memory_info().rss
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            # A child (e.g. an inspection subprocess) may end between listing and reading.
            continue
    return total


@dataclass(frozen=True)
class SchedTimes:
    """Seconds a process tree spent on a CPU and waiting for one (runnable, not running)."""

    on_cpu: float
    runqueue_wait: float | None

    def __sub__(self, other: SchedTimes) -> SchedTimes:
        wait = None
        if self.runqueue_wait is not None and other.runqueue_wait is not None:
            wait = self.runqueue_wait - other.runqueue_wait
        return SchedTimes(self.on_cpu - other.on_cpu, wait)


def _process_sched(proc: psutil.Process) -> SchedTimes:
    """Per-thread schedstat (nanoseconds) of one process; coarse CPU ticks without it."""
    on_cpu = wait = 0
    try:
        for task in Path(f"/proc/{proc.pid}/task").iterdir():
            fields = (task / "schedstat").read_text().split()
            on_cpu += int(fields[0])
            wait += int(fields[1])
        return SchedTimes(on_cpu / 1e9, wait / 1e9)
    except (OSError, ValueError, IndexError):
        # No schedstat (not Linux, or a thread ended while listing): 10 ms ticks will do.
        times = proc.cpu_times()
        return SchedTimes(float(times.user + times.system), None)


def tree_sched(pid: int) -> SchedTimes:
    """On-CPU and run-queue seconds so far of a process and its living descendants.

    The run-queue wait tells a slow run caused by other load on the machine (say, test
    suites on the same two cores) from a slow server.
    """
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return SchedTimes(0.0, 0.0)
    on_cpu = 0.0
    wait: float | None = 0.0
    for proc in procs:
        try:
            times = _process_sched(proc)
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        on_cpu += times.on_cpu
        wait = None if wait is None or times.runqueue_wait is None else wait + times.runqueue_wait
    return SchedTimes(on_cpu, wait)


class RssSampler:
    """Samples the RSS of a process tree in a background thread; keeps the baseline and peak."""

    def __init__(self, pid: int, interval_s: float = 0.05) -> None:
        self.pid = pid
        self.interval_s = interval_s
        self.baseline = 0
        self.peak = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> RssSampler:
        self.baseline = tree_rss(self.pid)
        self.peak = self.baseline
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)
        self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            self._sample()

    def _sample(self) -> None:
        rss = tree_rss(self.pid)
        self.samples += 1
        self.peak = max(self.peak, rss)

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        # One last sample: an upload shorter than the interval would otherwise go unseen.
        self._sample()

    @property
    def growth(self) -> int:
        """Peak minus baseline, in bytes."""
        return self.peak - self.baseline


class BenchServer:
    """A ``dossier serve`` subprocess with its own data directory, set up through the CLI."""

    def __init__(
        self,
        data_dir: Path,
        *,
        max_upload_bytes: int,
        workers: int = 1,
        threads: int = 4,
    ) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.threads = threads
        self.log_path = data_dir / "server.log"
        # Only our settings: a DOSSIER_* variable of the caller's shell (say, a PostgreSQL
        # URL) must not point the benchmark at a real installation.
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOSSIER_")}
        self.env.update(
            {
                "DOSSIER_DATA_DIR": str(data_dir),
                "DOSSIER_MAX_UPLOAD_BYTES": str(max_upload_bytes),
                "DOSSIER_LOG_LEVEL": "WARNING",
            }
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    def cli(self, *args: str) -> str:
        """Run ``dossier ARGS`` against this data directory and return its output."""
        done = subprocess.run(
            [sys.executable, "-m", "dossier_service.cli", *args],
            env=self.env,
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        if done.returncode != 0:
            raise RuntimeError(f"dossier {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def create_user(self, username: str = "bench", unit: str = "bench") -> str:
        """Create a canton unit, a caseworker in it and a token; return the token."""
        self.cli("init")
        self.cli(
            "units", "create", "--code", unit, "--name", "Benchmark Kanton", "--kind", "canton"
        )
        self.cli("users", "create", "--username", username, "--unit", unit, "--role", "caseworker")
        output = self.cli("tokens", "create", "--username", username, "--label", "bench")
        # The token is printed once, as the last line.
        return output.strip().splitlines()[-1].strip()

    def start(self, timeout_s: float = 60) -> None:
        """Start the server and wait until /api/v1/health answers 200."""
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "dossier_service.cli", "serve", "--no-worker",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--workers", str(self.workers), "--threads", str(self.threads),
            ],
            env=self.env,
            cwd=REPO_ROOT,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"the server exited early:\n{self.log_tail()}")
            try:
                if requests.get(f"{self.url}/api/v1/health", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(
            f"the server did not become healthy in {timeout_s} s:\n{self.log_tail()}"
        )

    def workers_pids(self) -> list[int]:
        """Process ids of the gunicorn workers (children of the master)."""
        if self.proc is None:
            return []
        try:
            return [child.pid for child in psutil.Process(self.proc.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's output."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no server log)"

    def stop(self, timeout_s: float = 30) -> None:
        """Stop the server gracefully (SIGTERM), and kill what is left after the timeout."""
        if self.proc is not None and self.proc.poll() is None:
            try:
                children = psutil.Process(self.proc.pid).children(recursive=True)
            except psutil.NoSuchProcess:
                children = []
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            # Only the processes this server started, by id: never a broad name match.
            for child in children:
                try:
                    child.kill()
                except psutil.NoSuchProcess:
                    pass
        if self._log is not None:
            self._log.close()
            self._log = None


def create_case(url: str, token: str) -> str:
    """Register a case through the API and return its id."""
    response = requests.post(
        f"{url}/api/v1/cases",
        json={"person": bench_person(), "entry_date": "2025-03-01"},
        headers={"Authorization": f"Bearer {token}"},
        timeout=30,
    )
    if response.status_code != 201:
        raise RuntimeError(f"creating a case failed: {response.status_code} {response.text[:500]}")
    return str(response.json()["id"])


def read_token(tokens_file: Path, username: str) -> str:
    """The token of *username* from a ``username<TAB>token`` file (as ``dossier demo`` writes)."""
    for line in tokens_file.read_text().splitlines():
        name, _, token = line.partition("\t")
        if name.strip() == username and token.strip():
            return token.strip()
    raise KeyError(f"no token for {username!r} in {tokens_file}")


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; numbers are right-aligned."""
    def align(column: int) -> str:
        numeric = rows and all(isinstance(row[column], int | float) for row in rows)
        return "---:" if numeric else "---"

    lines = [
        "| " + " | ".join(headers) + " |",
        "| " + " | ".join(align(i) for i in range(len(headers))) + " |",
    ]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(name: str, data: dict[str, Any]) -> Path:
    """Write *data* to ``bench/out/NAME-<UTC timestamp>.json`` and return the path."""
    OUT_DIR.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = OUT_DIR / f"{name}-{stamp}.json"
    path.write_text(json.dumps(data, indent=2, sort_keys=False) + "\n")
    return path
