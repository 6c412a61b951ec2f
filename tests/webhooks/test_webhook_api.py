"""``/api/v1/webhooks`` over Flask's test client, with receivers on loopback."""

import base64
import time
from datetime import datetime, timedelta, timezone
from uuid import UUID

import pytest
from standardwebhooks import Webhook

from hub.web import create_app
from hub.web.services import EXTENSION_NAME
from webhooks.api import components_for
from webhooks.worker import DeliveryWorker

ESCALATION = {
    "level": 2, "reason": "Client cannot invoice", "owner": "duty-manager",
    "promised_by": "2030-01-01T12:00:00+00:00",
}


def build(tmp_path, monkeypatch, *, allow_private=True, embedded=False):
    monkeypatch.setenv("HUB_WEBHOOKS_ALLOW_PRIVATE", "1" if allow_private else "0")
    monkeypatch.delenv("HUB_CIPHER_KEY", raising=False)
    return create_app({
        "TESTING": True, "DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3", "PERSISTENCE_ENV": {},
        "RUN_PROJECTIONS": embedded, "PROJECTION_POLL_INTERVAL": 0.05,
    })


@pytest.fixture
def flask_app(tmp_path, monkeypatch):
    app = build(tmp_path, monkeypatch)
    yield app
    app.extensions[EXTENSION_NAME].close()


@pytest.fixture
def client(flask_app):
    return flask_app.test_client()


def token(app, role):
    return {"Authorization": f"Bearer {app.extensions[EXTENSION_NAME].tokens.create(role, f'{role}-bot')[1]}"}


@pytest.fixture
def admin(flask_app):
    return token(flask_app, "admin")


def subscribe(client, admin, url, event_types=("*",)):
    response = client.post(
        "/api/v1/webhooks", json={"url": url, "event_types": list(event_types), "description": "Ops"},
        headers=admin,
    )
    assert response.status_code == 201, response.get_json()
    return response.get_json()


def deliver(app):
    """Run a delivery worker pass on the app's store, as a worker process would."""
    hub = app.extensions[EXTENSION_NAME]
    service = components_for(hub).service
    service.wake()
    worker = DeliveryWorker(hub.application, service.outbox, service.secret_box, allow_private=True)
    try:
        while worker.run_once():
            pass
    finally:
        worker.close()


def test_subscribe_returns_id_and_secret(client, admin):
    body = subscribe(client, admin, "http://127.0.0.1:9/hooks", ["ticket.escalated", "sla.breached"])

    key = base64.b64decode(body["secret"].removeprefix("whsec_"))
    assert body["secret"].startswith("whsec_")
    assert 24 <= len(key) <= 64
    assert UUID(body["id"])
    assert body["event_types"] == ["ticket.escalated", "sla.breached"]
    assert body["enabled"] is True


def test_reads_never_return_the_secret(client, admin):
    created = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    listed = client.get("/api/v1/webhooks", headers=admin)
    read = client.get(f"/api/v1/webhooks/{created['id']}", headers=admin)

    assert [item["id"] for item in listed.get_json()["items"]] == [created["id"]]
    assert created["secret"] not in listed.get_data(as_text=True)
    assert created["secret"] not in read.get_data(as_text=True)
    assert "secret" not in read.get_json()
    assert read.headers["ETag"] == '"1"'


def test_unknown_event_type_is_rejected(client, admin):
    response = client.post(
        "/api/v1/webhooks", json={"url": "http://127.0.0.1:9/x", "event_types": ["ticket.escalatd"]}, headers=admin
    )

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert "ticket.escalatd" in error["message"]
    assert list(error["fields"]) == ["event_types"]


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://10.0.0.1/hooks", "a private address"),
        ("http://localhost:8080/hooks", "a loopback name"),
        ("http://127.0.0.1:8080/hooks", "a loopback address"),
        ("http://169.254.169.254/latest/meta-data", "a cloud metadata address"),
        ("file:///etc/passwd", "Use an http:// or https:// URL"),
    ],
)
def test_guard_rejects_unsafe_urls(tmp_path, monkeypatch, url, reason):
    app = build(tmp_path, monkeypatch, allow_private=False)
    try:
        response = app.test_client().post(
            "/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=token(app, "admin")
        )
    finally:
        app.extensions[EXTENSION_NAME].close()

    assert response.status_code == 422
    assert reason in response.get_json()["error"]["message"]
    assert list(response.get_json()["error"]["fields"]) == ["url"]


def test_metadata_address_is_rejected_with_private_receivers_allowed(client, admin):
    response = client.post(
        "/api/v1/webhooks", json={"url": "http://169.254.169.254/", "event_types": ["*"]}, headers=admin
    )

    assert response.status_code == 422
    assert "rejected even with HUB_WEBHOOKS_ALLOW_PRIVATE=1" in response.get_json()["error"]["message"]


@pytest.mark.parametrize("url", ["http://user:s3cret@127.0.0.1:9/hooks", "http://s3cret@127.0.0.1:9/hooks"])
def test_url_with_credentials_is_rejected(client, admin, url):
    response = client.post("/api/v1/webhooks", json={"url": url, "event_types": ["*"]}, headers=admin)

    error = response.get_json()["error"]
    assert response.status_code == 422
    assert list(error["fields"]) == ["url"]
    assert error["message"].startswith("Webhook URL for host '127.0.0.1' contains a user name or password. Remove them")
    assert "s3cret" not in response.get_data(as_text=True)
    assert client.get("/api/v1/webhooks", headers=admin).get_json()["items"] == []


def test_patch_to_url_with_credentials_is_rejected(client, admin):
    created = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    response = client.patch(
        f"/api/v1/webhooks/{created['id']}", json={"url": "http://user:s3cret@127.0.0.1:9/hooks"}, headers=admin
    )

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["url"]
    listed = client.get("/api/v1/webhooks", headers=admin).get_json()["items"]
    assert listed[0]["url"] == "http://127.0.0.1:9/hooks"


@pytest.mark.parametrize("role", ["agent", "integration", "analyst", "auditor"])
def test_other_roles_may_not_manage_webhooks(flask_app, client, role):
    response = client.get("/api/v1/webhooks", headers=token(flask_app, role))

    assert response.status_code == 403


def test_patch_changes_settings_and_disables(client, admin):
    created = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    response = client.patch(
        f"/api/v1/webhooks/{created['id']}",
        json={"event_types": ["ticket.reopened"], "enabled": False}, headers={**admin, "If-Match": '"1"'},
    )

    body = response.get_json()
    assert response.status_code == 200
    assert body["event_types"] == ["ticket.reopened"]
    assert body["enabled"] is False
    assert body["disabled_reason"] == "disabled by agent admin-bot"
    assert response.headers["ETag"] == '"3"'
    listed = client.get("/api/v1/webhooks", headers=admin).get_json()["items"]
    assert listed[0]["enabled"] is False


@pytest.mark.parametrize("enabled", ["yes", "false", 0, 1])
def test_patch_enabled_takes_only_json_booleans(client, admin, enabled):
    created = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    response = client.patch(f"/api/v1/webhooks/{created['id']}", json={"enabled": enabled}, headers=admin)

    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"enabled": ["Not a JSON boolean; send true or false."]}
    listed = client.get("/api/v1/webhooks", headers=admin).get_json()["items"]
    assert listed[0]["enabled"] is True


def test_patch_with_a_stale_version_fails(client, admin):
    created = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    response = client.patch(
        f"/api/v1/webhooks/{created['id']}", json={"description": "x"}, headers={**admin, "If-Match": '"5"'}
    )

    assert response.status_code == 412


def test_delete_hides_the_endpoint(client, admin):
    created = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    deleted = client.delete(f"/api/v1/webhooks/{created['id']}", headers=admin)

    assert deleted.status_code == 204
    assert client.get(f"/api/v1/webhooks/{created['id']}", headers=admin).status_code == 404
    assert client.get("/api/v1/webhooks", headers=admin).get_json()["items"] == []


def test_rotation_returns_a_new_secret_and_its_overlap(client, admin):
    created = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    rotated = client.post(f"/api/v1/webhooks/{created['id']}/rotate-secret", headers=admin).get_json()

    expires_at = datetime.fromisoformat(rotated["previous_secret_expires_at"])
    assert rotated["secret"].startswith("whsec_")
    assert rotated["secret"] != created["secret"]
    assert timedelta(hours=23, minutes=59) < expires_at - datetime.now(timezone.utc) <= timedelta(hours=24)


def test_ticket_events_reach_the_subscriber_signed(flask_app, client, admin, receivers):
    receiver = receivers()
    endpoint = subscribe(client, admin, receiver.url(), ["ticket.escalated"])
    ticket = client.post("/api/v1/tickets", json={"subject": "Invoices fail", "channel": "email"}, headers=admin)
    ticket_id = ticket.get_json()["id"]
    escalated = client.post(f"/api/v1/tickets/{ticket_id}/escalations", json=ESCALATION, headers=admin)

    deliver(flask_app)

    assert escalated.status_code == 200, escalated.get_json()
    [request] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(request["body"], request["headers"])
    assert payload["type"] == "ticket.escalated"
    assert payload["data"]["ticket_id"] == ticket_id
    assert payload["data"]["owner"] == "duty-manager"


def test_deliveries_list_attempts_and_next_time(flask_app, client, admin, receivers):
    receiver = receivers(lambda number, body: (503, {"Content-Type": "text/plain"}, "x" * 3000))
    endpoint = subscribe(client, admin, receiver.url(), ["ticket.opened"])
    client.post("/api/v1/tickets", json={"subject": "Invoices fail", "channel": "email"}, headers=admin)

    deliver(flask_app)
    response = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries", headers=admin)

    [message] = response.get_json()["items"]
    [attempt] = message["attempts"]
    assert message["id"] == receiver.requests[0]["headers"]["webhook-id"]
    assert message["state"] == "pending"
    assert datetime.fromisoformat(message["next_attempt_at"]) > datetime.fromisoformat(attempt["attempted_at"])
    assert attempt["status"] == 503
    assert attempt["response_body"] == "x" * 1024
    assert attempt["latency_ms"] >= 0
    assert attempt["error"] is None


def test_deliveries_pages_with_a_cursor(flask_app, client, admin):
    endpoint = subscribe(client, admin, "http://127.0.0.1:9/hooks", ["ticket.opened"])
    for number in range(3):
        client.post("/api/v1/tickets", json={"subject": f"Ticket {number}", "channel": "email"}, headers=admin)
    components_for(flask_app.extensions[EXTENSION_NAME]).service.wake()

    first = client.get(f"/api/v1/webhooks/{endpoint['id']}/deliveries?limit=2", headers=admin).get_json()
    second = client.get(
        f"/api/v1/webhooks/{endpoint['id']}/deliveries?limit=2&cursor={first['next_cursor']}", headers=admin
    ).get_json()

    assert len(first["items"]) == 2
    assert len(second["items"]) == 1
    assert second["next_cursor"] is None
    ids = [item["id"] for item in first["items"] + second["items"]]
    assert len(set(ids)) == 3


def test_replay_delivers_events_from_before_the_subscription(flask_app, client, admin, receivers):
    receiver = receivers()
    since = datetime.now(timezone.utc) - timedelta(seconds=1)
    ticket = client.post("/api/v1/tickets", json={"subject": "Earlier", "channel": "email"}, headers=admin)
    endpoint = subscribe(client, admin, receiver.url(), ["ticket.opened"])
    until = datetime.now(timezone.utc)

    replayed = client.post(
        f"/api/v1/webhooks/{endpoint['id']}/replay",
        json={"since": since.isoformat(), "until": until.isoformat()}, headers=admin,
    )
    deliver(flask_app)
    again = client.post(
        f"/api/v1/webhooks/{endpoint['id']}/replay",
        json={"since": since.isoformat(), "until": until.isoformat()}, headers=admin,
    )
    deliver(flask_app)

    assert replayed.status_code == 202
    assert replayed.get_json() == {"queued": 1, "requeued": 0, "unchanged": 0}
    assert again.get_json() == {"queued": 0, "requeued": 1, "unchanged": 0}
    first, second = receiver.requests
    assert first["headers"]["webhook-id"] == second["headers"]["webhook-id"]
    payload = Webhook(endpoint["secret"]).verify(second["body"], second["headers"])
    assert payload["data"]["ticket_id"] == ticket.get_json()["id"]


def test_replay_rejects_a_reversed_window(client, admin):
    endpoint = subscribe(client, admin, "http://127.0.0.1:9/hooks")

    response = client.post(
        f"/api/v1/webhooks/{endpoint['id']}/replay",
        json={"since": "2024-03-02T00:00:00+00:00", "until": "2024-03-01T00:00:00+00:00"}, headers=admin,
    )

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["until"]


def test_test_message_is_delivered_and_verifies(flask_app, client, admin, receivers):
    receiver = receivers()
    endpoint = subscribe(client, admin, receiver.url(), ["sla.breached"])

    response = client.post(f"/api/v1/webhooks/{endpoint['id']}/test", headers=admin)
    deliver(flask_app)

    assert response.status_code == 202
    [request] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(request["body"], request["headers"])
    assert request["headers"]["webhook-id"] == response.get_json()["message_id"]
    assert payload["type"] == "endpoint.test"
    assert payload["data"]["endpoint_id"] == endpoint["id"]


def test_test_message_to_a_disabled_endpoint_conflicts(client, admin):
    endpoint = subscribe(client, admin, "http://127.0.0.1:9/hooks")
    client.patch(f"/api/v1/webhooks/{endpoint['id']}", json={"enabled": False}, headers=admin)

    response = client.post(f"/api/v1/webhooks/{endpoint['id']}/test", headers=admin)

    assert response.status_code == 409
    assert "enable it" in response.get_json()["error"]["message"]


def test_embedded_mode_delivers_without_a_worker_process(tmp_path, monkeypatch, receivers):
    receiver = receivers()
    app = build(tmp_path, monkeypatch, embedded=True)
    try:
        client = app.test_client()
        admin = token(app, "admin")
        endpoint = subscribe(client, admin, receiver.url(), ["ticket.opened"])
        client.post("/api/v1/tickets", json={"subject": "Printer on fire", "channel": "phone"}, headers=admin)

        deadline = time.monotonic() + 30
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        app.extensions[EXTENSION_NAME].close()

    [request] = receiver.requests
    payload = Webhook(endpoint["secret"]).verify(request["body"], request["headers"])
    assert payload["data"]["subject"] == "Printer on fire"
