"""What each role may do: every endpoint, every role, 2xx or 403."""

from __future__ import annotations

import pytest

from tests.api.conftest import bearer, open_ticket

ROLES = ("admin", "integration", "agent", "analyst", "auditor")

# (method, path template, body, roles that may) for every endpoint group.
ENDPOINTS = [
    ("POST", "/api/v1/tickets", {"subject": "x"}, {"admin", "integration", "agent"}),
    ("GET", "/api/v1/tickets", None, {"admin", "integration", "agent", "analyst", "auditor"}),
    ("GET", "/api/v1/tickets/{ticket}", None, {"admin", "integration", "agent", "analyst", "auditor"}),
    ("GET", "/api/v1/tickets/{ticket}/events", None, {"admin", "integration", "agent", "auditor"}),
    ("POST", "/api/v1/tickets/{ticket}/classify", {"category": "billing"}, {"admin", "integration", "agent"}),
    ("POST", "/api/v1/sla-policies", {"name": "p", "targets": {"high": {"first_response": 60}}}, {"admin"}),
    ("GET", "/api/v1/sla-policies", None, {"admin", "integration", "agent", "analyst", "auditor"}),
    ("GET", "/api/v1/sla-policies/{policy}", None, {"admin", "integration", "agent", "analyst", "auditor"}),
    ("POST", "/api/v1/sla-policies/{policy}/revisions", {"at_risk_ratio": 0.5}, {"admin"}),
    ("POST", "/api/v1/client-accounts", {"organization": "Acme"}, {"admin", "integration", "agent"}),
    ("POST", "/api/v1/problems", {"title": "p"}, {"admin", "integration", "agent"}),
    ("POST", "/api/v1/knowledge-articles", {"title": "t", "body": "b"}, {"admin", "integration", "agent"}),
    ("POST", "/api/v1/improvements", {"title": "t", "kpi": "csat", "baseline": 0.7, "target": 0.8}, {"admin", "integration", "agent"}),
    ("GET", "/api/v1/improvements", None, {"admin", "integration", "agent", "analyst"}),
    ("GET", "/api/v1/kpis", None, {"admin", "integration", "agent", "analyst"}),
    ("GET", "/api/v1/sla", None, {"admin", "integration", "agent", "analyst"}),
    ("GET", "/api/v1/escalations", None, {"admin", "integration", "agent", "analyst"}),
    ("GET", "/api/v1/events", None, {"admin", "integration", "auditor"}),
]

CASES = [
    pytest.param(method, path, body, role, role in allowed, id=f"{role}-{method}-{path}")
    for method, path, body, allowed in ENDPOINTS
    for role in ROLES
]


@pytest.fixture
def ids(client, admin):
    ticket = open_ticket(client, admin)
    policy = client.post(
        "/api/v1/sla-policies", json={"name": "Standard", "targets": {"high": {"resolution": 480}}}, headers=admin
    ).get_json()
    return {"ticket": ticket["id"], "policy": policy["id"]}


@pytest.mark.parametrize(("method", "path", "body", "role", "allowed"), CASES)
def test_role_access(client, tokens, ids, method, path, body, role, allowed):
    response = client.open(path.format(**ids), method=method, json=body, headers=bearer(tokens[role]))

    if allowed:
        assert 200 <= response.status_code < 300, response.get_json()
    else:
        assert response.status_code == 403
        assert response.get_json()["error"]["code"] == "forbidden"
        assert role in response.get_json()["error"]["message"]


def test_health_needs_no_token(client):
    assert client.get("/healthz").status_code == 200


def test_openapi_needs_no_token(client):
    assert client.get("/openapi.json").status_code == 200
