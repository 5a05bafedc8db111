"""Targets for tests/test_sandbox.py; they run in the sandboxed child, so stdlib only."""

from __future__ import annotations

import atexit
import os
import resource
import signal
import stat
import subprocess
import sys
import time
from typing import Any

from dossier_service import sandbox
from dossier_service.sandbox import SoftTimeout

_LIMITS = ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_CORE", "RLIMIT_FSIZE", "RLIMIT_NOFILE")


def echo(job: dict[str, Any]) -> dict[str, Any]:
    """Return the job, the limits the child runs under and its process ids."""
    limits = {name: resource.getrlimit(getattr(resource, name)) for name in _LIMITS}
    return {"job": job, "limits": limits, "pgid": os.getpgid(0), "pid": os.getpid()}


def hang_with_grandchild(job: dict[str, Any]) -> None:
    """Start a long-running tool (marked so the test can find it), then hang for good."""
    subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", job["marker"]],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
    )
    while True:
        try:
            time.sleep(60)
        except SoftTimeout:
            continue  # ignore the soft deadline: only the hard one can end this


def return_leaving_grandchild(job: dict[str, Any]) -> str:
    """Start a tool that keeps writing to stderr, and return at once."""
    # The tool inherits fd 1 and 2, which in the child both lead to the stderr pipe. It
    # outlives the pipe's closing, so only the kill of the process group can end it.
    script = (
        "import os, time\n"
        "while True:\n"
        "    try:\n"
        "        os.write(1, b'warning\\n' * 1000)\n"
        "    except OSError:\n"
        "        time.sleep(60)\n"
    )
    subprocess.Popen([sys.executable, "-c", script, job["marker"]], stdin=subprocess.DEVNULL)
    time.sleep(0.5)  # let it start filling the pipe
    return "done"


def write_file(job: dict[str, Any]) -> int:
    """Try to write to a file (a font cache, say): the child may not write to disk."""
    with open(job["path"], "wb") as f:
        return f.write(b"x" * 1024)


def allocate(job: dict[str, Any]) -> int:
    """Allocate more memory than allowed."""
    return len(bytearray(job["bytes"]))


def bad_alloc(job: dict[str, Any]) -> None:
    """Fail the way qpdf reports memory exhaustion."""
    raise RuntimeError("std::bad_alloc")


def abort(job: dict[str, Any]) -> None:
    """Die like a crashing native parser."""
    os.abort()


def segfault(job: dict[str, Any]) -> None:
    """Die of a segmentation fault."""
    os.kill(os.getpid(), signal.SIGSEGV)


def crash_after_result(job: dict[str, Any]) -> dict[str, bool]:
    """Return a fine-looking result, then crash while the interpreter shuts down."""
    atexit.register(os.abort)
    return {"fine": True}


def fail(job: dict[str, Any]) -> None:
    """Fail with an ordinary exception, as a parser does on a damaged file."""
    raise KeyError("x")


def _pipes() -> list[int]:
    """The child's pipes besides fd 0-2: among them the private one for the result line."""
    fds = []
    for fd in range(3, 64):
        try:
            if stat.S_ISFIFO(os.fstat(fd).st_mode):
                fds.append(fd)
        except OSError:
            continue
    return fds


def garbage_then_return(job: dict[str, Any]) -> dict[str, bool]:
    """Write garbage on the result pipe, then return normally."""
    for fd in _pipes():
        try:
            os.write(fd, b"%PDF garbage from a parser\n")
        except OSError:
            continue
    return {"fine": True}


def forge_and_fail(job: dict[str, Any]) -> None:
    """Write a well-formed "ok" result line itself, then exit with an error status."""
    line = sandbox._RESULT_PREFIX + b'{"status": "ok", "value": {"ok": true}}\n'
    for fd in _pipes():
        try:
            os.write(fd, line)
        except OSError:
            continue
    os._exit(3)


def big_output(job: dict[str, Any]) -> str:
    """Return more than the caller accepts."""
    return "x" * job["size"]


def burn_cpu(job: dict[str, Any]) -> None:
    """Spin on the CPU forever."""
    while True:
        sum(range(10_000_000))


def environment(job: dict[str, Any]) -> dict[str, str]:
    """The environment the child sees."""
    return dict(os.environ)


def partial(job: dict[str, Any]) -> dict[str, Any]:
    """Work until the soft deadline, then return what was done."""
    rounds = 0
    try:
        while True:
            time.sleep(0.01)
            rounds += 1
    except SoftTimeout:
        return {"rounds": rounds}
