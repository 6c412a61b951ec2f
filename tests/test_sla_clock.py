"""The SLA clock job: alerts recorded as events once their time has passed.

Each test passes the job an explicit ``now``. A 60-minute first-response target
opened at 09:00 is at risk from 09:45 (75 %) and due at 10:00.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID

import pytest
from apscheduler.schedulers.background import BackgroundScheduler

from hub.application import HubApplication
from hub.domain import Context, Ticket
from projections.runner import ProjectionRunner
from projections.sla import SlaView, sla_rows
from projections.sla_clock import add_sla_job, check_sla_deadlines

UTC = timezone.utc
POLICY_DAY = datetime(2024, 1, 1, tzinfo=UTC)


def utc(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, 4, hour, minute, tzinfo=UTC)


def as_agent(moment: datetime) -> Context:
    return Context(actor_kind="agent", actor_id="agent-7", source_name="api", occurred_at=moment)


def open_ticket(app: HubApplication, moment: datetime) -> UUID:
    ctx = Context(actor_kind="requester", actor_id="req-1", source_name="email", occurred_at=moment)
    return app.open_ticket(ctx, subject="Printer offline", channel="email").aggregate.id


def alerts(app: HubApplication, ticket_id: UUID) -> list[dict[str, Any]]:
    return [entry for entry in app.history(Ticket, ticket_id) if entry["type"].startswith("sla.")]


def make_runner(app: HubApplication) -> Iterator[ProjectionRunner]:
    app.define_sla_policy(as_agent(POLICY_DAY), name="Standard", targets={"medium": {"first_response": 60}})
    runner = ProjectionRunner(app, [SlaView()])
    runner.setup()
    yield runner
    runner.close()


@pytest.fixture
def runner(app: HubApplication) -> Iterator[ProjectionRunner]:
    yield from make_runner(app)


@pytest.fixture
def memory_runner(memory_app: HubApplication) -> Iterator[ProjectionRunner]:
    yield from make_runner(memory_app)


def test_breach_recorded_once(app: HubApplication, runner: ProjectionRunner) -> None:
    ticket_id = open_ticket(app, utc(9, 0))

    first = check_sla_deadlines(app, runner.db, utc(10, 1), runner=runner)
    second = check_sla_deadlines(app, runner.db, utc(10, 2), runner=runner)

    assert first == {"at_risk": 0, "breached": 1, "already_recorded": 0, "failed": 0}
    assert second == {"at_risk": 0, "breached": 0, "already_recorded": 0, "failed": 0}
    recorded = alerts(app, ticket_id)
    assert [entry["type"] for entry in recorded] == ["sla.breached"]
    assert recorded[0]["occurred_at"] == "2024-03-04T10:00:00+00:00"
    assert recorded[0]["actor"] == {"kind": "system", "id": "sla-clock"}
    assert recorded[0]["data"] == {"target": "first_response", "cycle": 1, "due_at": "2024-03-04T10:00:00+00:00"}


def test_stale_view_records_nothing_twice(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    ticket_id = open_ticket(memory_app, utc(9, 0))
    memory_runner.catch_up()

    # Without a catch-up between the runs the view still shows no alert, so the
    # second run requests the alert again and the ticket records nothing.
    first = check_sla_deadlines(memory_app, memory_runner.db, utc(9, 50))
    second = check_sla_deadlines(memory_app, memory_runner.db, utc(9, 51))

    assert first["at_risk"] == 1
    assert second == {"at_risk": 0, "breached": 0, "already_recorded": 1, "failed": 0}
    assert [entry["type"] for entry in alerts(memory_app, ticket_id)] == ["sla.at_risk"]


def test_at_risk_then_breach(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    ticket_id = open_ticket(memory_app, utc(9, 0))

    before = check_sla_deadlines(memory_app, memory_runner.db, utc(9, 44), runner=memory_runner)
    at_risk = check_sla_deadlines(memory_app, memory_runner.db, utc(9, 45), runner=memory_runner)
    breached = check_sla_deadlines(memory_app, memory_runner.db, utc(10, 0) + timedelta(seconds=1), runner=memory_runner)

    assert (before["at_risk"], before["breached"]) == (0, 0)
    assert (at_risk["at_risk"], at_risk["breached"]) == (1, 0)
    assert (breached["at_risk"], breached["breached"]) == (0, 1)
    recorded = alerts(memory_app, ticket_id)
    assert [entry["type"] for entry in recorded] == ["sla.at_risk", "sla.breached"]
    assert recorded[0]["occurred_at"] == "2024-03-04T09:45:00+00:00"


def test_due_time_itself_is_not_breach(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    open_ticket(memory_app, utc(9, 0))

    counts = check_sla_deadlines(memory_app, memory_runner.db, utc(10, 0), runner=memory_runner)

    # At exactly 10:00 the 60 minutes are used up but not exceeded: at risk only.
    assert (counts["at_risk"], counts["breached"]) == (1, 0)


def test_late_job_skips_warning(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    ticket_id = open_ticket(memory_app, utc(9, 0))

    counts = check_sla_deadlines(memory_app, memory_runner.db, utc(11, 0), runner=memory_runner)

    assert (counts["at_risk"], counts["breached"]) == (0, 1)
    assert [entry["type"] for entry in alerts(memory_app, ticket_id)] == ["sla.breached"]


def test_met_target_gets_no_alert(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    ticket_id = open_ticket(memory_app, utc(9, 0))
    memory_app.execute(Ticket, ticket_id, "reply", as_agent(utc(9, 30)), body="Hello")

    counts = check_sla_deadlines(memory_app, memory_runner.db, utc(11, 0), runner=memory_runner)

    assert counts == {"at_risk": 0, "breached": 0, "already_recorded": 0, "failed": 0}
    assert alerts(memory_app, ticket_id) == []


def test_alert_reaches_view(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    ticket_id = open_ticket(memory_app, utc(9, 0))
    check_sla_deadlines(memory_app, memory_runner.db, utc(10, 5), runner=memory_runner)

    memory_runner.catch_up()

    item = sla_rows(memory_runner.db, ticket_id=ticket_id, now=utc(10, 5))["items"][0]
    assert item["breach_flagged"] is True
    assert item["state"] == "breached"


def test_naive_now_is_rejected(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    with pytest.raises(ValueError, match="now must be timezone-aware"):
        check_sla_deadlines(memory_app, memory_runner.db, datetime(2024, 3, 4, 10, 0))


def test_scheduled_job_settings(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        job = add_sla_job(scheduler, memory_app, memory_runner.db, interval_seconds=30, runner=memory_runner)

        assert job.id == "sla-clock"
        assert job.max_instances == 1
        assert job.coalesce is True
        assert job.trigger.interval == timedelta(seconds=30)
        assert scheduler.get_job("sla-clock") is not None
    finally:
        scheduler.shutdown(wait=False)


def test_scheduled_job_runs_check(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    # Opened long ago, so its first response is past due at the real current time.
    ticket_id = open_ticket(memory_app, utc(9, 0))
    scheduler = BackgroundScheduler(timezone=UTC)
    scheduler.start(paused=True)
    try:
        job = add_sla_job(scheduler, memory_app, memory_runner.db, runner=memory_runner)

        counts = job.func(*job.args, **job.kwargs)
    finally:
        scheduler.shutdown(wait=False)

    assert counts["breached"] == 1
    assert [entry["type"] for entry in alerts(memory_app, ticket_id)] == ["sla.breached"]
