"""The PDCA log page against the API's improvement log."""

from __future__ import annotations

ROWS_JS = """() => Object.fromEntries(Array.from(document.querySelectorAll("#improvement-table tbody tr[data-improvement]"))
  .map((row) => [row.dataset.improvement, {
    phase: row.dataset.phase,
    fields: Object.fromEntries(Array.from(row.querySelectorAll("[data-field]"))
      .map((cell) => [cell.dataset.field, {value: JSON.parse(cell.dataset.value), text: cell.innerText}])),
  }]))"""

COMPARED_FIELDS = ("baseline", "target", "measured", "measured_from_views", "change_from_baseline", "target_met")


def test_cycles_equal_api_log(analyst, live_hub, pdca_cycles):
    analyst.open("/improvements")
    log = {entry["improvement_id"]: entry for entry in live_hub.api("GET", "/api/v1/improvements")["items"]}

    rows = analyst.page.evaluate(ROWS_JS)

    assert set(rows) == set(log)
    for improvement_id, row in rows.items():
        assert row["phase"] == log[improvement_id]["phase"]
        for name in COMPARED_FIELDS:
            assert row["fields"][name]["value"] == log[improvement_id][name], (improvement_id, name)


def test_finished_cycle_shows_decision_and_values(analyst, pdca_cycles):
    analyst.open("/improvements")

    rows = analyst.page.evaluate(ROWS_JS)
    finished = rows[pdca_cycles["finished"]]

    assert finished["phase"] == "act"
    assert finished["fields"]["baseline"]["text"] == "30.0 h"
    assert finished["fields"]["target"]["text"] == "20.0 h"
    assert finished["fields"]["measured"]["text"] == "18.5 h"
    row = analyst.page.locator(f'tr[data-improvement="{pdca_cycles["finished"]}"]')
    assert row.locator(".badge.standardized").inner_text() == "standardized"
    assert "Kept for every medium ticket" in row.inner_text()


def test_measured_from_views_equals_kpi_of_window(analyst, live_hub, pdca_cycles):
    analyst.open("/improvements")
    kpi = live_hub.api("GET", "/api/v1/kpis", params={
        "since": "2016-05-01T00:00:00+00:00", "until": "2016-06-01T00:00:00+00:00", "priority": "medium",
    })["items"][0]["resolution_hours_p50"]

    rows = analyst.page.evaluate(ROWS_JS)

    assert rows[pdca_cycles["finished"]]["fields"]["measured_from_views"]["value"] == kpi
    assert rows[pdca_cycles["finished"]]["fields"]["change_from_baseline"]["value"] == kpi - 30.0


def test_phase_filter_lists_only_that_phase(analyst, pdca_cycles):
    analyst.open("/improvements?phase=plan")

    rows = analyst.page.evaluate(ROWS_JS)

    assert pdca_cycles["planned"] in rows
    assert pdca_cycles["finished"] not in rows
    assert {row["phase"] for row in rows.values()} == {"plan"}
