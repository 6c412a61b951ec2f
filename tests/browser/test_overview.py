"""The overview on real ServiceNow data: tiles, weekly trends and breakdowns against the API's JSON."""

from __future__ import annotations

from datetime import datetime, timezone

from tests.browser.helpers import (
    CHART_IDS,
    MINUS,
    SHOWN,
    TILE_KINDS,
    json_attribute,
    read_chart,
    read_table,
)

MAY_2016 = {"since": "2016-05-01T00:00:00+00:00", "until": "2016-06-01T00:00:00+00:00"}
APRIL_2016 = {"since": "2016-04-01T00:00:00+00:00", "until": "2016-05-01T00:00:00+00:00"}

# The 13 Mondays of the weekly trend that ends with May 2016 (May 31 is a Tuesday), counted on a calendar.
MAY_TREND_WEEKS = [
    "2016-03-07", "2016-03-14", "2016-03-21", "2016-03-28", "2016-04-04", "2016-04-11", "2016-04-18",
    "2016-04-25", "2016-05-02", "2016-05-09", "2016-05-16", "2016-05-23", "2016-05-30",
]


def overall(live_hub, period):
    rows = live_hub.api("GET", "/api/v1/kpis", params=period)["items"]
    assert len(rows) == 1
    return rows[0]


def test_overview_defaults_to_busy_month(analyst):
    # The log's monthly incident counts: March to May 2016 hold almost all of them,
    # the months after May only a few dozen each, so May 2016 is the default.
    analyst.open("/")

    assert analyst.page.locator("h1 [data-period]").get_attribute("data-period") == "2016-05"


def test_tiles_equal_api_kpis(analyst, live_hub):
    analyst.open("/?period=2016-05")
    expected = overall(live_hub, MAY_2016)

    assert expected["tickets"] > 100
    for key, kind in TILE_KINDS.items():
        if key == "backlog":
            continue
        tile = analyst.page.locator(f'.tile[data-metric="{key}"]')
        assert json_attribute(tile, "data-value") == expected[key], key
        assert tile.locator(".tile-value").inner_text() == SHOWN[kind](expected[key]), key


def test_tiles_compare_with_previous_month(analyst, live_hub):
    analyst.open("/?period=2016-05")
    may = overall(live_hub, MAY_2016)
    april = overall(live_hub, APRIL_2016)

    tile = analyst.page.locator('.tile[data-metric="tickets"]')
    assert json_attribute(tile, "data-previous") == april["tickets"]
    change = may["tickets"] - april["tickets"]
    assert tile.locator(".delta").inner_text() == f"{change:+,}".replace("-", MINUS)
    assert "vs April 2016" in tile.locator(".tile-change").inner_text()

    ratio_tile = analyst.page.locator('.tile[data-metric="source_sla_adherence"]')
    points = 100 * (may["source_sla_adherence"] - april["source_sla_adherence"])
    assert ratio_tile.locator(".delta").inner_text() == f"{points:+.1f} pp".replace("-", MINUS)


def test_backlog_tile_counts_open_tickets(analyst, live_hub):
    from projections.queries import backlog

    analyst.open("/?period=2016-05")
    end_of_may = datetime(2016, 6, 1, tzinfo=timezone.utc)
    rows = backlog(live_hub.services().projections, period="month", until=end_of_may)

    tile = analyst.page.locator('.tile[data-metric="backlog"]')
    assert rows[-1]["period"] == "2016-05"
    assert json_attribute(tile, "data-value") == rows[-1]["backlog"]
    assert tile.locator(".tile-value").inner_text() == f"{rows[-1]['backlog']:,}"


def test_trend_charts_have_weekly_points(analyst):
    analyst.open("/?period=2016-05")

    assert analyst.page.evaluate(CHART_IDS) == ["trend-volume", "trend-times", "trend-rates"]
    expected_series = {"trend-volume": 3, "trend-times": 3, "trend-rates": 6}
    for chart_id, count in expected_series.items():
        chart = read_chart(analyst.page, chart_id)
        assert chart["labels"] == MAY_TREND_WEEKS, chart_id
        assert len(chart["series"]) == count, chart_id
        for series in chart["series"]:
            assert series["drawn"] == len(MAY_TREND_WEEKS), (chart_id, series["key"])
        assert chart["width"] > 0 and chart["height"] > 0


def test_trend_values_equal_api_weekly_kpis(analyst, live_hub):
    analyst.open("/?period=2016-05")
    weeks = live_hub.api_items(
        "/api/v1/kpis", group_by="week", since="2016-03-07T00:00:00+00:00", until=MAY_2016["until"],
    )
    by_week = {row["week"]: row for row in weeks}

    volume = {series["key"]: series["data"] for series in read_chart(analyst.page, "trend-volume")["series"]}
    times = {series["key"]: series["data"] for series in read_chart(analyst.page, "trend-times")["series"]}
    rates = {series["key"]: series["data"] for series in read_chart(analyst.page, "trend-rates")["series"]}
    assert volume["tickets"] == [by_week[week]["tickets"] if week in by_week else 0 for week in MAY_TREND_WEEKS]
    for key in ("first_response_hours_p50", "resolution_hours_p50", "resolution_hours_p90"):
        assert times[key] == [by_week[week][key] if week in by_week else None for week in MAY_TREND_WEEKS], key
    for key in ("fcr", "csat", "sla_adherence", "source_sla_adherence", "reopen_rate", "escalation_rate"):
        assert rates[key] == [by_week[week][key] if week in by_week else None for week in MAY_TREND_WEEKS], key


def test_weekly_opened_tickets_sum_to_trend_total(analyst, live_hub):
    analyst.open("/?period=2016-05")
    total = overall(live_hub, {"since": "2016-03-07T00:00:00+00:00", "until": MAY_2016["until"]})

    volume = {series["key"]: series["data"] for series in read_chart(analyst.page, "trend-volume")["series"]}
    assert sum(volume["tickets"]) == total["tickets"]


def test_breakdown_tables_equal_api_groups(analyst, live_hub):
    analyst.open("/?period=2016-05")

    for dimension in ("priority", "channel", "group"):
        expected = live_hub.api_items("/api/v1/kpis", group_by=dimension, **MAY_2016)
        shown = read_table(analyst.page, f"#breakdown-{dimension}")
        assert sorted(shown, key=str) == sorted((row[dimension] for row in expected), key=str), dimension
        for api_row in expected:
            figures = shown[api_row[dimension]]
            assert len(figures) == 9
            for key, value in figures.items():
                assert value == api_row[key], (dimension, api_row[dimension], key)


def test_group_breakdown_lists_busiest_first(analyst):
    analyst.open("/?period=2016-05")

    cells = analyst.page.locator('#breakdown-group tbody td[data-metric="tickets"]')
    counts = [json_attribute(cells.nth(index), "data-value") for index in range(cells.count())]
    assert counts == sorted(counts, reverse=True)


def test_month_selector_shows_chosen_month(analyst, live_hub):
    analyst.open("/?period=2016-05")

    with analyst.page.expect_navigation():
        analyst.page.select_option("select[name=period]", "2016-04")
    analyst.page.wait_for_selector("body[data-charts-ready='true']")

    assert analyst.page.locator("h1 [data-period]").get_attribute("data-period") == "2016-04"
    tile = analyst.page.locator('.tile[data-metric="tickets"]')
    assert json_attribute(tile, "data-value") == overall(live_hub, APRIL_2016)["tickets"]


def test_custom_range_includes_both_days(analyst, live_hub):
    analyst.open("/?period=2016-05")

    analyst.page.fill("input[name=since]", "2016-03-01")
    analyst.page.fill("input[name=until]", "2016-03-31")
    with analyst.page.expect_navigation():
        analyst.page.click(".range-form button[type=submit]")

    expected = overall(live_hub, {"since": "2016-03-01T00:00:00+00:00", "until": "2016-04-01T00:00:00+00:00"})
    tile = analyst.page.locator('.tile[data-metric="tickets"]')
    assert json_attribute(tile, "data-value") == expected["tickets"]
    assert "vs 2016-01-30 to 2016-02-29" in tile.locator(".tile-change").inner_text()


def test_invalid_month_names_the_value(analyst):
    response = analyst.open("/?period=2016-13")

    assert response.status == 400
    assert "'2016-13'" in analyst.page.locator(".error-box").inner_text()


def test_month_options_count_api_tickets(analyst, live_hub):
    analyst.open("/?period=2016-05")
    months = {row["month"]: row["tickets"] for row in live_hub.api_items("/api/v1/kpis", group_by="month")}

    options = analyst.page.evaluate(
        "() => Array.from(document.querySelectorAll('select[name=period] option')).map(o => [o.value, o.text])"
    )

    shown = {value: text for value, text in options if value not in ("", "all")}
    assert sorted(shown) == sorted(months)
    for month, tickets in months.items():
        assert shown[month] == f"{month} ({tickets:,} tickets)"
