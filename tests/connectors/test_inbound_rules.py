"""Applying tool values to tickets: opening once, the field rules and the conflict policy."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from connector_helpers import hub_app, settings  # noqa: F401 (fixtures)

from connectors.changes import FieldChange, Origin, TicketEvent, TicketOpening, TicketUpdate
from connectors.inbound import InboundSettings, PageWriter, status_steps
from hub.domain import Context, Ticket, external_uuid

SOURCE = "zendesk"
TICKET_ID = external_uuid("ticket", SOURCE, "501")


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2024, 1, 15, hour, minute, tzinfo=timezone.utc)


def origin(key: str, when: datetime, actor_kind: str = "agent") -> Origin:
    return Origin(when, actor_kind, "9001", key)


def opening() -> TicketOpening:
    return TicketOpening("Printer offline", "email", {"id": "77", "source": SOURCE}, None, "It is offline.",
                         origin("zendesk:ticket:501:created", at(9), "requester"))


def write(app, changes, *, outbound: int, policy: dict | None = None) -> PageWriter:
    writer = PageWriter(app, InboundSettings("conn-1", SOURCE, outbound, policy or {}))
    writer.apply_ticket(TicketUpdate("501", opening(), list(changes)))
    aggregates = writer.changed_aggregates()
    if aggregates:
        app.save_batch(aggregates)
    return writer


def status_change(key: str, value: str, when: datetime) -> FieldChange:
    return FieldChange("status", value, origin(key, when))


def hub_command(app, command: str, when: datetime, **arguments) -> None:
    ctx = Context(actor_kind="agent", actor_id="hub-agent", source_name="api", occurred_at=when)
    app.execute(Ticket, TICKET_ID, command, ctx, **arguments)


def event_types(app) -> list[str]:
    return [entry["type"] for entry in app.history(Ticket, TICKET_ID)]


def test_ticket_opened_once_with_external_reference(hub_app):
    write(hub_app, [], outbound=0)
    write(hub_app, [], outbound=0)

    ticket = hub_app.get(Ticket, TICKET_ID)
    assert event_types(hub_app) == ["ticket.opened"]
    assert ticket.external == {"source": SOURCE, "id": "501", "connection_id": "conn-1"}


def test_tool_value_applied_when_hub_unchanged(hub_app):
    write(hub_app, [], outbound=0)

    write(hub_app, [status_change("a:1", "open", at(10))], outbound=hub_app.max_position())

    history = hub_app.history(Ticket, TICKET_ID)
    assert history[-1]["type"] == "ticket.status_changed"
    assert history[-1]["data"] == {"status": "open", "previous": "new"}
    assert history[-1]["source"] == {
        "name": SOURCE, "external_id": "501", "external_event_id": "a:1", "recorded_by": "connection:conn-1",
    }


def test_conflict_tool_wins_by_default(hub_app):
    write(hub_app, [], outbound=0)
    pushed_up_to = hub_app.max_position()
    hub_command(hub_app, "change_status", at(10, 5), status="pending")

    writer = write(hub_app, [status_change("a:2", "resolved", at(10, 10))], outbound=pushed_up_to)

    history = hub_app.history(Ticket, TICKET_ID)
    conflict = history[-2]
    assert conflict["type"] == "ticket.sync_conflict_recorded"
    assert conflict["data"] == {"field": "status", "hub_value": "pending", "tool_value": "resolved", "winner": "tool"}
    assert conflict["actor"] == {"kind": "integration", "id": "connection:conn-1"}
    assert history[-1]["type"] == "ticket.resolved"
    assert writer.counts["conflicts"] == 1


def test_conflict_hub_policy_keeps_hub_value(hub_app):
    write(hub_app, [], outbound=0)
    pushed_up_to = hub_app.max_position()
    hub_command(hub_app, "change_status", at(10, 5), status="pending")

    write(hub_app, [status_change("a:2", "resolved", at(10, 10))], outbound=pushed_up_to, policy={"status": "hub"})

    history = hub_app.history(Ticket, TICKET_ID)
    assert history[-1]["data"] == {"field": "status", "hub_value": "pending", "tool_value": "resolved", "winner": "hub"}
    assert hub_app.get(Ticket, TICKET_ID).status == "pending"


def test_conflict_recorded_once_when_read_again(hub_app):
    write(hub_app, [], outbound=0)
    pushed_up_to = hub_app.max_position()
    hub_command(hub_app, "change_status", at(10, 5), status="pending")
    change = status_change("a:2", "resolved", at(10, 10))
    write(hub_app, [change], outbound=pushed_up_to, policy={"status": "hub"})
    count = len(event_types(hub_app))

    write(hub_app, [change], outbound=pushed_up_to, policy={"status": "hub"})

    assert len(event_types(hub_app)) == count


def test_echo_of_pushed_change_records_nothing(hub_app):
    write(hub_app, [], outbound=0)
    hub_command(hub_app, "change_status", at(10, 5), status="pending")
    pushed_up_to = hub_app.max_position()
    count = len(event_types(hub_app))

    writer = write(hub_app, [status_change("a:3", "pending", at(10, 6))], outbound=pushed_up_to)

    assert len(event_types(hub_app)) == count
    assert writer.counts["unchanged"] == 1


def test_older_tool_change_superseded_by_pushed_hub_change(hub_app):
    write(hub_app, [], outbound=0)
    hub_command(hub_app, "change_status", at(10, 5), status="pending")
    pushed_up_to = hub_app.max_position()

    writer = write(hub_app, [status_change("a:4", "open", at(10))], outbound=pushed_up_to)

    assert hub_app.get(Ticket, TICKET_ID).status == "pending"
    assert writer.counts["superseded"] == 1


def test_last_synced_value_not_a_change(hub_app):
    write(hub_app, [], outbound=0)
    pushed_up_to = hub_app.max_position()
    hub_command(hub_app, "change_status", at(10, 5), status="pending")
    observed = FieldChange("status", "new", origin("zendesk:ticket:501:t2:status", at(10, 20), "system"))

    writer = write(hub_app, [observed], outbound=pushed_up_to)

    assert hub_app.get(Ticket, TICKET_ID).status == "pending"
    assert writer.counts["conflicts"] == 0


def test_same_records_twice_add_nothing(hub_app):
    changes = [
        status_change("a:1", "open", at(10)),
        FieldChange("priority", "high", origin("a:5", at(10, 1))),
        TicketEvent("reply", {"body": "We are on it."}, origin("a:6", at(10, 2))),
    ]
    write(hub_app, changes, outbound=0)
    count = len(event_types(hub_app))

    writer = write(hub_app, changes, outbound=hub_app.max_position())

    assert len(event_types(hub_app)) == count
    assert writer.counts["duplicates"] == 3


def test_partial_assignment_keeps_other_key(hub_app):
    write(hub_app, [FieldChange("assignment", {"group": "360001"}, origin("a:7", at(10)))], outbound=0)

    write(hub_app, [FieldChange("assignment", {"agent": "42"}, origin("a:8", at(11)))], outbound=hub_app.max_position())

    ticket = hub_app.get(Ticket, TICKET_ID)
    assert (ticket.group, ticket.agent) == ("360001", "42")
    assert event_types(hub_app)[-2:] == ["ticket.assigned", "ticket.reassigned"]


def test_cleared_priority_is_counted_unsupported(hub_app):
    write(hub_app, [FieldChange("priority", "high", origin("a:9", at(10)))], outbound=0)

    writer = write(hub_app, [FieldChange("priority", None, origin("a:10", at(11)))], outbound=hub_app.max_position())

    assert hub_app.get(Ticket, TICKET_ID).priority == "high"
    assert writer.counts["unsupported"] == 1


def test_rejected_command_is_counted_and_skipped(hub_app):
    write(hub_app, [status_change("a:11", "closed", at(10))], outbound=0)

    writer = write(hub_app, [TicketEvent("reply", {"body": "Late reply"}, origin("a:12", at(11)))], outbound=hub_app.max_position())

    assert writer.counts["rejected"] == 1
    assert event_types(hub_app)[-1] == "ticket.closed"


@pytest.mark.parametrize(
    ("current", "target", "steps"),
    [
        ("new", "new", []),
        ("new", "open", [("change_status", {"status": "open"})]),
        ("open", "resolved", [("resolve", {})]),
        ("closed", "resolved", [("reopen", {}), ("resolve", {})]),
        ("resolved", "open", [("reopen", {})]),
        ("resolved", "pending", [("reopen", {}), ("change_status", {"status": "pending"})]),
        ("pending", "closed", [("close", {})]),
    ],
)
def test_status_steps(current, target, steps):
    assert status_steps(current, target) == steps
