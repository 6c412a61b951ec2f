"""Zendesk syncs against `responses` fakes with Zendesk's payload shapes."""

from __future__ import annotations

import copy
from datetime import datetime
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from connector_helpers import (  # noqa: F401 (hub_app and settings are fixtures)
    ZENDESK_URL,
    FakeClock,
    add_connection,
    export_page,
    hub_app,
    load_fixture,
    recorded_zendesk_ticket,
    settings,
    zendesk_ticket,
)
from eventsourcing.utils import get_topic

from connectors.connection import Connection, get_connection, sync_runs
from connectors.http import RetryPolicy
from connectors.sync import SyncEngine, SyncError
from hub.application import create_application
from hub.domain import ClientAccount, Context, SlaPolicy, Ticket, external_uuid
from hub.secrets import generate_key
from hub.settings import load_settings

EXPORT_URL = ZENDESK_URL + "/api/v2/incremental/tickets/cursor.json"
NO_META = {"has_more": False, "after_cursor": None, "before_cursor": None}


def engine(app, settings, clock=None) -> SyncEngine:
    return SyncEngine(app, settings, clock=clock or FakeClock(), retry_policy=RetryPolicy(max_attempts=3, jitter=0.0))


def export_calls() -> list:
    return [call for call in responses.calls if urlsplit(call.request.url).path.endswith("/cursor.json")]


def query_of(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def ticket_id(zendesk_id: int):
    return external_uuid("ticket", "zendesk", str(zendesk_id))


def opened_tickets(app) -> list:
    notifications = app.recorder.select_notifications(1, 10_000, topics=[get_topic(Ticket.Opened)])
    return [notification.originator_id for notification in notifications]


def count_events(app, aggregate_class) -> int:
    total = 0
    for notification in app.recorder.select_notifications(1, 100_000):
        event = app.mapper.to_domain_event(notification)
        if type(event).__qualname__.split(".")[0] == aggregate_class.__name__:
            total += 1
    return total


def add_pages(*pages, first_query=None) -> None:
    """Register export pages: the first at `first_query`, each next one at the previous cursor."""
    query = first_query or {"start_time": "0"}
    for page in pages:
        responses.get(EXPORT_URL, json=page, match=[responses.matchers.query_param_matcher(query)])
        query = {"cursor": page["after_cursor"]}


@responses.activate
def test_second_request_carries_cursor_not_start_time(hub_app, settings):
    interactions = load_fixture("zendesk", "incremental_tickets_cursor_based.json")["interactions"]
    first, second = (copy.deepcopy(item["response_body"]) for item in interactions[1:3])
    second["end_of_stream"] = True
    connection = add_connection(hub_app, settings, options={"include": [], "start_time": 1695000000})
    add_pages(first, second, first_query={"start_time": "1695000000"})

    engine(hub_app, settings).sync(connection.id)

    assert [query_of(call) for call in export_calls()] == [
        {"start_time": ["1695000000"]},
        {"cursor": ["MTY5NTA1MjY2My4wfHwyOHw="]},
    ]
    assert get_connection(hub_app, connection.id).cursor == {"tickets": "MTY5NTA1MjY2My4wfHwyOXw="}


@responses.activate
def test_ticket_changed_during_sync_is_not_lost(hub_app, settings):
    connection = add_connection(hub_app, settings)
    add_pages(
        export_page([zendesk_ticket(101, "2024-01-01T10:00:00Z"), zendesk_ticket(102, "2024-01-01T10:00:01Z")], "c1", False),
        export_page([zendesk_ticket(103, "2024-01-01T10:05:00Z"),
                     zendesk_ticket(101, "2024-01-01T10:06:00Z", status="open", priority="high")], "c2", True),
    )

    engine(hub_app, settings).sync(connection.id)

    ticket = hub_app.get(Ticket, ticket_id(101))
    assert (ticket.status, ticket.priority) == ("open", "high")
    assert sorted(map(str, opened_tickets(hub_app))) == sorted(str(ticket_id(n)) for n in (101, 102, 103))
    assert get_connection(hub_app, connection.id).cursor == {"tickets": "c2"}


@responses.activate
def test_next_sync_resumes_from_stored_cursor(hub_app, settings):
    connection = add_connection(hub_app, settings)
    add_pages(export_page([zendesk_ticket(101, "2024-01-01T10:00:00Z")], "c1", True))
    sync_engine = engine(hub_app, settings)
    sync_engine.sync(connection.id)
    add_pages(
        export_page([zendesk_ticket(101, "2024-01-01T11:00:00Z", status="pending")], "c2", True),
        first_query={"cursor": "c1"},
    )

    sync_engine.sync(connection.id)

    assert query_of(export_calls()[-1]) == {"cursor": ["c1"]}
    assert hub_app.get(Ticket, ticket_id(101)).status == "pending"


@responses.activate
def test_newer_generated_timestamp_picked_up(hub_app, settings):
    # Zendesk exports a ticket by generated_timestamp, which moves on system
    # updates that leave updated_at alone, so updated_at can predate start_time.
    start_time = 1704100000  # 2024-01-01T09:06:40Z
    record = zendesk_ticket(104, "2023-12-01T08:00:00Z", status="hold")
    record["generated_timestamp"] = start_time + 500
    connection = add_connection(hub_app, settings, options={"include": [], "start_time": start_time})
    add_pages(export_page([record], "c1", True), first_query={"start_time": str(start_time)})

    engine(hub_app, settings, FakeClock(now=record_time("2024-01-02T00:00:00Z"))).sync(connection.id)

    assert hub_app.get(Ticket, ticket_id(104)).status == "on_hold"


def record_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


@responses.activate
def test_ticket_repeated_on_two_pages_is_stored_once(hub_app, settings):
    connection = add_connection(hub_app, settings)
    record = zendesk_ticket(105, "2024-01-01T10:00:00Z", status="open")
    add_pages(export_page([record], "c1", False), export_page([copy.deepcopy(record)], "c2", True))

    result = engine(hub_app, settings).sync(connection.id)

    assert opened_tickets(hub_app) == [ticket_id(105)]
    assert [entry["type"] for entry in hub_app.history(Ticket, ticket_id(105))] == ["ticket.opened", "ticket.status_changed"]
    assert result.counts["tickets_created"] == 1


@responses.activate
def test_rate_limit_waits_retry_after_and_retries_once(hub_app, settings):
    connection = add_connection(hub_app, settings)
    responses.get(EXPORT_URL, body="Too Many Requests", status=429, content_type="text/plain", headers={"Retry-After": "24"})
    responses.get(EXPORT_URL, json=export_page([zendesk_ticket(106, "2024-01-01T10:00:00Z")], "c1", True))
    clock = FakeClock()

    result = engine(hub_app, settings, clock).sync(connection.id)

    assert clock.sleeps == [24.0]
    assert len(export_calls()) == 2
    assert result.status == "completed"
    assert opened_tickets(hub_app) == [ticket_id(106)]


@responses.activate
def test_two_hundred_tickets_with_three_changed_between_pages(hub_app, settings):
    connection = add_connection(hub_app, settings)
    pages = []
    for page_number in range(4):
        ids = range(page_number * 50 + 1, page_number * 50 + 51)
        records = [zendesk_ticket(n, f"2024-01-01T10:{page_number:02d}:00Z") for n in ids]
        pages.append(export_page(records, f"c{page_number + 1}", page_number == 3))
    # Tickets 10, 60 and 110 change while the export runs, so they come again on the last page.
    changed = (10, 60, 110)
    pages[3]["tickets"] += [zendesk_ticket(n, "2024-01-01T10:30:00Z", status="open") for n in changed]
    add_pages(*pages)

    result = engine(hub_app, settings).sync(connection.id)

    assert len(set(opened_tickets(hub_app))) == 200
    assert result.counts["tickets_created"] == 200
    assert result.counts["records"] == 203
    statuses = {n: hub_app.get(Ticket, ticket_id(n)).status for n in range(1, 201)}
    assert {n for n, status in statuses.items() if status == "open"} == set(changed)


@responses.activate
def test_failed_page_keeps_last_committed_cursor(hub_app, settings):
    connection = add_connection(hub_app, settings)
    add_pages(export_page([zendesk_ticket(107, "2024-01-01T10:00:00Z")], "c1", False))
    responses.get(EXPORT_URL, json={"error": "Couldn't authenticate you"}, status=401,
                  match=[responses.matchers.query_param_matcher({"cursor": "c1"})])

    with pytest.raises(SyncError, match="401") as raised:
        engine(hub_app, settings).sync(connection.id)

    stored = get_connection(hub_app, connection.id)
    assert stored.cursor == {"tickets": "c1"}
    assert stored.last_sync["status"] == "failed"
    assert "check the email and API token" in stored.last_sync["error"]
    assert raised.value.result.counts["tickets_created"] == 1
    assert opened_tickets(hub_app) == [ticket_id(107)]


@responses.activate
def test_crash_mid_page_keeps_cursor(hub_app, settings, monkeypatch):
    connection = add_connection(hub_app, settings)
    add_pages(
        export_page([zendesk_ticket(108, "2024-01-01T10:00:00Z")], "c1", False),
        export_page([zendesk_ticket(109, "2024-01-01T10:01:00Z")], "c2", True),
    )
    original = hub_app.save_batch
    calls = []

    def save_batch(aggregates):
        calls.append(len(calls))
        if len(calls) == 2:
            raise OSError("disk full")
        return original(aggregates)

    monkeypatch.setattr(hub_app, "save_batch", save_batch)

    with pytest.raises(OSError, match="disk full"):
        engine(hub_app, settings).sync(connection.id)

    stored = get_connection(hub_app, connection.id)
    assert stored.cursor == {"tickets": "c1"}
    assert opened_tickets(hub_app) == [ticket_id(108)]
    assert stored.last_sync["status"] == "failed"
    assert stored.last_sync["error"] == "the sync failed with an unexpected OSError; see the log of the process"


@responses.activate
def test_page_events_and_cursor_are_adjacent_in_stream(hub_app, settings):
    connection = add_connection(hub_app, settings)
    add_pages(
        export_page([zendesk_ticket(110, "2024-01-01T10:00:00Z")], "c1", False),
        export_page([zendesk_ticket(111, "2024-01-01T10:01:00Z")], "c2", True),
    )

    engine(hub_app, settings).sync(connection.id)

    start = max(hub_app.positions(connection.id).values()) - 5
    names = [
        type(hub_app.mapper.to_domain_event(n)).__qualname__
        for n in hub_app.recorder.select_notifications(start, 100)
    ]
    assert names == [
        "Connection.SyncStarted",
        "Ticket.Opened", "Connection.PageCommitted",
        "Ticket.Opened", "Connection.PageCommitted",
        "Connection.SyncCompleted",
    ]


def ticket_one_record() -> dict:
    """Ticket 1 of the recorded audits, as the export shows it after those audits."""
    return zendesk_ticket(
        1, "2023-09-10T09:00:00Z", status="open", priority="normal", type="incident",
        requester_id=6130869168922, submitter_id=6130869168922, group_id=6130852536346,
        assignee_id=6130907993114, created_at="2023-09-09T23:52:05Z", subject="Sample ticket: Meet the ticket",
        raw_subject="Sample ticket: Meet the ticket",
    )


def ticket_one_audits() -> list[dict]:
    audits = load_fixture("zendesk", "ticket_audits_cursor_pages.json")["interactions"][0]["response_body"]["audits"]
    recorded = [copy.deepcopy(audit) for audit in audits if audit["ticket_id"] == 1]
    comment = next(event for event in recorded[0]["events"] if event["type"] == "Comment")
    reply = {**copy.deepcopy(recorded[0]), "id": 900001, "created_at": "2023-09-10T08:00:00Z",
             "author_id": 6130907993114,
             "events": [{**comment, "id": 900002, "author_id": 6130907993114, "body": "Try restarting it."}]}
    note = {**copy.deepcopy(reply), "id": 900003, "created_at": "2023-09-10T08:30:00Z",
            "events": [{**comment, "id": 900004, "author_id": 6130907993114, "public": False, "body": "Known issue."}]}
    return recorded + [reply, note]


@responses.activate
def test_audits_become_ticket_events(hub_app, settings):
    connection = add_connection(hub_app, settings, options={"include": ["audits"]})
    add_pages(export_page([ticket_one_record()], "c1", True))
    responses.get(ZENDESK_URL + "/api/v2/tickets/1/audits.json", json={"audits": ticket_one_audits(), "meta": NO_META})

    engine(hub_app, settings).sync(connection.id)

    history = hub_app.history(Ticket, ticket_id(1))
    assert [entry["type"] for entry in history] == [
        "ticket.opened", "ticket.assigned", "ticket.status_changed", "ticket.classified", "ticket.prioritized",
        "ticket.agent_replied", "ticket.internal_note_added",
    ]
    assert history[1]["data"] == {"group": "6130852536346", "agent": "6130907993114"}
    assert history[4]["data"]["previous"] is None
    assert history[4]["source"]["external_event_id"] == "zendesk:audit:6130876540314:6130876540570"
    assert history[5]["actor"] == {"kind": "agent", "id": "6130907993114"}
    assert history[6]["data"] == {"body": "Known issue."}


def organizations_payload(name: str = "Example Corp") -> dict:
    organization = {"id": 6130869157658, "name": name, "url": f"{ZENDESK_URL}/api/v2/organizations/6130869157658.json",
                    "created_at": "2023-09-09T23:52:05Z", "updated_at": "2023-09-10T10:00:00Z"}
    if name != "Example Corp":
        organization["updated_at"] = "2023-09-11T10:00:00Z"
    return {"organizations": [organization], "meta": NO_META}


def users_payload() -> dict:
    users = [
        {"id": 6130869168922, "name": "User 0001", "email": "user0001@example.com", "role": "end-user",
         "organization_id": 6130869157658, "phone": None, "updated_at": "2023-09-10T10:00:00Z"},
        {"id": 6130907993114, "name": "User 0002", "email": "user0002@example.com", "role": "admin",
         "organization_id": 6130869157658, "phone": None, "updated_at": "2023-09-10T10:00:00Z"},
    ]
    return {"users": users, "meta": NO_META}


def register_directory(organizations: dict | None = None) -> None:
    responses.get(ZENDESK_URL + "/api/v2/organizations.json", json=organizations or organizations_payload())
    responses.get(ZENDESK_URL + "/api/v2/users.json", json=users_payload())
    responses.get(ZENDESK_URL + "/api/v2/slas/policies.json", json={"sla_policies": [load_fixture("zendesk", "sla_policy.json")]})
    rating = load_fixture("zendesk", "satisfaction_rating.json")
    responses.get(ZENDESK_URL + "/api/v2/satisfaction_ratings.json", json={"satisfaction_ratings": [rating], "meta": NO_META})


FULL_INCLUDE = ["organizations", "users", "sla_policies", "satisfaction_ratings"]


@responses.activate
def test_directory_policies_and_ratings(hub_app, settings):
    connection = add_connection(hub_app, settings, options={"include": FULL_INCLUDE})
    register_directory()
    # The rating fixture is dated 2011-07-20T22:55:29Z, so the ticket is created before it.
    ticket = zendesk_ticket(208, "2011-07-20T22:50:00Z", created_at="2011-07-20T22:00:00Z")
    add_pages(export_page([ticket], "c1", True))

    result = engine(hub_app, settings).sync(connection.id)

    account = hub_app.get(ClientAccount, external_uuid("client_account", "zendesk", "6130869157658"))
    assert account.organization == "Example Corp"
    assert [contact["id"] for contact in account.contacts] == ["6130869168922"]
    policy = hub_app.get(SlaPolicy, external_uuid("sla_policy", "zendesk", "230868"))
    assert policy.targets["critical"] == {"first_response": 10, "resolution": 120}
    assert hub_app.get(Ticket, ticket_id(208)).satisfaction == {"score": "good", "scale": "good_bad"}
    assert result.counts["accounts_created"] == 1
    assert result.counts["contacts_added"] == 1
    assert result.counts["policies_defined"] == 1
    assert get_connection(hub_app, connection.id).cursor["satisfaction_ratings"] == 1311202529


@responses.activate
def test_second_sync_adds_nothing(hub_app, settings):
    connection = add_connection(hub_app, settings, options={"include": FULL_INCLUDE})
    register_directory()
    add_pages(export_page([zendesk_ticket(208, "2011-07-20T22:50:00Z", status="open")], "c1", True))
    sync_engine = engine(hub_app, settings)
    sync_engine.sync(connection.id)
    before = {cls: count_events(hub_app, cls) for cls in (Ticket, ClientAccount, SlaPolicy)}
    add_pages(export_page([], "c1", True), first_query={"cursor": "c1"})

    result = sync_engine.sync(connection.id)

    assert {cls: count_events(hub_app, cls) for cls in (Ticket, ClientAccount, SlaPolicy)} == before
    assert result.counts["events"] == 0


@responses.activate
def test_renamed_organization_renames_account(hub_app, settings):
    connection = add_connection(hub_app, settings, options={"include": ["organizations"]})
    responses.get(ZENDESK_URL + "/api/v2/organizations.json", json=organizations_payload())
    add_pages(export_page([], "c1", True))
    sync_engine = engine(hub_app, settings)
    sync_engine.sync(connection.id)
    responses.replace(responses.GET, ZENDESK_URL + "/api/v2/organizations.json", json=organizations_payload("Example Group"))
    add_pages(export_page([], "c1", True), first_query={"cursor": "c1"})

    sync_engine.sync(connection.id)

    account_id = external_uuid("client_account", "zendesk", "6130869157658")
    assert hub_app.get(ClientAccount, account_id).organization == "Example Group"
    assert [entry["type"] for entry in hub_app.history(ClientAccount, account_id)] == [
        "client_account.registered", "client_account.renamed",
    ]


def test_connection_events_after_sync(hub_app, settings):
    connection = add_connection(hub_app, settings)
    with responses.RequestsMock() as mock:
        mock.get(EXPORT_URL, json=export_page([recorded_zendesk_ticket()], "c1", True))
        result = engine(hub_app, settings).sync(connection.id, trigger="schedule")

    types = [entry["type"] for entry in hub_app.history(Connection, connection.id)]
    assert types == ["connection.created", "connection.sync_started", "connection.page_committed", "connection.sync_completed"]
    assert result.trigger == "schedule"
    assert result.counts == {"records": 1, "events": 1, "tickets_created": 1, "unchanged": 4}


@pytest.fixture
def store_app(store):
    """The hub application on each kind of store, with a cipher key in its settings."""
    store_settings = load_settings({**store["environ"], "HUB_CIPHER_KEY": generate_key()})
    application = create_application(store_settings, **store["extra"])
    yield application, store_settings
    application.close()


@responses.activate
def test_sync_twice_on_each_store(store_app):
    app, store_settings = store_app
    connection = add_connection(app, store_settings)
    add_pages(
        export_page([zendesk_ticket(120, "2024-01-01T10:00:00Z", status="open")], "c1", False),
        export_page([zendesk_ticket(121, "2024-01-01T10:01:00Z", priority="low")], "c2", True),
    )
    sync_engine = engine(app, store_settings)
    first = sync_engine.sync(connection.id)
    add_pages(export_page([zendesk_ticket(120, "2024-01-01T10:00:00Z", status="open")], "c2", True),
              first_query={"cursor": "c2"})

    second = sync_engine.sync(connection.id)

    assert (first.counts["tickets_created"], first.counts["events"]) == (2, 4)
    assert second.counts["events"] == 0
    assert app.get(Ticket, ticket_id(120)).status == "open"
    assert app.get(Ticket, ticket_id(121)).priority == "low"


@responses.activate
def test_older_copy_on_same_page_is_skipped(hub_app, settings):
    connection = add_connection(hub_app, settings)
    older = zendesk_ticket(130, "2024-01-01T10:00:00Z", status="pending")
    newer = zendesk_ticket(130, "2024-01-01T10:02:00Z", status="open")
    add_pages(export_page([older, zendesk_ticket(131, "2024-01-01T10:01:00Z"), newer], "c1", True))

    result = engine(hub_app, settings).sync(connection.id)

    assert [entry["type"] for entry in hub_app.history(Ticket, ticket_id(130))] == ["ticket.opened", "ticket.status_changed"]
    assert hub_app.get(Ticket, ticket_id(130)).status == "open"
    assert result.counts["records"] == 3


@responses.activate
def test_connection_snapshot_after_many_syncs(hub_app, settings):
    connection = add_connection(hub_app, settings)
    responses.get(EXPORT_URL, json=export_page([], "c0", True))
    sync_engine = engine(hub_app, settings)

    # Created is version 1; the first sync records started, page (cursor c0) and
    # completed (versions 2-4), each later one started and completed, so the 24th
    # sync ends at version 50 and the 25th at 52.
    for _ in range(25):
        sync_engine.sync(connection.id)

    snapshots = list(hub_app.snapshots.get(connection.id))
    assert [snapshot.originator_version for snapshot in snapshots] == [50]
    assert get_connection(hub_app, connection.id).version == 52
    assert get_connection(hub_app, connection.id).sync_count == 25


@responses.activate
def test_interrupted_sync_closed_as_failed(hub_app, settings):
    connection = add_connection(hub_app, settings)
    connection.start_sync(Context(actor_kind="integration", actor_id="engine"), "stale-sync", "schedule")
    hub_app.save(connection)
    responses.get(EXPORT_URL, json=export_page([], "c1", True))

    result = engine(hub_app, settings).sync(connection.id)

    runs = {run["sync_id"]: run for run in sync_runs(hub_app, connection.id)}
    assert runs["stale-sync"]["status"] == "failed"
    assert runs["stale-sync"]["error"] == "the sync stopped before it finished; the pages it committed are kept"
    assert runs[result.sync_id]["status"] == "completed"
