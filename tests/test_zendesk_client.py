"""Tests for connectors.zendesk against recorded Zendesk API payloads."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers
from responses.registries import OrderedRegistry

from connectors.http import PaginationLoopError, RetriableAPIError, UnexpectedResponseError
from connectors.zendesk import (
    INCREMENTAL_TICKETS_PATH,
    ZendeskClient,
    ZendeskTicketPage,
    verify_webhook_signature,
)

FIXTURES = Path(__file__).parent / "fixtures" / "zendesk"
BASE_URL = "https://example.zendesk.com"
EXPORT_URL = BASE_URL + INCREMENTAL_TICKETS_PATH
# 2023-09-18T16:00:00Z, shortly after the recorded export.
NOW = datetime(2023, 9, 18, 16, 0, 0, tzinfo=timezone.utc)
NOW_EPOCH = 1695052800


class FakeClock:
    def __init__(self, now: datetime = NOW) -> None:
        self.current = now
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def export_pages() -> list[dict]:
    """Recorded per_page=1 export pages: tickets 28, 29, 30, ... with real cursors."""
    interactions = load("incremental_tickets_cursor_based.json")["interactions"]
    return [copy.deepcopy(item["response_body"]) for item in interactions[1:]]


def make_client(**kwargs) -> ZendeskClient:
    kwargs.setdefault("credentials", {"email": "agent@example.com", "api_token": "zd-api-token-1"})
    return ZendeskClient(BASE_URL, connection_id="zd-1", connection_name="Example Zendesk", clock=FakeClock(), **kwargs)


def query_of(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def test_clock_epoch_matches_constant():
    assert int(NOW.timestamp()) == NOW_EPOCH


@responses.activate
def test_second_request_sends_cursor_not_start_time():
    first, second = export_pages()[:2]
    second["end_of_stream"] = True
    responses.get(EXPORT_URL, json=first, match=[matchers.query_param_matcher({"start_time": "1695000000"})])
    responses.get(EXPORT_URL, json=second, match=[matchers.query_param_matcher({"cursor": first["after_cursor"]})])

    pages = list(make_client().iter_ticket_pages(start_time=1695000000))

    assert len(responses.calls) == 2
    assert query_of(responses.calls[0]) == {"start_time": ["1695000000"]}
    assert query_of(responses.calls[1]) == {"cursor": ["MTY5NTA1MjY2My4wfHwyOHw="]}
    assert [page.after_cursor for page in pages] == ["MTY5NTA1MjY2My4wfHwyOHw=", "MTY5NTA1MjY2My4wfHwyOXw="]
    assert [page.end_of_stream for page in pages] == [False, True]
    assert [[ticket["id"] for ticket in page.tickets] for page in pages] == [[28], [29]]


@responses.activate
def test_page_is_named_tuple_of_three():
    page = export_pages()[0]
    page["end_of_stream"] = True
    responses.get(EXPORT_URL, json=page)

    [result] = make_client().iter_ticket_pages(start_time=0)

    tickets, after_cursor, end_of_stream = result
    assert isinstance(result, ZendeskTicketPage)
    assert [ticket["id"] for ticket in tickets] == [28]
    assert after_cursor == "MTY5NTA1MjY2My4wfHwyOHw="
    assert end_of_stream is True


@responses.activate
def test_repeated_ticket_is_yielded_on_both_pages():
    first, second = export_pages()[:2]
    # Ticket 28 changed again while the export ran, so it comes back on page two.
    changed_again = copy.deepcopy(first["tickets"][0])
    changed_again["updated_at"] = "2023-09-18T15:58:10Z"
    second["tickets"] = [second["tickets"][0], changed_again]
    second["end_of_stream"] = True
    responses.get(EXPORT_URL, json=first, match=[matchers.query_param_matcher({"start_time": "0"})])
    responses.get(EXPORT_URL, json=second, match=[matchers.query_param_matcher({"cursor": first["after_cursor"]})])

    pages = list(make_client().iter_ticket_pages(start_time=0))

    yielded = [(ticket["id"], ticket["updated_at"]) for page in pages for ticket in page.tickets]
    assert yielded == [
        (28, "2023-09-18T15:57:42Z"),
        (29, "2023-09-18T15:57:42Z"),
        (28, "2023-09-18T15:58:10Z"),
    ]


@responses.activate
def test_recent_start_time_clamped_to_one_minute_ago():
    page = export_pages()[0]
    page["end_of_stream"] = True
    responses.get(EXPORT_URL, json=page)

    list(make_client().iter_ticket_pages(start_time=NOW_EPOCH - 10))

    assert query_of(responses.calls[0]) == {"start_time": [str(NOW_EPOCH - 60)]}


@responses.activate
def test_older_start_time_sent_unchanged():
    page = export_pages()[0]
    page["end_of_stream"] = True
    responses.get(EXPORT_URL, json=page)

    list(make_client().iter_ticket_pages(start_time=NOW_EPOCH - 61))

    assert query_of(responses.calls[0]) == {"start_time": [str(NOW_EPOCH - 61)]}


@responses.activate
def test_stored_cursor_wins_over_start_time():
    page = export_pages()[3]
    page["end_of_stream"] = True
    responses.get(EXPORT_URL, json=page)

    list(make_client().iter_ticket_pages(cursor="MTY5NTA1MjY2My4wfHwzMHw=", start_time=0, per_page=1))

    assert query_of(responses.calls[0]) == {"cursor": ["MTY5NTA1MjY2My4wfHwzMHw="], "per_page": ["1"]}


def test_export_without_cursor_or_start_time_raises():
    with pytest.raises(ValueError, match="start_time is required when no cursor is given"):
        next(make_client().iter_ticket_pages())


@responses.activate
def test_repeated_cursor_raises_pagination_loop():
    first, second = export_pages()[:2]
    second["after_cursor"] = first["after_cursor"]
    responses.get(EXPORT_URL, json=first, match=[matchers.query_param_matcher({"start_time": "0"})])
    responses.get(EXPORT_URL, json=second, match=[matchers.query_param_matcher({"cursor": first["after_cursor"]})])
    pages = make_client().iter_ticket_pages(start_time=0)

    assert next(pages).after_cursor == first["after_cursor"]
    with pytest.raises(PaginationLoopError, match="twice in a row"):
        next(pages)


@responses.activate(registry=OrderedRegistry)
def test_rate_limited_export_page_is_retried():
    page = export_pages()[0]
    page["end_of_stream"] = True
    responses.get(EXPORT_URL, status=429, body="Rate limited", content_type="text/plain", headers={"Retry-After": "7"})
    responses.get(EXPORT_URL, json=page)
    client = make_client()

    [result] = client.iter_ticket_pages(start_time=0)

    assert [ticket["id"] for ticket in result.tickets] == [28]
    assert client.clock.sleeps == [7.0]
    assert len(responses.calls) == 2


@responses.activate
def test_api_token_sent_as_basic_auth():
    page = export_pages()[0]
    page["end_of_stream"] = True
    # base64 of "agent@example.com/token:zd-api-token-1"
    expected = "Basic YWdlbnRAZXhhbXBsZS5jb20vdG9rZW46emQtYXBpLXRva2VuLTE="
    responses.get(EXPORT_URL, json=page, match=[matchers.header_matcher({"Authorization": expected})])

    list(make_client().iter_ticket_pages(start_time=0))

    assert len(responses.calls) == 1


@responses.activate
def test_oauth_token_sent_as_bearer():
    page = export_pages()[0]
    page["end_of_stream"] = True
    responses.get(EXPORT_URL, json=page, match=[matchers.header_matcher({"Authorization": "Bearer zd-oauth-1"})])

    list(make_client(credentials={"oauth_token": "zd-oauth-1"}).iter_ticket_pages(start_time=0))

    assert len(responses.calls) == 1


def test_incomplete_credentials_name_keys_only():
    with pytest.raises(ValueError, match="the keys given are: email$") as caught:
        make_client(credentials={"email": "agent@example.com"})

    assert "agent@example.com" not in str(caught.value)


@responses.activate
def test_ticket_audits_follow_cursor_pages():
    interactions = load("ticket_audits_cursor_pages.json")["interactions"]
    first = copy.deepcopy(interactions[2]["response_body"])
    second = copy.deepcopy(interactions[3]["response_body"])
    second["meta"]["has_more"] = False
    path = f"{BASE_URL}/api/v2/tickets/1/audits.json"
    after = first["meta"]["after_cursor"]
    responses.get(path, json=first, match=[matchers.query_param_matcher({"page[size]": "100"})])
    responses.get(path, json=second, match=[matchers.query_param_matcher({"page[size]": "100", "page[after]": after})])

    audits = list(make_client().iter_ticket_audits(1))

    assert [audit["id"] for audit in audits] == [6130852545178, 6130876540314]
    assert [event["type"] for event in audits[1]["events"]] == ["Change", "Change"]
    assert len(responses.calls) == 2


@responses.activate
def test_users_follow_cursor_pages():
    envelope = load("ticket_audits_cursor_pages.json")["interactions"][2]["response_body"]
    first = {"users": [{"id": 6130907993114, "name": "User 0001"}], "meta": dict(envelope["meta"])}
    second = {"users": [{"id": 6130869168922, "name": "User 0002"}], "meta": {"has_more": False}}
    responses.get(f"{BASE_URL}/api/v2/users.json", json=first)
    responses.get(f"{BASE_URL}/api/v2/users.json", json=second)

    users = list(make_client().iter_users())

    assert [user["id"] for user in users] == [6130907993114, 6130869168922]
    assert query_of(responses.calls[1])["page[after]"] == [envelope["meta"]["after_cursor"]]


@responses.activate
def test_satisfaction_ratings_filters_sent():
    rating = load("satisfaction_rating.json")
    body = {"satisfaction_ratings": [rating], "meta": {"has_more": False, "after_cursor": None}, "links": {}}
    expected_query = {"start_time": "1311120000", "score": "received", "page[size]": "100"}
    responses.get(
        f"{BASE_URL}/api/v2/satisfaction_ratings.json",
        json=body,
        match=[matchers.query_param_matcher(expected_query)],
    )

    ratings = make_client().list_satisfaction_ratings(start_time=1311120000, score="received")

    assert ratings == [rating]


@responses.activate
def test_sla_policies_listed():
    policy = load("sla_policy.json")
    body = {"sla_policies": [policy], "next_page": None, "previous_page": None, "count": 1}
    responses.get(f"{BASE_URL}/api/v2/slas/policies.json", json=body)

    [result] = make_client().list_sla_policies()

    assert result["title"] == "Incidents"
    assert len(result["policy_metrics"]) == 6


@responses.activate
def test_update_ticket_puts_fields():
    recorded = load("ticket_update_single.json")["interactions"][1]
    fields = {"subject": "testa94a8fe5ccb19ba61c4c0873d391e987982fbbd3"}
    responses.put(
        f"{BASE_URL}/api/v2/tickets/4016.json",
        json=recorded["response_body"],
        match=[matchers.json_params_matcher({"ticket": fields})],
    )

    result = make_client().update_ticket(4016, fields)

    assert result["ticket"]["subject"] == fields["subject"]
    assert result["audit"]["events"][0]["previous_value"] == "test"


def test_update_ticket_rejects_comment_field():
    with pytest.raises(ValueError, match="use add_comment"):
        make_client().update_ticket(4016, {"comment": {"body": "Hi"}})


@responses.activate
def test_add_comment_sends_private_note():
    recorded = load("ticket_update_single.json")["interactions"][1]["response_body"]
    expected_body = {"ticket": {"comment": {"body": "Checked the mail server logs.", "public": False}}}
    responses.put(
        f"{BASE_URL}/api/v2/tickets/4016.json",
        json=recorded,
        match=[matchers.json_params_matcher(expected_body)],
    )

    result = make_client().add_comment(4016, "Checked the mail server logs.", public=False)

    assert result["ticket"]["id"] == 4016


@responses.activate
def test_add_comment_not_repeated_after_503():
    responses.put(f"{BASE_URL}/api/v2/tickets/4016.json", status=503)
    client = make_client()

    with pytest.raises(RetriableAPIError, match="not repeated") as caught:
        client.add_comment(4016, "Hello", public=True)

    assert caught.value.attempts == 1
    assert len(responses.calls) == 1
    assert client.clock.sleeps == []


# Signature computed outside Python with:
#   printf '%s' "$TIMESTAMP$BODY" | openssl dgst -sha256 -hmac "$SECRET" -binary | base64
WEBHOOK_SECRET = "dGhpcyBpcyBhIHRlc3Qgc2VjcmV0"
WEBHOOK_TIMESTAMP = "2024-03-05T10:15:00Z"
WEBHOOK_BODY = b'{"type":"zen:event-type:ticket.created","detail":{"id":"4016"}}'
WEBHOOK_SIGNATURE = "jtWl3avePr+3zuOe1xFAAhb4SUiVLA4gdZSq9rTBywM="


def test_webhook_signature_valid():
    assert verify_webhook_signature(WEBHOOK_SECRET, WEBHOOK_BODY, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP) is True


def test_webhook_signature_rejects_tampered_body():
    tampered = WEBHOOK_BODY.replace(b"4016", b"4017")

    assert verify_webhook_signature(WEBHOOK_SECRET, tampered, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP) is False


def test_webhook_signature_rejects_other_timestamp():
    assert verify_webhook_signature(WEBHOOK_SECRET, WEBHOOK_BODY, WEBHOOK_SIGNATURE, "2024-03-05T10:15:01Z") is False


def test_webhook_signature_rejects_wrong_secret():
    assert verify_webhook_signature("other-secret", WEBHOOK_BODY, WEBHOOK_SIGNATURE, WEBHOOK_TIMESTAMP) is False


def test_webhook_signature_rejects_missing_header():
    assert verify_webhook_signature(WEBHOOK_SECRET, WEBHOOK_BODY, "", WEBHOOK_TIMESTAMP) is False


@responses.activate
def test_offset_pagination_fallback_raises():
    # An endpoint without cursor support ignores page[size] and pages by offset.
    body = {"users": [{"id": 6130907993114}], "next_page": f"{BASE_URL}/api/v2/users.json?page=2", "count": 150}
    responses.get(f"{BASE_URL}/api/v2/users.json", json=body)

    with pytest.raises(UnexpectedResponseError, match=r"offset pagination \(next_page\) instead of meta"):
        list(make_client().iter_users())
