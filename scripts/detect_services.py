"""Find the local test servers (PostgreSQL, Redis, S3 peer) and print shell exports for them.

``make test`` evaluates the output: stdout carries only ``export NAME=value`` lines,
stderr says in words which backends the run covers and which it does not. A variable
the caller set already is kept as given. Every probe gives up after two seconds, so a
machine without servers still runs the SQLite/local part of the suite promptly.
"""

from __future__ import annotations

import os
import shlex
import socket
import sys
from collections.abc import Callable, Mapping

TIMEOUT_S = 2.0
PG_URL = "postgresql://postgres@127.0.0.1:5432/test"
REDIS_URL = "redis://127.0.0.1:6379/15"
REDIS_ADDRESS = ("127.0.0.1", 6379)


def postgres_problem(url: str, timeout: float = TIMEOUT_S) -> str | None:
    """Connect and run SELECT 1; return None when that works, else the reason."""
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (run `make install`)"
    try:
        with psycopg.connect(url, connect_timeout=max(1, int(timeout))) as conn:
            conn.execute("SELECT 1")
    except psycopg.Error as exc:
        # The first line names the cause (refused, no such database, auth) without noise.
        return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return None


def redis_problem(address: tuple[str, int], timeout: float = TIMEOUT_S) -> str | None:
    """Send PING over a plain socket; return None when Redis answers +PONG, else the reason."""
    try:
        with socket.create_connection(address, timeout=timeout) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"{address[0]}:{address[1]}: {exc.strerror or exc}"
    if not reply.startswith(b"+PONG"):
        # e.g. -NOAUTH: a Redis that wants a password is not one the tests can use.
        return f"unexpected reply {reply[:40]!r}"
    return None


def detect(
    environ: Mapping[str, str],
    pg_check: Callable[[str], str | None] = postgres_problem,
    redis_check: Callable[[tuple[str, int]], str | None] = redis_problem,
) -> tuple[dict[str, str], list[str]]:
    """Return (variables to export, report lines) for the given environment."""
    exports: dict[str, str] = {}
    report: list[str] = []

    given = environ.get("DOSSIER_TEST_DATABASE_URL")
    if given:
        report.append(f"PostgreSQL: covered (DOSSIER_TEST_DATABASE_URL={given}, as given)")
    else:
        problem = pg_check(PG_URL)
        if problem is None:
            exports["DOSSIER_TEST_DATABASE_URL"] = PG_URL
            report.append(f"PostgreSQL: covered (found {PG_URL})")
        else:
            report.append(f"PostgreSQL: NOT covered, SQLite only ({problem})")

    given = environ.get("DOSSIER_TEST_REDIS_URL")
    if given:
        report.append(f"Redis broker: covered (DOSSIER_TEST_REDIS_URL={given}, as given)")
    else:
        problem = redis_check(REDIS_ADDRESS)
        if problem is None:
            exports["DOSSIER_TEST_REDIS_URL"] = REDIS_URL
            report.append(f"Redis broker: covered (found {REDIS_URL})")
        else:
            report.append(f"Redis broker: NOT covered ({problem})")

    given = environ.get("DOSSIER_TEST_S3_ENDPOINT")
    if given:
        report.append(f"S3 storage: covered (peer at {given}, as given)")
    else:
        # tests/s3_peer.py starts moto in-process when no endpoint is given.
        report.append("S3 storage: covered (in-process moto server)")
    return exports, report


def main() -> int:
    """Print export lines on stdout and the coverage report on stderr."""
    exports, report = detect(os.environ)
    for name, value in exports.items():
        print(f"export {name}={shlex.quote(value)}")
    print("test backends:", file=sys.stderr)
    for line in report:
        print(f"  {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
