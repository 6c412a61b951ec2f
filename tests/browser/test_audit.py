"""The ticket audit view: a real incident's timeline and its state at a chosen point."""

from __future__ import annotations

import uuid

import pytest

from hub.domain import external_uuid

TIMELINE_JS = """() => Array.from(document.querySelectorAll("#timeline tbody tr")).map((row) => ({
  version: Number(row.dataset.version),
  type: row.dataset.type,
  actor: {...row.querySelector('[data-field="actor"]').dataset},
  source: {...row.querySelector('[data-field="source"]').dataset},
  occurred_at: row.querySelector('[data-field="occurred_at"]').dataset.value,
  recorded_at: row.querySelector('[data-field="recorded_at"]').dataset.value,
  selected: row.classList.contains("selected"),
}))"""


@pytest.fixture(scope="module")
def incident(live_hub):
    """The imported incident with the most events, as (incident number, ticket id, history from the API)."""
    best = None
    for number in sorted(live_hub.incident_numbers)[:40]:
        ticket_id = str(external_uuid("ticket", "servicenow", number))
        history = live_hub.api_items(f"/api/v1/tickets/{ticket_id}/events")
        if best is None or len(history) > len(best[2]):
            best = (number, ticket_id, history)
    assert best is not None and len(best[2]) >= 4
    return best


def state_field(page, name):
    return page.locator(f'#state dd[data-field="{name}"]').inner_text()


def shown_text(value):
    return "\u2014" if value is None or value == "" else str(value)


def test_search_by_incident_number_opens_ticket(analyst, incident):
    number, ticket_id, _ = incident
    analyst.open("/tickets")

    analyst.page.fill("input[name=q]", number)
    with analyst.page.expect_navigation():
        analyst.page.click("main button[type=submit]")

    assert analyst.page.url == f"{analyst.hub.base_url}/tickets/{ticket_id}"
    assert number in analyst.page.locator(".lead").inner_text()


def test_timeline_equals_api_history(analyst, incident):
    _, ticket_id, history = incident
    analyst.open(f"/tickets/{ticket_id}")

    rows = analyst.page.evaluate(TIMELINE_JS)

    assert [row["version"] for row in rows] == [item["version"] for item in history]
    for row, item in zip(rows, history):
        assert row["type"] == item["type"]
        assert row["occurred_at"] == item["occurred_at"]
        assert row["recorded_at"] == item["recorded_at"]
        assert row["actor"]["kind"] == item["actor"]["kind"]
        assert row["actor"]["id"] == (item["actor"].get("id") or "")
        assert row["source"]["name"] == item["source"]["name"]
        assert row["source"]["externalId"] == (item["source"].get("external_id") or "")
        assert row["source"]["externalEventId"] == (item["source"].get("external_event_id") or "")
    assert [row["selected"] for row in rows] == [False] * (len(rows) - 1) + [True]


def test_version_link_shows_state_at_version(analyst, live_hub, incident):
    _, ticket_id, _ = incident
    analyst.open(f"/tickets/{ticket_id}")

    with analyst.page.expect_navigation():
        analyst.page.click('#timeline tr[data-version="2"] a')
    expected = live_hub.api("GET", f"/api/v1/tickets/{ticket_id}", params={"version": 2})

    assert analyst.page.locator("[data-state-version]").get_attribute("data-state-version") == "2"
    assert analyst.page.locator('#timeline tr.selected').get_attribute("data-version") == "2"
    for name in ("status", "priority", "group", "agent", "category", "reassignment_count"):
        assert state_field(analyst.page, name) == shown_text(expected[name]), name


def test_state_at_time_equals_api_as_of(analyst, live_hub, incident):
    _, ticket_id, history = incident
    # The instant the third event occurred, typed without an offset, which the page reads as UTC.
    third = history[2]["occurred_at"]
    assert third.endswith("+00:00")
    moment = third[:19]
    analyst.open(f"/tickets/{ticket_id}")

    analyst.page.fill("input[name=at]", moment)
    with analyst.page.expect_navigation():
        analyst.page.click(".toolbar button[type=submit]")
    expected = live_hub.api("GET", f"/api/v1/tickets/{ticket_id}", params={"as_of": third})

    shown_version = analyst.page.locator("[data-state-version]").get_attribute("data-state-version")
    assert int(shown_version) == expected["version"]
    assert state_field(analyst.page, "status") == shown_text(expected["status"])


def test_unknown_ticket_shows_not_found(analyst):
    response = analyst.open(f"/tickets/{uuid.uuid4()}")

    assert response.status == 404
    assert "No ticket has the id" in analyst.page.locator(".error-box").inner_text()


def test_search_miss_names_query(analyst):
    response = analyst.open("/tickets?q=INC9999999")

    assert response.status == 404
    assert "'INC9999999'" in analyst.page.locator(".error-box").inner_text()
