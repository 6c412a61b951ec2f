"""Tests for connectors.freshdesk against Freshdesk API v2 payloads."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from connectors.freshdesk import (
    FreshdeskClient,
    priority_term,
    source_channel,
    status_term,
)
from connectors.http import PaginationLoopError, RetriableAPIError

FIXTURES = Path(__file__).parent / "fixtures" / "freshdesk"
BASE_URL = "https://example.freshdesk.com"
TICKETS_URL = BASE_URL + "/api/v2/tickets"
SINCE = datetime(2016, 5, 1, 0, 0, 0, tzinfo=timezone.utc)


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2016, 6, 1, tzinfo=timezone.utc)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)


def load(name: str):
    return json.loads((FIXTURES / name).read_text())


def ticket(ticket_id: int, updated_at: str) -> dict:
    """The recorded sample ticket with another id and update time."""
    record = copy.deepcopy(load("ticket_1.json"))
    record["id"] = ticket_id
    record["updated_at"] = updated_at
    return record


def list_query(updated_since: str, page: int, per_page: int) -> dict[str, str]:
    return {
        "updated_since": updated_since,
        "order_by": "updated_at",
        "order_type": "asc",
        "per_page": str(per_page),
        "page": str(page),
    }


def make_client(**kwargs) -> FreshdeskClient:
    return FreshdeskClient(BASE_URL, "fd-api-key-1", connection_id="fd-1", clock=FakeClock(), **kwargs)


def ids_of(pages) -> list[int]:
    return [record["id"] for page in pages for record in page.tickets]


@responses.activate
def test_first_request_sends_updated_since():
    responses.get(TICKETS_URL, json=[load("ticket_1.json")])

    pages = list(make_client().iter_ticket_pages(SINCE))

    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query == {
        "updated_since": ["2016-05-01T00:00:00Z"],
        "order_by": ["updated_at"],
        "order_type": ["asc"],
        "per_page": ["100"],
        "page": ["1"],
    }
    assert ids_of(pages) == [1]
    assert len(responses.calls) == 1


@responses.activate
def test_updated_since_converted_to_utc():
    responses.get(TICKETS_URL, json=[])
    since = datetime(2016, 5, 1, 10, 0, 0, 999, tzinfo=timezone(timedelta(hours=10)))

    list(make_client().iter_ticket_pages(since))

    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["updated_since"] == ["2016-05-01T00:00:00Z"]


def test_naive_updated_since_rejected():
    with pytest.raises(ValueError, match="has no time zone"):
        next(make_client().iter_ticket_pages(datetime(2016, 5, 1)))


@responses.activate
def test_full_pages_continue_to_next_page():
    responses.get(
        TICKETS_URL,
        json=[ticket(1, "2016-05-02T00:00:00Z"), ticket(2, "2016-05-03T00:00:00Z")],
        match=[matchers.query_param_matcher(list_query("2016-05-01T00:00:00Z", 1, 2))],
    )
    responses.get(
        TICKETS_URL,
        json=[ticket(3, "2016-05-04T00:00:00Z")],
        match=[matchers.query_param_matcher(list_query("2016-05-01T00:00:00Z", 2, 2))],
    )

    pages = list(make_client(per_page=2).iter_ticket_pages(SINCE))

    assert ids_of(pages) == [1, 2, 3]
    assert [page.checkpoint for page in pages] == [
        datetime(2016, 5, 3, tzinfo=timezone.utc),
        datetime(2016, 5, 4, tzinfo=timezone.utc),
    ]
    assert len(responses.calls) == 2


@responses.activate
def test_same_second_across_page_cap_yielded_once():
    # Two pages of two fill the cap; tickets 4 and 5 share 10:00:05 on both sides of it.
    window_one = "2016-05-01T00:00:00Z"
    responses.get(
        TICKETS_URL,
        json=[ticket(1, "2016-05-18T10:00:01Z"), ticket(2, "2016-05-18T10:00:02Z")],
        match=[matchers.query_param_matcher(list_query(window_one, 1, 2))],
    )
    responses.get(
        TICKETS_URL,
        json=[ticket(3, "2016-05-18T10:00:03Z"), ticket(4, "2016-05-18T10:00:05Z")],
        match=[matchers.query_param_matcher(list_query(window_one, 2, 2))],
    )
    # The restarted window begins at 10:00:05 inclusive, so ticket 4 comes back.
    window_two = "2016-05-18T10:00:05Z"
    responses.get(
        TICKETS_URL,
        json=[ticket(4, "2016-05-18T10:00:05Z"), ticket(5, "2016-05-18T10:00:05Z")],
        match=[matchers.query_param_matcher(list_query(window_two, 1, 2))],
    )
    responses.get(
        TICKETS_URL,
        json=[ticket(6, "2016-05-18T10:00:07Z")],
        match=[matchers.query_param_matcher(list_query(window_two, 2, 2))],
    )

    pages = list(make_client(per_page=2, max_pages=2).iter_ticket_pages(SINCE))

    assert ids_of(pages) == [1, 2, 3, 4, 5, 6]
    assert len(responses.calls) == 4


@responses.activate
def test_ticket_changed_again_after_restart_is_yielded():
    window_one = "2016-05-01T00:00:00Z"
    responses.get(
        TICKETS_URL,
        json=[ticket(1, "2016-05-18T10:00:01Z"), ticket(2, "2016-05-18T10:00:05Z")],
        match=[matchers.query_param_matcher(list_query(window_one, 1, 2))],
    )
    # Ticket 1 changed during the sync, so it reappears with a new updated_at.
    responses.get(
        TICKETS_URL,
        json=[ticket(2, "2016-05-18T10:00:05Z"), ticket(1, "2016-05-18T10:00:09Z")],
        match=[matchers.query_param_matcher(list_query("2016-05-18T10:00:05Z", 1, 2))],
    )
    responses.get(
        TICKETS_URL,
        json=[],
        match=[matchers.query_param_matcher(list_query("2016-05-18T10:00:09Z", 1, 2))],
    )

    pages = list(make_client(per_page=2, max_pages=1).iter_ticket_pages(SINCE))

    assert ids_of(pages) == [1, 2, 1]
    assert len(responses.calls) == 3


@responses.activate
def test_page_cap_within_one_second_raises_loop():
    responses.get(
        TICKETS_URL,
        json=[ticket(1, "2016-05-18T10:00:05Z")],
        match=[matchers.query_param_matcher(list_query("2016-05-01T00:00:00Z", 1, 1))],
    )
    # The restarted window returns only the ticket already yielded: no progress.
    responses.get(
        TICKETS_URL,
        json=[ticket(1, "2016-05-18T10:00:05Z")],
        match=[matchers.query_param_matcher(list_query("2016-05-18T10:00:05Z", 1, 1))],
    )
    pages = make_client(per_page=1, max_pages=1).iter_ticket_pages(SINCE)

    assert [record["id"] for record in next(pages).tickets] == [1]
    with pytest.raises(PaginationLoopError, match="More than 1 Freshdesk tickets of connection id fd-1"):
        next(pages)


@responses.activate
def test_api_key_sent_as_basic_auth():
    # base64 of "fd-api-key-1:X"
    expected = "Basic ZmQtYXBpLWtleS0xOlg="
    responses.get(TICKETS_URL, json=[], match=[matchers.header_matcher({"Authorization": expected})])

    list(make_client().iter_ticket_pages(SINCE))

    assert len(responses.calls) == 1


def test_per_page_above_limit_rejected():
    with pytest.raises(ValueError, match="per_page 101 is invalid; Freshdesk accepts 1 to 100"):
        make_client(per_page=101)


@responses.activate
def test_conversations_follow_pages():
    conversations = load("conversations.json")
    url = f"{TICKETS_URL}/1/conversations"
    responses.get(url, json=conversations, match=[matchers.query_param_matcher({"per_page": "2", "page": "1"})])
    responses.get(url, json=[], match=[matchers.query_param_matcher({"per_page": "2", "page": "2"})])

    result = make_client(per_page=2).list_conversations(1)

    assert [(item["id"], item["private"]) for item in result] == [(1, True), (2, False)]
    assert len(responses.calls) == 2


@responses.activate
def test_update_ticket_puts_fields():
    fields = {"status": 4, "priority": 3, "subject": "Test subject update"}
    responses.put(f"{TICKETS_URL}/1", json=load("ticket_1_updated.json"), match=[matchers.json_params_matcher(fields)])

    result = make_client().update_ticket(1, fields)

    assert (result["status"], result["priority"]) == (4, 3)


@responses.activate
def test_reply_posts_body():
    responses.post(
        f"{TICKETS_URL}/1/reply",
        json=load("reply_1.json"),
        status=201,
        match=[matchers.json_params_matcher({"body": "<div>This is a reply</div>"})],
    )

    result = make_client().reply(1, "<div>This is a reply</div>")

    assert result["body_text"] == "This is a reply"


@responses.activate
def test_reply_not_repeated_after_502():
    responses.post(f"{TICKETS_URL}/1/reply", status=502)

    with pytest.raises(RetriableAPIError, match="not repeated") as caught:
        make_client().reply(1, "Hello")

    assert caught.value.attempts == 1
    assert len(responses.calls) == 1


@pytest.mark.parametrize(
    ("code", "expected"),
    [(2, "open"), (3, "pending"), (4, "resolved"), (5, "closed")],
)
def test_status_terms(code, expected):
    assert status_term(code) == expected


def test_custom_status_needs_mapping():
    with pytest.raises(ValueError, match=r"Freshdesk status 6 is a custom status .* \{6: 'on_hold'\}"):
        status_term(6)


def test_custom_status_mapped():
    assert status_term(7, {7: "on_hold"}) == "on_hold"


def test_custom_status_mapping_checked():
    with pytest.raises(ValueError, match="custom_statuses maps 7 to 'waiting'"):
        status_term(7, {7: "waiting"})


@pytest.mark.parametrize(
    ("code", "expected"),
    [(1, "low"), (2, "medium"), (3, "high"), (4, "critical")],
)
def test_priority_terms(code, expected):
    assert priority_term(code) == expected


def test_unknown_priority_rejected():
    with pytest.raises(ValueError, match="Freshdesk priority 5 is unknown"):
        priority_term(5)


@pytest.mark.parametrize(
    ("code", "expected"),
    [(1, "email"), (2, "web"), (3, "phone"), (7, "chat"), (9, "web"), (10, "email"), (8, "other")],
)
def test_source_channels(code, expected):
    assert source_channel(code) == expected


def test_recorded_ticket_codes_map():
    record = load("all_tickets.json")[0]

    terms = (status_term(record["status"]), priority_term(record["priority"]), source_channel(record["source"]))

    assert terms == ("open", "low", "web")
    assert (record["status_name"], record["priority_name"], record["source_name"]) == ("Open", "Low", "Portal")
