"""The WebhookEndpoint aggregate: its events, guards and secret rotation."""

from datetime import datetime, timedelta, timezone
from uuid import uuid4

import pytest

from hub.domain import Context
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.events import event_type
from webhooks.endpoint import WebhookEndpoint, matches, normalize_event_types

ROTATED_AT = datetime(2024, 5, 1, 9, 30, tzinfo=timezone.utc)


def new_endpoint(**overrides):
    fields = {
        "endpoint_id": uuid4(), "url": "https://hooks.example.com/hub", "event_types": ["ticket.escalated"],
        "secret_ciphertext": "c2VhbGVkLXNlY3JldA==", "description": "On-call pager",
    }
    fields.update(overrides)
    return WebhookEndpoint.create(Context(actor_kind="agent", actor_id="ops-lead"), **fields)


def recorded_types(endpoint):
    return [event_type(event) for event in endpoint.collect_events()]


def test_endpoint_events_use_the_endpoint_kind():
    endpoint = new_endpoint()
    endpoint.update(Context(), description="Pager duty")
    endpoint.rotate_secret(Context(), secret_ciphertext="bmV3LXNlY3JldA==")
    endpoint.disable(Context(), reason="maintenance")
    endpoint.enable(Context())
    endpoint.delete(Context())

    assert recorded_types(endpoint) == [
        "endpoint.created", "endpoint.updated", "endpoint.secret_rotated",
        "endpoint.disabled", "endpoint.enabled", "endpoint.deleted",
    ]


def test_create_rejects_a_clear_text_secret():
    with pytest.raises(InvalidValueError, match="encrypted") as raised:
        new_endpoint(secret_ciphertext="whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")

    assert raised.value.field == "secret"


@pytest.mark.parametrize("url", ["ftp://hooks.example.com/x", "hooks.example.com/x", ""])
def test_create_rejects_urls_that_are_not_http(url):
    with pytest.raises(InvalidValueError) as raised:
        new_endpoint(url=url)

    assert raised.value.field == "url"


@pytest.mark.parametrize(
    "event_types", [[], "ticket.opened", ["Ticket.Opened"], ["ticket"], ["ticket.*.x"], [7], ["*.opened"]]
)
def test_event_types_with_a_bad_shape_are_rejected(event_types):
    with pytest.raises(InvalidValueError) as raised:
        normalize_event_types(event_types)

    assert raised.value.field == "event_types"


def test_event_types_drop_duplicates_and_keep_order():
    assert normalize_event_types(["sla.breached", "ticket.*", "sla.breached", "*"]) == [
        "sla.breached", "ticket.*", "*",
    ]


@pytest.mark.parametrize(
    ("patterns", "type_name", "expected"),
    [
        (["*"], "endpoint.disabled", True),
        (["ticket.*"], "ticket.reopened", True),
        (["ticket.*"], "sla.breached", False),
        (["sla.breached"], "sla.breached", True),
        (["sla.breached"], "sla.at_risk", False),
        (["ticket.escalated", "sla.*"], "sla.at_risk", True),
    ],
)
def test_matches_exact_kind_and_wildcard_patterns(patterns, type_name, expected):
    assert matches(patterns, type_name) is expected


def test_update_records_only_changed_fields():
    endpoint = new_endpoint()
    endpoint.collect_events()

    endpoint.update(Context(), url="https://hooks.example.com/hub", event_types=["sla.breached"])

    [event] = endpoint.collect_events()
    assert event.changes == {"event_types": ["sla.breached"]}


def test_update_without_changes_records_nothing():
    endpoint = new_endpoint()
    endpoint.collect_events()

    endpoint.update(Context(), url="https://hooks.example.com/hub", description="On-call pager")

    assert endpoint.collect_events() == []


def test_rotation_signs_with_both_secrets_for_24_hours():
    endpoint = new_endpoint(secret_ciphertext="b2xkLXNlY3JldA==")

    endpoint.rotate_secret(Context(occurred_at=ROTATED_AT), secret_ciphertext="bmV3LXNlY3JldA==")

    just_before_expiry = ROTATED_AT + timedelta(hours=24) - timedelta(seconds=1)
    assert endpoint.secret_ciphertexts(just_before_expiry) == ["bmV3LXNlY3JldA==", "b2xkLXNlY3JldA=="]
    assert endpoint.secret_ciphertexts(ROTATED_AT + timedelta(hours=24)) == ["bmV3LXNlY3JldA=="]


def test_second_rotation_drops_the_oldest_secret():
    endpoint = new_endpoint(secret_ciphertext="Zmlyc3Q=")
    endpoint.rotate_secret(Context(occurred_at=ROTATED_AT), secret_ciphertext="c2Vjb25k")

    endpoint.rotate_secret(Context(occurred_at=ROTATED_AT + timedelta(hours=1)), secret_ciphertext="dGhpcmQ=")

    assert endpoint.secret_ciphertexts(ROTATED_AT + timedelta(hours=2)) == ["dGhpcmQ=", "c2Vjb25k"]


def test_disabling_a_disabled_endpoint_conflicts():
    endpoint = new_endpoint()
    endpoint.disable(Context(), reason="receiver answered 410 Gone")

    with pytest.raises(StateConflictError, match="already disabled"):
        endpoint.disable(Context(), reason="again")


def test_enabling_an_enabled_endpoint_conflicts():
    endpoint = new_endpoint()

    with pytest.raises(StateConflictError, match="already enabled"):
        endpoint.enable(Context())


@pytest.mark.parametrize(
    ("command", "arguments"),
    [
        ("update", {"description": "x"}),
        ("rotate_secret", {"secret_ciphertext": "eA=="}),
        ("disable", {"reason": "x"}),
        ("enable", {}),
        ("delete", {}),
    ],
)
def test_deleted_endpoint_rejects_every_command(command, arguments):
    endpoint = new_endpoint()
    endpoint.delete(Context())

    with pytest.raises(StateConflictError, match="is deleted"):
        getattr(endpoint, command)(Context(), **arguments)


def test_state_leaves_out_the_secrets():
    endpoint = new_endpoint(secret_ciphertext="c2VhbGVk")
    endpoint.rotate_secret(Context(), secret_ciphertext="bmV3")

    state = endpoint.state()

    assert "c2VhbGVk" not in repr(state)
    assert "bmV3" not in repr(state)
    assert state["event_types"] == ["ticket.escalated"]
