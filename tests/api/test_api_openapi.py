"""The OpenAPI document: valid, complete, and secured where it should be."""

from __future__ import annotations

from openapi_spec_validator import validate

# Path prefixes of the records, views and stream; every operation under them needs a token.
SECURED_PREFIXES = (
    "/api/v1/tickets", "/api/v1/sla-policies", "/api/v1/client-accounts", "/api/v1/problems",
    "/api/v1/improvements", "/api/v1/knowledge-articles", "/api/v1/kpis", "/api/v1/sla",
    "/api/v1/escalations", "/api/v1/events",
)


def test_openapi_document_validates(client):
    validate(client.get("/openapi.json").get_json())


def test_operations_need_bearer_token_except_health(client):
    spec = client.get("/openapi.json").get_json()

    assert spec["security"] == [{"bearerAuth": []}]
    assert spec["components"]["securitySchemes"]["bearerAuth"] == {
        "type": "http", "scheme": "bearer", "description": "An API token.",
    }
    public = {
        path for path, operations in spec["paths"].items()
        for method, operation in operations.items()
        if method != "parameters" and operation.get("security") == []
    }
    assert "/healthz" in public
    assert [path for path in public if path.startswith(SECURED_PREFIXES)] == []


def test_document_lists_required_endpoints(client):
    paths = set(client.get("/openapi.json").get_json()["paths"])
    ticket_commands = (
        "classify", "prioritize", "assign", "replies", "notes", "clarifications", "status",
        "escalations", "resolve", "validate", "close", "reopen", "satisfaction", "effort",
    )
    required = {
        "/api/v1/tickets", "/api/v1/tickets/{ticket_id}", "/api/v1/tickets/{ticket_id}/events",
        "/api/v1/sla-policies", "/api/v1/sla-policies/{policy_id}", "/api/v1/sla-policies/{policy_id}/revisions",
        "/api/v1/kpis", "/api/v1/sla", "/api/v1/escalations", "/api/v1/improvements", "/api/v1/events",
        "/healthz",
        *(f"/api/v1/tickets/{{ticket_id}}/{command}" for command in ticket_commands),
    }

    assert required <= paths


def test_error_responses_use_error_schema(client):
    spec = client.get("/openapi.json").get_json()

    error = spec["components"]["schemas"]["Error"]
    assert error["required"] == ["error"]
    assert sorted(spec["components"]["schemas"]["ErrorBody"]["required"]) == ["code", "fields", "message"]
    assert spec["components"]["responses"]["NOT_FOUND"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/Error"
    }


def test_docs_page_loads_local_assets(client):
    page = client.get("/docs")
    script = client.get("/docs/assets/swagger-ui-bundle.js")

    assert page.status_code == 200
    assert b"/docs/assets/swagger-ui-bundle.js" in page.data
    assert b"/openapi.json" in page.data
    assert script.status_code == 200
