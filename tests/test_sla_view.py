"""The SLA view on the projection runner, its queries and ``hub sla``.

Tickets and policies are recorded through the application, the view follows
the event stream, and the expected values are worked out by hand in the
comments. 2024-03-01 is a Friday and 2024-03-04 a Monday; Europe/Berlin is
UTC+1 in March before the 31st.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from typing import Any
from uuid import UUID, uuid4
from zoneinfo import ZoneInfo

import pytest

from hub.application import HubApplication, create_application
from hub.domain import Context, SlaPolicy, Ticket
from hub.domain.errors import InvalidValueError
from hub.settings import load_settings
from projections.db import Database
from projections.runner import ProjectionRunner
from projections.sla import SlaView, policy_revisions, sla_rows, sla_ticket

UTC = timezone.utc
BERLIN = ZoneInfo("Europe/Berlin")
POLICY_DAY = datetime(2024, 1, 1, tzinfo=UTC)
OFFICE_HOURS = {
    "timezone": "Europe/Berlin",
    "hours": {day: [["08:00", "18:00"]] for day in ("mon", "tue", "wed", "thu", "fri")},
}


def utc(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=UTC)


def berlin(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 3, day, hour, minute, tzinfo=BERLIN)


def as_agent(moment: datetime) -> Context:
    return Context(actor_kind="agent", actor_id="agent-7", source_name="api", occurred_at=moment)


def as_requester(moment: datetime) -> Context:
    return Context(actor_kind="requester", actor_id="req-1", source_name="email", occurred_at=moment)


def define_policy(app: HubApplication, moment: datetime = POLICY_DAY, **terms: Any) -> UUID:
    terms.setdefault("name", "Standard")
    return app.define_sla_policy(as_agent(moment), **terms).aggregate.id


def open_ticket(app: HubApplication, moment: datetime) -> UUID:
    ctx = Context(actor_kind="requester", actor_id="req-1", source_name="email", occurred_at=moment)
    return app.open_ticket(ctx, subject="VPN drops every hour", channel="email").aggregate.id


def run(app: HubApplication, ticket_id: UUID, command: str, ctx: Context, **arguments: Any) -> None:
    app.execute(Ticket, ticket_id, command, ctx, **arguments)


@pytest.fixture
def runner(app: HubApplication) -> Iterator[ProjectionRunner]:
    projection_runner = ProjectionRunner(app, [SlaView()])
    projection_runner.setup()
    yield projection_runner
    projection_runner.close()


@pytest.fixture
def memory_runner(memory_app: HubApplication) -> Iterator[ProjectionRunner]:
    projection_runner = ProjectionRunner(memory_app, [SlaView()])
    projection_runner.setup()
    yield projection_runner
    projection_runner.close()


def rows_by_target(db: Database, ticket_id: UUID, now: datetime) -> dict[tuple[str, int], dict[str, Any]]:
    items = sla_rows(db, ticket_id=ticket_id, now=now)["items"]
    return {(item["target"], item["cycle"]): item for item in items}


def stored_targets(db: Database) -> list[tuple[Any, ...]]:
    with db.transaction(readonly=True) as cursor:
        cursor.execute("SELECT * FROM sla_targets ORDER BY ticket_id, target, cycle")
        return cursor.fetchall()


# The view on every store


def test_reply_and_pending_in_view(app: HubApplication, runner: ProjectionRunner) -> None:
    define_policy(app, targets={"medium": {"first_response": 5, "resolution": 60}})
    ticket_id = open_ticket(app, utc(4, 10, 0))
    run(app, ticket_id, "reply", as_agent(utc(4, 10, 3)), body="Looking into it")
    run(app, ticket_id, "change_status", as_agent(utc(4, 10, 3)), status="pending")

    runner.catch_up()

    rows = rows_by_target(runner.db, ticket_id, now=utc(4, 10, 3))
    first_response = rows[("first_response", 1)]
    assert first_response["state"] == "met"
    assert first_response["elapsed_business_minutes"] == 3
    assert first_response["fulfilled_at"] == "2024-03-04T10:03:00.000000+00:00"
    assert first_response["fulfilled_by"] == "AgentReplied"
    resolution = rows[("resolution", 1)]
    assert resolution["state"] == "paused"
    assert resolution["elapsed_business_minutes"] == 3
    assert resolution["due_at"] is None


def test_weekend_pause_due_in_view(app: HubApplication, runner: ProjectionRunner) -> None:
    define_policy(app, targets={"medium": {"resolution": 600}}, calendar=OFFICE_HOURS)
    ticket_id = open_ticket(app, berlin(1, 14, 0))
    run(app, ticket_id, "change_status", as_agent(berlin(1, 16, 0)), status="pending")
    run(app, ticket_id, "change_status", as_requester(berlin(4, 10, 0)), status="open")

    runner.catch_up()

    # Friday 14:00-16:00 ran 120 minutes; 480 remain from Monday 10:00 to 18:00
    # Berlin time, which is 17:00 UTC.
    resolution = rows_by_target(runner.db, ticket_id, now=berlin(4, 10, 0))[("resolution", 1)]
    assert resolution["due_at"] == "2024-03-04T17:00:00.000000+00:00"
    assert resolution["paused_minutes"] == 240
    assert resolution["state"] == "active"


def test_policy_revisions_kept_for_audit(app: HubApplication, runner: ProjectionRunner) -> None:
    policy_id = define_policy(app, targets={"medium": {"first_response": 60}})
    early_ticket = open_ticket(app, utc(4, 9, 0))
    revise_ctx = as_agent(utc(5, 0, 0))
    app.execute(SlaPolicy, policy_id, "revise", revise_ctx, targets={"medium": {"first_response": 30}})
    late_ticket = open_ticket(app, utc(6, 9, 0))

    runner.catch_up()

    revisions = policy_revisions(runner.db, policy_id)
    assert [revision["revision"] for revision in revisions] == [1, 2]
    assert revisions[0]["targets"] == {"medium": {"first_response": 60}}
    assert revisions[1]["targets"] == {"medium": {"first_response": 30}}
    assert revisions[1]["effective_at"] == "2024-03-05T00:00:00.000000+00:00"
    assert sla_ticket(runner.db, early_ticket)["policy_revision"] == 1
    assert sla_ticket(runner.db, late_ticket)["policy_revision"] == 2
    early = rows_by_target(runner.db, early_ticket, now=utc(4, 9, 0))[("first_response", 1)]
    assert early["due_at"] == "2024-03-04T10:00:00.000000+00:00"
    late = rows_by_target(runner.db, late_ticket, now=utc(6, 9, 0))[("first_response", 1)]
    assert late["due_at"] == "2024-03-06T09:30:00.000000+00:00"


# Policies and tickets


def test_ticket_without_policy_has_no_rows(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    ticket_id = open_ticket(memory_app, utc(4, 9, 0))
    define_policy(memory_app, moment=utc(4, 12, 0), targets={"medium": {"first_response": 60}})

    memory_runner.catch_up()

    summary = sla_ticket(memory_runner.db, ticket_id)
    assert summary["policy_id"] is None
    assert summary["policy_revision"] is None
    assert sla_rows(memory_runner.db, ticket_id=ticket_id, now=utc(4, 13, 0))["items"] == []


def test_unknown_ticket_summary_is_none(memory_runner: ProjectionRunner) -> None:
    memory_runner.catch_up()

    assert sla_ticket(memory_runner.db, UUID(int=7)) is None


def test_governing_policy_is_named(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    policy_id = define_policy(memory_app, name="Gold", targets={"medium": {"first_response": 60}})
    ticket_id = open_ticket(memory_app, utc(4, 9, 0))

    memory_runner.catch_up()

    summary = sla_ticket(memory_runner.db, ticket_id)
    assert summary["policy_id"] == str(policy_id)
    assert summary["policy_name"] == "Gold"
    assert summary["ticket_id"] == str(ticket_id)


def test_alert_event_marks_row(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    define_policy(memory_app, targets={"medium": {"first_response": 60}})
    ticket_id = open_ticket(memory_app, utc(4, 9, 0))
    memory_runner.catch_up()
    alert = Context(actor_kind="system", actor_id="sla-clock", source_name="sla-clock", occurred_at=utc(4, 10, 0))
    run(memory_app, ticket_id, "flag_sla", alert, kind="breached", target="first_response", cycle=1, due_at=utc(4, 10, 0))
    run(memory_app, ticket_id, "reply", as_agent(utc(4, 10, 30)), body="Sorry")

    memory_runner.catch_up()

    first_response = rows_by_target(memory_runner.db, ticket_id, now=utc(4, 11, 0))[("first_response", 1)]
    assert first_response["breach_flagged"] is True
    assert first_response["at_risk_flagged"] is False
    assert first_response["state"] == "missed"
    assert first_response["breached_at"] == "2024-03-04T10:00:00.000000+00:00"


def test_rebuild_in_small_pages_gives_same_rows(memory_app: HubApplication, memory_runner: ProjectionRunner) -> None:
    define_policy(memory_app, targets={
        "medium": {"first_response": 60, "next_reply": 30, "resolution": 240},
        "high": {"first_response": 15, "next_reply": 15, "resolution": 120},
    })
    for offset in range(3):
        ticket_id = open_ticket(memory_app, utc(4, 9, offset))
        run(memory_app, ticket_id, "reply", as_agent(utc(4, 9, 10 + offset)), body="Hello")
        run(memory_app, ticket_id, "receive_requester_reply", as_requester(utc(4, 9, 20)), body="More")
        run(memory_app, ticket_id, "prioritize", as_agent(utc(4, 9, 25)), priority="high")
        run(memory_app, ticket_id, "change_status", as_agent(utc(4, 9, 30)), status="on_hold")
        run(memory_app, ticket_id, "change_status", as_agent(utc(4, 10, 0)), status="open")
        run(memory_app, ticket_id, "resolve", as_agent(utc(4, 11, 0)), resolution_code="fixed")
        run(memory_app, ticket_id, "reopen", as_requester(utc(4, 12, 0)), reason="Again")
    memory_runner.catch_up()
    in_one_page = stored_targets(memory_runner.db)

    memory_runner.rebuild("sla", page_size=2)

    assert stored_targets(memory_runner.db) == in_one_page
    # Per ticket: first response, next reply 1 (still unanswered at the reopen,
    # so the reopen starts no second one) and resolution cycles 1 and 2.
    assert len(in_one_page) == 3 * 4


# Queries with a live clock


@pytest.fixture
def three_tickets(app: HubApplication, runner: ProjectionRunner) -> dict[str, UUID]:
    """Three tickets with a 60-minute first response, opened 09:00, 09:10 and 09:20, on every store."""
    define_policy(app, targets={"medium": {"first_response": 60}})
    tickets = {name: open_ticket(app, utc(4, 9, minute)) for name, minute in (("a", 0), ("b", 10), ("c", 20))}
    runner.catch_up()
    return tickets


def test_state_filter_uses_now(runner: ProjectionRunner, three_tickets: dict[str, UUID]) -> None:
    # At 10:05: a (due 10:00) is breached, b (at risk from 09:55, due 10:10) is
    # at risk, and c (at risk from 10:05) is at risk from exactly now.
    now = utc(4, 10, 5)

    breached = sla_rows(runner.db, state="breached", now=now)["items"]
    at_risk = sla_rows(runner.db, state="at_risk", now=now)["items"]
    active = sla_rows(runner.db, state="active", now=now)["items"]

    assert [item["ticket_id"] for item in breached] == [str(three_tickets["a"])]
    assert breached[0]["remaining_business_minutes"] == -5
    assert breached[0]["breached_at"] == "2024-03-04T10:00:00.000000+00:00"
    assert [item["ticket_id"] for item in at_risk] == [str(three_tickets["b"]), str(three_tickets["c"])]
    assert [item["state"] for item in at_risk] == ["at_risk", "at_risk"]
    assert active == []


def test_live_values_follow_now(runner: ProjectionRunner, three_tickets: dict[str, UUID]) -> None:
    item = sla_rows(runner.db, ticket_id=three_tickets["c"], now=utc(4, 9, 50))["items"][0]

    assert item["state"] == "active"
    assert item["elapsed_business_minutes"] == 30
    assert item["remaining_business_minutes"] == 30
    assert item["as_of"] == "2024-03-04T09:50:00.000000+00:00"


def test_rows_page_by_due_time(runner: ProjectionRunner, three_tickets: dict[str, UUID]) -> None:
    now = utc(4, 9, 30)

    first = sla_rows(runner.db, now=now, limit=2)
    second = sla_rows(runner.db, now=now, limit=2, cursor=first["next_cursor"])

    ordered = [item["ticket_id"] for item in first["items"] + second["items"]]
    assert ordered == [str(three_tickets[name]) for name in ("a", "b", "c")]
    assert first["next_cursor"] is not None
    assert second["next_cursor"] is None


def test_invalid_state_is_rejected(memory_runner: ProjectionRunner) -> None:
    memory_runner.catch_up()

    with pytest.raises(InvalidValueError, match="state 'late' is invalid; use one of active, paused"):
        sla_rows(memory_runner.db, state="late")


def test_invalid_cursor_is_rejected(memory_runner: ProjectionRunner) -> None:
    memory_runner.catch_up()

    with pytest.raises(InvalidValueError, match="cursor 'abc' is invalid"):
        sla_rows(memory_runner.db, cursor="abc")


def test_invalid_ticket_id_is_rejected(memory_runner: ProjectionRunner) -> None:
    memory_runner.catch_up()

    with pytest.raises(InvalidValueError, match="ticket id 'T-1' is not a UUID"):
        sla_rows(memory_runner.db, ticket_id="T-1")


# hub sla


def hub(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "hub.cli", *args],
        capture_output=True, text=True, env={**os.environ, **env}, timeout=60,
    )


@pytest.fixture
def store_with_ticket(tmp_path) -> tuple[UUID, dict[str, str]]:
    """A SQLite file store with a policy and one ticket opened in 2024 with no reply."""
    env = {"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"}
    app = create_application(load_settings(env))
    define_policy(app, targets={"medium": {"first_response": 60, "resolution": 480}})
    ticket_id = open_ticket(app, utc(4, 9, 0))
    app.close()
    return ticket_id, env


def test_cli_lists_breached_rows_as_json(store_with_ticket) -> None:
    ticket_id, env = store_with_ticket

    result = hub("sla", "--state", "breached", "--format", "json", env=env)

    assert result.returncode == 0, result.stderr
    items = json.loads(result.stdout)
    assert [(item["target"], item["ticket_id"]) for item in items] == [
        ("first_response", str(ticket_id)),
        ("resolution", str(ticket_id)),
    ]
    assert items[0]["breached_at"] == "2024-03-04T10:00:00.000000+00:00"


def test_cli_ticket_csv(store_with_ticket) -> None:
    ticket_id, env = store_with_ticket

    result = hub("sla", "--ticket", str(ticket_id), "--format", "csv", env=env)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("ticket_id,target,cycle,priority,state,")
    assert len(lines) == 3


def test_cli_reports_ticket_without_policy(tmp_path) -> None:
    env = {"HUB_DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3"}
    app = create_application(load_settings(env))
    ticket_id = open_ticket(app, utc(4, 9, 0))
    app.close()

    result = hub("sla", "--ticket", str(ticket_id), env=env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"Ticket {ticket_id} has no SLA policy: none was defined when it was opened."


def test_cli_rejects_unknown_state(store_with_ticket) -> None:
    _, env = store_with_ticket

    result = hub("sla", "--state", "late", env=env)

    assert result.returncode == 2
    assert "invalid choice: 'late'" in result.stderr


# Policies the clocks cannot use


# Two intervals on Monday that overlap: the domain accepted them before it
# checked calendars with BusinessCalendar.from_dict, which rejects them.
OVERLAPPING_HOURS = {"timezone": "UTC", "hours": {"mon": [["08:00", "12:00"], ["10:00", "14:00"]]}}


def save_unchecked_policy(app: HubApplication, moment: datetime, calendar: dict[str, Any]) -> UUID:
    """Record a Defined event with terms the domain would reject today, as older stores may hold."""
    policy = SlaPolicy._create(
        SlaPolicy.Defined, id=uuid4(), **as_agent(moment).event_fields(),
        name="Overlapping", targets={"medium": {"first_response": 60}}, calendar=calendar,
        pause_statuses={}, public_notes_count_as_response=False, at_risk_ratio=0.75,
    )
    app.save(policy)
    return policy.id


def test_unusable_calendar_measures_no_ticket(
    app: HubApplication, runner: ProjectionRunner, caplog: pytest.LogCaptureFixture
) -> None:
    policy_id = save_unchecked_policy(app, utc(1, 0, 0), OVERLAPPING_HOURS)
    ticket_id = open_ticket(app, utc(4, 9, 0))
    run(app, ticket_id, "reply", as_agent(utc(4, 9, 30)), body="Looking")

    with caplog.at_level("ERROR", logger="projections.sla"):
        runner.catch_up()

    (revision,) = policy_revisions(runner.db, policy_id)
    assert revision["invalid_reason"] == "hours['mon'][1] overlaps hours['mon'][0]; merge overlapping intervals into one"
    summary = sla_ticket(runner.db, ticket_id)
    assert summary["policy_id"] == str(policy_id)
    assert summary["policy_revision"] == 1
    assert sla_rows(runner.db, ticket_id=ticket_id, now=utc(4, 12, 0))["items"] == []
    assert f"SLA policy {policy_id.hex} revision 1 is unusable" in caplog.text


def test_views_keep_running_after_unusable_calendar(app: HubApplication, runner: ProjectionRunner) -> None:
    save_unchecked_policy(app, utc(1, 0, 0), OVERLAPPING_HOURS)
    runner.catch_up()
    policy_id = define_policy(app, moment=utc(2, 0, 0), targets={"medium": {"first_response": 60}})
    ticket_id = open_ticket(app, utc(4, 9, 0))

    runner.catch_up()

    assert sla_ticket(runner.db, ticket_id)["policy_id"] == str(policy_id)
    rows = rows_by_target(runner.db, ticket_id, now=utc(4, 9, 30))
    assert rows[("first_response", 1)]["due_at"] == "2024-03-04T10:00:00.000000+00:00"
