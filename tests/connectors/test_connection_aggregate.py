"""The Connection aggregate: validation, encrypted credentials, sync lifecycle events."""

from __future__ import annotations

import json
import uuid

import pytest
from connector_helpers import ZENDESK_CREDENTIALS, add_connection, hub_app, settings, settings_for  # noqa: F401

from connectors.connection import (
    Connection,
    decrypt_credentials,
    get_connection,
    list_connections,
    rotate_connection_credentials,
    sync_runs,
    update_connection,
    validate_base_url,
    validate_credentials,
    validate_options,
    validate_schedule,
)
from hub.application import create_application
from hub.domain import Context
from hub.domain.errors import InvalidValueError, StateConflictError
from hub.events import event_type
from hub.settings import ConfigurationError, load_settings

ADMIN = Context(actor_kind="agent", actor_id="admin-1")
SYSTEM = Context(actor_kind="integration", actor_id="engine")


def test_credentials_are_stored_encrypted(hub_app, settings):
    connection = add_connection(hub_app, settings)

    stored = [event.__dict__ for event in hub_app.events.get(connection.id)]

    assert "zd-secret-token-1" not in json.dumps(stored, default=str)
    assert decrypt_credentials(settings, connection.credentials_encrypted, connection.id) == ZENDESK_CREDENTIALS


def test_credentials_absent_from_repr_and_state(hub_app, settings):
    connection = add_connection(hub_app, settings)

    text = repr(connection) + json.dumps(connection.state(), default=str)

    assert "zd-secret-token-1" not in text
    assert connection.credentials_encrypted not in text
    assert connection.state()["credential_fields"] == ["api_token", "email"]


def test_missing_cipher_key_names_setting():
    settings = load_settings({"HUB_DATABASE_URL": "sqlite:///:memory:"})
    app = create_application(settings)
    try:
        with pytest.raises(ConfigurationError, match="HUB_CIPHER_KEY.*hub keys generate"):
            add_connection(app, settings)
        assert list_connections(app) == []
    finally:
        app.close()


def test_other_key_cannot_decrypt(hub_app, settings):
    connection = add_connection(hub_app, settings)

    with pytest.raises(ConfigurationError, match=f"connection {connection.id} cannot be decrypted"):
        decrypt_credentials(settings_for(), connection.credentials_encrypted, connection.id)


def test_event_types_are_connection_events(hub_app, settings):
    connection = add_connection(hub_app, settings)
    connection.start_sync(SYSTEM, "s1", "manual")
    connection.commit_page(SYSTEM, "s1", "tickets", {"tickets": "c1"}, {"records": 1})

    types = [event_type(event) for event in connection.collect_events()]

    assert types == ["connection.sync_started", "connection.page_committed"]
    assert event_type(next(iter(hub_app.events.get(connection.id)))) == "connection.created"


def test_sync_lifecycle_moves_cursor_and_last_sync(hub_app, settings):
    connection = add_connection(hub_app, settings)

    connection.start_sync(SYSTEM, "s1", "manual")
    connection.commit_page(SYSTEM, "s1", "tickets", {"tickets": "c1"}, {"records": 2})
    connection.complete_sync(SYSTEM, "s1", {"records": 2}, outbound_position=7)
    hub_app.save(connection)
    stored = get_connection(hub_app, connection.id)

    assert stored.cursor == {"tickets": "c1"}
    assert stored.outbound_position == 7
    assert stored.current_sync is None
    assert stored.last_sync["status"] == "completed"
    assert stored.last_sync["counts"] == {"records": 2}


def test_second_start_while_syncing_raises(hub_app, settings):
    connection = add_connection(hub_app, settings)
    connection.start_sync(SYSTEM, "s1", "manual")

    with pytest.raises(StateConflictError, match="still has sync s1 open"):
        connection.start_sync(SYSTEM, "s2", "manual")


def test_page_of_other_sync_raises(hub_app, settings):
    connection = add_connection(hub_app, settings)
    connection.start_sync(SYSTEM, "s1", "manual")

    with pytest.raises(StateConflictError, match="sync s2 is not the open sync"):
        connection.commit_page(SYSTEM, "s2", "tickets", {}, {})


def test_sync_runs_lists_newest_first(hub_app, settings):
    connection = add_connection(hub_app, settings)
    connection.start_sync(SYSTEM, "s1", "manual")
    connection.fail_sync(SYSTEM, "s1", "Zendesk returned 500", "RetriesExhaustedError", {"records": 0})
    connection.start_sync(SYSTEM, "s2", "schedule")
    connection.commit_page(SYSTEM, "s2", "tickets", {"tickets": "c1"}, {"records": 3})
    connection.complete_sync(SYSTEM, "s2", {"records": 3}, outbound_position=0)
    hub_app.save(connection)

    runs = sync_runs(hub_app, connection.id)

    assert [run["sync_id"] for run in runs] == ["s2", "s1"]
    assert [run["status"] for run in runs] == ["completed", "failed"]
    assert runs[0]["pages"] == 1
    assert runs[1]["error"] == "Zendesk returned 500"


def test_list_connections_oldest_first(hub_app, settings):
    first = add_connection(hub_app, settings, "zendesk")
    second = add_connection(hub_app, settings, "freshdesk")

    assert [connection.id for connection in list_connections(hub_app)] == [first.id, second.id]


def test_same_source_name_twice_raises(hub_app, settings):
    first = add_connection(hub_app, settings, "zendesk")

    with pytest.raises(StateConflictError, match=f"connection {first.id} already records events as source 'zendesk'"):
        add_connection(hub_app, settings, "zendesk")


def test_distinct_source_name_allows_second_account(hub_app, settings):
    add_connection(hub_app, settings, "zendesk")

    second = add_connection(hub_app, settings, "zendesk", options={"source_name": "zendesk-eu", "include": []})

    assert second.source_name == "zendesk-eu"


def test_rotated_credentials_decrypt_to_new_values(hub_app, settings):
    connection = add_connection(hub_app, settings)

    rotated = rotate_connection_credentials(hub_app, ADMIN, connection.id, {"oauth_token": "new-token"}, settings=settings)

    assert decrypt_credentials(settings, rotated.credentials_encrypted, connection.id) == {"oauth_token": "new-token"}
    assert rotated.credential_fields == ["oauth_token"]
    assert event_type(list(hub_app.events.get(connection.id))[-1]) == "connection.credentials_rotated"


def test_update_records_only_changed_fields(hub_app, settings):
    connection = add_connection(hub_app, settings, schedule={"every_minutes": 15})

    updated = update_connection(
        hub_app, ADMIN, connection.id, {"schedule": {"every_minutes": 15}, "name": "Support desk"}, settings=settings
    )

    last = list(hub_app.events.get(connection.id))[-1]
    assert last.changes == {"name": "Support desk"}
    assert updated.schedule == {"every_minutes": 15}


def test_unknown_connection_raises_not_found(hub_app):
    from hub.application import NotFoundError

    missing = uuid.uuid4()
    with pytest.raises(NotFoundError, match=f"connection {missing} not found"):
        get_connection(hub_app, missing)


# Validation.


@pytest.mark.parametrize(
    ("url", "allow_private", "expected"),
    [
        ("https://example.zendesk.com/", False, "https://example.zendesk.com"),
        ("https://proxy.example.com/zendesk", False, "https://proxy.example.com/zendesk"),
        ("http://127.0.0.1:8080", True, "http://127.0.0.1:8080"),
        ("https://10.1.2.3", True, "https://10.1.2.3"),
    ],
)
def test_base_url_accepted(url, allow_private, expected):
    assert validate_base_url(url, allow_private) == expected


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://example.zendesk.com", "uses plain http"),
        ("https://127.0.0.1", "is not a public address"),
        ("https://10.1.2.3", "is not a public address"),
        ("https://[::1]", "is not a public address"),
        ("https://169.254.169.254", "is not a public address"),
        ("https://localhost:8443", "is a loopback name"),
        ("https://user:pw@example.zendesk.com", "must not contain a user name or password"),
        ("example.zendesk.com", "is not an absolute http"),
        ("https://example.zendesk.com?x=1", "has a query or fragment"),
        ("https://[::1", "is not a valid URL"),
    ],
)
def test_base_url_rejected_without_private_flag(url, message):
    with pytest.raises(InvalidValueError, match=message) as raised:
        validate_base_url(url, allow_private=False)
    assert raised.value.field == "base_url"


def test_private_rejection_names_setting():
    with pytest.raises(InvalidValueError, match="HUB_CONNECTORS_ALLOW_PRIVATE=1"):
        validate_base_url("https://192.168.0.10", allow_private=False)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (None, None),
        ({"every_minutes": 15}, {"every_minutes": 15}),
        ("*/15 * * * *", {"cron": "*/15 * * * *"}),
        ({"cron": "0 6 * * mon-fri"}, {"cron": "0 6 * * mon-fri"}),
    ],
)
def test_schedule_accepted(schedule, expected):
    assert validate_schedule(schedule) == expected


@pytest.mark.parametrize(
    ("schedule", "field"),
    [
        ("61 * * * *", "schedule"),
        ("* * *", "schedule"),
        ({"every_minutes": 0}, "schedule.every_minutes"),
        ({"every_minutes": "15"}, "schedule.every_minutes"),
        ({"hourly": True}, "schedule"),
        (15, "schedule"),
    ],
)
def test_schedule_rejected_names_field(schedule, field):
    with pytest.raises(InvalidValueError) as raised:
        validate_schedule(schedule)
    assert raised.value.field == field


def test_incomplete_credentials_name_the_alternatives():
    with pytest.raises(InvalidValueError, match=r"must contain email\+api_token or oauth_token"):
        validate_credentials("zendesk", {"email": "agent@example.com"})


def test_unknown_credential_named_without_value():
    with pytest.raises(InvalidValueError) as raised:
        validate_credentials("freshdesk", {"api_key": "k", "password": "hunter2-secret"})
    assert raised.value.field == "credentials.password"
    assert "hunter2-secret" not in str(raised.value)


def test_unknown_option_lists_known_ones():
    with pytest.raises(InvalidValueError, match="options.updated_since is not an option of zendesk") as raised:
        validate_options("zendesk", {"updated_since": "2024-01-01T00:00:00Z"})
    assert raised.value.field == "options.updated_since"


def test_options_get_default_includes():
    assert validate_options("freshdesk", {}) == {"include": ["conversations"]}


def test_custom_status_code_must_be_ascii_digits():
    with pytest.raises(InvalidValueError, match="is not a custom status code") as raised:
        validate_options("freshdesk", {"custom_statuses": {"\u00b2": "on_hold"}})
    assert raised.value.field == "options.custom_statuses.\u00b2"


def test_conflict_policy_rejects_unknown_winner():
    with pytest.raises(InvalidValueError, match='options.conflict_policy.status must be "tool" or "hub"'):
        validate_options("zendesk", {"conflict_policy": {"status": "newest"}})


def test_connection_class_is_registered_kind(hub_app, settings):
    connection = add_connection(hub_app, settings)

    history = hub_app.history(Connection, connection.id)

    assert history[0]["type"] == "connection.created"
    assert history[0]["aggregate_kind"] == "connection"


def test_source_name_cannot_change(hub_app, settings):
    connection = add_connection(hub_app, settings)

    with pytest.raises(InvalidValueError, match="options.source_name cannot change from 'zendesk'") as raised:
        update_connection(hub_app, ADMIN, connection.id, {"options": {"source_name": "desk"}}, settings=settings)
    assert raised.value.field == "options.source_name"
