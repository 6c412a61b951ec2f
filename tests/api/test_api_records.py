"""SLA policies, client accounts, problems, improvements and knowledge articles over HTTP."""

from __future__ import annotations

import pytest

from tests.api.conftest import hub_of

POLICIES = "/api/v1/sla-policies"
STANDARD_POLICY = {
    "name": "Standard",
    "targets": {"critical": {"first_response": 15, "resolution": 240}, "low": {"resolution": 2880}},
    "calendar": {
        "timezone": "Europe/Berlin",
        "hours": {"mon": [["08:00", "18:00"]], "tue": [["08:00", "18:00"]]},
        "holidays": ["2024-12-25"],
    },
}


# SLA policies.


def test_policy_is_defined_with_defaults(client, admin):
    response = client.post(POLICIES, json=STANDARD_POLICY, headers=admin)

    assert response.status_code == 201
    policy = response.get_json()
    assert policy["revision"] == 1
    assert policy["targets"] == {
        "critical": {"first_response": 15.0, "resolution": 240.0}, "low": {"resolution": 2880.0},
    }
    assert policy["calendar"]["holidays"] == ["2024-12-25"]
    assert policy["pause_statuses"]["resolution"] == ["pending", "on_hold"]
    assert policy["at_risk_ratio"] == 0.75
    assert policy["public_notes_count_as_response"] is False


def test_policy_revision_keeps_other_terms(client, admin):
    policy = client.post(POLICIES, json=STANDARD_POLICY, headers=admin).get_json()

    revised = client.post(f"{POLICIES}/{policy['id']}/revisions", json={"at_risk_ratio": 0.5}, headers=admin)

    assert revised.status_code == 200
    assert revised.get_json()["revision"] == 2
    assert revised.get_json()["at_risk_ratio"] == 0.5
    assert revised.get_json()["targets"] == policy["targets"]
    first = client.get(f"{POLICIES}/{policy['id']}?version=1", headers=admin).get_json()
    assert first["at_risk_ratio"] == 0.75


def test_empty_policy_revision_is_rejected(client, admin):
    policy = client.post(POLICIES, json=STANDARD_POLICY, headers=admin).get_json()

    response = client.post(f"{POLICIES}/{policy['id']}/revisions", json={}, headers=admin)

    assert response.status_code == 422


@pytest.mark.parametrize(
    ("terms", "field"),
    [
        # Entries of a mapping are named by their key alone, without marshmallow's "key" and "value" parts.
        ({"targets": {"urgent": {"resolution": 60}}}, "targets.urgent"),
        ({"targets": {"high": {"resolution": -5}}}, "targets.high.resolution"),
        ({"targets": {}, "calendar": {"timezone": "UTC", "hours": {"funday": [["08:00", "18:00"]]}}}, "calendar.hours.funday"),
        ({"targets": {}, "calendar": {"timezone": "UTC", "hours": {"mon": [["8:00", "18:00"]]}}}, "calendar.hours.mon.0.0"),
        ({"targets": {}, "pause_statuses": {"resolution": ["closed"]}}, "pause_statuses.resolution.0"),
        ({"targets": {"high": {"resolution": 60}}, "calendar": {"timezone": "Mars/Base", "hours": {"mon": [["08:00", "18:00"]]}}}, "calendar.timezone"),
        ({"targets": {"high": {"resolution": 60}}, "calendar": {"timezone": "UTC", "hours": {"mon": [["18:00", "08:00"]]}}}, "calendar.hours.mon"),
        ({"targets": {"high": {"resolution": 60}}, "at_risk_ratio": 1.5}, "at_risk_ratio"),
    ],
)
def test_invalid_policy_names_the_field(client, admin, terms, field):
    response = client.post(POLICIES, json={"name": "Bad", **terms}, headers=admin)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == [field]


def test_policies_list_pages_in_definition_order(client, admin):
    created = [
        client.post(POLICIES, json={**STANDARD_POLICY, "name": name}, headers=admin).get_json()["id"]
        for name in ("Gold", "Silver", "Bronze")
    ]

    first = client.get(f"{POLICIES}?limit=2", headers=admin).get_json()
    second = client.get(f"{POLICIES}?limit=2&cursor={first['next_cursor']}", headers=admin).get_json()

    assert [item["id"] for item in first["items"]] == created[:2]
    assert [item["name"] for item in first["items"]] == ["Gold", "Silver"]
    assert [item["id"] for item in second["items"]] == created[2:]
    assert second["next_cursor"] is None


def test_policy_history_lists_revisions(client, admin):
    policy = client.post(POLICIES, json=STANDARD_POLICY, headers=admin).get_json()
    client.post(f"{POLICIES}/{policy['id']}/revisions", json={"name": "Standard v2"}, headers=admin)

    events = client.get(f"{POLICIES}/{policy['id']}/events", headers=admin).get_json()["items"]

    assert [event["type"] for event in events] == ["sla_policy.defined", "sla_policy.revised"]


# Client accounts.


def test_client_account_contacts_and_nps(client, agent):
    account = client.post("/api/v1/client-accounts", json={"organization": "Acme"}, headers=agent).get_json()
    base = f"/api/v1/client-accounts/{account['id']}"

    client.post(f"{base}/contacts", json={"id": "c1", "name": "Ada", "email": "ada@example.com"}, headers=agent)
    client.post(f"{base}/nps-responses", json={"score": 9, "contact_id": "c1", "occurred_at": "2024-03-01T10:00:00Z"}, headers=agent)
    renamed = client.post(f"{base}/rename", json={"organization": "Acme Corp"}, headers=agent)

    state = renamed.get_json()
    assert state["organization"] == "Acme Corp"
    assert state["contacts"] == [{"id": "c1", "name": "Ada", "email": "ada@example.com"}]
    assert state["nps_responses"] == [{"score": 9, "contact_id": "c1", "at": "2024-03-01T10:00:00+00:00"}]
    assert state["version"] == 4


def test_nps_outside_scale_is_rejected(client, agent):
    account = client.post("/api/v1/client-accounts", json={"organization": "Acme"}, headers=agent).get_json()

    response = client.post(f"/api/v1/client-accounts/{account['id']}/nps-responses", json={"score": 11}, headers=agent)

    assert response.status_code == 422
    assert list(response.get_json()["error"]["fields"]) == ["score"]


def test_duplicate_contact_is_409(client, agent):
    account = client.post("/api/v1/client-accounts", json={"organization": "Acme"}, headers=agent).get_json()
    path = f"/api/v1/client-accounts/{account['id']}/contacts"
    client.post(path, json={"id": "c1"}, headers=agent)

    response = client.post(path, json={"id": "c1"}, headers=agent)

    assert response.status_code == 409


def test_external_client_account_is_registered_once(client, agent):
    body = {"organization": "Acme", "external": {"source": "freshdesk", "id": "88"}}

    first = client.post("/api/v1/client-accounts", json=body, headers=agent)
    second = client.post("/api/v1/client-accounts", json=body, headers=agent)

    assert (first.status_code, second.status_code) == (201, 200)
    assert second.get_json()["id"] == first.get_json()["id"]


def test_client_account_id_is_not_a_ticket(client, agent):
    account = client.post("/api/v1/client-accounts", json={"organization": "Acme"}, headers=agent).get_json()

    response = client.get(f"/api/v1/tickets/{account['id']}", headers=agent)

    assert response.status_code == 404


# Problems.


def test_problem_root_cause_analysis(client, agent):
    ticket = client.post("/api/v1/tickets", json={"subject": "Export fails"}, headers=agent).get_json()
    problem = client.post("/api/v1/problems", json={"title": "Exports time out"}, headers=agent).get_json()
    base = f"/api/v1/problems/{problem['id']}"

    stages = [
        client.post(f"{base}/evidence", json={"note": "3 tickets", "ticket_ids": [ticket["id"]]}, headers=agent),
        client.post(f"{base}/root-cause", json={"root_cause": "Query without index"}, headers=agent),
        client.post(f"{base}/corrective-action", json={"action": "Added index"}, headers=agent),
        client.post(f"{base}/outcomes", json={"observation": "No timeouts", "recurrences": 0}, headers=agent),
        client.post(f"{base}/close", json={}, headers=agent),
    ]

    assert [response.get_json()["stage"] for response in stages] == [
        "investigating", "root_cause_identified", "corrected", "monitoring", "closed",
    ]
    assert stages[-1].get_json()["ticket_ids"] == [ticket["id"]]


def test_corrective_action_needs_root_cause(client, agent):
    problem = client.post("/api/v1/problems", json={"title": "Exports time out"}, headers=agent).get_json()

    response = client.post(f"/api/v1/problems/{problem['id']}/corrective-action", json={"action": "Guess"}, headers=agent)

    assert response.status_code == 409
    assert "it is defined" in response.get_json()["error"]["message"]


# Improvements.


def test_improvement_cycle_and_pdca_log(api_app, client, agent):
    created = client.post(
        "/api/v1/improvements",
        json={"title": "Faster first replies", "kpi": "fcr", "baseline": 0.5, "target": 0.7, "filters": {"priority": "high"}},
        headers=agent,
    ).get_json()
    base = f"/api/v1/improvements/{created['id']}"
    client.post(f"{base}/do", json={"change": "Macro for common answers"}, headers=agent)
    client.post(
        f"{base}/check",
        json={"measured": 0.75, "window_start": "2024-04-01T00:00:00Z", "window_end": "2024-05-01T00:00:00Z"},
        headers=agent,
    )
    acted = client.post(f"{base}/act", json={"decision": "standardized"}, headers=agent)
    hub_of(api_app).catch_up()

    log = client.get("/api/v1/improvements", headers=agent).get_json()

    assert acted.get_json()["phase"] == "act"
    assert acted.get_json()["check"]["measured"] == 0.75
    assert log["next_cursor"] is None
    assert len(log["items"]) == 1
    entry = log["items"][0]
    assert entry["improvement_id"] == created["id"]
    assert entry["decision"] == "standardized"
    assert entry["filters"] == {"priority": "high"}
    assert entry["measured"] == 0.75


def test_improvement_out_of_order_is_409(client, agent):
    created = client.post(
        "/api/v1/improvements", json={"title": "t", "kpi": "csat", "baseline": 0.7, "target": 0.8}, headers=agent
    ).get_json()

    response = client.post(f"/api/v1/improvements/{created['id']}/act", json={"decision": "abandoned"}, headers=agent)

    assert response.status_code == 409
    assert "phase plan" in response.get_json()["error"]["message"]


def test_pdca_log_pages_with_offset_cursor(api_app, client, agent):
    for index in range(3):
        client.post(
            "/api/v1/improvements", json={"title": f"t{index}", "kpi": "csat", "baseline": 0.7, "target": 0.8},
            headers=agent,
        )
    hub_of(api_app).catch_up()

    first = client.get("/api/v1/improvements?limit=2", headers=agent).get_json()
    second = client.get(f"/api/v1/improvements?limit=2&cursor={first['next_cursor']}", headers=agent).get_json()

    assert [item["title"] for item in first["items"] + second["items"]] == ["t0", "t1", "t2"]
    assert second["next_cursor"] is None


# Knowledge articles.


def test_article_revision_and_retirement(client, agent):
    article = client.post(
        "/api/v1/knowledge-articles", json={"title": "Reset MFA", "body": "Step 1", "tags": ["mfa"]}, headers=agent
    ).get_json()
    base = f"/api/v1/knowledge-articles/{article['id']}"

    revised = client.post(f"{base}/revisions", json={"body": "Step 1, step 2"}, headers=agent).get_json()
    retired = client.post(f"{base}/retire", json={"reason": "Replaced"}, headers=agent).get_json()
    refused = client.post(f"{base}/revisions", json={"title": "New"}, headers=agent)

    assert revised["revision"] == 2
    assert revised["title"] == "Reset MFA"
    assert retired["retired"] is True
    assert refused.status_code == 409
