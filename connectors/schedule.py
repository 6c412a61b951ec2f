"""Scheduled work on APScheduler 3: connection syncs, the SLA clock and periodic reports.

`HubScheduler` contains the jobs:

* one sync job per connection with a schedule (`{"every_minutes": N}` or a cron
  expression in UTC), kept in step with the stored connections by a refresh job;
* the SLA clock job from `projections.sla_clock`;
* the daily, weekly, monthly and quarterly reports, each recorded as a
  `Report.Generated` event for the period that has just ended.

It runs inside `hub serve` in the embedded mode (`start_embedded`) or as the
`clock` process in production (`run_clock`). Every job takes a cross-process
lock named after its job id before it runs, so two `clock` processes, or a
clock process and a web worker, never run the same job at once. A sync also
takes its connection's lock, which `POST /api/v1/connections/{id}/sync` shares.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from functools import wraps
from typing import Any
from uuid import UUID

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from eventsourcing.persistence import IntegrityError

from connectors.connection import list_connections
from connectors.locks import exclusive
from connectors.sync import SyncBusyError, SyncEngine, SyncError
from hub.domain import Context, Report
from hub.domain.report import report_id
from hub.settings import Settings

logger = logging.getLogger(__name__)

SYNC_JOB_PREFIX = "connection-sync:"
REFRESH_JOB_ID = "connection-schedules"
REPORT_JOB_PREFIX = "report:"

# How often the scheduler looks for connections added, changed or removed.
DEFAULT_REFRESH_SECONDS = 60

# Reports run a few minutes after their period ends (UTC), one cadence after another.
REPORT_TRIGGERS: dict[str, dict[str, Any]] = {
    "daily": {"hour": 0, "minute": 5},
    "weekly": {"day_of_week": "mon", "hour": 0, "minute": 10},
    "monthly": {"day": 1, "hour": 0, "minute": 15},
    "quarterly": {"month": "1,4,7,10", "day": 1, "hour": 0, "minute": 20},
}

# Figures for a report: called with the cadence and the period's start and end.
FiguresFunction = Callable[[str, datetime, datetime], dict[str, Any]]


def report_period(cadence: str, now: datetime) -> tuple[datetime, datetime]:
    """Return the last whole period of `cadence` that ended at or before `now`, in UTC.

    Weeks start on Monday; quarters start in January, April, July and October.
    """
    moment = now.astimezone(timezone.utc)
    today = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if cadence == "daily":
        return today - timedelta(days=1), today
    if cadence == "weekly":
        this_week = today - timedelta(days=today.weekday())
        return this_week - timedelta(days=7), this_week
    if cadence == "monthly":
        this_month = today.replace(day=1)
        return _add_months(this_month, -1), this_month
    if cadence == "quarterly":
        this_quarter = today.replace(month=(today.month - 1) // 3 * 3 + 1, day=1)
        return _add_months(this_quarter, -3), this_quarter
    msg = f"cadence {cadence!r} is invalid; use one of {', '.join(REPORT_TRIGGERS)}"
    raise ValueError(msg)


def _add_months(first_of_month: datetime, months: int) -> datetime:
    index = first_of_month.year * 12 + first_of_month.month - 1 + months
    return first_of_month.replace(year=index // 12, month=index % 12 + 1)


def generate_report(app: Any, cadence: str, now: datetime, figures: FiguresFunction) -> Report | None:
    """Record the report of the period of `cadence` that has just ended; None if it exists.

    The report's id follows from its cadence and period, so a second run, in
    this process or another, records nothing.
    """
    period_start, period_end = report_period(cadence, now)
    if report_id(cadence, period_start) in app.repository:
        logger.info("The %s report for %s exists already; skipped", cadence, period_start.date())
        return None
    ctx = Context(actor_kind="system", actor_id="scheduler", source_name="scheduler", occurred_at=now)
    report = Report.generate(
        ctx, cadence=cadence, period_start=period_start, period_end=period_end,
        figures=figures(cadence, period_start, period_end),
    )
    try:
        app.save(report)
    except IntegrityError:
        logger.info("The %s report for %s was recorded by another process", cadence, period_start.date())
        return None
    logger.info("Recorded the %s report %s for %s to %s", cadence, report.id, period_start, period_end)
    return report


def view_figures(db: Any, runner: Any | None = None) -> FiguresFunction:
    """Return a figures function over the KPI and SLA views.

    Every report has the overall KPI row of the tickets opened in its period.
    The daily report also counts the SLA targets at risk at its end. When
    `runner` is given, the views catch up first.
    """

    def figures(cadence: str, period_start: datetime, period_end: datetime) -> dict[str, Any]:
        from projections.kpis import kpis
        from projections.sla import MAX_LIMIT, sla_rows

        if runner is not None:
            runner.catch_up()
        rows = kpis(db, since=period_start, until=period_end)
        result: dict[str, Any] = {"kpis": rows[0] if rows else {}}
        if cadence == "daily":
            at_risk = 0
            cursor = None
            while True:
                page = sla_rows(db, state="at_risk", now=period_end, cursor=cursor, limit=MAX_LIMIT)
                at_risk += len(page["items"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            result["sla_targets_at_risk"] = at_risk
        return result

    return figures


def connection_trigger(schedule: dict[str, Any]) -> BaseTrigger:
    """Return the APScheduler trigger for a validated connection schedule."""
    if "every_minutes" in schedule:
        return IntervalTrigger(minutes=int(schedule["every_minutes"]), timezone=timezone.utc)
    return CronTrigger.from_crontab(schedule["cron"], timezone=timezone.utc)


def locked_job(app: Any, job_id: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a job function so that it runs only while it holds the lock named after `job_id`."""

    @wraps(function)
    def run(*args: Any, **kwargs: Any) -> Any:
        with exclusive(app, f"job:{job_id}") as acquired:
            if not acquired:
                logger.info("Job %s is running in another process; this run is skipped", job_id)
                return None
            return function(*args, **kwargs)

    return run


class HubScheduler:
    """The scheduler of one process and the jobs it runs against `app`.

    `figures` computes report figures; without it, and without `db`, no
    report jobs are added. `db` (a `projections.db.Database`) also enables the
    SLA clock job.
    """

    def __init__(
        self,
        app: Any,
        settings: Settings,
        *,
        scheduler: BaseScheduler | None = None,
        engine: SyncEngine | None = None,
        db: Any | None = None,
        runner: Any | None = None,
        figures: FiguresFunction | None = None,
        sla_interval_seconds: float = 60,
        refresh_seconds: float = DEFAULT_REFRESH_SECONDS,
    ) -> None:
        self.app = app
        self.settings = settings
        self.scheduler = scheduler or BackgroundScheduler(timezone=timezone.utc)
        self.engine = engine or SyncEngine(app, settings)
        self.db = db
        self.runner = runner
        self.figures = figures or (view_figures(db, runner) if db is not None else None)
        self.sla_interval_seconds = sla_interval_seconds
        self.refresh_seconds = refresh_seconds
        self._schedules: dict[str, dict[str, Any]] = {}
        self._refresh_lock = threading.Lock()

    def add_jobs(self) -> None:
        """Add the connection, SLA clock and report jobs."""
        self.refresh_connection_jobs()
        self.scheduler.add_job(
            self.refresh_connection_jobs, trigger=IntervalTrigger(seconds=self.refresh_seconds, timezone=timezone.utc),
            id=REFRESH_JOB_ID, name="Connection schedules", max_instances=1, coalesce=True, replace_existing=True,
        )
        if self.db is not None:
            self._add_sla_job()
        if self.figures is not None:
            for cadence, fields in REPORT_TRIGGERS.items():
                job_id = f"{REPORT_JOB_PREFIX}{cadence}"
                self.scheduler.add_job(
                    locked_job(self.app, job_id, self.run_report), trigger=CronTrigger(timezone=timezone.utc, **fields),
                    args=(cadence,), id=job_id, name=f"{cadence.capitalize()} report",
                    max_instances=1, coalesce=True, replace_existing=True, misfire_grace_time=3600,
                )

    def _add_sla_job(self) -> None:
        try:
            from projections.sla_clock import add_sla_job
        except ImportError:
            logger.warning("The SLA clock job is not available in this installation; SLA alerts are not recorded")
            return
        assert self.db is not None
        job = add_sla_job(self.scheduler, self.app, self.db, self.sla_interval_seconds, runner=self.runner)
        job.modify(func=locked_job(self.app, job.id, job.func))

    def start(self) -> None:
        """Add the jobs and start the scheduler; a BlockingScheduler returns only when it stops."""
        self.add_jobs()
        logger.info("Scheduler starting with %d jobs", len(self.scheduler.get_jobs()))
        self.scheduler.start()

    def shutdown(self, wait: bool = True) -> None:
        if self.scheduler.running:
            self.scheduler.shutdown(wait=wait)
            logger.info("Scheduler stopped")

    # Jobs.

    def refresh_connection_jobs(self) -> None:
        """Add, change or remove the sync jobs to match the stored connections' schedules."""
        with self._refresh_lock:
            scheduled = {
                str(connection.id): connection.schedule
                for connection in list_connections(self.app)
                if connection.schedule
            }
            for connection_id in set(self._schedules) - set(scheduled):
                self.scheduler.remove_job(SYNC_JOB_PREFIX + connection_id)
                del self._schedules[connection_id]
                logger.info("Removed the sync job of connection %s, which has no schedule now", connection_id)
            for connection_id, schedule in scheduled.items():
                if self._schedules.get(connection_id) == schedule:
                    continue
                self.scheduler.add_job(
                    self.sync_connection, trigger=connection_trigger(schedule), args=(connection_id,),
                    id=SYNC_JOB_PREFIX + connection_id, name=f"Sync connection {connection_id}",
                    max_instances=1, coalesce=True, replace_existing=True,
                )
                self._schedules[connection_id] = schedule
                logger.info("Scheduled connection %s to sync on %s", connection_id, schedule)

    def sync_connection(self, connection_id: str) -> dict[str, int] | None:
        """Run one scheduled sync; return its counts, or None when it did not complete."""
        try:
            result = self.engine.sync(UUID(connection_id), trigger="schedule")
        except SyncBusyError:
            logger.info("Connection %s is syncing elsewhere; this scheduled run is skipped", connection_id)
            return None
        except SyncError as error:
            # The failure is recorded on the connection as SyncFailed; the next run tries again.
            logger.warning("Scheduled sync of connection %s failed: %s", connection_id, error)
            return None
        return result.counts

    def run_report(self, cadence: str, now: datetime | None = None) -> Report | None:
        assert self.figures is not None
        return generate_report(self.app, cadence, now or datetime.now(timezone.utc), self.figures)


def start_embedded(app: Any, settings: Settings, *, db: Any | None = None, runner: Any | None = None) -> HubScheduler:
    """Start the scheduler on background threads, for `hub serve` in the embedded mode."""
    hub_scheduler = HubScheduler(app, settings, db=db, runner=runner)
    hub_scheduler.start()
    return hub_scheduler


def run_clock(settings: Settings) -> None:
    """Run the scheduler in the foreground until interrupted: the Procfile's `clock` process.

    The SLA clock and the reports read the views, so a projection worker
    (`hub worker`) must keep them up to date beside it.
    """
    from hub.application import create_application
    from projections.db import Database

    app = create_application(settings)
    db = Database.for_application(app)
    hub_scheduler = HubScheduler(app, settings, scheduler=BlockingScheduler(timezone=timezone.utc), db=db)
    try:
        hub_scheduler.start()
    except (KeyboardInterrupt, SystemExit):
        logger.info("Clock process stopping")
    finally:
        hub_scheduler.shutdown(wait=False)
        db.close()
        app.close()
