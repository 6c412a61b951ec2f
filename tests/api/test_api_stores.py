"""The same API on SQLite and on PostgreSQL: writes, past versions, idempotency, list and views."""

from __future__ import annotations

from tests.api.conftest import bearer, hub_of


def test_ticket_lifecycle_on_each_store(any_store_app):
    hub = hub_of(any_store_app)
    client = any_store_app.test_client()
    headers = bearer(hub.tokens.create("integration", "sync")[1])

    created = client.post(
        "/api/v1/tickets", json={"subject": "Stores", "external": {"source": "zendesk", "id": "77"}},
        headers={**headers, "Idempotency-Key": "store-1"},
    )
    replayed = client.post(
        "/api/v1/tickets", json={"subject": "Stores", "external": {"source": "zendesk", "id": "77"}},
        headers={**headers, "Idempotency-Key": "store-1"},
    )
    ticket_id = created.get_json()["id"]
    classified = client.post(f"/api/v1/tickets/{ticket_id}/classify", json={"category": "sync"}, headers=headers)
    stale = client.post(
        f"/api/v1/tickets/{ticket_id}/close", json={}, headers={**headers, "If-Match": '"1"'}
    )
    hub.catch_up()
    listed = client.get("/api/v1/tickets", headers=headers).get_json()["items"]
    version_one = client.get(f"/api/v1/tickets/{ticket_id}?version=1", headers=headers)
    stream = client.get("/api/v1/events", headers=headers).get_json()

    assert created.status_code == 201
    assert replayed.data == created.data
    assert classified.get_json()["version"] == 2
    assert stale.status_code == 412
    assert version_one.get_json() == created.get_json()
    assert [item["id"] for item in listed] == [ticket_id]
    assert [item["type"] for item in stream["items"]] == ["ticket.opened", "ticket.classified"]
    assert client.get("/healthz").get_json()["projections"]["lag"] == 0
