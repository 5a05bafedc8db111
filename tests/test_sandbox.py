"""Tests for the shared child-process sandbox (dossier_service.sandbox) and how callers read it."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import psutil
import pytest

from dossier_service import sandbox
from dossier_service.files import inspect as inspect_module
from dossier_service.files.inspect import FileReport
from dossier_service.files.sniff import PDF
from dossier_service.samples import make_pdf
from dossier_service.sandbox import SandboxOutcome, run_in_sandbox

TARGETS = "tests.sandbox_targets"


def run(target: str, job: dict[str, Any] | None = None, **options: Any) -> SandboxOutcome:
    """Run a target of tests/sandbox_targets.py in the sandbox with small, test-friendly limits."""
    settings: dict[str, Any] = {
        "timeout_s": 20,
        "max_memory_mb": 256,
        "max_output_bytes": 100_000,
    }
    settings.update(options)
    return run_in_sandbox(f"{TARGETS}:{target}", job or {}, **settings)


@pytest.fixture
def spawned(monkeypatch: pytest.MonkeyPatch) -> list[subprocess.Popen[bytes]]:
    """Records every child the sandbox starts."""
    started: list[subprocess.Popen[bytes]] = []

    class RecordingPopen(subprocess.Popen[bytes]):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            started.append(self)

    monkeypatch.setattr(sandbox.subprocess, "Popen", RecordingPopen)
    return started


def _group_members(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes in process group *pgid*."""
    members = []
    for process in psutil.process_iter(["status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != "zombie":
                members.append(process)
        except (ProcessLookupError, psutil.NoSuchProcess):
            continue
    return members


def _with_marker(marker: str) -> list[psutil.Process]:
    """Live processes whose command line contains *marker*."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        try:
            cmdline = process.info["cmdline"] or []
            if any(marker in part for part in cmdline) and process.info["status"] != "zombie":
                found.append(process)
        except psutil.NoSuchProcess:
            continue
    return found


def _is_gone(process: psutil.Process, within_s: float = 3.0) -> bool:
    """Whether *process* is dead (a zombie waiting for init to reap it counts as dead)."""
    deadline = time.monotonic() + within_s
    while time.monotonic() < deadline:
        try:
            if process.status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        time.sleep(0.05)
    return False


def _assert_nothing_left(spawned: list[subprocess.Popen[bytes]]) -> None:
    """The child was reaped and no process of its group survived."""
    assert len(spawned) == 1
    assert spawned[0].returncode is not None
    assert _group_members(spawned[0].pid) == []


# --- A normal run -------------------------------------------------------------------------


def test_normal_run_returns_the_json_result_under_the_limits(
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    """The target's return value comes back; the child ran in its own group, fully limited."""
    outcome = run("echo", {"path": "/tmp/x.pdf", "n": 3, "text": "Grüezi"}, cpu_seconds=7)
    assert outcome.status == "ok"
    assert (outcome.returncode, outcome.error) == (0, None)
    assert outcome.value["job"] == {"path": "/tmp/x.pdf", "n": 3, "text": "Grüezi"}
    assert outcome.value["pgid"] == outcome.value["pid"] == spawned[0].pid
    mib = 1024 * 1024
    assert outcome.value["limits"] == {
        "RLIMIT_AS": [256 * mib, 256 * mib],
        "RLIMIT_CPU": [7, 8],
        "RLIMIT_CORE": [0, 0],
        "RLIMIT_FSIZE": [0, 0],
        "RLIMIT_NOFILE": [64, 64],
    }
    _assert_nothing_left(spawned)


def test_memory_floor_applies_unless_the_caller_lowers_it() -> None:
    """A tiny request gets the default floor; a caller that imports less may go lower."""
    assert sandbox.memory_limit_mb(1) == sandbox.MIN_MEMORY_MB
    assert sandbox.memory_limit_mb(1000) == 1000
    floored = run("echo", max_memory_mb=1)
    assert floored.value["limits"]["RLIMIT_AS"][0] == sandbox.MIN_MEMORY_MB * 1024 * 1024
    lowered = run("echo", max_memory_mb=1, min_memory_mb=128)
    assert lowered.value["limits"]["RLIMIT_AS"][0] == 128 * 1024 * 1024


def test_soft_deadline_lets_the_target_return_partial_results() -> None:
    """SoftTimeout (this module's class) is raised margin seconds before the hard deadline."""
    outcome = run("partial", timeout_s=3, soft_deadline_margin_s=1.5)
    assert outcome.status == "ok"
    assert outcome.value["rounds"] > 0
    assert 1.4 < outcome.elapsed_s < 2.9


# --- Timeouts and leftovers ---------------------------------------------------------------


def test_timeout_kills_the_whole_process_group_grandchild_too(
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    """At the deadline the child and the tool it started are SIGKILLed together."""
    marker = f"sandbox-test-{uuid.uuid4()}"
    outcome_box: list[SandboxOutcome] = []
    runner = threading.Thread(
        target=lambda: outcome_box.append(
            run("hang_with_grandchild", {"marker": marker}, timeout_s=4)
        )
    )
    runner.start()
    grandchildren: list[psutil.Process] = []
    until = time.monotonic() + 4
    while not grandchildren and time.monotonic() < until:
        time.sleep(0.05)
        grandchildren = _with_marker(marker)
    runner.join(timeout=15)
    assert grandchildren, "the sandboxed target did not start its tool"
    assert grandchildren[0].ppid() != os.getpid()  # a grandchild, not our own child
    assert outcome_box[0].status == "timeout"
    assert outcome_box[0].returncode == -signal.SIGKILL
    assert outcome_box[0].elapsed_s < 7
    assert all(_is_gone(p) for p in grandchildren)
    assert _with_marker(marker) == []
    _assert_nothing_left(spawned)


def test_tiny_timeout_is_a_timeout_and_leaves_nothing(
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    """A deadline that passes before the child even starts still kills and reaps it."""
    outcome = run("echo", timeout_s=0.001)
    assert outcome.status == "timeout"
    _assert_nothing_left(spawned)


def test_a_tool_left_writing_to_stderr_neither_stalls_the_result_nor_survives(
    spawned: list[subprocess.Popen[bytes]],
) -> None:
    """The child's answer counts as soon as it exited, and its leftover tool is killed."""
    marker = f"sandbox-test-{uuid.uuid4()}"
    outcome = run("return_leaving_grandchild", {"marker": marker}, timeout_s=20)
    assert (outcome.status, outcome.value) == ("ok", "done")
    assert outcome.elapsed_s < 10  # not the 20 s deadline
    until = time.monotonic() + 3
    while _with_marker(marker) and time.monotonic() < until:
        time.sleep(0.05)
    assert _with_marker(marker) == []
    _assert_nothing_left(spawned)


# --- How a child fails --------------------------------------------------------------------


def test_memory_limit_ends_as_out_of_memory(spawned: list[subprocess.Popen[bytes]]) -> None:
    """Allocating beyond the address-space limit is reported as memory, with the limit."""
    outcome = run("allocate", {"bytes": 2 * 1024**3}, max_memory_mb=300)
    assert (outcome.status, outcome.error) == ("memory", "more than 300 MB of memory")
    _assert_nothing_left(spawned)


def test_bad_alloc_from_native_code_is_out_of_memory() -> None:
    """qpdf's std::bad_alloc (a PdfError, not MemoryError) also counts as memory."""
    assert run("bad_alloc").status == "memory"


@pytest.mark.parametrize(
    ("target", "signum"),
    [("abort", signal.SIGABRT), ("segfault", signal.SIGSEGV), ("crash_after_result", None)],
)
def test_a_crashing_child_is_reported_as_crashed_not_as_success(
    target: str, signum: signal.Signals | None, spawned: list[subprocess.Popen[bytes]]
) -> None:
    """A native crash is a crash, even when a well-formed result was already written."""
    outcome = run(target)
    assert outcome.status == "crash"
    assert outcome.value is None
    assert outcome.returncode == -(signum or signal.SIGABRT)
    _assert_nothing_left(spawned)


def test_an_exception_is_reported_by_type() -> None:
    """What a parser raises on a damaged file is an error outcome naming the type."""
    outcome = run("fail")
    assert (outcome.status, outcome.error, outcome.returncode) == ("error", "KeyError", 0)


def test_cpu_limit_is_told_apart() -> None:
    """Burning the CPU allowance ends with SIGXCPU, reported as cpu."""
    outcome = run("burn_cpu", cpu_seconds=1)
    assert (outcome.status, outcome.error) == ("cpu", "more than 1 s of CPU time")
    assert outcome.returncode == -signal.SIGXCPU


def test_oversized_output_is_refused(spawned: list[subprocess.Popen[bytes]]) -> None:
    """A result larger than the caller allows is never parsed."""
    outcome = run("big_output", {"size": 50_000}, max_output_bytes=10_000)
    assert (outcome.status, outcome.value) == ("output", None)
    _assert_nothing_left(spawned)


def test_a_file_write_fails_instead_of_killing_the_child(tmp_path: Path) -> None:
    """RLIMIT_FSIZE is 0 and SIGXFSZ ignored: the write raises, the target reports it."""
    target = tmp_path / "cache.bin"
    outcome = run("write_file", {"path": str(target)})
    assert (outcome.status, outcome.error, outcome.returncode) == ("error", "OSError", 0)
    assert target.stat().st_size == 0


def test_a_caller_may_allow_files_up_to_a_size(tmp_path: Path) -> None:
    """max_file_bytes lets a tool write its output (a rendition), and no more than that."""
    small = tmp_path / "small.bin"
    assert run("write_file", {"path": str(small)}, max_file_bytes=4096).value == 1024
    assert small.stat().st_size == 1024
    big = tmp_path / "big.bin"
    outcome = run("write_file", {"path": str(big)}, max_file_bytes=512)
    assert (outcome.status, outcome.error) == ("error", "OSError")
    assert big.stat().st_size == 512


# --- Output is not trusted ----------------------------------------------------------------


@pytest.mark.parametrize("target", ["garbage_then_return", "forge_and_fail"])
def test_garbage_on_the_result_pipe_is_not_trusted(target: str) -> None:
    """Anything but one well-formed line from a cleanly exiting child reads as a crash."""
    outcome = run(target)
    assert outcome.status == "crash"
    assert outcome.value is None


@pytest.mark.parametrize(
    "out",
    [
        b"",
        b"garbage",
        b"\x00\xff" * 10,
        b"DOSSIER-SANDBOX-RESULT ",
        b"DOSSIER-SANDBOX-RESULT not json\n",
        b"DOSSIER-SANDBOX-RESULT []\n",
        b"DOSSIER-SANDBOX-RESULT {}\n",
        b'DOSSIER-SANDBOX-RESULT {"status": "killed"}\n',
        b'DOSSIER-SANDBOX-RESULT {"status": "ok", "error": 5}\n',
        b'garbage\nDOSSIER-SANDBOX-RESULT {"status": "ok", "value": 1}\n',
        b'DOSSIER-SANDBOX-RESULT {"status": "ok", "value": 1}\ngarbage\n',
        b'DOSSIER-SANDBOX-RESULT {"status": "ok", "value": 1}\n\n',
        b'DOSSIER-INSPECT-RESULT {"status": "ok", "value": 1}\n',
    ],
)
def test_result_parser_accepts_nothing_but_one_well_formed_line(out: bytes) -> None:
    """Malformed, foreign, multi-line or trailing output is rejected."""
    assert sandbox._parse_result(out) is None


def test_result_parser_reads_a_well_formed_line() -> None:
    """The one line the child writes."""
    line = b'DOSSIER-SANDBOX-RESULT {"status": "ok", "value": {"a": [1, "\xc3\xa4"]}}\n'
    assert sandbox._parse_result(line) == SandboxOutcome("ok", {"a": [1, "ä"]})


# --- Environment --------------------------------------------------------------------------


def test_child_environment_holds_no_secrets_of_the_parent(monkeypatch: pytest.MonkeyPatch) -> None:
    """The child's environment is built from scratch: no DOSSIER_* settings, no keys."""
    secrets = {
        "DOSSIER_S3_SECRET_KEY": "s3-secret-4711",
        "DOSSIER_AUDIT_SIGNING_KEY": "audit-secret-4712",
        "DOSSIER_SECRET_KEY": "flask-secret-4713",
        "DOSSIER_DATABASE_URL": "postgresql://user:db-secret-4714@db/dossier",
        "AWS_SECRET_ACCESS_KEY": "aws-secret-4715",
    }
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    outcome = run("environment", env={"OMP_THREAD_LIMIT": "1"})
    assert outcome.status == "ok"
    environment: dict[str, str] = outcome.value
    assert environment["OMP_THREAD_LIMIT"] == "1"
    assert environment["MALLOC_ARENA_MAX"] == "2"
    assert not any(name.startswith(("DOSSIER_", "AWS_")) for name in environment)
    assert not any("secret" in value for value in environment.values())
    # Nothing but the fixed set and the caller's addition.
    assert set(environment) <= {
        "PATH",
        "LANG",
        "LC_ALL",
        "PYTHONPATH",
        "PYTHONIOENCODING",
        "PYTHONDONTWRITEBYTECODE",
        "PYTHONNOUSERSITE",
        "MALLOC_ARENA_MAX",
        "OMP_THREAD_LIMIT",
        "LC_CTYPE",  # Python's C-locale coercion may set it in the child
    }


def test_caller_cannot_override_the_fixed_environment() -> None:
    """PYTHONPATH or MALLOC_ARENA_MAX from a caller would undermine imports or limits."""
    with pytest.raises(ValueError, match="MALLOC_ARENA_MAX"):
        run("echo", env={"MALLOC_ARENA_MAX": "64"})


# --- Arguments ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("target", "job", "options"),
    [
        (TARGETS, {}, {}),
        ("-c:print", {}, {}),
        (f"{TARGETS}:echo", {"blob": "x" * 40_000}, {}),
        (f"{TARGETS}:echo", {}, {"timeout_s": 0}),
        (f"{TARGETS}:echo", {}, {"max_memory_mb": 0}),
        (f"{TARGETS}:echo", {}, {"max_output_bytes": 0}),
        (f"{TARGETS}:echo", {}, {"cpu_seconds": 0}),
    ],
)
def test_invalid_arguments_raise(target: str, job: dict[str, Any], options: Any) -> None:
    """Programming errors raise instead of starting a child."""
    settings: dict[str, Any] = {"timeout_s": 5, "max_memory_mb": 256, "max_output_bytes": 1000}
    settings.update(options)
    with pytest.raises(ValueError):
        run_in_sandbox(target, job, **settings)


# --- Upload inspection reads the outcomes as before ---------------------------------------


@pytest.mark.parametrize(
    ("outcome", "report"),
    [
        (
            SandboxOutcome("ok", {"ok": True, "reason": None, "flags": {"pages": 1}}, None, 0),
            FileReport(True, None, {"pages": 1}),
        ),
        (
            SandboxOutcome("ok", {"ok": "yes", "reason": None, "flags": {}}, None, 0),
            FileReport(
                False, "inspection failed: the file made the checker crash", {"exit_code": 0}
            ),
        ),
        (
            SandboxOutcome("timeout", returncode=-9),
            FileReport(False, "inspection took longer than 30 s", {"timed_out": True}),
        ),
        (
            SandboxOutcome("memory", error="more than 300 MB of memory", returncode=0),
            FileReport(
                False,
                "the file needs more than 300 MB of memory to inspect",
                {"memory_exceeded": True},
            ),
        ),
        (
            SandboxOutcome("error", error="PdfError", returncode=0),
            FileReport(
                False, "the file could not be inspected: it is damaged", {"error": "PdfError"}
            ),
        ),
        (
            SandboxOutcome("cpu", error="more than 31 s of CPU time", returncode=-24),
            FileReport(False, "inspection used more than 31 s of CPU time", {"exit_code": -24}),
        ),
        (
            SandboxOutcome("killed", returncode=-9),
            FileReport(
                False,
                "inspection was killed (the file may need more than 300 MB)",
                {"exit_code": -9},
            ),
        ),
        (
            SandboxOutcome("output", returncode=-9),
            FileReport(False, "inspection produced more output than allowed", {}),
        ),
        (
            SandboxOutcome("crash", returncode=-11),
            FileReport(
                False, "inspection failed: the file made the checker crash", {"exit_code": -11}
            ),
        ),
    ],
)
def test_inspection_turns_outcomes_into_the_same_reports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, outcome: SandboxOutcome, report: FileReport
) -> None:
    """Every way the inspection child can end gives a fixed verdict with a short reason."""
    calls: list[dict[str, Any]] = []

    def fake_run(target: str, job: dict[str, Any], **options: Any) -> SandboxOutcome:
        calls.append({"target": target, "job": job, **options})
        return outcome

    monkeypatch.setattr(inspect_module, "run_in_sandbox", fake_run)
    path = tmp_path / "x.pdf"
    path.write_bytes(make_pdf("x", ["y"]))
    assert inspect_module.inspect_file(path, PDF, timeout_s=30, max_memory_mb=300) == report
    assert calls[0]["target"] == "dossier_service.files.inspect:inspect_job"
    assert calls[0]["job"] == {"path": str(path.resolve()), "media_type": PDF}
    assert (calls[0]["max_memory_mb"], calls[0]["min_memory_mb"]) == (300, 128)


def test_inspection_runs_in_the_real_sandbox(tmp_path: Path) -> None:
    """End to end: the inspect target is importable in the child and reports the PDF."""
    path = tmp_path / "x.pdf"
    path.write_bytes(make_pdf("Titel", ["Zeile"]))
    outcome = run_in_sandbox(
        "dossier_service.files.inspect:inspect_job",
        {"path": str(path), "media_type": PDF},
        timeout_s=30,
        max_memory_mb=256,
        max_output_bytes=100_000,
    )
    assert outcome.status == "ok"
    assert outcome.value["ok"] is True
    assert outcome.value["flags"]["pages"] == 1
