"""Idempotency-Key: repeats return the original response and record nothing."""

from __future__ import annotations

from tests.api.conftest import bearer, build_app, hub_of, open_ticket

TICKETS = "/api/v1/tickets"


def event_count(client, ticket_id, headers):
    return len(client.get(f"{TICKETS}/{ticket_id}/events?limit=500", headers=headers).get_json()["items"])


def test_repeated_intake_returns_original_response(client, agent):
    headers = {**agent, "Idempotency-Key": "intake-1"}
    body = {"subject": "Card declined", "channel": "web"}

    first = client.post(TICKETS, json=body, headers=headers)
    second = client.post(TICKETS, json=body, headers=headers)

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.data == first.data
    assert second.headers["Location"] == first.headers["Location"]
    assert second.headers["Idempotent-Replayed"] == "true"
    assert event_count(client, first.get_json()["id"], agent) == 1


def test_repeated_command_returns_original_response(client, agent):
    ticket = open_ticket(client, agent)
    headers = {**agent, "Idempotency-Key": "classify-1"}

    first = client.post(f"{TICKETS}/{ticket['id']}/classify", json={"category": "billing"}, headers=headers)
    client.post(f"{TICKETS}/{ticket['id']}/prioritize", json={"priority": "low"}, headers=agent)
    second = client.post(f"{TICKETS}/{ticket['id']}/classify", json={"category": "billing"}, headers=headers)

    assert second.status_code == 200
    assert second.data == first.data
    assert second.get_json()["version"] == 2
    assert event_count(client, ticket["id"], agent) == 3


def test_key_order_in_body_does_not_matter(client, agent):
    headers = {**agent, "Idempotency-Key": "intake-2", "Content-Type": "application/json"}

    first = client.post(TICKETS, data='{"subject": "A", "channel": "web"}', headers=headers)
    second = client.post(TICKETS, data='{"channel": "web", "subject": "A"}', headers=headers)

    assert second.status_code == 201
    assert second.data == first.data


def test_same_key_with_other_body_is_422(client, agent):
    headers = {**agent, "Idempotency-Key": "intake-3"}
    client.post(TICKETS, json={"subject": "First"}, headers=headers)

    response = client.post(TICKETS, json={"subject": "Second"}, headers=headers)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "idempotency_key_reused"
    assert list(error["fields"]) == ["Idempotency-Key"]


def test_same_key_on_other_path_is_422(client, agent):
    ticket = open_ticket(client, agent)
    headers = {**agent, "Idempotency-Key": "shared"}
    client.post(f"{TICKETS}/{ticket['id']}/close", json={}, headers=headers)

    response = client.post(f"{TICKETS}/{ticket['id']}/reopen", json={}, headers=headers)

    assert response.status_code == 422
    assert event_count(client, ticket["id"], agent) == 2


def test_keys_are_scoped_to_the_token(client, tokens):
    body = {"subject": "Same key, two tokens"}

    first = client.post(TICKETS, json=body, headers=bearer(tokens["agent"], **{"Idempotency-Key": "k"}))
    second = client.post(TICKETS, json=body, headers=bearer(tokens["integration"], **{"Idempotency-Key": "k"}))

    assert first.status_code == 201
    assert second.status_code == 201
    assert second.get_json()["id"] != first.get_json()["id"]


def test_failed_request_does_not_use_up_key(client, agent):
    ticket = open_ticket(client, agent)
    client.post(f"{TICKETS}/{ticket['id']}/close", json={}, headers=agent)
    headers = {**agent, "Idempotency-Key": "classify-after-reopen"}

    refused = client.post(f"{TICKETS}/{ticket['id']}/classify", json={"category": "billing"}, headers=headers)
    client.post(f"{TICKETS}/{ticket['id']}/reopen", json={}, headers=agent)
    accepted = client.post(f"{TICKETS}/{ticket['id']}/classify", json={"category": "billing"}, headers=headers)

    assert refused.status_code == 409
    assert accepted.status_code == 200
    assert accepted.get_json()["category"] == "billing"


def test_key_without_stored_response_still_records_once(api_app, client, agent):
    ticket = open_ticket(client, agent)
    headers = {**agent, "Idempotency-Key": "lost-response"}
    first = client.post(f"{TICKETS}/{ticket['id']}/classify", json={"category": "billing"}, headers=headers)
    # Lose the stored response, as if the process had stopped right after the write.
    hub_of(api_app).tables.change("DELETE FROM {schema}hub_api_idempotency")

    second = client.post(f"{TICKETS}/{ticket['id']}/classify", json={"category": "billing"}, headers=headers)

    assert second.status_code == 200
    assert second.get_json() == first.get_json()
    assert event_count(client, ticket["id"], agent) == 2


def test_intake_key_without_stored_response_still_records_once(api_app, client, agent):
    headers = {**agent, "Idempotency-Key": "lost-intake"}
    first = client.post(TICKETS, json={"subject": "Once"}, headers=headers)
    hub_of(api_app).tables.change("DELETE FROM {schema}hub_api_idempotency")

    second = client.post(TICKETS, json={"subject": "Once"}, headers=headers)

    assert second.status_code == 201
    assert second.get_json() == first.get_json()


def test_stored_response_survives_restart(database_url):
    first_app = build_app(database_url)
    _, secret = hub_of(first_app).tokens.create("agent", "restart-bot")
    headers = bearer(secret, **{"Idempotency-Key": "across-restart"})
    first = first_app.test_client().post(TICKETS, json={"subject": "Before restart"}, headers=headers)
    hub_of(first_app).close()

    second_app = build_app(database_url)
    try:
        second = second_app.test_client().post(TICKETS, json={"subject": "Before restart"}, headers=headers)
    finally:
        hub_of(second_app).close()

    assert second.status_code == 201
    assert second.data == first.data
    assert second.headers["Idempotent-Replayed"] == "true"


def test_invalid_key_is_rejected(client, agent):
    response = client.post(TICKETS, json={"subject": "x"}, headers={**agent, "Idempotency-Key": "has space"})

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["Idempotency-Key"]
