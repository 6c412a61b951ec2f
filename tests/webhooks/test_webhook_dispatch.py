"""The dispatch view: which events become messages, once each, and what their bodies contain."""

import json
from datetime import datetime, timezone

from hub.domain import Context, Ticket
from webhooks.endpoint import WebhookEndpoint
from webhooks.outbox import MESSAGES_TABLE
from webhooks.signing import message_id_for


def message_count(harness):
    with harness.runtime.db.transaction(readonly=True) as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {MESSAGES_TABLE}")
        return cursor.fetchone()[0]


def test_matching_event_becomes_one_message(store_harness):
    endpoint_id, _ = store_harness.subscribe("https://hooks.example.com/a", ["ticket.escalated"])
    ticket_id = store_harness.open_ticket()
    position = store_harness.escalate(ticket_id)

    store_harness.dispatch()
    store_harness.dispatch()

    [message] = store_harness.messages(endpoint_id)
    assert message["id"] == message_id_for(endpoint_id, position)
    assert message["event_type"] == "ticket.escalated"
    assert message["state"] == "pending"


def test_rebuilding_the_view_inserts_no_second_message(store_harness):
    endpoint_id, _ = store_harness.subscribe("https://hooks.example.com/a", ["ticket.*"])
    store_harness.escalate(store_harness.open_ticket())
    store_harness.dispatch()
    before = [message["id"] for message in store_harness.messages(endpoint_id)]

    store_harness.runtime.dispatcher.rebuild()

    assert [message["id"] for message in store_harness.messages(endpoint_id)] == before
    assert message_count(store_harness) == 2


def test_subscription_receives_only_later_events(harness):
    earlier_ticket = harness.open_ticket("Recorded before the subscription")
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["*"])
    position = harness.escalate(earlier_ticket)

    harness.dispatch()

    assert [message["position"] for message in harness.messages(endpoint_id)] == [position]


def test_matching_uses_the_subscription_at_each_event(harness):
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["ticket.opened"])
    first_ticket = harness.open_ticket("First")
    first_opened = harness.app.max_position()
    harness.service.update_endpoint(Context(), endpoint_id_uuid(endpoint_id), event_types=["ticket.escalated"])
    escalated = harness.escalate(first_ticket)
    harness.open_ticket("Second, opened after the change")

    harness.runtime.dispatcher.rebuild()

    positions = sorted(message["position"] for message in harness.messages(endpoint_id))
    assert positions == [first_opened, escalated]


def test_endpoint_is_not_sent_its_own_events(harness):
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["*"])

    harness.service.update_endpoint(Context(), endpoint_id_uuid(endpoint_id), description="Renamed")
    harness.service.rotate_secret(Context(), endpoint_id_uuid(endpoint_id))
    harness.dispatch()

    assert harness.messages(endpoint_id) == []


def test_disabled_endpoint_receives_nothing(harness):
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["ticket.*"])
    harness.service.update_endpoint(Context(), endpoint_id_uuid(endpoint_id), enabled=False)

    harness.open_ticket()
    harness.dispatch()

    assert harness.messages(endpoint_id) == []


def test_deleted_endpoint_receives_nothing(harness):
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["ticket.*"])
    harness.service.delete_endpoint(Context(), endpoint_id_uuid(endpoint_id))

    harness.open_ticket()
    harness.dispatch()

    assert harness.outbox.deliveries(endpoint_id) == []


def test_disabling_cancels_queued_messages(harness):
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["ticket.*"])
    harness.open_ticket()
    harness.dispatch()

    harness.service.update_endpoint(Context(), endpoint_id_uuid(endpoint_id), enabled=False)

    [message] = harness.messages(endpoint_id)
    assert message["state"] == "cancelled"
    assert message["next_attempt_at"] is None


def test_rebuild_keeps_messages_queued_after_a_re_enable(harness):
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["ticket.*"])
    uuid = endpoint_id_uuid(endpoint_id)
    harness.service.update_endpoint(Context(), uuid, enabled=False)
    harness.service.update_endpoint(Context(), uuid, enabled=True)
    test_message_id = harness.service.send_test(uuid)

    harness.runtime.dispatcher.rebuild()

    [message] = harness.messages(endpoint_id)
    assert message["id"] == test_message_id
    assert message["state"] == "pending"


def test_body_carries_type_timestamp_ids_and_fields(harness):
    endpoint_id, _ = harness.subscribe("https://hooks.example.com/a", ["ticket.escalated"])
    ticket_id = harness.open_ticket(occurred_at=datetime(2024, 3, 1, 9, 0, tzinfo=timezone.utc))
    occurred_at = datetime(2024, 3, 1, 14, 5, tzinfo=timezone.utc)
    outcome = harness.app.execute(
        Ticket, ticket_id, "escalate",
        Context(actor_kind="agent", actor_id="agent-7", source_name="zendesk", occurred_at=occurred_at),
        level=3, reason="Outage for the whole client", owner="duty-manager",
        promised_by=datetime(2024, 3, 1, 16, 0, tzinfo=timezone.utc),
    )
    harness.dispatch()

    [message] = harness.messages(endpoint_id)
    body = json.loads(harness.outbox.message_body(message["id"]))

    assert body == {
        "type": "ticket.escalated",
        "timestamp": "2024-03-01T14:05:00+00:00",
        "data": {
            "ticket_id": str(ticket_id),
            "position": outcome.last_position,
            "level": 3,
            "reason": "Outage for the whole client",
            "owner": "duty-manager",
            "promised_by": "2024-03-01T16:00:00+00:00",
            "actor": {"kind": "agent", "id": "agent-7"},
            "source": {"name": "zendesk", "external_id": None, "external_event_id": None},
        },
    }


def test_endpoint_disabled_event_reaches_its_subscribers(harness):
    watcher_id, _ = harness.subscribe("https://hooks.example.com/watcher", ["endpoint.disabled"])
    failing_id, _ = harness.subscribe("https://hooks.example.com/failing?token=s3cr3t", ["ticket.*"])

    harness.worker.disable_endpoint(failing_id, "the receiver answered 410 Gone")
    harness.dispatch()

    [message] = harness.messages(watcher_id)
    body = json.loads(harness.outbox.message_body(message["id"]))
    assert body["type"] == "endpoint.disabled"
    assert body["data"]["endpoint_id"] == failing_id
    assert body["data"]["reason"] == "the receiver answered 410 Gone"
    assert body["data"]["actor"] == {"kind": "system", "id": "webhook-worker"}


def test_endpoint_event_bodies_carry_no_url_or_secret(harness):
    watcher_id, _ = harness.subscribe("https://hooks.example.com/watcher", ["endpoint.*"])
    other_id, _ = harness.subscribe("https://hooks.example.com/other?token=s3cr3t", ["ticket.*"])
    uuid = endpoint_id_uuid(other_id)
    harness.service.update_endpoint(Context(), uuid, url="https://hooks.example.com/new?token=n3w")
    harness.service.rotate_secret(Context(), uuid)
    endpoint = harness.app.get(WebhookEndpoint, uuid)

    harness.dispatch()

    bodies = [harness.outbox.message_body(message["id"]) for message in harness.messages(watcher_id)]
    assert len(bodies) == 3
    for body in bodies:
        assert b"s3cr3t" not in body
        assert b"n3w" not in body
        assert endpoint.secret_ciphertext.encode() not in body
        assert endpoint.previous_secret_ciphertext.encode() not in body


def endpoint_id_uuid(endpoint_id):
    from uuid import UUID

    return UUID(endpoint_id)
