"""The ``dossier`` command line: set-up, administration, checks, server and worker."""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import Any

import click

from dossier_service.config import ConfigError, Settings, load_settings
from dossier_service.container import Container
from dossier_service.errors import DossierError
from workers.celery_app import make_sender, make_worker_app
from workers.tasks import use_container


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as exc:
        raise click.ClickException(f"configuration: {exc}") from None


def _container() -> Container:
    """The CLI's container; this entry point wires the broker and, if eager, the tasks."""
    settings = _settings()
    container = Container(settings, task_sender=make_sender(settings))
    if settings.tasks_eager:
        use_container(container)  # eager tasks run in this process, on this container
    return container


def _init(container: Container) -> None:
    from dossier_service import schema

    settings = container.settings
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    settings.spool_dir.mkdir(parents=True, exist_ok=True)
    schema.upgrade(container.db)
    if settings.storage == "local":
        settings.storage_root.mkdir(parents=True, exist_ok=True)
    container.store.check()
    _upgrade_search_index(container)
    _init_audit_chain(container)


def _init_audit_chain(container: Container) -> None:
    """Create the chain key (0600) and the audit bucket; checkpoint (adopting a legacy log)."""
    from dossier_service.services import audit_checkpoints

    settings = container.settings
    audit_checkpoints.ensure_key(settings)
    if settings.storage == "s3":
        audit_checkpoints.ensure_bucket(settings)
    audit_checkpoints.write_checkpoint(container)


def _upgrade_search_index(container: Container) -> None:
    """Rebuild the search index if it was written by an older release (a derived index)."""
    from dossier_service.services import indexing
    from search import IndexOutdated, RebuildInProgress, SearchUnavailable

    try:
        container.search.check()
    except IndexOutdated as exc:
        click.echo(f"search index outdated ({exc}); rebuilding it", err=True)
        try:
            loaded = indexing.rebuild(container)
        except RebuildInProgress:
            # Another process (a second `serve`, the migrate job) is rebuilding it already.
            click.echo("search index is being rebuilt by another process", err=True)
            return
        click.echo(f"search index rebuilt with {loaded} document(s)", err=True)
    except SearchUnavailable as exc:
        # Not fatal here: searches answer 503 until the index is reachable again.
        click.echo(f"warning: search index not usable: {exc}", err=True)


class _Commands(click.Group):
    """The command group; a database or storage outage ends in one clear line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, translating backend outages into a ClickException (exit 1)."""
        from sqlalchemy.exc import OperationalError

        from storage import StorageError, StorageUnavailable

        try:
            return super().invoke(ctx)
        except OperationalError as exc:
            raise click.ClickException(f"database error: {exc.orig}") from None
        except StorageError as exc:
            kind = "unavailable" if isinstance(exc, StorageUnavailable) else "error"
            raise click.ClickException(f"storage {kind}: {exc}") from None


@click.group(cls=_Commands)
def main() -> None:
    """Electronic dossier service for IAS case management."""


@main.command()
def init() -> None:
    """Create the data directory and bring the database schema up to date."""
    container = _container()
    _init(container)
    click.echo(
        f"initialised: database {container.db.dialect}, storage {container.store.describe()}"
    )


@main.command()
@click.option(
    "--tokens-file",
    type=click.Path(dir_okay=False),
    default=None,
    help="Where to write the demo users' tokens (default: DATA_DIR/demo-tokens.txt).",
)
def demo(tokens_file: str | None) -> None:
    """Load the demo data once (units, users, cases with documents)."""
    from pathlib import Path

    from dossier_service.demo import load_demo, write_tokens

    container = _container()
    _init(container)
    tokens = load_demo(container)
    if tokens is None:
        click.echo("demo data present already; nothing loaded")
        return
    path = Path(tokens_file) if tokens_file else container.settings.data_dir / "demo-tokens.txt"
    write_tokens(path, tokens)
    click.echo(f"demo data loaded; tokens of the demo users written to {path}")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option(
    "--port",
    type=int,
    default=lambda: int(os.environ.get("PORT", "8000")),
    show_default="8000 or $PORT",
)
@click.option(
    "--no-worker", is_flag=True, help="Do not start a background worker beside the server."
)
@click.option("--workers", type=int, default=2, show_default=True, help="Web server processes.")
@click.option("--threads", type=int, default=4, show_default=True, help="Threads per process.")
@click.option(
    "--no-proxy",
    is_flag=True,
    help="Let gunicorn listen itself instead of behind nginx (when a proxy runs elsewhere).",
)
def serve(
    host: str, port: int, no_worker: bool, workers: int, threads: int, no_proxy: bool
) -> None:
    """Serve the web app and API behind nginx (with a task worker unless --no-worker)."""
    from dossier_service import proxy as nginx_proxy
    from dossier_service.http.uploads import MULTIPART_OVERHEAD

    container = _container()
    _init(container)
    _sweep_spool(container.settings)
    settings = container.settings
    front: nginx_proxy.Proxy | None = None
    bind = f"{host}:{port}"
    nginx = None if no_proxy else nginx_proxy.find_nginx()
    if not no_proxy and nginx is None:
        click.echo(
            "warning: nginx not found (Debian: apt-get install nginx-light); gunicorn listens "
            "itself, and a few slow clients can block it",
            err=True,
        )
    if nginx is not None:
        front = nginx_proxy.start(
            nginx,
            settings.data_dir,
            host,
            port,
            max_body=settings.max_body_bytes,
            max_upload=settings.max_upload_bytes + MULTIPART_OVERHEAD,
        )
        bind = f"unix:{front.socket}"
        # The workers load the app after this: they must take the client's address from
        # nginx's X-Forwarded-For (one more trusted hop than configured).
        os.environ["DOSSIER_TRUSTED_PROXIES"] = str(settings.trusted_proxies + 1)
    worker: subprocess.Popen[bytes] | None = None
    if not no_worker:
        worker = subprocess.Popen([sys.executable, "-m", "dossier_service.cli", "worker"])
    from dossier_service.server import run_server

    try:
        via = " (nginx in front of gunicorn)" if front is not None else ""
        click.echo(f"serving on http://{host}:{port}{via}", err=True)
        run_server(
            bind,
            workers=workers,
            threads=threads,
            control_socket=settings.data_dir / "gunicorn.ctl",
        )
    finally:
        if front is not None:
            front.stop()
        if worker is not None and worker.poll() is None:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=20)
            except subprocess.TimeoutExpired:
                worker.kill()


@main.command()
@click.option("--concurrency", type=int, default=2, show_default=True)
@click.option(
    "--beat/--no-beat",
    default=True,
    show_default=True,
    help="Also run the scheduler (outbox relay). Run exactly one beat per installation.",
)
def worker(concurrency: int, beat: bool) -> None:
    """Run a Celery worker for the background tasks."""
    settings = _settings()
    _sweep_spool(settings)
    app = make_worker_app(settings)
    argv = [
        "worker",
        f"--concurrency={concurrency}",
        "--loglevel",
        settings.log_level,
        "--without-gossip",
        "--without-mingle",
    ]
    if beat:
        schedule = settings.data_dir / "celerybeat-schedule"
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        argv += ["--beat", f"--schedule={schedule}"]
    # app.start, not app.worker_main: worker_main drops Celery's exit code, so a worker that
    # stopped on an unrecoverable error (e.g. kombu failing while Redis restarts) exited 0
    # and a supervisor set to restart on failure left it dead.
    code = app.start(argv)
    if code:
        raise SystemExit(code)


def _sweep_spool(settings: Settings) -> None:
    """Remove spool files a crashed process left (older than DOSSIER_SPOOL_MAX_AGE_HOURS)."""
    from dossier_service.services import spool

    removed = spool.remove_stale(settings)
    if removed:
        click.echo(f"removed {len(removed)} stale spool file(s)", err=True)


def _report_overdue(container: Container) -> int:
    """Print an ``overdue`` line per version not ready after the bound; return how many."""
    from dossier_service.services import processing

    late = processing.overdue(container)
    bound = container.settings.processing_overdue_minutes
    for version_id, state, since, attempts in late:
        started = since.isoformat(timespec="seconds") if since else "-"
        click.echo(
            f"overdue\t{version_id}\t{state} since {started} (> {bound} min), {attempts} claim(s)"
        )
    return len(late)


@main.group()
def units() -> None:
    """Manage organisational units."""


@units.command("create")
@click.option("--code", required=True)
@click.option("--name", required=True)
@click.option(
    "--kind", required=True, type=click.Choice(["canton", "municipality", "organisation"])
)
def units_create(code: str, name: str, kind: str) -> None:
    """Create a unit."""
    from dossier_service.services import accounts

    with _run() as session:
        accounts.create_unit(session, code, name, kind)
    click.echo(f"unit {code} created")


@units.command("list")
def units_list() -> None:
    """List the units: code, kind and name, one per line (tab-separated)."""
    from dossier_service.services import accounts

    with _run() as session:
        rows = [(u.code, u.kind, u.name) for u in accounts.list_units(session)]
    _table(("code", "kind", "name"), rows)


def _table(header: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> None:
    """Print rows as aligned, tab-separated columns under a header."""
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = (str(cell).ljust(width) for cell, width in zip(row, widths, strict=True))
        click.echo("\t".join(cells).rstrip())


@units.command("mailbox")
@click.option("--unit", "unit_code", required=True)
@click.option("--email", default=None, help="The unit's functional address for notifications.")
@click.option("--clear", is_flag=True, help="Stop e-mailing this unit's notifications.")
def units_mailbox(unit_code: str, email: str | None, clear: bool) -> None:
    """Set (or clear) the address that receives copies of a unit's notifications."""
    from dossier_service.services import notifications

    if clear == (email is not None):
        raise click.UsageError("give either --email ADDRESS or --clear")
    with _run() as session:
        notifications.set_mailbox(session, unit_code, None if clear else email)
    click.echo(f"mailbox of {unit_code} {'cleared' if clear else 'set'}")


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.option("--username", required=True)
@click.option("--unit", "unit_code", required=True)
@click.option(
    "--role", required=True, type=click.Choice(["caseworker", "auditor", "archivist", "admin"])
)
@click.option("--name", "display_name", default=None)
def users_create(username: str, unit_code: str, role: str, display_name: str | None) -> None:
    """Create a user with one role in one unit."""
    from dossier_service.services import accounts

    with _run() as session:
        accounts.create_user(session, username, unit_code, role, display_name)
    click.echo(f"user {username} created")


@users.command("list")
@click.option("--unit", "unit_code", default=None, help="Only the users of this unit.")
def users_list(unit_code: str | None) -> None:
    """List the users: username, unit, role, state (enabled or disabled) and name."""
    from dossier_service.services import accounts

    with _run() as session:
        rows = [
            (
                u.username,
                u.unit.code,
                u.role,
                "enabled" if u.active else "disabled",
                u.display_name or "",
            )
            for u in accounts.list_users(session, unit_code)
        ]
    _table(("username", "unit", "role", "state", "name"), rows)


@users.command("set-password")
@click.option("--username", required=True)
@click.option(
    "--password-stdin",
    is_flag=True,
    help="Read the password from standard input (one line) instead of prompting.",
)
def users_set_password(username: str, password_stdin: bool) -> None:
    """Set the user's password for the web login (stored as an Argon2id hash)."""
    from dossier_service.services import accounts

    if password_stdin:
        # Only the line ending is removed: spaces inside or around a password are its own.
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    with _run() as session:
        accounts.set_password(session, username, password)
    click.echo(f"password of {username} set")


@users.command("disable")
@click.option("--username", required=True)
def users_disable(username: str) -> None:
    """Disable a user: no login, no token accepted, every open web session ended at once."""
    _set_active(username, False)
    click.echo(f"user {username} disabled; their sessions are ended")


@users.command("enable")
@click.option("--username", required=True)
def users_enable(username: str) -> None:
    """Enable a disabled user again (their tokens count again unless revoked)."""
    _set_active(username, True)
    click.echo(f"user {username} enabled")


def _set_active(username: str, active: bool) -> None:
    """Enable or disable the user (audited by the service)."""
    from dossier_service.services import accounts

    with _run() as session:
        accounts.set_active(session, username, active)


@main.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.option("--username", required=True)
@click.option("--label", default=None)
def tokens_create(username: str, label: str | None) -> None:
    """Create a token; it is printed once, as the last line, and stored only as a hash."""
    from dossier_service.services import accounts

    with _run() as session:
        token = accounts.create_token(session, username, label)
    click.echo(f"token for {username} (shown only now):")
    click.echo(token)


@tokens.command("revoke")
@click.option("--username", required=True)
def tokens_revoke(username: str) -> None:
    """Revoke every token of a user."""
    from dossier_service.services import accounts

    with _run() as session:
        count = accounts.revoke_tokens(session, username)
    click.echo(f"{count} token(s) revoked")


@main.command()
@click.option("--no-hash", is_flag=True, help="Only check existence and size, do not re-hash.")
@click.option("--delete-orphans", is_flag=True, help="Delete orphaned objects older than an hour.")
def fsck(no_hash: bool, delete_orphans: bool) -> None:
    """Check every version's object (exists, SHA-256) and report orphaned objects."""
    from dossier_service.services import fsck as fsck_service
    from dossier_service.services import spool

    container = _container()
    findings = list(fsck_service.check(container, verify_hashes=not no_hash))
    errors = [f for f in findings if f.is_error]
    orphans = [f for f in findings if not f.is_error]
    for finding in findings:
        label = "ERROR" if finding.is_error else "orphan"
        version = finding.version_id or "-"
        click.echo(f"{label}\t{finding.kind}\t{finding.key}\t{version}\t{finding.message}")
    stale = spool.find_stale(container.settings)
    for entry in stale:
        click.echo(
            f"orphan\tspool\t{entry.path}\t-\t{entry.age_hours:.0f} h old, {entry.size} bytes"
        )
    overdue = _report_overdue(container)
    if delete_orphans and orphans:
        removed = fsck_service.delete_orphans(container, orphans, min_age=dt.timedelta(hours=1))
        click.echo(f"{removed} orphaned object(s) deleted")
    if delete_orphans and stale:
        click.echo(f"{len(spool.remove_stale(container.settings))} stale spool file(s) deleted")
    click.echo(
        f"fsck: {len(errors)} problem(s), {len(orphans)} orphaned object(s), "
        f"{len(stale)} stale spool file(s), {overdue} overdue version(s)"
    )
    sys.exit(1 if errors or overdue else 0)


@main.group()
def audit() -> None:
    """Audit log tools."""


@audit.command("verify")
def audit_verify() -> None:
    """Verify the audit log's keyed chain and its checkpoints; exit 1 if anything fails."""
    from dossier_service.services import audit_checkpoints

    container = _container()
    problems = audit_checkpoints.verify(container)
    for problem in problems:
        where = f"entry {problem.entry_id}" if problem.entry_id else "checkpoints"
        click.echo(f"{where}: {problem.message}")
    if problems:
        click.echo(f"audit chain BROKEN: {len(problems)} problem(s)")
        sys.exit(1)
    click.echo("audit chain intact")


def _parse_since(text: str) -> dt.datetime:
    """A day (local midnight in Zurich) or an ISO timestamp (UTC if it names no zone)."""
    from dossier_service.dates import day_start

    try:
        if len(text) == 10:
            return day_start(dt.date.fromisoformat(text))
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise click.BadParameter(
            f"{text!r} is neither YYYY-MM-DD nor an ISO timestamp", param_hint="--since"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _operator() -> str:
    """Who runs a command, for tombstones and the audit log."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli:unknown"


@audit.command("export")
@click.option("--since", required=True, help="First day (YYYY-MM-DD) or ISO timestamp.")
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Target directory, apart from the data (default: DOSSIER_AUDIT_EXPORT_DIR).",
)
def audit_export(since: str, out: str | None) -> None:
    """Write the audit log since a day as signed JSON lines (needs DOSSIER_AUDIT_SIGNING_KEY)."""
    from dossier_service.services import audit_export as service

    start = _parse_since(since)
    container = _container()
    try:
        result = service.export_audit_log(container, start, out, actor=_operator())
    except service.AuditExportError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        container.close()
    click.echo(
        f"{result.count} audit entr{'y' if result.count == 1 else 'ies'} written to "
        f"{result.path} (sha256 {result.sha256})"
    )


@audit.command("verify-export")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def audit_verify_export(file: str) -> None:
    """Check every signature of an audit export file; exit 1 if any fails."""
    from pathlib import Path

    from dossier_service.services import audit_export as service

    try:
        problems = service.verify_export(Path(file), _settings().audit_signing_key)
    except service.AuditExportError as exc:
        raise click.ClickException(str(exc)) from None
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"audit export BROKEN: {len(problems)} problem(s)")
        sys.exit(1)
    click.echo("audit export intact")


@main.group()
def sip() -> None:
    """eCH-0160 archival packages (SIP)."""


@sip.command("validate")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def sip_validate(file: str) -> None:
    """Validate a SIP: metadata.xml against the eCH-0160 XSDs, and every file's checksum."""
    from pathlib import Path

    from dossier_service.services.sip import validate_sip

    problems = validate_sip(Path(file))
    for problem in problems:
        click.echo(problem)
    if problems:
        click.echo(f"SIP INVALID: {len(problems)} problem(s)")
        sys.exit(1)
    click.echo("SIP valid: metadata.xml matches the schema and every checksum matches")


@main.group()
def retention() -> None:
    """Deleting archived cases after their retention period."""


@retention.command("run")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Evaluate as of this day (YYYY-MM-DD); default today.",
)
@click.option("--dry-run", is_flag=True, help="List what would be deleted; delete nothing.")
def retention_run(as_of: dt.datetime | None, dry_run: bool) -> None:
    """Delete closed, archived (acknowledged) cases past DOSSIER_RETENTION_DAYS, never on hold."""
    from dossier_service.dates import local_today
    from dossier_service.services import retention as service

    container = _container()
    day = as_of.date() if as_of else local_today()
    try:
        result = service.run(container, day, dry_run=dry_run, actor=_operator())
    finally:
        container.close()
    plan = result.plan
    click.echo(
        f"retention as of {day.isoformat()}: {plan.retention_days} days after closing, "
        f"i.e. cases closed before {plan.cutoff.isoformat()}"
    )
    listed = plan.deletable if dry_run else result.deleted
    verb = "would delete" if dry_run else "deleted"
    for c in listed:
        click.echo(
            f"{verb}\t{c.case_id}\t{c.reference}\t{c.documents} document(s)\t"
            f"{c.versions} version(s)\t{c.bytes} bytes\tSIP {c.export_id} "
            f"({c.archive_reference})"
        )
    for skipped in plan.held + plan.not_archived:
        click.echo(f"kept\t{skipped.case_id}\t{skipped.reference}\t{skipped.reason}")
    for case_id in result.purge_failures:
        click.echo(f"unfinished\t{case_id}\tbytes or index entries still to delete")
    documents = sum(c.documents for c in listed)
    size = sum(c.bytes for c in listed)
    click.echo(
        f"{'dry run: ' if dry_run else ''}{len(listed)} case(s) "
        f"{'would be deleted' if dry_run else 'deleted'} ({documents} document(s), "
        f"{size} bytes); {len(plan.held)} under legal hold; "
        f"{len(plan.not_archived)} waiting for the archive"
    )
    if result.purge_failures:
        sys.exit(1)


@main.group()
def outbox() -> None:
    """Task outbox tools."""


@outbox.command("relay")
def outbox_relay() -> None:
    """Send tasks that could not be sent when their change committed."""
    from dossier_service.services import outbox as outbox_service

    container = _container()
    sent = outbox_service.relay(container.db, container.task_sender, older_than_s=0)
    click.echo(f"{sent} task(s) sent; {outbox_service.unsent_count(container.db)} still unsent")


@main.group()
def monitor() -> None:
    """Continuity monitoring (stalled cases, stopped measures, the 7-year horizon)."""


@monitor.command("run")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Evaluate as of this day (YYYY-MM-DD); default today.",
)
def monitor_run(as_of: dt.datetime | None) -> None:
    """Notify units of stalled cases and stopped measures, once per occurrence."""
    from dossier_service.dates import local_today
    from dossier_service.services import monitoring

    container = _container()
    day = as_of.date() if as_of else local_today()
    try:
        result = monitoring.monitor_run(container, day)
    finally:
        container.close()
    click.echo(
        f"monitor {day.isoformat()}: {result.stalled_cases} stalled case(s), "
        f"{result.measures_without_follow_up} measure(s) without follow-up, "
        f"{result.horizon_cases} case(s) past 6.5 years; "
        f"{result.notifications_created} new notification(s)"
    )


@main.command()
def reindex() -> None:
    """Rebuild the search index from database and storage beside the live one, then swap."""
    from dossier_service.services import indexing

    container = _container()
    with container.db.transaction() as session:
        from sqlalchemy import func, select

        from dossier_service.models import Document

        total = session.execute(select(func.count(Document.id))).scalar_one()
    with click.progressbar(length=total, label="reindexing", file=sys.stderr) as bar:
        done = [0]

        def progress(count: int) -> None:
            bar.update(count - done[0])
            done[0] = count

        loaded = indexing.rebuild(container, progress)
    click.echo(f"reindexed {loaded} document(s); the new index is live")


@main.group()
def index() -> None:
    """Search index tools."""


@index.command("verify")
def index_verify() -> None:
    """Report drift between the search index and the database; exit 1 if any."""
    from dossier_service.services import indexing

    container = _container()
    drift = indexing.verify(container)
    # Versions still waiting are not in the index yet: not drift, but not searchable either.
    overdue = _report_overdue(container)
    for key in drift.missing:
        click.echo(f"missing\t{key}")
    for key in drift.extra:
        click.echo(f"extra\t{key}")
    for case_id, indexed, now in drift.wrong_unit:
        click.echo(f"unit\t{case_id}\tindexed {indexed or '-'}, responsible {now}")
    click.echo(
        f"index verify: {len(drift.missing)} missing, {len(drift.extra)} extra, "
        f"{len(drift.wrong_unit)} case(s) with an outdated unit, {overdue} overdue version(s)"
    )
    sys.exit(0 if drift.ok and not overdue else 1)


@main.command()
@click.option("--version", "version_id", default=None, help="Reprocess one version (its id).")
@click.option("--failed", is_flag=True, help="Reprocess every version whose processing failed.")
@click.option("--stuck", is_flag=True, help="Reprocess every overdue version (see `dossier fsck`).")
@click.option("--all", "everything", is_flag=True, help="Reprocess every version.")
def reprocess(version_id: str | None, failed: bool, stuck: bool, everything: bool) -> None:
    """Run fixity, extraction and indexing again (queued for the worker)."""
    from sqlalchemy import select

    from dossier_service.dates import utcnow
    from dossier_service.models import DocumentVersion
    from dossier_service.services import outbox, processing
    from dossier_service.services.documents import PROCESS_TASK

    if sum(bool(x) for x in (version_id, failed, stuck, everything)) != 1:
        raise click.UsageError("give exactly one of --version ID, --failed, --stuck or --all")
    container = _container()
    with container.db.transaction() as session:
        query = select(DocumentVersion.id)
        if version_id:
            query = query.where(DocumentVersion.id == version_id)
        elif failed:
            query = query.where(DocumentVersion.processing == "failed")
        elif stuck:
            query = processing.overdue_query(container).with_only_columns(DocumentVersion.id)
        ids = list(session.execute(query).scalars())
        if version_id and not ids:
            raise click.ClickException(f"no version {version_id}")
        for vid in ids:
            session.execute(
                DocumentVersion.__table__.update()  # type: ignore[attr-defined]
                .where(DocumentVersion.id == vid)
                .values(
                    processing="pending",
                    processing_error=None,
                    # A new round: a live worker's lease is dropped (its work is redone).
                    processing_owner=None,
                    processing_lease_until=None,
                    processing_attempts=0,
                    processing_since=utcnow(),
                    processing_queued_at=utcnow(),
                )
            )
            outbox.enqueue(session, PROCESS_TASK, version_id=vid)
    # Committing sent the tasks to the broker (or left them to the relay if it is down).
    unsent = outbox.unsent_count(container.db)
    click.echo(f"{len(ids)} version(s) queued for processing; {unsent} task(s) wait for the broker")


class _run:
    """Context manager: a committed transaction that turns domain errors into clean exits."""

    def __enter__(self) -> Any:
        self.container = _container()
        self.cm = self.container.db.transaction()
        return self.cm.__enter__()

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            self.cm.__exit__(exc_type, exc, tb)
        finally:
            self.container.close()
        if isinstance(exc, DossierError):
            raise click.ClickException(exc.message)


if __name__ == "__main__":
    main()
