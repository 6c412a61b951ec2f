"""``/api/v1/connections`` over the Flask app, and a Zendesk-shaped server on loopback end to end."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import datetime, timedelta, timezone

import pytest
import responses
from connector_helpers import ZENDESK_URL, export_page, zendesk_ticket
from eventsourcing.utils import get_topic
from zendesk_server import RecordedZendesk, recorded_pages, serve

from hub.domain import Ticket, external_uuid
from hub.web import create_app

WEBHOOK_SECRET = "dGhpcyBpcyBhIHNpZ25pbmcgc2VjcmV0"
CREATE_BODY = {
    "kind": "zendesk",
    "base_url": ZENDESK_URL,
    "credentials": {"email": "agent@example.com", "api_token": "zd-secret-token-1", "webhook_secret": WEBHOOK_SECRET},
    "schedule": {"every_minutes": 15},
    "options": {"include": []},
}


class Api:
    """A test client with one token per role."""

    def __init__(self, flask_app) -> None:
        self.flask_app = flask_app
        self.client = flask_app.test_client()
        tokens = flask_app.extensions["hub"].tokens
        self.headers = {
            role: {"Authorization": f"Bearer {tokens.create(role, f'{role}-token')[1]}"}
            for role in ("admin", "integration", "agent", "auditor")
        }

    def post(self, path: str, body: dict | None = None, role: str = "admin"):
        return self.client.post(path, json=body or {}, headers=self.headers[role])

    def get(self, path: str, role: str = "admin"):
        return self.client.get(path, headers=self.headers[role])

    @property
    def hub(self):
        return self.flask_app.extensions["hub"]


@pytest.fixture
def api(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_CIPHER_KEY", raising=False)
    monkeypatch.setenv("HUB_CONNECTORS_ALLOW_PRIVATE", "1")
    # A SQLite file store keeps its cipher key in a file beside the database.
    flask_app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3", "RUN_PROJECTIONS": False})
    yield Api(flask_app)
    runtime = flask_app.extensions.get("hub.connectors")
    if runtime is not None:
        runtime.executor.shutdown(wait=True)
    flask_app.extensions["hub"].close()


def test_create_returns_connection_without_credentials(api):
    response = api.post("/api/v1/connections", CREATE_BODY)

    body = response.get_json()
    assert response.status_code == 201
    assert response.headers["Location"] == f"/api/v1/connections/{body['id']}"
    assert body["credential_fields"] == ["api_token", "email", "webhook_secret"]
    assert "credentials" not in body
    assert "zd-secret-token-1" not in response.get_data(as_text=True)


def test_secret_never_in_reads_or_event_stream(api):
    connection_id = api.post("/api/v1/connections", CREATE_BODY).get_json()["id"]

    texts = [
        api.get("/api/v1/connections").get_data(as_text=True),
        api.get(f"/api/v1/connections/{connection_id}").get_data(as_text=True),
        api.get("/api/v1/events", role="auditor").get_data(as_text=True),
    ]

    for text in texts:
        assert "zd-secret-token-1" not in text
        assert WEBHOOK_SECRET not in text


def test_list_and_read(api):
    connection_id = api.post("/api/v1/connections", CREATE_BODY).get_json()["id"]

    listed = api.get("/api/v1/connections", role="auditor").get_json()
    read = api.get(f"/api/v1/connections/{connection_id}", role="integration")

    assert [item["id"] for item in listed["items"]] == [connection_id]
    assert read.get_json()["schedule"] == {"every_minutes": 15}
    assert read.headers["ETag"] == '"1"'


def test_agent_cannot_create_connection(api):
    response = api.post("/api/v1/connections", CREATE_BODY, role="agent")

    assert response.status_code == 403
    assert response.get_json()["error"]["code"] == "forbidden"


def test_invalid_schedule_names_field(api):
    response = api.post("/api/v1/connections", {**CREATE_BODY, "schedule": "every day"})

    error = response.get_json()["error"]
    assert response.status_code == 422
    assert list(error["fields"]) == ["schedule"]
    assert "is not a valid cron expression" in error["message"]


def test_private_url_needs_the_setting(api, monkeypatch):
    monkeypatch.setenv("HUB_CONNECTORS_ALLOW_PRIVATE", "0")
    strict = create_app({"DATABASE_URL": api.hub.settings.database_url, "RUN_PROJECTIONS": False})
    try:
        client = strict.test_client()
        response = client.post("/api/v1/connections", json={**CREATE_BODY, "base_url": "http://127.0.0.1:9"},
                               headers=api.headers["admin"])
    finally:
        strict.extensions["hub"].close()

    assert response.status_code == 422
    assert response.get_json()["error"]["fields"]["base_url"][0].endswith("or set HUB_CONNECTORS_ALLOW_PRIVATE=1 for a test server")


def test_update_and_rotate(api):
    connection_id = api.post("/api/v1/connections", CREATE_BODY).get_json()["id"]

    patched = api.client.patch(f"/api/v1/connections/{connection_id}", json={"schedule": "*/5 * * * *"},
                               headers=api.headers["admin"])
    rotated = api.client.put(f"/api/v1/connections/{connection_id}/credentials",
                             json={"credentials": {"oauth_token": "zd-oauth-2"}}, headers=api.headers["admin"])

    assert patched.get_json()["schedule"] == {"cron": "*/5 * * * *"}
    assert rotated.get_json()["credential_fields"] == ["oauth_token"]
    assert "zd-oauth-2" not in rotated.get_data(as_text=True)


@responses.activate(assert_all_requests_are_fired=False)
def test_sync_answers_counts_and_is_listed(api):
    responses.add_passthru("http://localhost")
    connection_id = api.post("/api/v1/connections", CREATE_BODY).get_json()["id"]
    responses.get(ZENDESK_URL + "/api/v2/incremental/tickets/cursor.json",
                  json=export_page([zendesk_ticket(500, "2024-01-01T10:00:00Z", status="open")], "c1", True))

    response = api.post(f"/api/v1/connections/{connection_id}/sync", role="integration")
    runs = api.get(f"/api/v1/connections/{connection_id}/syncs").get_json()["items"]

    assert response.status_code == 200
    assert response.get_json()["status"] == "completed"
    assert response.get_json()["counts"]["tickets_created"] == 1
    assert [(run["status"], run["trigger"], run["pages"]) for run in runs] == [("completed", "api", 1)]


@responses.activate
def test_sync_with_rejected_credentials_answers_502(api):
    connection_id = api.post("/api/v1/connections", CREATE_BODY).get_json()["id"]
    responses.get(ZENDESK_URL + "/api/v2/incremental/tickets/cursor.json",
                  json={"error": "Couldn't authenticate you"}, status=401)

    response = api.post(f"/api/v1/connections/{connection_id}/sync")
    runs = api.get(f"/api/v1/connections/{connection_id}/syncs").get_json()["items"]

    error = response.get_json()["error"]
    assert response.status_code == 502
    assert error["code"] == "connector_auth_failed"
    assert "check the email and API token" in error["message"]
    assert runs[0]["status"] == "failed"
    assert runs[0]["error"] == error["message"]


def test_sync_of_unknown_connection_is_404(api):
    response = api.post("/api/v1/connections/0f8fad5b-d9cb-469f-a165-70867728950e/sync")

    assert response.status_code == 404


# Webhooks.


def signed_headers(body: bytes, timestamp: str, secret: str = WEBHOOK_SECRET) -> dict[str, str]:
    digest = hmac.new(secret.encode(), timestamp.encode() + body, hashlib.sha256).digest()
    return {
        "X-Zendesk-Webhook-Signature": base64.b64encode(digest).decode(),
        "X-Zendesk-Webhook-Signature-Timestamp": timestamp,
        "Content-Type": "application/json",
    }


def now_text(offset_seconds: int = 0) -> str:
    moment = datetime.now(timezone.utc) + timedelta(seconds=offset_seconds)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


@responses.activate
def test_signed_webhook_starts_a_sync(api):
    connection_id = api.post("/api/v1/connections", CREATE_BODY).get_json()["id"]
    responses.get(ZENDESK_URL + "/api/v2/incremental/tickets/cursor.json",
                  json=export_page([zendesk_ticket(501, "2024-01-01T10:00:00Z")], "c1", True))
    body = json.dumps({"ticket_id": 501}).encode()

    response = api.client.post(f"/api/v1/connections/{connection_id}/webhook", data=body,
                               headers=signed_headers(body, now_text()))
    (future,) = api.flask_app.extensions["hub.connectors"].futures

    assert response.status_code == 202
    assert response.get_json() == {"accepted": True, "sync": "queued"}
    assert future.result(timeout=30) == "completed"
    runs = api.get(f"/api/v1/connections/{connection_id}/syncs").get_json()["items"]
    assert runs[0]["trigger"] == "webhook"


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"signature": "wrong"},
        {"secret": "another-secret"},
        {"timestamp_offset": -600},
        {"timestamp": "yesterday"},
        {"timestamp": "\u00b2"},
        {"timestamp": "99999999999999999999"},
    ],
)
def test_unverified_webhook_is_rejected(api, headers):
    connection_id = api.post("/api/v1/connections", CREATE_BODY).get_json()["id"]
    body = b'{"ticket_id": 501}'
    sent = signed_headers(body, headers.get("timestamp") or now_text(headers.get("timestamp_offset", 0)),
                          headers.get("secret", WEBHOOK_SECRET))
    if "signature" in headers:
        sent["X-Zendesk-Webhook-Signature"] = headers["signature"]
    if not headers:
        sent = {"Content-Type": "application/json"}

    response = api.client.post(f"/api/v1/connections/{connection_id}/webhook", data=body, headers=sent)

    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "invalid_signature"
    assert api.flask_app.extensions.get("hub.connectors") is None


# End to end against a Zendesk-shaped server on loopback.


def ticket_event_count(api) -> int:
    app = api.hub.application
    opened = app.recorder.select_notifications(1, 10_000, topics=[get_topic(Ticket.Opened)])
    return sum(len(app.history(Ticket, n.originator_id)) for n in opened)


def test_loopback_zendesk_sync_push_and_no_echo(api):
    pages = recorded_pages(6)
    expected_ids = [page["tickets"][0]["id"] for page in pages]
    state = RecordedZendesk(pages, "agent@example.com", "zd-secret-token-1")
    with serve(state) as base_url:
        body = {**CREATE_BODY, "base_url": base_url, "options": {"include": ["audits"]}}
        connection_id = api.post("/api/v1/connections", body).get_json()["id"]

        # First sync: every recorded ticket arrives and the API returns it.
        first = api.post(f"/api/v1/connections/{connection_id}/sync").get_json()
        ticket_id = external_uuid("ticket", "zendesk", str(expected_ids[0]))
        ticket = api.get(f"/api/v1/tickets/{ticket_id}", role="agent").get_json()
        events = api.get(f"/api/v1/tickets/{ticket_id}/events", role="agent").get_json()["items"]
        assert first["counts"]["tickets_created"] == len(expected_ids) == 6
        assert ticket["external"]["source"] == "zendesk"
        assert ticket["external"]["id"] == str(expected_ids[0])
        assert [event["type"] for event in events] == ["ticket.opened"]

        # Second sync: resumes at the stored cursor and adds nothing.
        count = ticket_event_count(api)
        second = api.post(f"/api/v1/connections/{connection_id}/sync").get_json()
        assert second["counts"]["events"] == 0
        assert ticket_event_count(api) == count
        assert state.requests[-1][2] == {"cursor": [pages[-1]["after_cursor"]]}

        # An agent's reply and status change in the hub reach the tool once.
        api.post(f"/api/v1/tickets/{ticket_id}/replies", {"body": "A fix is on its way."}, role="agent")
        api.post(f"/api/v1/tickets/{ticket_id}/status", {"status": "pending"}, role="agent")
        third = api.post(f"/api/v1/connections/{connection_id}/sync").get_json()
        puts = [request for request in state.requests if request[0] == "PUT"]
        assert [put[3] for put in puts] == [
            {"ticket": {"comment": {"body": "A fix is on its way.", "public": True}}},
            {"ticket": {"status": "pending"}},
        ]
        assert third["counts"]["pushed"] == 2

        # The tool's copy of those changes comes back on the next export and is not recorded again.
        count = ticket_event_count(api)
        fourth = api.post(f"/api/v1/connections/{connection_id}/sync").get_json()
        assert fourth["counts"]["records"] == 1
        assert fourth["counts"]["events"] == 0
        assert ticket_event_count(api) == count
        assert len([request for request in state.requests if request[0] == "PUT"]) == 2


def test_run_scheduler_starts_embedded_jobs(tmp_path, monkeypatch):
    monkeypatch.delenv("HUB_CIPHER_KEY", raising=False)
    flask_app = create_app({"DATABASE_URL": f"sqlite:///{tmp_path}/hub.sqlite3", "RUN_PROJECTIONS": False,
                            "RUN_SCHEDULER": True})
    hub_scheduler = flask_app.extensions["hub.scheduler"]
    try:
        job_ids = {job.id for job in hub_scheduler.scheduler.get_jobs()}
        assert hub_scheduler.scheduler.running
        assert {"connection-schedules", "sla-clock", "report:daily", "report:monthly"} <= job_ids
    finally:
        hub_scheduler.shutdown()
        flask_app.extensions["hub"].close()
    assert not hub_scheduler.scheduler.running
