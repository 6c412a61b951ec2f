"""ServiceNow syncs: keyset paging, the shared incident mapping, and pushes."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timezone

import pytest
import responses
from connector_helpers import SERVICENOW_URL, FakeClock, add_connection, hub_app, load_fixture, settings  # noqa: F401
from responses import matchers

from connectors.adapters import parse_table_record
from connectors.connection import get_connection
from connectors.servicenow import incident_keyset_query
from connectors.sync import SyncEngine
from hub.domain import Context, Ticket, external_uuid

INCIDENT_URL = SERVICENOW_URL + "/api/now/table/incident"
SYS_ID_A = "1c741bd70b2322007518478d83673af3"
SYS_ID_B = "2c741bd70b2322007518478d83673af3"


def incident(number: str, sys_id: str, updated_on: str, state: str, mod_count: int) -> dict:
    """The recorded demo incident INC0000060 with another number, key, state and version."""
    record = copy.deepcopy(load_fixture("servicenow", "table_api_incident_INC0000060.json")["result"][0])
    record.update(number=number, sys_id=sys_id, sys_updated_on=updated_on, state=state, incident_state=state,
                  sys_mod_count=str(mod_count))
    if state not in ("6", "7"):
        record.update(resolved_at="", closed_at="", close_code="")
    return record


def add_page(records: list[dict], after: tuple[str, str] | None, limit: int) -> None:
    query = {"sysparm_query": incident_keyset_query(after), "sysparm_limit": str(limit), "sysparm_display_value": "false"}
    responses.get(INCIDENT_URL, json={"result": records}, match=[matchers.query_param_matcher(query)])


def ticket_id(number: str):
    return external_uuid("ticket", "servicenow", number)


def test_table_record_is_parsed_for_the_shared_mapping():
    raw = load_fixture("servicenow", "table_api_incident_INC0000060.json")["result"][0]

    record = parse_table_record(raw)

    assert record["incident_state"] == "Closed"
    assert record["sys_updated_on"] == datetime(2016, 12, 14, 2, 46, 44, tzinfo=timezone.utc)
    assert record["assigned_to"] == "5137153cc611227c000bbd1bd8cd2007"
    assert record["reopen_count"] == 0
    assert record["made_sla"] is True
    assert record["knowledge"] is False
    assert record["due_date"] is None


@responses.activate
def test_recorded_incident_becomes_closed_ticket(hub_app, settings):
    connection = add_connection(hub_app, settings, "servicenow", options={"include": []})
    add_page([load_fixture("servicenow", "table_api_incident_INC0000060.json")["result"][0]], None, 100)

    SyncEngine(hub_app, settings, clock=FakeClock()).sync(connection.id)

    ticket = hub_app.get(Ticket, ticket_id("INC0000060"))
    assert (ticket.status, ticket.priority, ticket.category, ticket.subcategory) == ("closed", "medium", "inquiry", "email")
    assert ticket.agent == "5137153cc611227c000bbd1bd8cd2007"
    assert ticket.facts["made_sla"] is True
    assert ticket.channel == "web"
    assert ticket.external["sys_id"] == SYS_ID_A
    assert hub_app.history(Ticket, ticket.id)[-1]["source"]["external_event_id"] == "INC0000060:15:0:record_fact.made_sla"


@responses.activate
def test_second_page_asks_after_last_key(hub_app, settings):
    connection = add_connection(hub_app, settings, "servicenow", options={"include": [], "page_size": 2})
    first = [incident("INC0000061", SYS_ID_A, "2024-01-01 10:00:00", "2", 1),
             incident("INC0000062", SYS_ID_B, "2024-01-01 10:00:00", "2", 1)]
    add_page(first, None, 2)
    add_page([], ("2024-01-01 10:00:00", SYS_ID_B), 2)

    SyncEngine(hub_app, settings, clock=FakeClock()).sync(connection.id)

    assert len(responses.calls) == 2
    assert get_connection(hub_app, connection.id).cursor == {"incidents": ["2024-01-01 10:00:00", SYS_ID_B]}
    assert hub_app.get(Ticket, ticket_id("INC0000062")).status == "open"


@responses.activate
def test_later_version_resolves_and_same_version_adds_nothing(hub_app, settings):
    connection = add_connection(hub_app, settings, "servicenow", options={"include": []})
    engine = SyncEngine(hub_app, settings, clock=FakeClock())
    add_page([incident("INC0000063", SYS_ID_A, "2024-01-01 10:00:00", "2", 1)], None, 100)
    engine.sync(connection.id)
    count = len(hub_app.history(Ticket, ticket_id("INC0000063")))
    resolved = incident("INC0000063", SYS_ID_A, "2024-01-01 12:00:00", "6", 2)
    resolved.update(resolved_at="2024-01-01 12:00:00", close_code="Solved (Work Around)")
    add_page([incident("INC0000063", SYS_ID_A, "2024-01-01 10:00:00", "2", 1), resolved],
             ("2024-01-01 10:00:00", SYS_ID_A), 100)

    engine.sync(connection.id)

    history = hub_app.history(Ticket, ticket_id("INC0000063"))
    assert len(history) == count + 1
    assert history[-1]["type"] == "ticket.resolved"
    assert history[-1]["data"]["resolution_code"] == "Solved (Work Around)"


@responses.activate
def test_hub_status_is_pushed_as_incident_state(hub_app, settings):
    connection = add_connection(hub_app, settings, "servicenow", options={"include": []})
    engine = SyncEngine(hub_app, settings, clock=FakeClock())
    add_page([incident("INC0000064", SYS_ID_A, "2024-01-01 10:00:00", "2", 1)], None, 100)
    engine.sync(connection.id)
    agent = Context(actor_kind="agent", actor_id="hub-agent-1", source_name="api")
    hub_app.execute(Ticket, ticket_id("INC0000064"), "change_status", agent, status="pending")
    hub_app.execute(Ticket, ticket_id("INC0000064"), "reply", agent, body="Could you send a screenshot?")
    add_page([], ("2024-01-01 10:00:00", SYS_ID_A), 100)
    responses.patch(f"{INCIDENT_URL}/{SYS_ID_A}", json={"result": {"sys_id": SYS_ID_A}})

    result = engine.sync(connection.id)

    patches = [json.loads(call.request.body) for call in responses.calls if call.request.method == "PATCH"]
    assert patches == [{"state": "3", "hold_reason": "1"}, {"comments": "Could you send a screenshot?"}]
    assert result.counts["pushed"] == 2


@responses.activate
def test_pushed_state_read_back_records_nothing(hub_app, settings):
    connection = add_connection(hub_app, settings, "servicenow", options={"include": []})
    engine = SyncEngine(hub_app, settings, clock=FakeClock())
    add_page([incident("INC0000065", SYS_ID_A, "2024-01-01 10:00:00", "2", 1)], None, 100)
    engine.sync(connection.id)
    agent = Context(actor_kind="agent", actor_id="hub-agent-1", source_name="api")
    hub_app.execute(Ticket, ticket_id("INC0000065"), "change_status", agent, status="pending")
    add_page([], ("2024-01-01 10:00:00", SYS_ID_A), 100)
    responses.patch(f"{INCIDENT_URL}/{SYS_ID_A}", json={"result": {"sys_id": SYS_ID_A}})
    engine.sync(connection.id)
    count = len(hub_app.history(Ticket, ticket_id("INC0000065")))
    echoed = incident("INC0000065", SYS_ID_A, "2030-01-01 10:00:00", "3", 2)
    echoed["hold_reason"] = "1"
    add_page([echoed], ("2024-01-01 10:00:00", SYS_ID_A), 100)

    engine.sync(connection.id)

    assert len(hub_app.history(Ticket, ticket_id("INC0000065"))) == count
    assert hub_app.get(Ticket, ticket_id("INC0000065")).status == "pending"


@pytest.mark.parametrize(("hold_reason", "label"), [("1", "Awaiting User Info"), ("4", "Awaiting Vendor"), ("", "On Hold")])
def test_on_hold_label_follows_hold_reason(hold_reason, label):
    raw = {**incident("INC0000066", SYS_ID_A, "2024-01-01 10:00:00", "3", 1), "hold_reason": hold_reason}

    assert parse_table_record(raw)["incident_state"] == label


@responses.activate
def test_unknown_state_is_counted_rejected(hub_app, settings):
    connection = add_connection(hub_app, settings, "servicenow", options={"include": []})
    add_page([incident("INC0000067", SYS_ID_A, "2024-01-01 10:00:00", "99", 1),
              incident("INC0000068", SYS_ID_B, "2024-01-01 10:00:01", "2", 1)], None, 100)

    result = SyncEngine(hub_app, settings, clock=FakeClock()).sync(connection.id)

    assert result.counts["rejected"] == 1
    assert result.counts["tickets_created"] == 1
    assert get_connection(hub_app, connection.id).cursor == {"incidents": ["2024-01-01 10:00:01", SYS_ID_B]}
