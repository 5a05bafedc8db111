"""Upload throughput over HTTP against raw sha256+write+fsync on the same disk, and server RSS.

Run from the project root::

    .venv/bin/python bench/ingest.py                       # 1 MiB and 200 MiB, own server
    .venv/bin/python bench/ingest.py --sizes 1G --repeat 1 # RSS goal: growth < 64 MiB
    .venv/bin/python bench/ingest.py --url http://127.0.0.1:8000 --token TOKEN

Without ``--url`` it starts its own ``dossier serve`` (one worker, four threads, no task
worker) on a free loopback port with a fresh data directory under ``./var`` and removes it
at the end. Each upload is checked (201, same SHA-256 and size). Sizes are binary
(1M = 1 MiB) and rates are MiB/s. Results go to stdout as Markdown and to
``bench/out/ingest-<timestamp>.json``.

Reading the figures: raw and HTTP runs alternate and each keeps what it wrote, so both
fill page cache that stays in use. On a VM whose memory the host backs lazily, such writes
run at ~250 or ~900 MiB/s depending on whether recently freed pages are at hand, and on a
shared machine other people's test suites take the CPUs: single runs scatter widely. The
table therefore shows the spread, the ratio is the median of per-run ratios, and the
columns "CPU s/GiB" and "server waiting for a CPU" tell a slow server from a busy machine.
``--nice -10`` (as root) keeps neighbours off the CPUs during the measurement.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import requests

if __package__ in (None, ""):
    # Run as a script (``python bench/ingest.py``): make ``bench.common`` importable.
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    MIB,
    REPO_ROOT,
    BenchServer,
    RssSampler,
    create_case,
    format_size,
    machine_info,
    machine_summary,
    markdown_table,
    median,
    parse_size,
    read_token,
    tree_sched,
    write_json,
)

#: Same read size as the server's multipart parser, so the baseline does the same syscalls.
CHUNK = 1024 * 1024
#: The issue's goals.
RATIO_GOAL = 0.60
RSS_GOAL_BYTES = 64 * MIB
LARGE_FILE = 100 * MIB
#: Room for the multipart envelope on top of the largest file, for the server's limit.
SERVER_LIMIT_HEADROOM = 64 * MIB


def default_repeat(size: int) -> int:
    """Runs per size when --repeat is not given: more for small, one for a GiB."""
    if size <= 16 * MIB:
        return 5
    if size <= 256 * MIB:
        return 3
    return 1


def generate_text_file(path: Path, size: int) -> str:
    """Write *size* bytes of random printable ASCII lines to *path*; return their SHA-256.

    Base64 of random bytes: text/plain that the server accepts and cannot compress or
    deduplicate, produced block by block so a GiB never sits in memory.
    """
    digest = hashlib.sha256()
    written = 0
    with path.open("wb") as out:
        while written < size:
            # 57 raw bytes encode to one 76-character line plus a newline.
            block = base64.encodebytes(os.urandom(57 * 13_000))[: size - written]
            out.write(block)
            digest.update(block)
            written += len(block)
        # Clean in the page cache before timing starts: a GiB of dirty input flushed during
        # a measured fsync would be charged to whichever run happened to trigger it.
        out.flush()
        os.fsync(out.fileno())
    return digest.hexdigest()


class MultipartBody:
    """A multipart/form-data body streamed from a file, with a known length.

    ``requests`` sends an iterable with ``__len__`` with that Content-Length and without
    chunked encoding, reading the file one chunk at a time: the client never buffers it.
    """

    def __init__(self, path: Path, size: int, fields: dict[str, str], filename: str) -> None:
        self.path = path
        self.size = size
        self.boundary = f"bench-{uuid.uuid4().hex}"
        parts = [
            f'--{self.boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'
            for name, value in fields.items()
        ]
        parts.append(
            f"--{self.boundary}\r\n"
            f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'
            "Content-Type: text/plain\r\n\r\n"
        )
        self.preamble = "".join(parts).encode("utf-8")
        self.epilogue = f"\r\n--{self.boundary}--\r\n".encode()

    @property
    def content_type(self) -> str:
        """The request's Content-Type header."""
        return f"multipart/form-data; boundary={self.boundary}"

    def __len__(self) -> int:
        return len(self.preamble) + self.size + len(self.epilogue)

    def __iter__(self) -> Iterator[bytes]:
        yield self.preamble
        sent = 0
        with self.path.open("rb") as source:
            while chunk := source.read(CHUNK):
                sent += len(chunk)
                yield chunk
        if sent != self.size:
            raise RuntimeError(f"{self.path} changed while uploading: {sent} != {self.size} bytes")
        yield self.epilogue


def raw_write(source: Path, target: Path) -> tuple[float, float]:
    """Wall and CPU seconds to read *source*, sha256 it and write it to the new file *target*.

    The caller keeps *target* for the rest of the size's runs, as the server keeps its
    stored objects: on a VM, writing into pages that a just-deleted file freed is three to
    four times faster than into fresh ones, which would flatter the baseline.
    """
    cpu_before = time.process_time()
    started = time.perf_counter()
    digest = hashlib.sha256()
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with source.open("rb", buffering=0) as src:
            while chunk := src.read(CHUNK):
                digest.update(chunk)
                os.write(fd, chunk)
        os.fsync(fd)
    finally:
        os.close(fd)
    digest.hexdigest()
    elapsed = time.perf_counter() - started
    return elapsed, time.process_time() - cpu_before


def upload(
    http: requests.Session, url: str, token: str, case_id: str, path: Path, size: int, sha256: str
) -> tuple[float, dict[str, Any]]:
    """Upload *path* as a new document; return seconds and the response JSON, verified."""
    body = MultipartBody(path, size, {"type": "other", "title": "Benchmark"}, path.name)
    headers = {
        "Authorization": f"Bearer {token}",
        "Content-Type": body.content_type,
        "Content-Length": str(len(body)),
    }
    started = time.perf_counter()
    response = http.post(
        f"{url}/api/v1/cases/{case_id}/documents", data=body, headers=headers, timeout=(10, 900)
    )
    elapsed = time.perf_counter() - started
    if response.status_code != 201:
        raise RuntimeError(f"upload of {path.name}: {response.status_code} {response.text[:500]}")
    document = response.json()
    version = document["versions"][0]
    if version["sha256"] != sha256 or version["size"] != size:
        raise RuntimeError(
            f"upload of {path.name} stored sha256 {version['sha256']} size {version['size']}, "
            f"expected {sha256} size {size}"
        )
    return elapsed, document


@dataclass
class SizeResult:
    """All runs of one file size."""

    size: int
    http_s: list[float] = field(default_factory=list)
    raw_s: list[float] = field(default_factory=list)
    http_cpu_s: list[float] = field(default_factory=list)
    raw_cpu_s: list[float] = field(default_factory=list)
    runqueue_share: list[float] = field(default_factory=list)
    rss_baseline: list[int] = field(default_factory=list)
    rss_peak: list[int] = field(default_factory=list)

    def rate(self, seconds: list[float]) -> float:
        """Median MiB/s over the runs."""
        return self.size / MIB / median(seconds)

    def _per_gib(self, seconds: list[float]) -> float | None:
        """Median CPU seconds per GiB, or None when not measured."""
        if not seconds:
            return None
        return round(median(seconds) * 1024 * MIB / self.size, 2)

    def summary(self) -> dict[str, Any]:
        """Medians, ratio and RSS growth (worst run) for the report.

        The ratio is the median over runs of HTTP rate / raw rate of the same run: the two
        halves of a run are measured back to back, so slow drift of the disk (large on a VM)
        cancels out, which it does not in a ratio of the two medians.
        """
        http, raw = self.rate(self.http_s), self.rate(self.raw_s)
        paired = [r / h for h, r in zip(self.http_s, self.raw_s, strict=True)]
        growths = [p - b for p, b in zip(self.rss_peak, self.rss_baseline, strict=True)]
        growth = max(growths, default=None)
        return {
            "size_bytes": self.size,
            "runs": len(self.http_s),
            "http_mib_s": round(http, 1),
            "http_mib_s_each": [round(self.size / MIB / s, 1) for s in self.http_s],
            "raw_mib_s": round(raw, 1),
            "raw_mib_s_each": [round(self.size / MIB / s, 1) for s in self.raw_s],
            "ratio": round(median(paired), 3),
            "ratio_each": [round(x, 3) for x in paired],
            "ratio_of_medians": round(http / raw, 3),
            "server_cpu_s_per_gib": self._per_gib(self.http_cpu_s),
            "raw_cpu_s_per_gib": self._per_gib(self.raw_cpu_s),
            "server_runqueue_wait_share": (
                round(median(self.runqueue_share), 3) if self.runqueue_share else None
            ),
            "rss_baseline_mib": round(self.rss_baseline[0] / MIB, 1) if self.rss_baseline else None,
            "rss_growth_mib_max": round(growth / MIB, 1) if growth is not None else None,
            "rss_growth_mib_each": [round(g / MIB, 1) for g in growths],
        }


def wait_for_idle(timeout_s: float, busy_limit: float = 15.0) -> float:
    """Wait until the machine's CPUs are at most *busy_limit* % busy; return the last reading.

    Every wall-clock figure here is only as good as the machine is quiet: on a shared
    two-core box a test suite next door halves the HTTP rate (the server waits for a CPU).
    """
    deadline = time.monotonic() + timeout_s
    while True:
        busy = float(psutil.cpu_percent(interval=2))
        if busy <= busy_limit or time.monotonic() >= deadline:
            return busy
        print(f"CPUs {busy:.0f} % busy, waiting …", file=sys.stderr)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--url", help="Base URL of a running server (default: start one).")
    parser.add_argument("--token", help="API token of a caseworker (with --url).")
    parser.add_argument("--tokens-file", type=Path, help="username<TAB>token file (with --url).")
    parser.add_argument("--username", default="canton", help="User in --tokens-file.")
    parser.add_argument("--server-pid", type=int, help="Sample this tree's RSS (with --url).")
    parser.add_argument("--case-id", help="Upload into this case instead of registering one.")
    parser.add_argument("--sizes", default="1M,200M", help="Comma-separated sizes: 1M,200M,1G.")
    parser.add_argument("--repeat", type=int, help="Runs per size (default 5/3/1 by size).")
    parser.add_argument(
        "--work-dir", type=Path,
        help="Server data, test files and raw baseline (default ./var/bench-PID).",
    )
    parser.add_argument("--keep", action="store_true", help="Keep the work directory.")
    parser.add_argument("--threads", type=int, default=4, help="Server threads (own server).")
    parser.add_argument(
        "--nice", type=int, default=0,
        help="Niceness to add to the benchmark and its server, and to set for their "
        "scheduler autogroup (negative needs root).",
    )
    parser.add_argument(
        "--wait-idle", type=float, default=0, metavar="SECONDS",
        help="Before each size, wait up to this long for the CPUs to be at most 15%% busy.",
    )
    args = parser.parse_args(argv)
    args.start_server = args.url is None
    if not args.start_server and not (args.token or args.tokens_file):
        parser.error("--url needs --token or --tokens-file")
    if args.start_server and (args.token or args.tokens_file or args.server_pid):
        parser.error("--token, --tokens-file and --server-pid only go with --url")
    try:
        args.size_list = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError as exc:
        parser.error(str(exc))
    if not args.size_list:
        parser.error("--sizes is empty")
    if args.repeat is not None and args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return args


def _check_disk(work_dir: Path, sizes: list[int], repeats: dict[int, int]) -> None:
    """Refuse to start when the work directory's disk cannot hold inputs, uploads and a copy."""
    # Each input file + every stored upload of it + the raw copies of one size + slack.
    needed = sum(size * (1 + repeats[size]) for size in sizes)
    needed += max(size * repeats[size] for size in sizes) + 512 * MIB
    free = shutil.disk_usage(work_dir).free
    if free < needed:
        raise SystemExit(
            f"not enough space on {work_dir}: {free / MIB:.0f} MiB free, {needed / MIB:.0f} needed"
        )


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, measure every size, tear down; return the report."""
    work_dir = (args.work_dir or REPO_ROOT / "var" / f"bench-{os.getpid()}").resolve()
    created = not work_dir.exists()
    work_dir.mkdir(parents=True, exist_ok=True)
    inputs = work_dir / "inputs"
    raw_dir = work_dir / "raw"
    inputs.mkdir(exist_ok=True)
    raw_dir.mkdir(exist_ok=True)
    repeats = {size: args.repeat or default_repeat(size) for size in args.size_list}
    server: BenchServer | None = None
    try:
        _check_disk(work_dir, args.size_list, repeats)
        if args.start_server:
            server = BenchServer(
                work_dir / "data",
                max_upload_bytes=max(args.size_list) + SERVER_LIMIT_HEADROOM,
                threads=args.threads,
            )
            server.data_dir.mkdir(parents=True, exist_ok=True)
            token = server.create_user()
            server.start()
            url = server.url
            rss_pid: int | None = server.proc.pid if server.proc else None
            # The raw baseline writes where the server spools and stores: the same filesystem.
            raw_dir = server.data_dir / "raw-baseline"
            raw_dir.mkdir(exist_ok=True)
        else:
            url = args.url.rstrip("/")
            token = args.token or read_token(args.tokens_file, args.username)
            rss_pid = args.server_pid
        case_id = args.case_id or create_case(url, token)
        info = machine_info(raw_dir)
        http = requests.Session()

        # Warm-up: the first request of a worker imports and connects lazily.
        warm = inputs / "warmup.txt"
        warm_sha = generate_text_file(warm, 64 * 1024)
        upload(http, url, token, case_id, warm, 64 * 1024, warm_sha)

        results = []
        busy: dict[str, float] = {}
        for size in args.size_list:
            busy[format_size(size)] = wait_for_idle(args.wait_idle)
            path = inputs / f"bench-{format_size(size).replace(' ', '')}.txt"
            print(f"generating {format_size(size)} …", file=sys.stderr)
            sha = generate_text_file(path, size)
            result = SizeResult(size)
            for run_no in range(repeats[size]):
                # Interleaved and alternating, so neither side always follows the other's
                # writeback; each starts with no dirty pages left from before (os.sync).
                for step in ("raw", "http") if run_no % 2 == 0 else ("http", "raw"):
                    os.sync()
                    if step == "raw":
                        target = raw_dir / f"{path.stem}-{run_no}"
                        raw_seconds, raw_cpu = raw_write(path, target)
                        result.raw_s.append(raw_seconds)
                        result.raw_cpu_s.append(raw_cpu)
                    elif rss_pid is not None:
                        sched_before = tree_sched(rss_pid)
                        with RssSampler(rss_pid) as rss:
                            seconds, _ = upload(http, url, token, case_id, path, size, sha)
                        sched = tree_sched(rss_pid) - sched_before
                        result.http_cpu_s.append(sched.on_cpu)
                        if sched.runqueue_wait is not None:
                            result.runqueue_share.append(sched.runqueue_wait / seconds)
                        result.rss_baseline.append(rss.baseline)
                        result.rss_peak.append(rss.peak)
                    else:
                        seconds, _ = upload(http, url, token, case_id, path, size, sha)
                result.http_s.append(seconds)
                print(
                    f"  {format_size(size)} run {run_no + 1}/{repeats[size]}: "
                    f"http {size / MIB / seconds:.1f} MiB/s, "
                    f"raw {size / MIB / result.raw_s[-1]:.1f} MiB/s"
                    + (f", rss +{(rss.peak - rss.baseline) / MIB:.1f} MiB" if rss_pid else ""),
                    file=sys.stderr,
                )
            path.unlink()
            for copy in raw_dir.glob(f"{path.stem}-*"):
                copy.unlink()
            results.append(result)
    finally:
        if server is not None:
            server.stop()
        if args.keep or not created:
            shutil.rmtree(inputs, ignore_errors=True)
            print(f"kept {work_dir}", file=sys.stderr)
        else:
            shutil.rmtree(work_dir, ignore_errors=True)
    return {
        "benchmark": "ingest",
        "started_server": args.start_server,
        "server": (
            {"workers": 1, "threads": args.threads, "database": "sqlite", "broker": "sqlite"}
            if args.start_server
            else {"url": args.url}
        ),
        "machine": info,
        "cpu_busy_percent_before_size": busy,
        "results": [{"size": format_size(r.size), **r.summary()} for r in results],
    }


def _with_range(middle: float, each: list[float]) -> str:
    """``median (min–max)``, or just the value for a single run."""
    if len(each) < 2:
        return f"{middle}"
    return f"{middle} ({min(each)}–{max(each)})"


def _cpu(server: float | None, raw: float | None) -> str:
    """``server / raw`` CPU seconds per GiB (the server's only when its pid is known)."""
    return f"{'n/a' if server is None else server} / {raw}"


def _share(value: float | None) -> str:
    """A fraction as a percentage, ``n/a`` when not measured."""
    return "n/a" if value is None else f"{value * 100:.0f} %"


def render(report: dict[str, Any]) -> str:
    """The Markdown block for the README: machine line, table, goal verdicts."""
    rows = []
    for r in report["results"]:
        growth = r["rss_growth_mib_max"]
        rows.append(
            [
                r["size"], r["runs"], _with_range(r["http_mib_s"], r["http_mib_s_each"]),
                _with_range(r["raw_mib_s"], r["raw_mib_s_each"]), f"{r['ratio'] * 100:.0f} %",
                _cpu(r["server_cpu_s_per_gib"], r["raw_cpu_s_per_gib"]),
                _share(r["server_runqueue_wait_share"]),
                "n/a" if growth is None else growth,
            ]
        )
    priority = f" Benchmark run with nice {report['nice']}." if report.get("nice") else ""
    lines = [
        f"Machine: {machine_summary(report['machine'])}.{priority}",
        "",
        markdown_table(
            ["file", "n", "HTTP MiB/s median (min–max)",
             "raw sha256+write+fsync MiB/s median (min–max)", "ratio (median of runs)",
             "CPU s/GiB server / raw", "server waiting for a CPU",
             "server RSS growth MiB (max)"],
            rows,
        ),
        "",
    ]
    for r in report["results"]:
        if r["size_bytes"] >= LARGE_FILE:
            verdict = "met" if r["ratio"] >= RATIO_GOAL else "NOT met"
            lines.append(f"- {r['size']}: ratio goal ≥ {RATIO_GOAL:.0%} {verdict}")
        growth = r["rss_growth_mib_max"]
        if growth is not None and r["size_bytes"] >= 1024 * MIB:
            verdict = "met" if growth * MIB < RSS_GOAL_BYTES else "NOT met"
            lines.append(f"- {r['size']}: RSS growth goal < {RSS_GOAL_BYTES // MIB} MiB {verdict}")
    return "\n".join(lines)


AUTOGROUP = Path("/proc/self/autogroup")


def _set_autogroup_nice(value: int) -> None:
    AUTOGROUP.write_text(str(value))


def _raise_priority(nice: int) -> int | None:
    """Apply *nice* to this process (the server inherits it) and to its scheduler autogroup.

    With autogroups (the Linux default for sessions) the CPUs are shared between sessions
    first, so a process nice value alone does not help against a test suite in another
    session. Returns the autogroup's previous value to restore, or None.
    """
    os.nice(nice)
    try:
        previous = int(AUTOGROUP.read_text().split("nice")[1])
        _set_autogroup_nice(nice)
    except (OSError, IndexError, ValueError):
        return None
    return previous


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    args = parse_args(argv)
    try:
        restore_autogroup = _raise_priority(args.nice) if args.nice else None
    except PermissionError:
        raise SystemExit(f"--nice {args.nice}: not permitted (negative needs root)") from None
    try:
        report = run(args)
    finally:
        if restore_autogroup is not None:
            _set_autogroup_nice(restore_autogroup)
    report["nice"] = args.nice
    path = write_json("ingest", report)
    print(render(report))
    print(f"\n(JSON: {path.relative_to(REPO_ROOT)})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
