"""Tickets over HTTP: intake, every command, past versions, history and the list."""

from __future__ import annotations

from urllib.parse import quote

import pytest

from tests.api.conftest import TOKEN_NAMES, bearer, hub_of, open_ticket

TICKETS = "/api/v1/tickets"


def command(client, ticket_id, path, body, headers):
    return client.post(f"{TICKETS}/{ticket_id}/{path}", json=body, headers=headers)


def history_types(client, ticket_id, headers):
    response = client.get(f"{TICKETS}/{ticket_id}/events?limit=500", headers=headers)
    assert response.status_code == 200
    return [item["type"] for item in response.get_json()["items"]]


# Intake.


def test_intake_returns_ticket_with_location_and_etag(client, agent):
    response = client.post(
        TICKETS,
        json={
            "subject": "VPN drops every hour",
            "description": "Since Monday",
            "channel": "chat",
            "requester": {"id": "req-7", "name": "Ada", "email": "ada@example.com"},
            "client_account_id": "acme",
            "occurred_at": "2024-03-01T10:00:00+01:00",
        },
        headers=agent,
    )

    assert response.status_code == 201
    body = response.get_json()
    assert response.headers["Location"] == f"{TICKETS}/{body['id']}"
    assert response.headers["ETag"] == '"1"'
    assert body["version"] == 1
    assert body["status"] == "new"
    assert body["channel"] == "chat"
    assert body["requester"] == {"id": "req-7", "name": "Ada", "email": "ada@example.com"}
    assert body["opened_at"] == "2024-03-01T10:00:00+01:00"
    assert body["missing_fields"] == []


def test_intake_defaults_channel_to_api(client, agent):
    body = open_ticket(client, agent, channel="api")
    response = client.post(TICKETS, json={"subject": "No channel given"}, headers=agent)

    assert body["channel"] == "api"
    assert response.get_json()["channel"] == "api"


def test_intake_flags_missing_fields(client, agent):
    response = client.post(TICKETS, json={"subject": "Only a subject"}, headers=agent)

    assert response.get_json()["missing_fields"] == ["requester", "client_account_id", "description"]


def test_intake_records_token_name_as_actor(client, agent):
    ticket = open_ticket(client, agent)

    events = client.get(f"{TICKETS}/{ticket['id']}/events", headers=agent).get_json()["items"]

    assert events[0]["actor"] == {"kind": "agent", "id": TOKEN_NAMES["agent"]}
    assert events[0]["source"]["name"] == "api"


def test_intake_by_integration_records_integration_actor(client, tokens):
    headers = bearer(tokens["integration"])
    ticket = open_ticket(client, headers)

    events = client.get(f"{TICKETS}/{ticket['id']}/events", headers=headers).get_json()["items"]

    assert events[0]["actor"] == {"kind": "integration", "id": TOKEN_NAMES["integration"]}


def test_intake_records_explicit_actor(client, agent):
    ticket = open_ticket(client, agent, actor={"kind": "requester", "id": "req-7"})

    events = client.get(f"{TICKETS}/{ticket['id']}/events", headers=agent).get_json()["items"]

    assert events[0]["actor"] == {"kind": "requester", "id": "req-7"}


def test_explicit_system_actor_keeps_token_in_source(client, tokens):
    headers = bearer(tokens["integration"])
    ticket = open_ticket(client, headers, actor={"kind": "system", "id": "ceo"})

    events = client.get(f"{TICKETS}/{ticket['id']}/events", headers=headers).get_json()["items"]

    assert events[0]["actor"] == {"kind": "system", "id": "ceo"}
    assert events[0]["source"] == {
        "name": "api", "external_id": None, "external_event_id": None, "recorded_by": TOKEN_NAMES["integration"],
    }
    assert tokens["integration"] not in str(events)


def test_intake_rejects_naive_occurred_at(client, agent):
    response = client.post(TICKETS, json={"subject": "x", "occurred_at": "2024-03-01T10:00:00"}, headers=agent)

    assert response.status_code == 422
    error = response.get_json()["error"]
    assert error["code"] == "validation_failed"
    assert list(error["fields"]) == ["occurred_at"]


def test_intake_names_every_bad_field(client, agent):
    response = client.post(
        TICKETS,
        json={"channel": "fax", "requester": {"name": "no id"}, "colour": "blue"},
        headers=agent,
    )

    assert response.status_code == 422
    assert sorted(response.get_json()["error"]["fields"]) == ["channel", "colour", "requester.id", "subject"]


def test_intake_rejects_blank_subject(client, agent):
    response = client.post(TICKETS, json={"subject": "   "}, headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["subject"]


def test_intake_of_external_record_is_recorded_once(client, agent):
    body = {"subject": "From Zendesk", "external": {"source": "zendesk", "id": "4711"}}

    first = client.post(TICKETS, json=body, headers=agent)
    second = client.post(TICKETS, json=body, headers=agent)

    assert first.status_code == 201
    assert second.status_code == 200
    assert second.get_json()["id"] == first.get_json()["id"]
    assert history_types(client, first.get_json()["id"], agent) == ["ticket.opened"]


# Commands: each records its event and changes the state.

COMMAND_CASES = [
    ("classify", {"category": "billing", "subcategory": "export"}, "category", "billing", "ticket.classified"),
    ("prioritize", {"priority": "high"}, "priority_criterion", "revenue impact", "ticket.prioritized"),
    ("assign", {"group": "finance", "agent": "bo"}, "agent", "bo", "ticket.assigned"),
    ("replies", {"body": "Looking into it"}, "public_reply_count", 1, "ticket.agent_replied"),
    ("replies", {"body": "Call the bank", "public": False}, "public_reply_count", 0, "ticket.internal_note_added"),
    ("notes", {"body": "Customer is VIP"}, "public_reply_count", 0, "ticket.internal_note_added"),
    ("notes", {"body": "Visible note", "public": True}, "public_reply_count", 0, "ticket.public_note_added"),
    ("clarifications", {"body": "Which invoice?"}, "awaiting_agent_reply", False, "ticket.clarification_requested"),
    ("status", {"status": "on_hold"}, "status", "on_hold", "ticket.status_changed"),
    ("resolve", {"resolution_code": "fixed", "sop": "SOP-12"}, "status", "resolved", "ticket.resolved"),
    ("close", {"note": "Done"}, "status", "closed", "ticket.closed"),
    ("satisfaction", {"score": 5}, "satisfaction", {"score": 5, "scale": "1-5"}, "ticket.satisfaction_rated"),
    ("satisfaction", {"score": "bad", "scale": "good_bad"}, "satisfaction", {"score": "bad", "scale": "good_bad"}, "ticket.satisfaction_rated"),
    ("effort", {"score": 2}, "effort", {"score": 2, "scale": "1-7"}, "ticket.effort_scored"),
    ("knowledge", {"article_id": "kb-9"}, "knowledge_article_ids", ["kb-9"], "ticket.knowledge_used"),
    ("intake", {"client_account_id": "acme"}, "client_account_id", "acme", "ticket.intake_data_completed"),
]


@pytest.mark.parametrize(
    ("path", "body", "field", "expected", "event_type"), COMMAND_CASES,
    ids=[f"{case[0]}-{index}" for index, case in enumerate(COMMAND_CASES)],
)
def test_command_records_event_and_changes_state(client, agent, ticket, path, body, field, expected, event_type):
    response = command(client, ticket["id"], path, body, agent)

    assert response.status_code == 200, response.get_json()
    state = response.get_json()
    assert state["version"] == 2
    assert state[field] == expected
    assert response.headers["ETag"] == '"2"'
    assert history_types(client, ticket["id"], agent) == ["ticket.opened", event_type]


def test_requester_reply_records_requester_replied(client, agent, ticket):
    command(client, ticket["id"], "replies", {"body": "Any news?"}, agent)

    response = command(
        client, ticket["id"], "replies", {"body": "Still broken", "actor": {"kind": "requester", "id": "req-7"}}, agent
    )

    assert response.status_code == 200
    assert response.get_json()["awaiting_agent_reply"] is True
    assert history_types(client, ticket["id"], agent)[-1] == "ticket.requester_replied"


def test_requester_reply_cannot_be_internal(client, agent, ticket):
    response = command(
        client, ticket["id"], "replies",
        {"body": "secret", "public": False, "actor": {"kind": "requester", "id": "req-7"}}, agent,
    )

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["public"]


def test_escalation_update_and_resolve(client, agent, ticket):
    escalated = command(
        client, ticket["id"], "escalations",
        {"level": 2, "reason": "Payroll blocked", "owner": "duty-manager", "promised_by": "2024-03-01T12:00:00Z"},
        agent,
    )
    updated = command(client, ticket["id"], "escalations/update", {"note": "Vendor called", "level": 3}, agent)
    resolved = command(client, ticket["id"], "escalations/resolve", {"note": "Fixed"}, agent)

    assert escalated.get_json()["escalation"]["promised_by"] == "2024-03-01T12:00:00+00:00"
    assert updated.get_json()["escalation"]["level"] == 3
    assert updated.get_json()["escalation"]["owner"] == "duty-manager"
    assert resolved.get_json()["escalation"] is None
    assert resolved.get_json()["escalation_count"] == 1


def test_validate_confirms_resolution(client, agent, ticket):
    command(client, ticket["id"], "resolve", {}, agent)

    response = command(client, ticket["id"], "validate", {"confirmed": True, "note": "Works"}, agent)

    assert response.get_json()["validation"] == "confirmed"
    assert response.get_json()["status"] == "resolved"


def test_validate_rejection_reopens_work(client, agent, ticket):
    command(client, ticket["id"], "resolve", {}, agent)

    response = command(client, ticket["id"], "validate", {"confirmed": False, "reason": "Still fails"}, agent)

    assert response.get_json()["validation"] == "rejected"
    assert response.get_json()["status"] == "open"


def test_validate_rejection_needs_reason(client, agent, ticket):
    command(client, ticket["id"], "resolve", {}, agent)

    response = command(client, ticket["id"], "validate", {"confirmed": False}, agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["reason"]


def test_reopen_after_close(client, agent, ticket):
    command(client, ticket["id"], "close", {}, agent)

    response = command(client, ticket["id"], "reopen", {"reason": "Came back"}, agent)

    assert response.get_json()["status"] == "open"
    assert response.get_json()["reopen_count"] == 1


def test_link_to_problem(client, agent, ticket):
    problem = client.post("/api/v1/problems", json={"title": "Export timeouts"}, headers=agent).get_json()

    response = command(client, ticket["id"], "problems", {"problem_id": problem["id"]}, agent)

    assert response.get_json()["problem_ids"] == [problem["id"]]


def test_link_to_unknown_problem_is_rejected(client, agent, ticket):
    response = command(client, ticket["id"], "problems", {"problem_id": "0f8fad5b-d9cb-469f-a165-70867728950e"}, agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["problem_id"]


def test_command_records_occurred_at_and_external_event_id(client, agent, ticket):
    command(
        client, ticket["id"], "classify",
        {"category": "billing", "occurred_at": "2024-03-02T08:00:00-05:00", "external_event_id": "zd-audit-1"},
        agent,
    )

    events = client.get(f"{TICKETS}/{ticket['id']}/events", headers=agent).get_json()["items"]

    assert events[1]["occurred_at"] == "2024-03-02T08:00:00-05:00"
    assert events[1]["source"]["external_event_id"] == "zd-audit-1"


def test_repeated_external_event_id_records_nothing(client, agent, ticket):
    body = {"category": "billing", "external_event_id": "zd-audit-1"}
    first = command(client, ticket["id"], "classify", body, agent)
    command(client, ticket["id"], "prioritize", {"priority": "low"}, agent)

    repeat = command(client, ticket["id"], "classify", body, agent)

    assert repeat.status_code == 200
    assert repeat.get_json() == first.get_json()
    assert history_types(client, ticket["id"], agent) == ["ticket.opened", "ticket.classified", "ticket.prioritized"]


# Errors on commands.


def test_command_on_unknown_ticket_is_404(client, agent):
    response = command(client, "0f8fad5b-d9cb-469f-a165-70867728950e", "classify", {"category": "x"}, agent)

    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "not_found"


def test_command_forbidden_by_state_is_409_naming_state(client, agent, ticket):
    command(client, ticket["id"], "close", {}, agent)

    response = command(client, ticket["id"], "classify", {"category": "billing"}, agent)

    assert response.status_code == 409
    error = response.get_json()["error"]
    assert error["code"] == "state_conflict"
    assert "it is closed" in error["message"]


def test_reopen_of_open_ticket_names_state(client, agent, ticket):
    response = command(client, ticket["id"], "reopen", {}, agent)

    assert response.status_code == 409
    assert "it is new" in response.get_json()["error"]["message"]


def test_status_cannot_set_resolved(client, agent, ticket):
    response = command(client, ticket["id"], "status", {"status": "resolved"}, agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["status"]


def test_effort_outside_scale_is_rejected(client, agent, ticket):
    response = command(client, ticket["id"], "effort", {"score": 6, "scale": "1-5"}, agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["score"]


def test_if_match_current_version_runs_command(client, agent, ticket):
    response = command(client, ticket["id"], "classify", {"category": "billing"}, {**agent, "If-Match": '"1"'})

    assert response.status_code == 200
    assert response.get_json()["version"] == 2


def test_if_match_stale_version_is_412(client, agent, ticket):
    command(client, ticket["id"], "classify", {"category": "billing"}, agent)

    response = command(client, ticket["id"], "prioritize", {"priority": "low"}, {**agent, "If-Match": '"1"'})

    assert response.status_code == 412
    assert response.headers["ETag"] == '"2"'
    assert list(response.get_json()["error"]["fields"]) == ["If-Match"]
    assert history_types(client, ticket["id"], agent) == ["ticket.opened", "ticket.classified"]


def test_if_match_not_a_version_is_400(client, agent, ticket):
    response = command(client, ticket["id"], "classify", {"category": "billing"}, {**agent, "If-Match": "abc"})

    assert response.status_code == 400
    assert list(response.get_json()["error"]["fields"]) == ["If-Match"]


# Past state and history.


def test_ticket_reads_back_at_each_past_version(client, agent):
    created = client.post(TICKETS, json={"subject": "Export fails"}, headers=agent)
    responses = [created.get_json()]
    steps = [
        ("classify", {"category": "billing"}),
        ("prioritize", {"priority": "critical"}),
        ("assign", {"group": "finance"}),
        ("replies", {"body": "On it"}),
        ("resolve", {"note": "Patched"}),
        ("close", {}),
    ]
    ticket_id = responses[0]["id"]
    for path, body in steps:
        responses.append(command(client, ticket_id, path, body, agent).get_json())

    for version, expected in enumerate(responses, start=1):
        past = client.get(f"{TICKETS}/{ticket_id}?version={version}", headers=agent)
        assert past.status_code == 200
        assert past.headers["ETag"] == f'"{version}"'
        assert past.get_json() == expected


def test_version_beyond_latest_is_404(client, agent, ticket):
    response = client.get(f"{TICKETS}/{ticket['id']}?version=2", headers=agent)

    assert response.status_code == 404
    assert "latest is 1" in response.get_json()["error"]["message"]


def test_as_of_returns_state_at_that_time(client, agent, ticket):
    command(client, ticket["id"], "classify", {"category": "billing", "occurred_at": "2024-03-01T10:00:00+00:00"}, agent)
    command(client, ticket["id"], "prioritize", {"priority": "low", "occurred_at": "2024-03-01T11:00:00+00:00"}, agent)

    before = client.get(f"{TICKETS}/{ticket['id']}?as_of={quote('2024-03-01T10:30:00+00:00')}", headers=agent)
    exact = client.get(f"{TICKETS}/{ticket['id']}?as_of={quote('2024-03-01T13:00:00+02:00')}", headers=agent)

    assert before.get_json()["version"] == 2
    assert before.get_json()["priority"] is None
    assert exact.get_json()["version"] == 3


def test_as_of_before_opening_is_404(client, agent, ticket):
    response = client.get(f"{TICKETS}/{ticket['id']}?as_of={quote('2024-02-01T00:00:00+00:00')}", headers=agent)

    assert response.status_code == 404
    assert "did not exist yet" in response.get_json()["error"]["message"]


def test_version_and_as_of_together_are_rejected(client, agent, ticket):
    response = client.get(f"{TICKETS}/{ticket['id']}?version=1&as_of={quote('2024-03-01T10:00:00Z')}", headers=agent)

    assert response.status_code == 422
    assert sorted(response.get_json()["error"]["fields"]) == ["as_of", "version"]


def test_unknown_ticket_is_404(client, agent):
    response = client.get(f"{TICKETS}/0f8fad5b-d9cb-469f-a165-70867728950e", headers=agent)

    assert response.status_code == 404


def test_history_pages_in_order_with_positions(client, agent, ticket):
    for category in ("a", "b", "c", "d"):
        command(client, ticket["id"], "classify", {"category": category}, agent)

    items, cursor, pages = [], None, 0
    while True:
        url = f"{TICKETS}/{ticket['id']}/events?limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = client.get(url, headers=agent).get_json()
        items.extend(page["items"])
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break

    assert pages == 3
    assert [item["version"] for item in items] == [1, 2, 3, 4, 5]
    assert [item["data"].get("category") for item in items[1:]] == ["a", "b", "c", "d"]
    positions = [item["position"] for item in items]
    assert positions == sorted(positions)
    assert all(item["recorded_at"] and item["occurred_at"] for item in items)


def test_history_of_other_kind_is_404(client, agent):
    problem = client.post("/api/v1/problems", json={"title": "Export timeouts"}, headers=agent).get_json()

    response = client.get(f"{TICKETS}/{problem['id']}/events", headers=agent)

    assert response.status_code == 404


def test_history_invalid_cursor_is_422(client, agent, ticket):
    response = client.get(f"{TICKETS}/{ticket['id']}/events?cursor=abc", headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["cursor"]


# The list.


@pytest.fixture
def listed(api_app, client, agent):
    """Three tickets in the list view: returns their ids, oldest first."""
    first = open_ticket(client, agent, occurred_at="2024-03-01T09:00:00+00:00", client_account_id="acme")
    second = open_ticket(client, agent, occurred_at="2024-03-02T09:00:00+00:00", client_account_id="globex")
    third = open_ticket(client, agent, occurred_at="2024-03-03T09:00:00+00:00", client_account_id="acme")
    command(client, first["id"], "prioritize", {"priority": "high", "occurred_at": "2024-03-04T09:00:00+00:00"}, agent)
    command(client, second["id"], "assign", {"group": "finance", "agent": "bo", "occurred_at": "2024-03-02T10:00:00+00:00"}, agent)
    command(client, third["id"], "status", {"status": "pending", "occurred_at": "2024-03-03T10:00:00+00:00"}, agent)
    hub_of(api_app).catch_up()
    return first["id"], second["id"], third["id"]


def list_ids(client, headers, query=""):
    response = client.get(f"{TICKETS}?{query}", headers=headers)
    assert response.status_code == 200, response.get_json()
    return [item["id"] for item in response.get_json()["items"]]


def test_list_orders_by_latest_change(client, agent, listed):
    first, second, third = listed

    assert list_ids(client, agent) == [first, third, second]


def test_list_item_shape(client, agent, listed):
    first, _, _ = listed

    item = client.get(TICKETS, headers=agent).get_json()["items"][0]

    assert item == {
        "id": first, "subject": "Invoices fail to export", "status": "new", "priority": "high",
        "channel": "email", "group": None, "agent": None, "client_account_id": "acme",
        "opened_at": "2024-03-01T09:00:00.000000+00:00", "updated_at": "2024-03-04T09:00:00.000000+00:00",
        "version": 2,
    }


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("status=pending", [2]),
        ("priority=high", [0]),
        ("group=finance", [1]),
        ("assignee=bo", [1]),
        ("client=acme", [0, 2]),
        (f"updated_since={quote('2024-03-03T10:00:00+00:00')}", [0, 2]),
        ("client=acme&status=new", [0]),
    ],
)
def test_list_filters(client, agent, listed, query, expected):
    assert list_ids(client, agent, query) == [listed[index] for index in expected]


def test_list_pages_with_cursor(client, agent, listed):
    first_page = client.get(f"{TICKETS}?limit=2", headers=agent).get_json()
    second_page = client.get(f"{TICKETS}?limit=2&cursor={first_page['next_cursor']}", headers=agent).get_json()

    assert [item["id"] for item in first_page["items"]] == [listed[0], listed[2]]
    assert [item["id"] for item in second_page["items"]] == [listed[1]]
    assert second_page["next_cursor"] is None


def test_list_invalid_cursor_is_422(client, agent, listed):
    response = client.get(f"{TICKETS}?cursor=not-a-cursor", headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["cursor"]


def test_list_shows_ticket_after_catch_up(api_app, client, agent):
    ticket = open_ticket(client, agent)
    before = list_ids(client, agent)

    hub_of(api_app).catch_up()

    assert before == []
    assert list_ids(client, agent) == [ticket["id"]]
