"""Run a function on untrusted input in a child process under memory, CPU and time limits.

The parent starts ``python -m dossier_service.sandbox TARGET`` in its own session, sends the
job as JSON on stdin and reads one result line back. The child caps its address space, CPU
time, file writes and open files before it imports or reads anything; the parent enforces a
wall-clock deadline and SIGKILLs the child's whole process group (the child and any tool it
started, such as ``tesseract``) when it expires, and again after every run, so nothing is left
behind. This contains hangs, runaway memory and crashes of native parsers; it is not a
boundary against a parser exploit that runs code (that needs seccomp or namespaces).

Upload inspection (:mod:`dossier_service.files.inspect`), text extraction
(:mod:`workers.extract`) and the PDF/A renditions of the archive package
(:mod:`dossier_service.services.sip.pdfa`) use it. The module uses only the standard
library, so the child starts lean: the target is a ``"package.module:function"`` that takes
the job dict and returns something JSON-serialisable.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import logging
import math
import os
import re
import resource
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "MIN_MEMORY_MB",
    "SandboxOutcome",
    "SoftTimeout",
    "memory_limit_mb",
    "run_in_sandbox",
]

logger = logging.getLogger(__name__)

_CHILD_MODULE = "dossier_service.sandbox"
_RESULT_PREFIX = b"DOSSIER-SANDBOX-RESULT "
_MAX_JOB_BYTES = 32 * 1024
_STDERR_TAIL = 4000
_STDERR_LOG_LIMIT = 2000
_READ_CHUNK = 256 * 1024
_POLL_S = 0.1
# Import-time address space of Python with pikepdf, pypdf, Pillow and python-docx is about
# 80 MiB; below this floor the child would fail on ordinary files and read as "damaged".
# Callers that import less may pass a lower ``min_memory_mb``.
MIN_MEMORY_MB = 256
# What the child itself may report; every other status is decided by the parent.
_CHILD_STATUSES = frozenset({"ok", "error", "memory", "timeout"})
_TARGET_PATTERN = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


class SoftTimeout(BaseException):
    """Raised in the child when its soft deadline passes (a BaseException: no ``except
    Exception`` in a parser may swallow it)."""


@dataclass(frozen=True)
class SandboxOutcome:
    """How a sandboxed run ended.

    ``status`` is one of: ``ok`` (``value`` holds the target's return value), ``error`` (the
    target raised; ``error`` names the exception type), ``memory`` (it ran out of memory),
    ``timeout`` (soft or hard deadline), ``cpu`` (CPU limit), ``killed`` (SIGKILL not sent by
    us, usually the OOM killer), ``output`` (the result was larger than allowed) or ``crash``
    (any other abnormal end, including output that is not one well-formed result line).
    """

    status: str
    value: Any = None
    error: str | None = None
    returncode: int | None = None
    elapsed_s: float = 0.0


def memory_limit_mb(max_memory_mb: int, min_memory_mb: int = MIN_MEMORY_MB) -> int:
    """The address-space limit in MB the child really gets for a requested *max_memory_mb*."""
    return max(max_memory_mb, min_memory_mb)


# --- Parent side --------------------------------------------------------------------------


def _project_root() -> Path:
    """Directory holding the ``dossier_service`` (and ``workers``) packages."""
    return Path(__file__).resolve().parents[1]


def _child_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """A minimal environment: the child parsing hostile bytes sees no secrets or settings."""
    root = str(_project_root())
    inherited = os.environ.get("PYTHONPATH")
    env = {
        "PATH": os.defpath,
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "PYTHONPATH": f"{root}{os.pathsep}{inherited}" if inherited else root,
        "PYTHONIOENCODING": "utf-8",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONNOUSERSITE": "1",
        # glibc reserves 64 MiB of address space per malloc arena; keep RLIMIT_AS meaningful.
        "MALLOC_ARENA_MAX": "2",
    }
    if extra:
        # The fixed entries keep the limits meaningful and the imports ours; a caller's
        # addition must not quietly replace them.
        clash = sorted(set(extra) & set(env))
        if clash:
            raise ValueError(f"the sandbox environment may not override {', '.join(clash)}")
        env.update(extra)
    return env


def run_in_sandbox(
    target: str,
    job: Mapping[str, Any],
    *,
    timeout_s: float,
    max_memory_mb: int,
    max_output_bytes: int,
    soft_deadline_margin_s: float = 0.0,
    cpu_seconds: int | None = None,
    env: Mapping[str, str] | None = None,
    min_memory_mb: int = MIN_MEMORY_MB,
    max_file_bytes: int = 0,
) -> SandboxOutcome:
    """Run ``target(job)`` in a limited child process and return how it ended.

    The child's address space is ``memory_limit_mb(max_memory_mb, min_memory_mb)``. With
    *soft_deadline_margin_s* > 0 the child raises :class:`SoftTimeout` that long before
    the hard deadline, so the target can return partial results instead of being killed;
    the target finds that moment (a ``time.monotonic()`` value) in ``job["soft_deadline"]``.
    *cpu_seconds* (per process) defaults to the timeout plus one second; *env* is added to
    the child's otherwise minimal environment. *max_file_bytes* is the largest file the
    child or its tools may write (default 0: none; a tool that renders into a file needs
    more).
    """
    if timeout_s <= 0 or max_memory_mb <= 0 or max_output_bytes <= 0 or min_memory_mb <= 0:
        raise ValueError(
            "timeout_s, max_memory_mb, min_memory_mb and max_output_bytes must be positive"
        )
    if not _TARGET_PATTERN.fullmatch(target):
        raise ValueError(f"Not a sandbox target ('package.module:function'): {target!r}")
    started = time.monotonic()
    deadline = started + timeout_s
    payload = dict(job)
    if soft_deadline_margin_s > 0:
        # CLOCK_MONOTONIC is system-wide on Linux, so the child can use our clock reading.
        payload["soft_deadline"] = deadline - soft_deadline_margin_s
    data = json.dumps(payload).encode("utf-8")
    if len(data) > _MAX_JOB_BYTES:
        raise ValueError("the sandbox job is too large")
    memory_mb = memory_limit_mb(max_memory_mb, min_memory_mb)
    if cpu_seconds is None:
        # Backs up the wall-clock deadline should this parent die before it can kill it.
        cpu_seconds = math.ceil(timeout_s) + 1
    elif cpu_seconds <= 0:
        raise ValueError("cpu_seconds must be positive")
    if max_file_bytes < 0:
        raise ValueError("max_file_bytes must not be negative")
    command = [
        sys.executable,
        "-s",
        "-B",
        "-m",
        _CHILD_MODULE,
        "--max-memory-mb",
        str(memory_mb),
        "--cpu-seconds",
        str(cpu_seconds),
        "--max-file-bytes",
        str(max_file_bytes),
        "--",
        target,
    ]
    child_env = _child_env(env)
    # A subprocess rather than multiprocessing: Celery's prefork workers are daemonic and may
    # not start multiprocessing children, and nothing of the parent's state is inherited. Its
    # own session makes it a process-group leader, so one killpg reaches its tools too.
    proc = subprocess.Popen(  # noqa: S603 - fixed argv: our interpreter and module
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        cwd=str(_project_root()),
        env=child_env,
        start_new_session=True,
    )
    logger.debug("sandbox child %d started for %s", proc.pid, target)
    try:
        outcome = _supervise(proc, data, deadline, max_output_bytes, memory_mb, cpu_seconds)
    finally:
        # Whatever happened (a result, a timeout, KeyboardInterrupt, a Celery soft time
        # limit): kill the group while the child is at most a zombie, so the group id cannot
        # have been reused yet, then reap the child and close the pipes.
        _kill_group(proc.pid)
        proc.wait()
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if stream is not None:
                stream.close()
    elapsed = time.monotonic() - started
    if outcome.status == "timeout":
        logger.info("sandbox child %d for %s timed out after %.3f s", proc.pid, target, elapsed)
    else:
        logger.debug("sandbox child %d ended: %s after %.3f s", proc.pid, outcome.status, elapsed)
    return SandboxOutcome(
        outcome.status, outcome.value, outcome.error, proc.returncode, elapsed_s=elapsed
    )


def _kill_group(pgid: int) -> None:
    """SIGKILL a process group; it may already be gone."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def _supervise(
    proc: subprocess.Popen[bytes],
    job: bytes,
    deadline: float,
    max_output: int,
    memory_mb: int,
    cpu_seconds: int,
) -> SandboxOutcome:
    """Feed the job, read bounded output until the child exits or the deadline passes."""
    assert proc.stdin is not None and proc.stdout is not None and proc.stderr is not None
    try:
        # Far below the pipe buffer (64 KiB), so this cannot block on a child that never reads.
        proc.stdin.write(job)
        proc.stdin.close()
    except BrokenPipeError:
        pass  # the child died at once; its exit status tells why
    out = bytearray()
    out_done = False
    err_tail = b""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ, "out")
        selector.register(proc.stderr, selectors.EVENT_READ, "err")
        while selector.get_map():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return SandboxOutcome("timeout")
            events = selector.select(min(remaining, _POLL_S))
            for key, _ in events:
                chunk = os.read(key.fd, _READ_CHUNK)
                if not chunk:
                    selector.unregister(key.fileobj)
                    out_done = out_done or key.data == "out"
                elif key.data == "out":
                    out += chunk
                    if len(out) > max_output:
                        return SandboxOutcome("output")
                else:
                    # Only the tail is kept: a hostile file can make a parser warn endlessly.
                    err_tail = (err_tail + chunk)[-_STDERR_TAIL:]
            # A tool the child started may hold stderr open (and keep writing to it) after
            # the child is gone; once the child has exited and its result pipe is drained
            # (or nothing at all is readable any more), everything it wrote has been read.
            if (out_done or not events) and _has_exited(proc.pid):
                break
    # Wait for the exit without reaping, so the group id stays ours to kill.
    returncode = _wait_exit_status(proc.pid, deadline)
    if returncode is None:
        return SandboxOutcome("timeout")
    result = _parse_result(bytes(out))
    if result is not None and returncode == 0:
        return result
    logger.warning(
        "sandbox child exited with status %s%s: %s",
        returncode,
        "" if result is not None else " without a valid result",
        err_tail[-_STDERR_LOG_LIMIT:].decode("utf-8", errors="replace"),
    )
    if returncode == -signal.SIGXCPU:
        return SandboxOutcome("cpu", error=f"more than {cpu_seconds} s of CPU time")
    if returncode == -signal.SIGKILL:
        return SandboxOutcome("killed", error=f"possibly more than {memory_mb} MB of memory")
    return SandboxOutcome("crash", error=f"exit status {returncode}")


def _has_exited(pid: int) -> bool:
    """Tell whether *pid* has exited, without reaping it."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True  # a SIGCHLD handler elsewhere in this process reaped it


def _wait_exit_status(pid: int, deadline: float) -> int | None:
    """Wait (at most until *deadline*) for *pid* to exit, leaving it unreaped; its status."""
    while True:
        try:
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            # Reaped by someone else: the status is lost; like Popen, assume success and let
            # the result line decide.
            return 0
        if info is not None:
            if info.si_code == os.CLD_EXITED:
                return info.si_status
            return -info.si_status  # killed or dumped by a signal, as Popen reports it
        if time.monotonic() >= deadline:
            return None
        time.sleep(0.005)


def _parse_result(out: bytes) -> SandboxOutcome | None:
    """Read the child's single result line; None if it is missing or malformed."""
    # Exactly one line, nothing before or after it: anything else on the result pipe means
    # the child did not end the way the protocol says, and none of it is trusted.
    line = out.removesuffix(b"\n")
    if not line.startswith(_RESULT_PREFIX) or b"\n" in line:
        return None
    try:
        data = json.loads(line[len(_RESULT_PREFIX) :])
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    status = data.get("status")
    error = data.get("error")
    if status not in _CHILD_STATUSES or not (error is None or isinstance(error, str)):
        return None
    return SandboxOutcome(status, data.get("value"), error)


# --- Child side ---------------------------------------------------------------------------


def _apply_limits(max_memory_mb: int, cpu_seconds: int, max_file_bytes: int = 0) -> None:
    """Cap address space, CPU time, file writes, open files and core dumps (also for tools)."""
    memory = max_memory_mb * 1024 * 1024
    # Soft and hard alike, so nothing in the child can raise them again; tools started by the
    # child inherit them (each tool gets its own CPU allowance, the deadline bounds the sum).
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    # A core dump would write the parsed personal data to disk.
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    # Unless the caller allows files (a rendition), nothing is written to disk: results and
    # images travel through pipes. An ignored SIGXFSZ turns a write beyond the limit (say a
    # font cache) into an error instead of a kill; CPython ignores it at start-up already,
    # this keeps that true whatever ran before (tools inherit the ignored signal).
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_file_bytes, max_file_bytes))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))


def _on_alarm(_signum: int, _frame: object) -> None:
    """SIGALRM handler: the soft deadline has passed."""
    raise SoftTimeout


_NOTHING = object()


def _run_target(target: str, job: dict[str, Any], memory_mb: int) -> dict[str, Any]:
    """Call the target and wrap what it returns or raises into a result record."""
    soft_deadline = job.get("soft_deadline")
    value: Any = _NOTHING
    try:
        if isinstance(soft_deadline, int | float):
            remaining = soft_deadline - time.monotonic()
            if remaining <= 0:
                raise SoftTimeout
            signal.signal(signal.SIGALRM, _on_alarm)
            signal.setitimer(signal.ITIMER_REAL, remaining)
        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        value = function(job)
        signal.setitimer(signal.ITIMER_REAL, 0)
        return {"status": "ok", "value": value}
    except SoftTimeout:
        # The alarm may strike just after the target returned: keep its result then.
        if value is not _NOTHING:
            return {"status": "ok", "value": value}
        return {"status": "timeout", "error": None}
    except Exception as exc:
        signal.setitimer(signal.ITIMER_REAL, 0)
        # qpdf reports memory exhaustion as a PdfError saying std::bad_alloc.
        if isinstance(exc, MemoryError) or "bad_alloc" in str(exc):
            return {"status": "memory", "error": f"more than {memory_mb} MB of memory"}
        logger.debug("sandbox target failed", exc_info=True)
        return {"status": "error", "error": type(exc).__name__}


def _child_main(argv: list[str] | None = None) -> int:
    """Entry point of the child: apply limits, run the target, print one result line."""
    parser = argparse.ArgumentParser(description="sandboxed child (internal)")
    parser.add_argument("--max-memory-mb", type=int, required=True)
    parser.add_argument("--cpu-seconds", type=int, required=True)
    parser.add_argument("--max-file-bytes", type=int, default=0)
    parser.add_argument("target")
    args = parser.parse_args(argv)
    _apply_limits(args.max_memory_mb, args.cpu_seconds, args.max_file_bytes)
    # Native libraries may print to stdout: send fd 1 to stderr and keep a private copy of
    # the real stdout for the single result line (not inherited by tools: PEP 446).
    result_fd = os.dup(1)
    os.dup2(2, 1)
    job = json.loads(sys.stdin.buffer.read(_MAX_JOB_BYTES + 1))
    if not isinstance(job, dict):
        raise SystemExit("the sandbox job is not a JSON object")  # exit 1: read as a crash
    try:
        record = _run_target(args.target, job, args.max_memory_mb)
    except SoftTimeout:  # the alarm struck inside an exception handler above
        record = {"status": "timeout", "error": None}
    signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        line = json.dumps(record, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError, UnicodeEncodeError):
        line = json.dumps({"status": "error", "error": "UnserialisableResult"}).encode()
    with os.fdopen(result_fd, "wb") as out:
        out.write(_RESULT_PREFIX + line + b"\n")
    return 0


if __name__ == "__main__":
    # Run the child from the importable module, not from ``__main__``: targets catch
    # ``dossier_service.sandbox.SoftTimeout``, which must be the class the alarm raises.
    from dossier_service import sandbox as _module

    sys.exit(_module._child_main())
