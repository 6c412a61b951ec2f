"""Error responses: JSON for every failure, and the status each kind of failure gets."""

from __future__ import annotations

import json

import pytest

from hub.web import MAX_CONTENT_LENGTH
from hub.web.parser import MAX_JSON_DEPTH

TICKETS = "/api/v1/tickets"


def assert_error_shape(response, status, code):
    assert response.status_code == status
    assert response.mimetype == "application/json"
    body = response.get_json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "fields"}
    assert body["error"]["code"] == code
    assert body["error"]["message"]


def test_unknown_path_is_json_404(client, agent):
    response = client.get("/api/v1/nothing-here", headers=agent)

    assert_error_shape(response, 404, "not_found")


def test_wrong_method_is_json_405_with_allow(client, agent):
    response = client.delete(TICKETS, headers=agent)

    assert_error_shape(response, 405, "method_not_allowed")
    assert set(response.headers["Allow"].split(", ")) >= {"GET", "POST"}


def test_oversized_body_is_json_413(client, agent):
    body = json.dumps({"subject": "x" * (MAX_CONTENT_LENGTH + 1)})

    response = client.post(TICKETS, data=body, content_type="application/json", headers=agent)

    assert_error_shape(response, 413, "payload_too_large")


def test_malformed_json_is_400(client, agent):
    response = client.post(TICKETS, data='{"subject": ', content_type="application/json", headers=agent)

    assert_error_shape(response, 400, "invalid_json")


def test_body_not_an_object_is_422(client, agent):
    response = client.post(TICKETS, json=["subject"], headers=agent)

    assert_error_shape(response, 422, "validation_failed")
    assert list(response.get_json()["error"]["fields"]) == ["body"]


def test_non_json_content_type_is_415(client, agent):
    response = client.post(TICKETS, data="subject=x", content_type="text/plain", headers=agent)

    assert_error_shape(response, 415, "unsupported_media_type")


def test_deeply_nested_json_is_400(client, agent):
    nested = "[" * (MAX_JSON_DEPTH + 1) + "]" * (MAX_JSON_DEPTH + 1)

    response = client.post(TICKETS, data=f'{{"subject": "x", "description": {nested}}}', content_type="application/json", headers=agent)

    assert_error_shape(response, 400, "invalid_json")
    assert "deeper" in response.get_json()["error"]["message"]


def test_json_nested_beyond_recursion_limit_is_400(client, agent):
    depth = 100_000

    response = client.post(TICKETS, data="[" * depth + "]" * depth, content_type="application/json", headers=agent)

    assert_error_shape(response, 400, "invalid_json")


@pytest.mark.parametrize("text", ['"a\\u0000b"', '"\\ud800"'])
def test_unstorable_text_is_400(client, agent, text):
    response = client.post(TICKETS, data=f'{{"subject": {text}}}', content_type="application/json", headers=agent)

    assert_error_shape(response, 400, "invalid_json")


def test_nul_in_query_is_400(client, agent):
    response = client.get(f"{TICKETS}?group=a%00b", headers=agent)

    assert_error_shape(response, 400, "bad_request")
    assert list(response.get_json()["error"]["fields"]) == ["group"]


def test_invalid_query_value_is_422_naming_it(client, agent):
    response = client.get(f"{TICKETS}?limit=0&status=gone", headers=agent)

    assert_error_shape(response, 422, "validation_failed")
    assert sorted(response.get_json()["error"]["fields"]) == ["limit", "status"]


def test_timestamp_out_of_range_is_422(client, agent):
    response = client.post(TICKETS, json={"subject": "x", "occurred_at": "0001-01-01T00:00:00+01:00"}, headers=agent)

    assert_error_shape(response, 422, "validation_failed")
    assert list(response.get_json()["error"]["fields"]) == ["occurred_at"]


def test_huge_number_is_422(client, agent):
    response = client.post(
        "/api/v1/improvements",
        data='{"title": "t", "kpi": "csat", "baseline": 1e400, "target": 1}',
        content_type="application/json", headers=agent,
    )

    assert_error_shape(response, 422, "validation_failed")
    assert list(response.get_json()["error"]["fields"]) == ["baseline"]


def test_missing_token_is_401_with_challenge(client):
    response = client.get(TICKETS)

    assert_error_shape(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Bearer hub_not-a-real-token", "Bearer ", "Basic dXNlcjpwYXNz", "hub_x"])
def test_bad_authorization_is_401(client, header):
    response = client.get(TICKETS, headers={"Authorization": header})

    assert_error_shape(response, 401, "unauthorized")


def test_revoked_token_is_401(api_app, client, tokens):
    from tests.api.conftest import bearer, hub_of

    secret = tokens["agent"]
    before = client.get(TICKETS, headers=bearer(secret))
    token_id = next(t.token_id for t in hub_of(api_app).tokens.list() if t.role == "agent")
    hub_of(api_app).tokens.revoke(token_id)

    response = client.get(TICKETS, headers=bearer(secret))

    assert before.status_code == 200
    assert_error_shape(response, 401, "unauthorized")


def test_unauthorized_comes_before_validation(client):
    response = client.post(TICKETS, json={"channel": "fax"})

    assert response.status_code == 401


@pytest.mark.parametrize("query", ["/api/v1/events?after=104187480262408503296", "/api/v1/tickets/{id}?version=104187480262408503296"])
def test_integer_beyond_64_bits_is_422(client, tokens, ticket, query):
    from tests.api.conftest import bearer

    response = client.get(query.format(id=ticket["id"]), headers=bearer(tokens["admin"]))

    assert_error_shape(response, 422, "validation_failed")


# "²" passes str.isdigit() but int() rejects it; "٣" (Arabic-Indic three) passes both.
NON_ASCII_DIGITS = ["%C2%B2", "%D9%A3"]
RECORD_KINDS = ["tickets", "client-accounts", "problems", "improvements", "knowledge-articles", "sla-policies"]


@pytest.mark.parametrize("cursor", NON_ASCII_DIGITS)
@pytest.mark.parametrize("kind", RECORD_KINDS)
def test_history_cursor_of_non_ascii_digits_is_422(client, admin, kind, cursor):
    response = client.get(f"/api/v1/{kind}/7b0c0d5e-5d4f-4b2f-9d3c-2f0d9b6f1a01/events?cursor={cursor}", headers=admin)

    assert_error_shape(response, 422, "validation_failed")
    assert list(response.get_json()["error"]["fields"]) == ["cursor"]


@pytest.mark.parametrize("cursor", NON_ASCII_DIGITS)
@pytest.mark.parametrize(
    "path",
    [
        "/api/v1/sla-policies?cursor={cursor}",
        "/api/v1/kpis?cursor=offset:{cursor}",
        "/api/v1/improvements?cursor=offset:{cursor}",
        "/api/v1/webhooks/7b0c0d5e-5d4f-4b2f-9d3c-2f0d9b6f1a01/deliveries?cursor=offset:{cursor}",
    ],
)
def test_list_cursor_of_non_ascii_digits_is_422(client, admin, path, cursor):
    response = client.get(path.format(cursor=cursor), headers=admin)

    assert_error_shape(response, 422, "validation_failed")
    assert list(response.get_json()["error"]["fields"]) == ["cursor"]


@pytest.mark.parametrize("version", ['"\u0663"', '"\u00b2"'])
def test_if_match_of_non_ascii_digits_is_400(client, agent, ticket, version):
    response = client.post(
        f"{TICKETS}/{ticket['id']}/classify", json={"category": "billing"}, headers={**agent, "If-Match": version},
    )

    assert_error_shape(response, 400, "invalid_header")


@pytest.mark.parametrize("name", ["day", "week", "month"])
def test_kpi_period_filter_of_non_ascii_digits_is_422(client, admin, name):
    value = "\u0662\u0660\u0661\u0666-\u0660\u0663" + ("-\u0660\u0667" if name != "month" else "")

    response = client.get("/api/v1/kpis", query_string={name: value}, headers=admin)

    assert_error_shape(response, 422, "validation_failed")
    assert list(response.get_json()["error"]["fields"]) == [name]


# Body fields take JSON types as sent; query-string fields arrive as text and are converted.
SOME_ID = "7b0c0d5e-5d4f-4b2f-9d3c-2f0d9b6f1a01"
ESCALATION = {"reason": "VIP", "owner": "lead", "promised_by": "2024-03-01T12:00:00+00:00"}
LOOSE_BODIES = [
    ("tickets/{ticket}/escalations", {**ESCALATION, "level": "1"}, "level"),
    ("tickets/{ticket}/escalations", {**ESCALATION, "level": 1.0}, "level"),
    ("tickets/{ticket}/escalations", {**ESCALATION, "level": True}, "level"),
    ("tickets/{ticket}/replies", {"body": "Fixed?", "public": 1}, "public"),
    ("tickets/{ticket}/replies", {"body": "Fixed?", "public": "true"}, "public"),
    ("tickets/{ticket}/notes", {"body": "Seen", "public": "yes"}, "public"),
    ("tickets/{ticket}/validate", {"confirmed": 1}, "confirmed"),
    ("tickets/{ticket}/effort", {"score": "5"}, "score"),
    (f"client-accounts/{SOME_ID}/nps-responses", {"score": 9.0}, "score"),
    (f"problems/{SOME_ID}/outcomes", {"observation": "Quiet", "recurrences": "0"}, "recurrences"),
    ("improvements", {"title": "t", "kpi": "csat", "baseline": "0.7", "target": 0.8}, "baseline"),
    (f"improvements/{SOME_ID}/check", {
        "measured": True, "window_start": "2024-03-01T00:00:00+00:00", "window_end": "2024-04-01T00:00:00+00:00",
    }, "measured"),
    ("sla-policies", {"name": "Standard", "targets": {"high": {"resolution": "240"}}}, "targets"),
    ("sla-policies", {"name": "Standard", "targets": {}, "at_risk_ratio": "0.5"}, "at_risk_ratio"),
    ("sla-policies", {"name": "Standard", "targets": {}, "public_notes_count_as_response": "no"},
     "public_notes_count_as_response"),
]


@pytest.mark.parametrize(("path", "body", "field"), LOOSE_BODIES)
def test_body_value_of_wrong_json_type_is_422(client, admin, ticket, path, body, field):
    response = client.post(f"/api/v1/{path.format(ticket=ticket['id'])}", json=body, headers=admin)

    assert_error_shape(response, 422, "validation_failed")
    assert list(response.get_json()["error"]["fields"])[0].split(".")[0] == field


def test_query_integer_and_boolean_are_read_from_text(client, admin):
    response = client.get("/api/v1/escalations?level=1&overdue=true&limit=5", headers=admin)

    assert response.status_code == 200
