"""Freshdesk syncs against `responses` fakes with Freshdesk v2 payload shapes."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from connector_helpers import (  # noqa: F401 (hub_app and settings are fixtures)
    FRESHDESK_URL,
    FakeClock,
    add_connection,
    freshdesk_ticket,
    hub_app,
    load_fixture,
    settings,
)
from responses import matchers

from connectors.connection import get_connection
from connectors.sync import SyncEngine, SyncError
from hub.domain import Ticket, external_uuid

TICKETS_URL = FRESHDESK_URL + "/api/v2/tickets"


def list_query(updated_since: str, per_page: int, page: int = 1) -> dict[str, str]:
    return {
        "updated_since": updated_since, "order_by": "updated_at", "order_type": "asc",
        "per_page": str(per_page), "page": str(page),
    }


def add_list(records: list[dict], updated_since: str, per_page: int, page: int = 1) -> None:
    responses.get(TICKETS_URL, json=records, match=[matchers.query_param_matcher(list_query(updated_since, per_page, page))])


def list_calls() -> list:
    return [call for call in responses.calls if urlsplit(call.request.url).path == "/api/v2/tickets"]


def ticket_id(freshdesk_id: int):
    return external_uuid("ticket", "freshdesk", str(freshdesk_id))


def engine(app, settings) -> SyncEngine:
    return SyncEngine(app, settings, clock=FakeClock())


@responses.activate
def test_first_sync_sends_updated_since(hub_app, settings):
    connection = add_connection(hub_app, settings, "freshdesk", options={"include": []})
    add_list([freshdesk_ticket(1, "2016-05-18T23:42:50Z")], "1970-01-01T00:00:00Z", 100)

    engine(hub_app, settings).sync(connection.id)

    assert parse_qs(urlsplit(list_calls()[0].request.url).query)["updated_since"] == ["1970-01-01T00:00:00Z"]
    assert get_connection(hub_app, connection.id).cursor == {"tickets": "2016-05-18T23:42:50+00:00"}


@responses.activate
def test_configured_start_is_sent_on_first_sync(hub_app, settings):
    options = {"include": [], "updated_since": "2016-05-01T00:00:00Z"}
    connection = add_connection(hub_app, settings, "freshdesk", options=options)
    add_list([], "2016-05-01T00:00:00Z", 100)

    engine(hub_app, settings).sync(connection.id)

    assert len(list_calls()) == 1


@responses.activate
def test_same_second_tickets_across_page_cap_both_imported(hub_app, settings):
    options = {"include": [], "page_size": 3, "max_pages": 1}
    connection = add_connection(hub_app, settings, "freshdesk", options=options)
    # Tickets 12 and 13 share 10:00:05; the cap falls between them.
    add_list([freshdesk_ticket(10, "2016-05-18T10:00:00Z"), freshdesk_ticket(11, "2016-05-18T10:00:03Z"),
              freshdesk_ticket(12, "2016-05-18T10:00:05Z")], "1970-01-01T00:00:00Z", 3)
    add_list([freshdesk_ticket(12, "2016-05-18T10:00:05Z"), freshdesk_ticket(13, "2016-05-18T10:00:05Z"),
              freshdesk_ticket(14, "2016-05-18T10:00:09Z")], "2016-05-18T10:00:05Z", 3)
    add_list([freshdesk_ticket(14, "2016-05-18T10:00:09Z")], "2016-05-18T10:00:09Z", 3)

    result = engine(hub_app, settings).sync(connection.id)

    for number in (10, 11, 12, 13, 14):
        assert hub_app.get(Ticket, ticket_id(number)).subject == "This is a sample ticket"
    assert result.counts["tickets_created"] == 5
    assert result.counts["records"] == 5


@responses.activate
def test_conversations_and_codes_become_events(hub_app, settings):
    connection = add_connection(hub_app, settings, "freshdesk", options={"include": ["conversations"]})
    add_list([load_fixture("freshdesk", "ticket_1.json")], "1970-01-01T00:00:00Z", 100)
    responses.get(TICKETS_URL + "/1/conversations", json=load_fixture("freshdesk", "conversations.json"))

    engine(hub_app, settings).sync(connection.id)

    history = hub_app.history(Ticket, ticket_id(1))
    assert [entry["type"] for entry in history] == [
        "ticket.opened", "ticket.status_changed", "ticket.prioritized", "ticket.assigned", "ticket.classified",
        "ticket.internal_note_added", "ticket.agent_replied",
    ]
    ticket = hub_app.get(Ticket, ticket_id(1))
    assert (ticket.status, ticket.priority, ticket.agent, ticket.category) == ("open", "low", "6010396333", "Question")
    assert ticket.channel == "web"


@responses.activate
def test_next_sync_restarts_at_checkpoint_without_duplicates(hub_app, settings):
    connection = add_connection(hub_app, settings, "freshdesk", options={"include": []})
    add_list([freshdesk_ticket(20, "2016-05-18T10:00:00Z")], "1970-01-01T00:00:00Z", 100)
    sync_engine = engine(hub_app, settings)
    sync_engine.sync(connection.id)
    events_before = len(hub_app.history(Ticket, ticket_id(20)))
    add_list([freshdesk_ticket(20, "2016-05-18T10:00:00Z")], "2016-05-18T10:00:00Z", 100)

    result = sync_engine.sync(connection.id)

    assert len(hub_app.history(Ticket, ticket_id(20))) == events_before
    assert result.counts["events"] == 0


@responses.activate
def test_unmapped_custom_status_fails_sync_and_keeps_cursor(hub_app, settings):
    connection = add_connection(hub_app, settings, "freshdesk", options={"include": []})
    add_list([freshdesk_ticket(30, "2016-05-18T10:00:00Z", status=7)], "1970-01-01T00:00:00Z", 100)

    with pytest.raises(SyncError, match=r"map it with custom_statuses, for example \{7: 'on_hold'\}"):
        engine(hub_app, settings).sync(connection.id)

    assert get_connection(hub_app, connection.id).cursor == {}


@responses.activate
def test_mapped_custom_status_is_applied(hub_app, settings):
    options = {"include": [], "custom_statuses": {"7": "on_hold"}}
    connection = add_connection(hub_app, settings, "freshdesk", options=options)
    add_list([freshdesk_ticket(31, "2016-05-18T10:00:00Z", status=7)], "1970-01-01T00:00:00Z", 100)

    engine(hub_app, settings).sync(connection.id)

    assert hub_app.get(Ticket, ticket_id(31)).status == "on_hold"
