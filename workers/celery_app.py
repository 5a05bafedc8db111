"""The Celery app, configured from the service's settings (embedded broker or Redis)."""

from __future__ import annotations

from typing import Any

from celery import Celery
from celery.schedules import crontab

from dossier_service.config import Settings, load_settings
from dossier_service.container import Container
from workers import tasks

RELAY_INTERVAL_S = 30.0
#: Resend relabellings of moved cases whose sync task did not finish (index outage).
SYNC_UNITS_INTERVAL_S = 300.0
#: Continuity monitoring runs once a day (beat's clock is UTC: 03:30 is 04:30/05:30 in Zurich).
MONITOR_SCHEDULE = crontab(hour=3, minute=30)
#: Retention deletes archived cases once a day, before monitoring (02:30 UTC).
RETENTION_SCHEDULE = crontab(hour=2, minute=30)
#: How often exports left behind by a dead worker are sent again.
RESUME_EXPORTS_INTERVAL_S = 15 * 60.0
#: Failed authentications are summarised per address and minute (auth.failed_summary).
AUTH_HOUSEKEEPING_INTERVAL_S = 60.0
#: Checkpoints of the audit chain head, outside the database (issue 10, finding 5).
AUDIT_CHECKPOINT_INTERVAL_S = 60.0
#: How often versions held by a dead worker are queued again (at most; see below).
REQUEUE_STUCK_INTERVAL_S = 60.0
#: How often stale spool files (left by a crash) are removed.
SWEEP_SPOOL_INTERVAL_S = 3600.0


def requeue_interval(settings: Settings) -> float:
    """Every minute, or twice per lease when leases are shorter (tests, impatient setups)."""
    return min(REQUEUE_STUCK_INTERVAL_S, max(1.0, settings.processing_lease_seconds / 2))


def make_celery(settings: Settings) -> Celery:
    """A Celery app bound to the configured broker; tasks are registered by name."""
    app = Celery("dossier", broker=settings.broker_url, include=["workers.tasks"])
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith("redis"):
        # Redelivers a task whose worker died mid-run, after this many seconds.
        transport_options["visibility_timeout"] = 3600
    app.conf.update(
        task_ignore_result=True,
        task_acks_late=True,  # a task lost with its worker is delivered again
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_connection_timeout=5,
        broker_transport_options=transport_options,
        task_always_eager=settings.tasks_eager,
        task_eager_propagates=True,
        task_serializer="json",
        accept_content=["json"],
        timezone="UTC",
        beat_schedule={
            "relay-outbox": {"task": "dossier.relay_outbox", "schedule": RELAY_INTERVAL_S},
            "sync-pending-units": {
                "task": "dossier.sync_pending_units",
                "schedule": SYNC_UNITS_INTERVAL_S,
            },
            # Daily, in the early morning when nobody works on cases.
            "monitor-run": {"task": "dossier.monitor_run", "schedule": MONITOR_SCHEDULE},
            "retention-run": {"task": "dossier.retention_run", "schedule": RETENTION_SCHEDULE},
            "audit-checkpoint": {
                "task": "dossier.audit_checkpoint",
                "schedule": AUDIT_CHECKPOINT_INTERVAL_S,
            },
            "resume-exports": {
                "task": "dossier.resume_exports",
                "schedule": RESUME_EXPORTS_INTERVAL_S,
            },
            "auth-housekeeping": {
                "task": "dossier.auth_housekeeping",
                "schedule": AUTH_HOUSEKEEPING_INTERVAL_S,
            },
            "requeue-stuck-versions": {
                "task": "dossier.requeue_stuck_versions",
                "schedule": requeue_interval(settings),
            },
            "sweep-spool": {"task": "dossier.sweep_spool", "schedule": SWEEP_SPOOL_INTERVAL_S},
        },
    )
    app.conf.dossier_settings = settings
    return app


def make_sender(settings: Settings) -> Any:
    """A function that sends a task by name; runs it inline when tasks are eager."""
    app = make_celery(settings)
    # retry=False below only covers publishing: opening the connection would still retry
    # until broker_connection_timeout (about 6 s per request while the broker is down). One
    # attempt is enough, since the outbox keeps the task. Only this sender's app is affected,
    # not the worker's consumer, which reconnects on its own schedule.
    app.conf.broker_transport_options = {**app.conf.broker_transport_options, "max_retries": 0}

    def send(task: str, payload: dict[str, Any]) -> None:
        if settings.tasks_eager:
            app.tasks[task].apply(kwargs=payload, throw=True)
            return
        # retry=False: if the broker is down the outbox keeps the task for the relay
        # instead of blocking the request for Celery's default retry schedule.
        app.send_task(task, kwargs=payload, retry=False)

    return send


def make_broker_probe(settings: Settings) -> Any:
    """A function that raises if the broker cannot be reached within a few seconds."""
    app = make_celery(settings)

    def probe() -> None:
        if settings.tasks_eager:
            return
        with app.connection_for_write() as connection:
            connection.ensure_connection(max_retries=1, timeout=3)

    return probe


def make_worker_app(settings: Settings) -> Celery:
    """The worker's entry point: its Celery app, and the container its tasks run on.

    The container is built before the pool forks; it opens no connection until a task
    uses it, so every worker process still gets its own.
    """
    tasks.use_container(Container(settings, task_sender=make_sender(settings)))
    return make_celery(settings)


_apps: dict[str, Celery] = {}


def __getattr__(name: str) -> Celery:
    """``workers.celery_app:celery_app`` for the worker command, built on first use.

    Lazy so that importing this module never reads the environment by surprise.
    """
    if name != "celery_app":
        raise AttributeError(name)
    if name not in _apps:
        _apps[name] = make_worker_app(load_settings())
    return _apps[name]
