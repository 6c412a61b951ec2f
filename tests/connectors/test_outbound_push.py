"""Pushing hub changes back to the tool, without echoes, and the conflict policy end to end."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import responses
from connector_helpers import (  # noqa: F401 (hub_app and settings are fixtures)
    FRESHDESK_URL,
    ZENDESK_URL,
    FakeClock,
    add_connection,
    export_page,
    freshdesk_ticket,
    hub_app,
    load_fixture,
    settings,
    zendesk_ticket,
)
from responses import matchers

from connectors.connection import Connection, get_connection
from connectors.sync import SyncEngine
from hub.domain import Context, Ticket, external_uuid

EXPORT_URL = ZENDESK_URL + "/api/v2/incremental/tickets/cursor.json"
TICKET_URL = ZENDESK_URL + "/api/v2/tickets/300.json"
AUDITS_URL = ZENDESK_URL + "/api/v2/tickets/300/audits.json"
TICKET_ID = external_uuid("ticket", "zendesk", "300")
AGENT = Context(actor_kind="agent", actor_id="hub-agent-1", source_name="api")


def put_response(comment_id: int | None = None) -> dict:
    """Zendesk's recorded PUT response (ticket and audit), for ticket 300."""
    body = copy.deepcopy(load_fixture("zendesk", "ticket_update_single.json")["interactions"][1]["response_body"])
    body["ticket"]["id"] = 300
    if comment_id is not None:
        body["audit"]["events"] = [{"id": comment_id, "type": "Comment", "author_id": 6130907993114,
                                    "body": "pushed", "public": True, "attachments": []}]
    return body


def reply_audit(comment_id: int, body: str) -> dict:
    """The audit of a pushed comment as the audits endpoint lists it (the id of put_response's audit)."""
    return {"id": 6164068756634, "ticket_id": 300, "created_at": "2024-01-01T12:00:00Z", "author_id": 6130907993114,
            "events": [{"id": comment_id, "type": "Comment", "author_id": 6130907993114, "body": body,
                        "public": True, "attachments": []}], "via": {"channel": "api"}}


class ZendeskDesk:
    """A connection with ticket 300 imported, and a helper to run later syncs."""

    def __init__(self, app, settings, options: dict | None = None) -> None:
        self.app = app
        self.connection = add_connection(app, settings, options=options or {"include": []})
        self.engine = SyncEngine(app, settings, clock=FakeClock())
        self.cursor = 0
        self.sync([zendesk_ticket(300, "2024-01-01T10:00:00Z", status="open")])

    def sync(self, tickets: list[dict] | None = None):
        query = {"start_time": "0"} if self.cursor == 0 else {"cursor": f"c{self.cursor}"}
        self.cursor += 1
        responses.get(EXPORT_URL, json=export_page(tickets or [], f"c{self.cursor}", True),
                      match=[matchers.query_param_matcher(query)])
        return self.engine.sync(self.connection.id)


def puts() -> list:
    return [call for call in responses.calls if call.request.method == "PUT"]


def types(app) -> list[str]:
    return [entry["type"] for entry in app.history(Ticket, TICKET_ID)]


@responses.activate
def test_hub_reply_is_pushed_as_public_comment(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "reply", AGENT, body="We have reset your password.")
    responses.put(TICKET_URL, json=put_response(comment_id=7770001))

    result = desk.sync()

    (call,) = puts()
    assert json.loads(call.request.body) == {"ticket": {"comment": {"body": "We have reset your password.", "public": True}}}
    assert result.counts["pushed"] == 1
    ticket = hub_app.get(Ticket, TICKET_ID)
    assert ticket.facts["zendesk_reply"]["tool_record"] == "zendesk:audit:6164068756634:7770001"
    assert ticket.has_recorded("zendesk:audit:6164068756634:7770001")


@responses.activate
def test_pushed_reply_echo_ignored(hub_app, settings):
    responses.get(AUDITS_URL, json={"audits": [], "meta": {"has_more": False}})
    desk = ZendeskDesk(hub_app, settings, options={"include": ["audits"]})
    hub_app.execute(Ticket, TICKET_ID, "reply", AGENT, body="We have reset your password.")
    responses.put(TICKET_URL, json=put_response(comment_id=7770001))
    desk.sync()
    responses.replace(responses.GET, AUDITS_URL, json={
        "audits": [reply_audit(7770001, "We have reset your password.")], "meta": {"has_more": False},
    })
    events_before = types(hub_app)

    result = desk.sync([zendesk_ticket(300, "2024-01-01T12:00:00Z", status="open")])

    assert types(hub_app) == events_before
    assert events_before.count("ticket.agent_replied") == 1
    assert result.counts["duplicates"] == 1
    assert len(puts()) == 1


@responses.activate
def test_reply_is_not_sent_twice(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "reply", AGENT, body="Done.")
    responses.put(TICKET_URL, json=put_response(comment_id=7770002))
    desk.sync()

    desk.sync()

    assert len(puts()) == 1


@responses.activate
def test_hub_status_change_is_pushed_and_echo_ignored(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "change_status", AGENT, status="on_hold")
    responses.put(TICKET_URL, json=put_response())
    desk.sync()
    events_before = types(hub_app)

    result = desk.sync([zendesk_ticket(300, "2030-01-01T10:00:00Z", status="hold")])

    (call,) = puts()
    assert json.loads(call.request.body) == {"ticket": {"status": "hold"}}
    assert types(hub_app) == events_before
    assert result.counts["unchanged"] == 4


@responses.activate
def test_only_last_change_of_a_field_is_pushed(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "prioritize", AGENT, priority="low")
    hub_app.execute(Ticket, TICKET_ID, "prioritize", AGENT, priority="critical")
    responses.put(TICKET_URL, json=put_response())

    desk.sync()

    assert [json.loads(call.request.body) for call in puts()] == [{"ticket": {"priority": "urgent"}}]


@responses.activate
def test_tool_changes_are_never_pushed_back(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)

    result = desk.sync([zendesk_ticket(300, "2024-01-01T11:00:00Z", status="pending", priority="high")])

    assert hub_app.get(Ticket, TICKET_ID).status == "pending"
    assert puts() == []
    assert result.status == "completed"


@responses.activate
def test_hub_ticket_from_elsewhere_is_not_pushed(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    outcome = hub_app.open_ticket(AGENT, subject="Phone call", channel="phone")
    hub_app.execute(Ticket, outcome.aggregate.id, "reply", AGENT, body="Called back.")

    desk.sync()

    assert puts() == []


@responses.activate
def test_unmapped_agent_is_recorded_as_rejected_push(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "assign", AGENT, group=None, agent="alice")

    result = desk.sync()
    desk.sync()

    assert puts() == []
    assert result.counts["push_rejected"] == 1
    rejected = [e for e in hub_app.events.get(desk.connection.id) if isinstance(e, Connection.PushRejected)]
    assert len(rejected) == 1
    assert rejected[0].error == "agent 'alice' has no id in zendesk; add it to options.agent_ids"


@responses.activate
def test_mapped_agent_id_is_pushed(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings, options={"include": [], "agent_ids": {"alice": "7001"}})
    hub_app.execute(Ticket, TICKET_ID, "assign", AGENT, group="360001", agent="alice")
    responses.put(TICKET_URL, json=put_response())

    desk.sync()

    assert json.loads(puts()[0].request.body) == {"ticket": {"group_id": 360001, "assignee_id": 7001}}


@responses.activate
def test_tool_rejection_is_recorded_and_not_retried(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "change_status", AGENT, status="pending")
    responses.put(TICKET_URL, json={"error": "RecordInvalid"}, status=422)

    result = desk.sync()
    desk.sync()

    assert len(puts()) == 1
    assert result.counts["push_rejected"] == 1
    assert get_connection(hub_app, desk.connection.id).last_sync["status"] == "completed"


@responses.activate
def test_conflict_tool_wins_no_push(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "change_status", AGENT, status="pending")

    result = desk.sync([zendesk_ticket(300, "2030-01-01T10:00:00Z", status="solved")])

    assert hub_app.get(Ticket, TICKET_ID).status == "resolved"
    conflict = [entry for entry in hub_app.history(Ticket, TICKET_ID) if entry["type"] == "ticket.sync_conflict_recorded"]
    assert conflict[0]["data"] == {"field": "status", "hub_value": "pending", "tool_value": "resolved", "winner": "tool"}
    assert result.counts["conflicts"] == 1
    assert puts() == []


@responses.activate
def test_conflict_hub_wins_and_hub_value_is_pushed(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings, options={"include": [], "conflict_policy": {"status": "hub"}})
    hub_app.execute(Ticket, TICKET_ID, "change_status", AGENT, status="pending")
    responses.put(TICKET_URL, json=put_response())

    desk.sync([zendesk_ticket(300, "2030-01-01T10:00:00Z", status="solved")])

    assert hub_app.get(Ticket, TICKET_ID).status == "pending"
    assert json.loads(puts()[0].request.body) == {"ticket": {"status": "pending"}}


# Freshdesk.

FRESHDESK_TICKET = FRESHDESK_URL + "/api/v2/tickets"
FRESHDESK_TICKET_ID = external_uuid("ticket", "freshdesk", "1")


def freshdesk_sync(engine: SyncEngine, connection, since: str, records: list[dict]):
    query = {"updated_since": since, "order_by": "updated_at", "order_type": "asc", "per_page": "100", "page": "1"}
    responses.get(FRESHDESK_TICKET, json=records, match=[matchers.query_param_matcher(query)])
    return engine.sync(connection.id)


@responses.activate
def test_freshdesk_reply_and_status_are_pushed_once(hub_app, settings):
    connection = add_connection(hub_app, settings, "freshdesk", options={"include": ["conversations"]})
    engine = SyncEngine(hub_app, settings, clock=FakeClock())
    responses.get(FRESHDESK_TICKET + "/1/conversations", json=[])
    freshdesk_sync(engine, connection, "1970-01-01T00:00:00Z", [freshdesk_ticket(1, "2016-05-18T23:42:50Z")])
    hub_app.execute(Ticket, FRESHDESK_TICKET_ID, "reply", AGENT, body="This is a reply")
    hub_app.execute(Ticket, FRESHDESK_TICKET_ID, "change_status", AGENT, status="pending")
    responses.post(FRESHDESK_TICKET + "/1/reply", json=load_fixture("freshdesk", "reply_1.json"))
    responses.put(FRESHDESK_TICKET + "/1", json=load_fixture("freshdesk", "ticket_1_updated.json"))
    freshdesk_sync(engine, connection, "2016-05-18T23:42:50Z", [])
    responses.replace(responses.GET, FRESHDESK_TICKET + "/1/conversations", json=[load_fixture("freshdesk", "reply_1.json")])
    later = freshdesk_ticket(1, "2016-05-19T05:40:00Z", status=3)

    result = freshdesk_sync(engine, connection, "2016-05-18T23:42:50Z", [later])

    sent = [(call.request.method, json.loads(call.request.body)) for call in responses.calls if call.request.method != "GET"]
    assert sent == [("POST", {"body": "This is a reply"}), ("PUT", {"status": 3})]
    history = [entry["type"] for entry in hub_app.history(Ticket, FRESHDESK_TICKET_ID)]
    assert history.count("ticket.agent_replied") == 1
    assert history.count("ticket.status_changed") == 2
    assert result.counts["events"] == 0


def test_push_position_advances_to_stream_head(hub_app, settings):
    with responses.RequestsMock() as mock:
        mock.get(EXPORT_URL, json=export_page([zendesk_ticket(300, "2024-01-01T10:00:00Z")], "c1", True))
        connection = add_connection(hub_app, settings)
        SyncEngine(hub_app, settings, clock=FakeClock()).sync(connection.id)

    stored = get_connection(hub_app, connection.id)
    completed = list(hub_app.events.get(connection.id))[-1]
    # The head was read before SyncCompleted was recorded, one position below it.
    assert stored.outbound_position == hub_app.max_position() - 1
    assert completed.outbound_position == stored.outbound_position
    assert datetime.now(timezone.utc) >= completed.occurred_at


@responses.activate
def test_reply_that_may_have_posted_is_not_resent(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "reply", AGENT, body="Done.")
    responses.put(TICKET_URL, json={"error": "Bad gateway"}, status=502)

    result = desk.sync()
    desk.sync()

    assert len(puts()) == 1
    assert result.counts["push_rejected"] == 1
    rejected = [e for e in hub_app.events.get(desk.connection.id) if isinstance(e, Connection.PushRejected)]
    assert "Check the record in the vendor's tool before sending it again" in rejected[0].error


@responses.activate
def test_rate_limited_reply_is_retried(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "reply", AGENT, body="Done.")
    responses.put(TICKET_URL, body="Too Many Requests", status=429, content_type="text/plain", headers={"Retry-After": "7"})
    responses.put(TICKET_URL, json=put_response(comment_id=7770003))

    result = desk.sync()

    assert len(puts()) == 2
    assert desk.engine.clock.sleeps == [7.0]
    assert result.counts["pushed"] == 1


@responses.activate
def test_empty_agent_is_left_out_of_push(hub_app, settings):
    desk = ZendeskDesk(hub_app, settings)
    hub_app.execute(Ticket, TICKET_ID, "assign", AGENT, group="360001", agent=None)
    responses.put(TICKET_URL, json=put_response())

    desk.sync()

    assert json.loads(puts()[0].request.body) == {"ticket": {"group_id": 360001}}
