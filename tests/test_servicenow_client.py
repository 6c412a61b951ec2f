"""Tests for connectors.servicenow against the Table API incident payload."""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import responses
from responses import matchers

from connectors.http import PaginationLoopError, UnexpectedResponseError
from connectors.servicenow import ServiceNowClient, incident_keyset_query

FIXTURES = Path(__file__).parent / "fixtures" / "servicenow"
BASE_URL = "https://example.service-now.com"
INCIDENT_URL = BASE_URL + "/api/now/table/incident"

SYS_ID_A = "1c741bd70b2322007518478d83673af3"
SYS_ID_B = "46b66a40a9fe198101f243dfbc79033d"
SYS_ID_C = "9d385017c611228701d22104cc95c371"


class FakeClock:
    def __init__(self) -> None:
        self.current = datetime(2016, 12, 15, tzinfo=timezone.utc)
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.current

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.current += timedelta(seconds=seconds)


def incident(sys_id: str, updated_on: str, number: str) -> dict:
    """The recorded demo incident with another sys_id, update time and number."""
    record = copy.deepcopy(json.loads((FIXTURES / "table_api_incident_INC0000060.json").read_text())["result"][0])
    record["sys_id"] = sys_id
    record["sys_updated_on"] = updated_on
    record["number"] = number
    return record


def page_query(sysparm_query: str, limit: int) -> dict[str, str]:
    return {"sysparm_query": sysparm_query, "sysparm_limit": str(limit), "sysparm_display_value": "false"}


def make_client(**kwargs) -> ServiceNowClient:
    kwargs.setdefault("credentials", {"username": "integration.user", "password": "sn-password-1"})
    return ServiceNowClient(BASE_URL, connection_id="sn-1", clock=FakeClock(), **kwargs)


def test_first_page_query_only_orders():
    assert incident_keyset_query(None) == "ORDERBYsys_updated_on^ORDERBYsys_id"


def test_keyset_query_breaks_ties_on_sys_id():
    query = incident_keyset_query(("2016-12-14 02:46:44", SYS_ID_A))

    assert query == (
        "sys_updated_on>2016-12-14 02:46:44"
        "^NQsys_updated_on=2016-12-14 02:46:44^sys_id>1c741bd70b2322007518478d83673af3"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )


@pytest.mark.parametrize(
    ("cursor", "message"),
    [
        (("2016-12-14T02:46:44Z", SYS_ID_A), "sys_updated_on '2016-12-14T02:46:44Z' in the cursor is invalid"),
        (("2016-12-14 02:46:44", "INC0000060"), "sys_id 'INC0000060' in the cursor is invalid"),
        (("2016-12-14 02:46:44^ORactive=true", SYS_ID_A), "sys_updated_on .* in the cursor is invalid"),
    ],
)
def test_keyset_query_rejects_bad_cursor(cursor, message):
    with pytest.raises(ValueError, match=message):
        incident_keyset_query(cursor)


@responses.activate
def test_pages_follow_keyset_without_offsets():
    first_page = [
        incident(SYS_ID_A, "2016-12-14 02:46:44", "INC0000060"),
        incident(SYS_ID_B, "2016-12-14 02:46:44", "INC0000061"),
    ]
    second_page = [incident(SYS_ID_C, "2016-12-15 08:00:00", "INC0000062")]
    responses.get(
        INCIDENT_URL,
        json={"result": first_page},
        match=[matchers.query_param_matcher(page_query("ORDERBYsys_updated_on^ORDERBYsys_id", 2))],
    )
    second_query = (
        "sys_updated_on>2016-12-14 02:46:44"
        "^NQsys_updated_on=2016-12-14 02:46:44^sys_id>46b66a40a9fe198101f243dfbc79033d"
        "^ORDERBYsys_updated_on^ORDERBYsys_id"
    )
    responses.get(
        INCIDENT_URL,
        json={"result": second_page},
        match=[matchers.query_param_matcher(page_query(second_query, 2))],
    )

    pages = list(make_client().iter_incident_pages(page_size=2))

    assert [[record["number"] for record in page.incidents] for page in pages] == [
        ["INC0000060", "INC0000061"],
        ["INC0000062"],
    ]
    assert [page.cursor for page in pages] == [
        ("2016-12-14 02:46:44", SYS_ID_B),
        ("2016-12-15 08:00:00", SYS_ID_C),
    ]
    for call in responses.calls:
        assert "sysparm_offset" not in parse_qs(urlsplit(call.request.url).query)


@responses.activate
def test_resume_from_stored_cursor():
    responses.get(INCIDENT_URL, json={"result": []})

    pages = list(make_client().iter_incident_pages(after=("2016-12-14 02:46:44", SYS_ID_A)))

    query = parse_qs(urlsplit(responses.calls[0].request.url).query)
    assert query["sysparm_query"] == [incident_keyset_query(("2016-12-14 02:46:44", SYS_ID_A))]
    assert query["sysparm_limit"] == ["100"]
    assert pages == []


@responses.activate
def test_repeated_page_raises_pagination_loop():
    page = [incident(SYS_ID_A, "2016-12-14 02:46:44", "INC0000060")]
    # The instance ignores the keyset query and returns the first page again.
    responses.get(INCIDENT_URL, json={"result": page})
    responses.get(INCIDENT_URL, json={"result": page})
    pages = make_client().iter_incident_pages(page_size=1)

    assert next(pages).cursor == ("2016-12-14 02:46:44", SYS_ID_A)
    with pytest.raises(PaginationLoopError, match="twice in a row"):
        next(pages)


@responses.activate
def test_key_going_backwards_raises_pagination_loop():
    responses.get(INCIDENT_URL, json={"result": [incident(SYS_ID_B, "2016-12-14 02:46:44", "INC0000061")]})
    responses.get(INCIDENT_URL, json={"result": [incident(SYS_ID_A, "2016-12-14 02:46:44", "INC0000060")]})
    pages = make_client().iter_incident_pages(page_size=1)
    next(pages)

    with pytest.raises(PaginationLoopError, match="the keyset query was not applied"):
        next(pages)


@responses.activate
def test_password_sent_as_basic_auth():
    # base64 of "integration.user:sn-password-1"
    expected = "Basic aW50ZWdyYXRpb24udXNlcjpzbi1wYXNzd29yZC0x"
    responses.get(INCIDENT_URL, json={"result": []}, match=[matchers.header_matcher({"Authorization": expected})])

    list(make_client().iter_incident_pages())

    assert len(responses.calls) == 1


@responses.activate
def test_oauth_token_sent_as_bearer():
    responses.get(
        INCIDENT_URL,
        json={"result": []},
        match=[matchers.header_matcher({"Authorization": "Bearer sn-oauth-1"})],
    )

    list(make_client(credentials={"oauth_token": "sn-oauth-1"}).iter_incident_pages())

    assert len(responses.calls) == 1


@responses.activate
def test_update_incident_patches_fields():
    updated = incident(SYS_ID_A, "2016-12-16 09:00:00", "INC0000060")
    updated["state"] = "2"
    responses.patch(
        f"{INCIDENT_URL}/{SYS_ID_A}",
        json={"result": updated},
        match=[matchers.json_params_matcher({"state": "2", "work_notes": "Investigating"})],
    )

    result = make_client().update_incident(SYS_ID_A, {"state": "2", "work_notes": "Investigating"})

    assert (result["sys_id"], result["state"]) == (SYS_ID_A, "2")


def test_update_incident_rejects_bad_sys_id():
    with pytest.raises(ValueError, match="sys_id 'INC0000060' is invalid"):
        make_client().update_incident("INC0000060", {"state": "2"})


@responses.activate
def test_incident_without_sys_id_raises():
    record = incident(SYS_ID_A, "2016-12-14 02:46:44", "INC0000060")
    del record["sys_id"]
    responses.get(INCIDENT_URL, json={"result": [record]})

    with pytest.raises(UnexpectedResponseError, match="an incident has no 32-character 'sys_id'"):
        list(make_client().iter_incident_pages())
