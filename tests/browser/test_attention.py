"""The attention page: SLA targets by time left, open escalations, and refreshing in place."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from tests.browser.helpers import json_attribute

ROWS_JS = """(selector) => Array.from(document.querySelectorAll(selector)).map((row) => ({...row.dataset}))"""


def sla_rows_shown(page):
    return page.evaluate(ROWS_JS, "#sla-table tbody tr[data-ticket]")


def escalation_rows_shown(page):
    return page.evaluate(ROWS_JS, "#escalation-table tbody tr[data-ticket]")


def test_sla_targets_sorted_by_time_left(analyst, attention_tickets):
    analyst.open("/attention")

    rows = sla_rows_shown(analyst.page)

    assert [(row["ticket"], row["target"], row["state"]) for row in rows] == [
        (attention_tickets["breached_long"], "first_response", "breached"),
        (attention_tickets["breached_short"], "first_response", "breached"),
        (attention_tickets["at_risk"], "first_response", "at_risk"),
    ]
    remaining = [float(row["remaining"]) for row in rows]
    assert remaining == sorted(remaining)
    # 600 business minutes on a 24x7 calendar: 20 h after opening the target is about 600 minutes overdue.
    assert -610 < remaining[0] < -590


def test_sla_targets_equal_api_rows(analyst, live_hub, attention_tickets):
    analyst.open("/attention")
    expected = (
        live_hub.api_items("/api/v1/sla", state="breached") + live_hub.api_items("/api/v1/sla", state="at_risk")
    )

    rows = sla_rows_shown(analyst.page)

    assert [(row["ticket"], row["target"], int(row["cycle"]), row["state"]) for row in rows] == [
        (item["ticket_id"], item["target"], item["cycle"], item["state"]) for item in expected
    ]
    assert [json_attribute(analyst.page.locator("#sla-table tbody tr").nth(index), "data-due")
            for index in range(len(rows))] == [item["due_at"] for item in expected]


def test_overdue_escalation_listed_first(analyst, attention_tickets):
    analyst.open("/attention")

    rows = escalation_rows_shown(analyst.page)

    assert rows[0]["ticket"] == attention_tickets["breached_long"]
    assert rows[0]["overdue"] == "true"
    # Promised one hour before the fixture ran, so overdue by a bit more than an hour now.
    assert 1.0 <= float(rows[0]["overdueHours"]) < 1.5
    assert analyst.page.locator("#escalation-table tbody tr").first.locator(".badge.overdue").count() == 1
    later = [row for row in rows[1:] if row["ticket"] == attention_tickets["at_risk"]]
    assert len(later) == 1
    assert later[0]["overdue"] == "false"


def test_escalations_equal_api_rows(analyst, live_hub, attention_tickets):
    analyst.open("/attention")
    expected = live_hub.api_items("/api/v1/escalations", state="open")

    rows = escalation_rows_shown(analyst.page)

    assert sorted((row["ticket"], int(row["seq"]), row["overdue"] == "true") for row in rows) == sorted(
        (item["ticket_id"], item["seq"], item["overdue"]) for item in expected
    )


def test_new_escalation_appears_without_reload(analyst, live_hub, attention_tickets):
    analyst.open("/attention")
    analyst.page.evaluate("window.loadedOnce = 'yes'")
    ticket_id = attention_tickets["running"]
    row = f'#escalation-table tr[data-ticket="{ticket_id}"]'
    assert analyst.page.locator(row).count() == 0

    now = datetime.now(timezone.utc)
    live_hub.api("POST", f"/api/v1/tickets/{ticket_id}/escalations", json={
        "level": 3, "reason": "Outage reported by several clients", "owner": "incident.manager",
        "promised_by": (now + timedelta(hours=2)).isoformat(),
    })
    analyst.page.wait_for_selector(row)

    assert analyst.page.evaluate("window.loadedOnce") == "yes"
    assert int(analyst.page.locator("#attention-lists").get_attribute("data-refresh-count")) >= 1
    assert "Updated" in analyst.page.locator("[data-live-status]").inner_text()


def test_live_section_asks_for_signin_when_session_ends(anonymous):
    response = anonymous.page.request.get(
        anonymous.hub.base_url + "/attention/live", headers={"X-Requested-With": "fetch"}, max_redirects=0,
    )

    assert response.status == 401
