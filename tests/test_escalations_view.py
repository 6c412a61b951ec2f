"""The escalations view: open episodes by level and owner, promised update times, overdue updates, history."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from uuid import UUID, uuid4

import pytest

from hub.domain import Context, Ticket
from projections.escalations import EscalationQueryError, EscalationView
from projections.queries import escalation_history, escalation_summary, escalations
from projections.runner import ProjectionRunner
from projections.tickets import TicketFactsView

T0 = datetime(2024, 5, 6, 8, 0, tzinfo=timezone.utc)
NOW = T0 + timedelta(hours=10)


def at(hours, actor="agent-1"):
    return Context(actor_kind="agent", actor_id=actor, occurred_at=T0 + timedelta(hours=hours))


def promised(hours):
    return T0 + timedelta(hours=hours)


def new_ticket(hours, priority="high"):
    ticket = Ticket.open(at(hours), ticket_id=uuid4(), subject="Outage", channel="phone")
    ticket.prioritize(at(hours), priority=priority)
    return ticket


@pytest.fixture
def escalated(app):
    """Four tickets: A overdue (level 3, ops), B on time (level 1, ops), C updated without a new promise, D de-escalated."""
    a = new_ticket(0, "critical")
    a.escalate(at(1), level=2, reason="VIP client", owner="desk-lead", promised_by=promised(3))
    a.update_escalation(at(2), note="Vendor called", level=3, owner="ops", promised_by=promised(5))

    b = new_ticket(1)
    b.escalate(at(2), level=1, reason="Repeat failure", owner="ops", promised_by=promised(12))

    c = new_ticket(2)
    c.escalate(at(3), level=2, reason="Contract", owner="desk-lead", promised_by=promised(4))
    c.update_escalation(at(4), note="Waiting on finance")

    d = new_ticket(3, "low")
    d.escalate(at(3), level=1, reason="Complaint", owner="ops", promised_by=promised(4))
    d.resolve_escalation(at(6), note="Apologised")
    d.escalate(at(7), level=2, reason="Complaint again", owner="desk-lead", promised_by=promised(8))

    app.save_batch([a, b, c, d])
    runner = ProjectionRunner(app, [TicketFactsView(), EscalationView()])
    runner.catch_up(page_size=7)
    yield runner.db, {"a": str(a.id), "b": str(b.id), "c": str(c.id), "d": str(d.id)}
    runner.close()


def test_open_escalations_oldest_first(escalated):
    db, ids = escalated

    page = escalations(db, now=NOW)

    keys = [(item["ticket_id"], item["seq"]) for item in page["items"]]
    assert keys == [(ids["a"], 1), (ids["b"], 1), (ids["c"], 1), (ids["d"], 2)]
    assert page["next_cursor"] is None


def test_update_changes_level_owner_and_promise(escalated):
    db, ids = escalated

    item = next(item for item in escalations(db, now=NOW)["items"] if item["ticket_id"] == ids["a"])

    assert (item["level"], item["owner"], item["update_count"]) == (3, "ops", 1)
    assert item["promised_by"] == "2024-05-06T13:00:00.000000+00:00"
    assert item["last_update_at"] == "2024-05-06T10:00:00.000000+00:00"
    assert item["priority"] == "critical"
    assert item["overdue"] is True
    assert item["overdue_hours"] == pytest.approx(5.0)


def test_update_without_promise_is_not_overdue(escalated):
    db, ids = escalated

    item = next(item for item in escalations(db, now=NOW)["items"] if item["ticket_id"] == ids["c"])

    assert item["promised_by"] is None
    assert item["overdue"] is False


def test_overdue_filter(escalated):
    db, ids = escalated

    overdue = escalations(db, overdue=True, now=NOW)["items"]
    on_time = escalations(db, overdue=False, now=NOW)["items"]

    # A was promised for 13:00 and D's second episode for 16:00; it is 18:00.
    assert [item["ticket_id"] for item in overdue] == [ids["a"], ids["d"]]
    assert [item["ticket_id"] for item in on_time] == [ids["b"], ids["c"]]


def test_filters_by_owner_and_level(escalated):
    db, ids = escalated

    ops = escalations(db, owner="ops", now=NOW)["items"]
    level_two = escalations(db, level=2, now=NOW)["items"]

    assert [item["ticket_id"] for item in ops] == [ids["a"], ids["b"]]
    assert [(item["ticket_id"], item["seq"]) for item in level_two] == [(ids["c"], 1), (ids["d"], 2)]


def test_resolved_and_all_states(escalated):
    db, ids = escalated

    resolved = escalations(db, state="resolved", now=NOW)["items"]
    everything = escalations(db, state="all", now=NOW)["items"]

    assert [(item["ticket_id"], item["seq"]) for item in resolved] == [(ids["d"], 1)]
    assert resolved[0]["resolved_at"] == "2024-05-06T14:00:00.000000+00:00"
    assert resolved[0]["overdue"] is False
    assert len(everything) == 5


def test_cursor_pages_through_all(escalated):
    db, _ = escalated

    first = escalations(db, state="all", limit=2, now=NOW)
    second = escalations(db, state="all", limit=2, cursor=first["next_cursor"], now=NOW)
    third = escalations(db, state="all", limit=2, cursor=second["next_cursor"], now=NOW)

    keys = [(item["ticket_id"], item["seq"]) for page in (first, second, third) for item in page["items"]]
    everything = [(item["ticket_id"], item["seq"]) for item in escalations(db, state="all", now=NOW)["items"]]
    assert keys == everything
    assert third["next_cursor"] is None


def test_invalid_arguments_raise(escalated):
    db, _ = escalated

    with pytest.raises(EscalationQueryError, match="state 'closed' is invalid"):
        escalations(db, state="closed")
    with pytest.raises(EscalationQueryError, match="cursor 'garbage' is invalid"):
        escalations(db, cursor="garbage")
    with pytest.raises(EscalationQueryError, match="limit 0 is invalid"):
        escalations(db, limit=0)


def test_summary_by_level_and_owner(escalated):
    db, _ = escalated

    summary = escalation_summary(db, now=NOW)

    assert summary == [
        {"level": 3, "owner": "ops", "open": 1, "overdue": 1, "next_promised_by": "2024-05-06T13:00:00.000000+00:00"},
        {"level": 2, "owner": "desk-lead", "open": 2, "overdue": 1, "next_promised_by": "2024-05-06T16:00:00.000000+00:00"},
        {"level": 1, "owner": "ops", "open": 1, "overdue": 0, "next_promised_by": "2024-05-06T20:00:00.000000+00:00"},
    ]


def test_history_of_ticket(escalated):
    db, ids = escalated

    history = escalation_history(db, ids["d"])

    assert [(entry["seq"], entry["kind"], entry["level"], entry["owner"]) for entry in history] == [
        (1, "escalated", 1, "ops"),
        (1, "resolved", 1, "ops"),
        (2, "escalated", 2, "desk-lead"),
    ]
    assert history[0]["note"] == "Complaint"
    assert history[1]["note"] == "Apologised"
    assert history[0]["actor_id"] == "agent-1"
    assert escalation_history(db, str(uuid4())) == []


def test_escalations_command_summary(tmp_path, monkeypatch, capsys):
    from hub.application import create_application
    from hub.cli import main
    from hub.settings import load_settings

    url = f"sqlite:///{tmp_path}/hub.sqlite3"
    app = create_application(load_settings({"HUB_DATABASE_URL": url}))
    ticket = new_ticket(0)
    ticket.escalate(at(1), level=3, reason="Outage", owner="ops", promised_by=promised(2))
    app.save_batch([ticket])
    app.close()
    monkeypatch.setenv("HUB_DATABASE_URL", url)

    code = main(["escalations", "--summary", "--format", "json"])

    assert code == 0
    assert json.loads(capsys.readouterr().out) == [
        {"level": 3, "owner": "ops", "open": 1, "overdue": 1, "next_promised_by": "2024-05-06T10:00:00.000000+00:00"},
    ]


def test_history_accepts_hex_and_uuid(escalated):
    db, ids = escalated
    ticket_id = UUID(ids["b"])

    assert escalation_history(db, ticket_id.hex) == escalation_history(db, ids["b"])
    assert len(escalation_history(db, ticket_id)) == 1
    with pytest.raises(EscalationQueryError, match="ticket id 'T-1' is invalid"):
        escalation_history(db, "T-1")
