"""The views over HTTP (KPIs, SLA clocks, escalations), the event stream and the health check."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from tests.api.conftest import bearer, hub_of, open_ticket


def post(client, path, body, headers):
    response = client.post(path, json=body, headers=headers)
    assert response.status_code in (200, 201), response.get_json()
    return response.get_json()


def reply_after(client, headers, priority, opened, replied):
    ticket = open_ticket(client, headers, occurred_at=opened)
    post(client, f"/api/v1/tickets/{ticket['id']}/prioritize", {"priority": priority, "occurred_at": opened}, headers)
    post(client, f"/api/v1/tickets/{ticket['id']}/replies", {"body": "Hello", "occurred_at": replied}, headers)
    return ticket


# KPIs.


@pytest.fixture
def kpi_tickets(api_app, client, agent):
    # First responses after 2 h and 4 h for the high tickets, 1 h for the low one.
    reply_after(client, agent, "high", "2024-03-01T09:00:00+00:00", "2024-03-01T11:00:00+00:00")
    reply_after(client, agent, "high", "2024-03-01T09:00:00+00:00", "2024-03-01T13:00:00+00:00")
    reply_after(client, agent, "low", "2024-03-02T09:00:00+00:00", "2024-03-02T10:00:00+00:00")
    hub_of(api_app).catch_up()


def test_kpis_grouped_by_priority(client, tokens, kpi_tickets):
    response = client.get("/api/v1/kpis?group_by=priority", headers=bearer(tokens["analyst"]))

    assert response.status_code == 200
    rows = {row["priority"]: row for row in response.get_json()["items"]}
    assert sorted(rows) == ["high", "low"]
    assert rows["high"]["tickets"] == 2
    assert rows["high"]["first_response_hours_mean"] == pytest.approx(3.0)
    assert rows["high"]["first_response_hours_p50"] == pytest.approx(3.0)
    assert rows["low"]["tickets"] == 1
    assert rows["low"]["first_response_hours_mean"] == pytest.approx(1.0)


def test_kpis_slice_and_period(client, agent, kpi_tickets):
    sliced = client.get("/api/v1/kpis?priority=low", headers=agent).get_json()["items"]
    windowed = client.get(
        f"/api/v1/kpis?since={quote('2024-03-02T00:00:00+00:00')}&until={quote('2024-03-03T00:00:00+00:00')}",
        headers=agent,
    ).get_json()["items"]

    assert [row["tickets"] for row in sliced] == [1]
    assert [row["tickets"] for row in windowed] == [1]


def test_kpis_by_day(client, agent, kpi_tickets):
    rows = client.get("/api/v1/kpis?group_by=day", headers=agent).get_json()["items"]

    assert {row["day"]: row["tickets"] for row in rows} == {"2024-03-01": 2, "2024-03-02": 1}


def test_kpis_reject_unknown_group(client, agent):
    response = client.get("/api/v1/kpis?group_by=colour", headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["group_by"]


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ({"since": "2024-03-02T00:00:00+00:00", "until": "2024-03-01T00:00:00+00:00"}, "until",
         "until 2024-03-01T00:00:00+00:00 is not after since 2024-03-02T00:00:00+00:00; pass an until later than since"),
        ({"since": "2024-03-01T00:00:00+00:00", "until": "2024-03-01T00:00:00+00:00"}, "until",
         "until 2024-03-01T00:00:00+00:00 is not after since 2024-03-01T00:00:00+00:00; pass an until later than since"),
        ({"month": "2016-13"}, "month", "month '2016-13' is invalid; use a UTC month such as 2024-03"),
        ({"day": "2016-02-30"}, "day", "day '2016-02-30' is invalid; use a date such as 2024-03-04"),
        ({"week": "2016-03-02"}, "week",
         "week '2016-03-02' is not a Monday; name a week by the date of its Monday, such as 2024-03-04"),
        ({"priority": "urgent"}, "priority", "priority 'urgent' is invalid; use one of critical, high, medium, low"),
    ],
)
def test_kpis_reject_invalid_slice(client, agent, query, field, message):
    response = client.get("/api/v1/kpis", query_string=query, headers=agent)

    assert response.status_code == 422
    assert response.get_json()["error"]["fields"] == {field: [message]}


# SLA clocks.


@pytest.fixture
def sla_tickets(api_app, client, admin):
    post(
        client, "/api/v1/sla-policies",
        {"name": "24x7", "targets": {"critical": {"first_response": 60}}, "occurred_at": "2024-01-01T00:00:00+00:00"},
        admin,
    )
    answered = reply_after(client, admin, "critical", "2024-03-01T09:00:00+00:00", "2024-03-01T09:30:00+00:00")
    silent = open_ticket(client, admin, occurred_at="2024-03-01T09:00:00+00:00")
    post(client, f"/api/v1/tickets/{silent['id']}/prioritize", {"priority": "critical", "occurred_at": "2024-03-01T09:00:00+00:00"}, admin)
    hub_of(api_app).catch_up()
    return answered["id"], silent["id"]


def sla_items(client, headers, query):
    response = client.get(f"/api/v1/sla?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return response.get_json()["items"]


def test_sla_met_target(client, agent, sla_tickets):
    answered, _ = sla_tickets

    items = sla_items(client, agent, "state=met")

    assert [(item["ticket_id"], item["target"]) for item in items] == [(answered, "first_response")]
    assert items[0]["due_at"].startswith("2024-03-01T10:00:00")


def test_sla_breached_target(client, agent, sla_tickets):
    _, silent = sla_tickets

    items = sla_items(client, agent, "state=breached")

    assert [(item["ticket_id"], item["target"]) for item in items] == [(silent, "first_response")]


def test_sla_rows_of_one_ticket(client, agent, sla_tickets):
    answered, _ = sla_tickets

    items = sla_items(client, agent, f"ticket_id={answered}")

    assert [item["ticket_id"] for item in items] == [answered]


def test_sla_rejects_unknown_state(client, agent):
    response = client.get("/api/v1/sla?state=late", headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["state"]


def test_sla_rejects_invalid_cursor(client, agent):
    response = client.get("/api/v1/sla?cursor=zzz", headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["cursor"]


# Escalations.


@pytest.fixture
def escalated(api_app, client, agent, ticket):
    post(
        client, f"/api/v1/tickets/{ticket['id']}/escalations",
        {"level": 2, "reason": "Payroll blocked", "owner": "duty", "promised_by": "2024-03-01T12:00:00+00:00",
         "occurred_at": "2024-03-01T10:00:00+00:00"},
        agent,
    )
    hub_of(api_app).catch_up()
    return ticket["id"]


def test_open_escalation_is_overdue(client, agent, escalated):
    items = client.get("/api/v1/escalations", headers=agent).get_json()["items"]

    assert [(item["ticket_id"], item["level"], item["owner"], item["overdue"]) for item in items] == [
        (escalated, 2, "duty", True),
    ]


def test_escalation_filters(client, agent, escalated):
    not_overdue = client.get("/api/v1/escalations?overdue=false", headers=agent).get_json()["items"]
    resolved = client.get("/api/v1/escalations?state=resolved", headers=agent).get_json()["items"]
    level_two = client.get("/api/v1/escalations?level=2", headers=agent).get_json()["items"]

    assert not_overdue == []
    assert resolved == []
    assert len(level_two) == 1


def crafted_cursor(values):
    return base64.urlsafe_b64encode(json.dumps(values).encode()).decode()


@pytest.mark.parametrize(
    ("path", "values"),
    [
        ("/api/v1/escalations", [1, 2, 3]),
        ("/api/v1/escalations", [None, {}, []]),
        ("/api/v1/sla", [1, 2, 3, 4]),
        ("/api/v1/sla", ["a", "b", "c", True]),
    ],
)
def test_view_cursor_with_wrong_types_is_422(client, agent, path, values):
    response = client.get(f"{path}?cursor={crafted_cursor(values)}", headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["cursor"]


def test_escalations_reject_invalid_cursor(client, agent):
    response = client.get("/api/v1/escalations?cursor=abc", headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["cursor"]


# The global event stream.


def test_stream_pages_through_every_event(client, tokens, agent):
    first = open_ticket(client, agent)
    post(client, f"/api/v1/tickets/{first['id']}/classify", {"category": "billing"}, agent)
    open_ticket(client, agent)
    auditor = bearer(tokens["auditor"])

    items, after = [], 0
    while True:
        page = client.get(f"/api/v1/events?after={after}&limit=2", headers=auditor).get_json()
        if not page["items"]:
            assert page["next_after"] == after
            break
        items.extend(page["items"])
        after = page["next_after"]

    assert [item["type"] for item in items] == ["ticket.opened", "ticket.classified", "ticket.opened"]
    assert [item["position"] for item in items] == [1, 2, 3]
    assert items[1]["aggregate_id"] == first["id"]
    assert after == 3


def test_stream_rejects_negative_after(client, tokens):
    response = client.get("/api/v1/events?after=-1", headers=bearer(tokens["auditor"]))

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["after"]


# Health.


def test_health_reports_lag_until_caught_up(api_app, client, agent):
    open_ticket(client, agent)
    open_ticket(client, agent)

    before = client.get("/healthz").get_json()
    hub_of(api_app).catch_up()
    after = client.get("/healthz").get_json()

    assert before["status"] == "ok"
    assert before["store"]["reachable"] is True
    assert before["store"]["position"] == 2
    assert before["projections"]["lag"] == 2
    assert before["projections"]["mode"] == "external"
    assert after["projections"]["lag"] == 0


def test_sla_pages_with_next_cursor(client, agent, sla_tickets):
    first = client.get("/api/v1/sla?limit=1", headers=agent).get_json()
    second = client.get(f"/api/v1/sla?limit=1&cursor={first['next_cursor']}", headers=agent).get_json()

    assert len(first["items"]) == 1
    assert len(second["items"]) == 1
    assert {first["items"][0]["ticket_id"], second["items"][0]["ticket_id"]} == set(sla_tickets)


def test_escalations_page_with_next_cursor(api_app, client, agent, escalated):
    other = open_ticket(client, agent, occurred_at="2024-03-02T09:00:00+00:00")
    post(
        client, f"/api/v1/tickets/{other['id']}/escalations",
        {"level": 1, "reason": "Slow", "owner": "duty", "promised_by": "2024-03-02T12:00:00+00:00",
         "occurred_at": "2024-03-02T10:00:00+00:00"},
        agent,
    )
    hub_of(api_app).catch_up()

    first = client.get("/api/v1/escalations?limit=1", headers=agent).get_json()
    second = client.get(f"/api/v1/escalations?limit=1&cursor={first['next_cursor']}", headers=agent).get_json()

    assert [item["ticket_id"] for item in first["items"] + second["items"]] == [escalated, other["id"]]
    assert second["next_cursor"] is None
