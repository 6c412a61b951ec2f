"""Times sent to the API: nothing in the far future, nothing before the ticket existed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.api.conftest import TOKEN_NAMES


def test_far_future_occurred_at_is_rejected(client, agent):
    future = (datetime.now(timezone.utc) + timedelta(days=2)).replace(microsecond=0)

    response = client.post(
        "/api/v1/tickets", json={"subject": "From the future", "occurred_at": future.isoformat()}, headers=agent
    )

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["fields"] == {"occurred_at": [f"occurred_at {future.isoformat()} lies in the future; send the time the change happened at its source"]}


def test_reply_before_opening_is_rejected(client, agent, ticket):
    response = client.post(
        f"/api/v1/tickets/{ticket['id']}/replies",
        json={"body": "Early answer", "occurred_at": "2024-03-01T08:00:00+00:00"},
        headers=agent,
    )

    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {"occurred_at": [
        f"occurred_at 2024-03-01T08:00:00+00:00 is before ticket {ticket['id']} was opened "
        "at 2024-03-01T09:00:00+00:00; a change cannot precede the opening"
    ]}


def test_write_records_the_token_beside_an_explicit_actor(client, agent, ticket):
    response = client.post(
        f"/api/v1/tickets/{ticket['id']}/notes",
        json={"body": "On behalf of the night shift", "actor": {"kind": "agent", "id": "night-shift"}},
        headers=agent,
    )
    history = client.get(f"/api/v1/tickets/{ticket['id']}/events", headers=agent).get_json()["items"]

    assert response.status_code == 200
    assert history[-1]["actor"] == {"kind": "agent", "id": "night-shift"}
    assert history[-1]["source"]["recorded_by"] == TOKEN_NAMES["agent"]
