"""The scheduler: connection sync jobs, report periods and events, locks around jobs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
import responses
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from connector_helpers import (  # noqa: F401 (hub_app and settings are fixtures)
    ZENDESK_URL,
    FakeClock,
    add_connection,
    export_page,
    hub_app,
    settings,
    zendesk_ticket,
)

from connectors.connection import get_connection, update_connection
from connectors.locks import exclusive
from connectors.schedule import HubScheduler, generate_report, locked_job, report_period, view_figures
from connectors.sync import SyncEngine
from hub.domain import Context, Report
from hub.domain.report import report_id
from projections.db import Database
from projections.registry import all_views
from projections.runner import ProjectionRunner

UTC = timezone.utc
ADMIN = Context(actor_kind="agent", actor_id="admin-1")


def day(year: int, month: int, date: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, date, hour, minute, tzinfo=UTC)


@pytest.mark.parametrize(
    ("cadence", "now", "start", "end"),
    [
        ("daily", day(2024, 3, 5, 0, 5), day(2024, 3, 4), day(2024, 3, 5)),
        ("daily", datetime(2024, 3, 5, 1, 0, tzinfo=timezone(timedelta(hours=2))), day(2024, 3, 3), day(2024, 3, 4)),
        ("weekly", day(2024, 3, 6, 10), day(2024, 2, 26), day(2024, 3, 4)),
        ("weekly", day(2024, 3, 4, 0, 10), day(2024, 2, 26), day(2024, 3, 4)),
        ("monthly", day(2024, 3, 1, 0, 15), day(2024, 2, 1), day(2024, 3, 1)),
        ("monthly", day(2024, 1, 10), day(2023, 12, 1), day(2024, 1, 1)),
        ("quarterly", day(2024, 4, 1, 0, 20), day(2024, 1, 1), day(2024, 4, 1)),
        ("quarterly", day(2024, 2, 15), day(2023, 10, 1), day(2024, 1, 1)),
    ],
)
def test_report_period(cadence, now, start, end):
    assert report_period(cadence, now) == (start, end)


def test_unknown_cadence_raises():
    with pytest.raises(ValueError, match="cadence 'hourly' is invalid"):
        report_period("hourly", day(2024, 1, 1))


def test_report_recorded_once_per_period(hub_app):
    calls = []

    def figures(cadence, start, end):
        calls.append((cadence, start, end))
        return {"tickets": 12}

    first = generate_report(hub_app, "weekly", day(2024, 3, 6, 10), figures)
    second = generate_report(hub_app, "weekly", day(2024, 3, 7, 10), figures)

    assert second is None
    assert calls == [("weekly", day(2024, 2, 26), day(2024, 3, 4))]
    stored = hub_app.get(Report, report_id("weekly", day(2024, 2, 26)))
    assert stored.figures == {"tickets": 12}
    assert stored.id == first.id
    assert [entry["type"] for entry in hub_app.history(Report, first.id)] == ["report.generated"]


def test_view_figures_from_kpi_view(hub_app):
    opened_at = day(2024, 3, 4, 9)
    hub_app.open_ticket(Context(occurred_at=opened_at), subject="VPN down", channel="email")
    database = Database.for_application(hub_app)
    runner = ProjectionRunner(hub_app, all_views(), database)

    figures = view_figures(database, runner)("daily", day(2024, 3, 4), day(2024, 3, 5))

    assert figures["kpis"]["tickets"] == 1
    assert figures["sla_targets_at_risk"] == 0
    runner.close()


def scheduler_for(app, settings) -> HubScheduler:
    return HubScheduler(app, settings, scheduler=BackgroundScheduler(timezone=UTC),
                        engine=SyncEngine(app, settings, clock=FakeClock()))


def test_scheduled_connections_get_jobs(hub_app, settings):
    every = add_connection(hub_app, settings, "zendesk", schedule={"every_minutes": 15})
    cron = add_connection(hub_app, settings, "freshdesk", schedule="0 6 * * mon-fri")
    add_connection(hub_app, settings, "servicenow")
    hub_scheduler = scheduler_for(hub_app, settings)

    hub_scheduler.refresh_connection_jobs()

    jobs = {job.id: job for job in hub_scheduler.scheduler.get_jobs()}
    assert set(jobs) == {f"connection-sync:{every.id}", f"connection-sync:{cron.id}"}
    interval = jobs[f"connection-sync:{every.id}"].trigger
    assert isinstance(interval, IntervalTrigger)
    assert interval.interval == timedelta(minutes=15)
    assert isinstance(jobs[f"connection-sync:{cron.id}"].trigger, CronTrigger)
    assert str(jobs[f"connection-sync:{cron.id}"].trigger) == "cron[month='*', day='*', day_of_week='mon-fri', hour='6', minute='0']"


def test_refresh_follows_schedule_changes(hub_app, settings):
    first = add_connection(hub_app, settings, "zendesk", schedule={"every_minutes": 15})
    second = add_connection(hub_app, settings, "freshdesk", schedule={"every_minutes": 30})
    hub_scheduler = scheduler_for(hub_app, settings)
    hub_scheduler.refresh_connection_jobs()
    update_connection(hub_app, ADMIN, first.id, {"schedule": None}, settings=settings)
    update_connection(hub_app, ADMIN, second.id, {"schedule": {"every_minutes": 5}}, settings=settings)

    hub_scheduler.refresh_connection_jobs()

    jobs = {job.id: job for job in hub_scheduler.scheduler.get_jobs()}
    assert set(jobs) == {f"connection-sync:{second.id}"}
    assert jobs[f"connection-sync:{second.id}"].trigger.interval == timedelta(minutes=5)


@responses.activate
def test_sync_job_runs_a_sync(hub_app, settings):
    connection = add_connection(hub_app, settings, schedule={"every_minutes": 15})
    responses.get(ZENDESK_URL + "/api/v2/incremental/tickets/cursor.json",
                  json=export_page([zendesk_ticket(400, "2024-01-01T10:00:00Z")], "c1", True))

    counts = scheduler_for(hub_app, settings).sync_connection(str(connection.id))

    assert counts["tickets_created"] == 1
    assert get_connection(hub_app, connection.id).last_sync["trigger"] == "schedule"


@responses.activate
def test_failed_sync_job_is_recorded_and_returns_none(hub_app, settings):
    connection = add_connection(hub_app, settings, schedule={"every_minutes": 15})
    responses.get(ZENDESK_URL + "/api/v2/incremental/tickets/cursor.json", json={"error": "Forbidden"}, status=403)

    counts = scheduler_for(hub_app, settings).sync_connection(str(connection.id))

    assert counts is None
    assert get_connection(hub_app, connection.id).last_sync["status"] == "failed"


def test_sync_job_skips_when_connection_is_syncing(hub_app, settings):
    connection = add_connection(hub_app, settings, schedule={"every_minutes": 15})

    with exclusive(hub_app, f"connection-sync:{connection.id}"):
        counts = scheduler_for(hub_app, settings).sync_connection(str(connection.id))

    assert counts is None
    assert get_connection(hub_app, connection.id).sync_count == 0


def test_locked_job_skips_while_lock_is_held(hub_app):
    calls = []
    job = locked_job(hub_app, "report:daily", lambda: calls.append(1) or "ran")

    with exclusive(hub_app, "job:report:daily"):
        skipped = job()
    ran = job()

    assert (skipped, ran, calls) == (None, "ran", [1])


def test_all_jobs_added_with_views(hub_app, settings):
    database = Database.for_application(hub_app)
    hub_scheduler = HubScheduler(hub_app, settings, scheduler=BackgroundScheduler(timezone=UTC), db=database)

    hub_scheduler.add_jobs()

    jobs = {job.id: job for job in hub_scheduler.scheduler.get_jobs()}
    assert set(jobs) == {
        "connection-schedules", "sla-clock", "report:daily", "report:weekly", "report:monthly", "report:quarterly",
    }
    assert str(jobs["report:weekly"].trigger) == "cron[day_of_week='mon', hour='0', minute='10']"
    with exclusive(hub_app, "job:sla-clock"):
        assert jobs["sla-clock"].func(*jobs["sla-clock"].args) is None


def test_report_job_records_report(hub_app, settings):
    hub_scheduler = HubScheduler(hub_app, settings, scheduler=BackgroundScheduler(timezone=UTC),
                                 figures=lambda cadence, start, end: {"cadence": cadence})

    report = hub_scheduler.run_report("monthly", now=day(2024, 3, 1, 0, 15))

    assert (report.cadence, report.period_start, report.period_end) == ("monthly", day(2024, 2, 1), day(2024, 3, 1))
    assert report.figures == {"cadence": "monthly"}
