"""Pure mapping of Freshdesk v2 records to hub changes and of hub values to Freshdesk codes."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest
from connector_helpers import freshdesk_ticket, load_fixture

from connectors.changes import FieldChange, TicketEvent
from connectors.mapping_freshdesk import conversation_event, custom_status_codes, status_code, ticket_update


def fields_of(update) -> dict:
    return {change.field: change.value for change in update.changes if isinstance(change, FieldChange)}


def test_opening_from_sample_ticket():
    update = ticket_update(load_fixture("freshdesk", "ticket_1.json"))

    assert update.external_id == "1"
    assert update.opening.subject == "This is a sample ticket"
    assert update.opening.channel == "web"
    assert update.opening.description == "This is a sample ticket, feel free to delete it."
    assert update.opening.requester == {"id": "6012691534", "source": "freshdesk"}
    assert update.opening.origin.occurred_at == datetime(2016, 5, 18, 4, 36, 4, tzinfo=timezone.utc)


def test_numeric_codes_become_hub_terms():
    update = ticket_update(load_fixture("freshdesk", "ticket_1.json"))

    # status 2 Open, priority 1 Low, no group, responder 6010396333, type Question
    assert fields_of(update) == {
        "status": "open",
        "priority": "low",
        "assignment": {"group": None, "agent": "6010396333"},
        "category": "Question",
    }


def test_observed_values_are_keyed_by_update_time():
    update = ticket_update(freshdesk_ticket(7, "2016-05-18T23:42:50Z"))

    keys = [change.origin.key for change in update.changes]
    assert keys == [f"freshdesk:ticket:7:2016-05-18T23:42:50Z:{name}" for name in ("status", "priority", "assignment", "category")]


def test_offset_times_are_read_as_utc():
    (record,) = load_fixture("freshdesk", "all_tickets.json")

    update = ticket_update(record)

    assert update.changes[0].origin.occurred_at == datetime(2015, 1, 1, 0, 58, 39, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("index", "command", "actor_kind"),
    [(0, "add_note", "agent"), (1, "reply", "agent")],
)
def test_conversations_of_sample_ticket(index, command, actor_kind):
    conversation = load_fixture("freshdesk", "conversations.json")[index]

    event = conversation_event(conversation, requester_id=6012691534)

    assert event.command == command
    assert event.origin.actor_kind == actor_kind
    assert event.origin.key == f"freshdesk:conversation:{conversation['id']}"


def test_incoming_conversation_is_requester_reply():
    conversation = {**load_fixture("freshdesk", "reply_1.json"), "incoming": True, "user_id": 6012691534}

    event = conversation_event(conversation, requester_id=6012691534)

    assert event.command == "receive_requester_reply"
    assert event.arguments == {"body": "This is a reply"}


def test_conversations_follow_observed_values_oldest_first():
    conversations = list(reversed(load_fixture("freshdesk", "conversations.json")))

    update = ticket_update(load_fixture("freshdesk", "ticket_1.json"), conversations)

    events = [change for change in update.changes if isinstance(change, TicketEvent)]
    assert [event.origin.key for event in events] == ["freshdesk:conversation:1", "freshdesk:conversation:2"]


def test_custom_status_without_mapping_raises():
    with pytest.raises(ValueError, match="Freshdesk status 6 is a custom status"):
        ticket_update(freshdesk_ticket(8, "2016-05-18T23:42:50Z", status=6))


def test_custom_status_with_mapping():
    update = ticket_update(
        freshdesk_ticket(8, "2016-05-18T23:42:50Z", status=6), custom_statuses=custom_status_codes({"6": "on_hold"})
    )

    assert fields_of(update)["status"] == "on_hold"


@pytest.mark.parametrize(
    ("status", "custom", "code"),
    [("new", None, 2), ("open", None, 2), ("pending", None, 3), ("resolved", None, 4), ("closed", None, 5),
     ("on_hold", {6: "on_hold"}, 6), ("on_hold", None, None)],
)
def test_status_codes_for_push(status, custom, code):
    assert status_code(status, custom) == code
