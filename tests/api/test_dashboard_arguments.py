"""The dashboard's query arguments over HTTP: invalid or out-of-range values get a 400 page naming them."""

from __future__ import annotations

import pytest

from hub.web.storage import hash_token
from tests.api.conftest import hub_of


@pytest.fixture
def analyst_client(api_app, tokens):
    """A test client with a dashboard session for an analyst token."""
    hub_of(api_app).catch_up()
    client = api_app.test_client()
    with client.session_transaction() as session:
        session["token_hash"] = hash_token(tokens["analyst"])
        session["csrf"] = "test"
    return client


def add_backlog_change(api_app, occurred_at):
    """Write one opening straight into the view, as a store holding a ticket of that date has it."""
    with hub_of(api_app).projections.transaction() as cursor:
        cursor.execute(
            "INSERT INTO ticket_backlog_changes (position, ticket_id, occurred_at, kind, change) VALUES (?, ?, ?, ?, ?)",
            (1000, "7b0c0d5e-5d4f-4b2f-9d3c-2f0d9b6f1a01", occurred_at, "opened", 1),
        )


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("period=9999-12", "period &#39;9999-12&#39; is out of range; use a month from 1970-01 to 2100-12"),
        ("period=0001-01", "period &#39;0001-01&#39; is out of range"),
        ("period=%D9%A2%D9%A0%D9%A1%D9%A6-%D9%A0%D9%A5", "is invalid; use a month such as 2016-05"),
        ("since=0001-01-01&until=0001-01-31", "since &#39;0001-01-01&#39; is out of range; use a date from 1970-01-01"),
        ("since=1000-01-01&until=5000-12-31", "since &#39;1000-01-01&#39; is out of range"),
        ("since=5000-01-01&until=9990-12-31", "since &#39;5000-01-01&#39; is out of range"),
        ("since=2016-01-01&until=9999-12-31", "until &#39;9999-12-31&#39; is out of range"),
        ("since=1970-01-01&until=2000-01-01", "a range covers at most 10957 days (30 years)"),
        ("since=2016-W09-2&until=2016-03-31", "since &#39;2016-W09-2&#39; is invalid; use a date such as 2016-03-01"),
    ],
)
@pytest.mark.parametrize("page", ["/", "/variability"])
def test_invalid_period_is_400(analyst_client, page, query, message):
    response = analyst_client.get(f"{page}?{query}")

    assert response.status_code == 400
    assert message in response.get_data(as_text=True)


def test_range_of_thirty_years_is_accepted(analyst_client):
    # 1970-01-01 to 1999-12-31 is 10957 days, 7 of them leap days.
    response = analyst_client.get("/?since=1970-01-01&until=1999-12-31")

    assert response.status_code == 200


def test_overview_ignores_ticket_in_year_9999(api_app, analyst_client, ticket):
    hub_of(api_app).catch_up()
    add_backlog_change(api_app, "9999-12-06T10:00:00.000000+00:00")

    response = analyst_client.get("/?period=all")

    assert response.status_code == 200
    page = response.get_data(as_text=True)
    assert "2024-03" in page
    assert "9999-12" not in page


@pytest.mark.parametrize("version", ["\u00b2", "\u0661", "0", "2"])
def test_ticket_page_rejects_invalid_version(api_app, analyst_client, ticket, version):
    hub_of(api_app).catch_up()

    response = analyst_client.get(f"/tickets/{ticket['id']}", query_string={"version": version})

    assert response.status_code == 400
    assert "pick a version from 1 to 1" in response.get_data(as_text=True)
