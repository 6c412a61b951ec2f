"""The variability page: spread per priority and duration histograms with p50 and p90 lines."""

from __future__ import annotations

from datetime import datetime

from tests.browser.helpers import CHART_IDS, read_chart, read_table

MAY_2016 = {"since": "2016-05-01T00:00:00+00:00", "until": "2016-06-01T00:00:00+00:00"}

# Bin edges in hours, each twice the one before from a quarter hour; the last bin is open.
EDGES = [0, 0.25, 0.5, 1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048]
LABELS = [
    "< 15 min", "15 min\u201330 min", "30 min\u20131 h", "1 h\u20132 h", "2 h\u20134 h", "4 h\u20138 h",
    "8 h\u201316 h", "16 h\u201332 h", "32 h\u201364 h", "64 h\u2013128 h", "128 h\u2013256 h",
    "256 h\u2013512 h", "512 h\u20131024 h", "1024 h\u20132048 h", "\u2265 2048 h",
]


def priority_rows(live_hub):
    return live_hub.api_items("/api/v1/kpis", group_by="priority", **MAY_2016)


def test_spread_table_equals_api_priorities(analyst, live_hub):
    analyst.open("/variability?period=2016-05")
    expected = priority_rows(live_hub)

    figures_by_priority = read_table(analyst.page, "#spread-table")

    assert list(figures_by_priority) == [row["priority"] for row in expected]
    for row in expected:
        for key, value in figures_by_priority[row["priority"]].items():
            assert value == row[key], (row["priority"], key)
        assert len(figures_by_priority[row["priority"]]) == 9


def test_two_histograms_per_priority(analyst, live_hub):
    analyst.open("/variability?period=2016-05")
    priorities = [row["priority"] for row in priority_rows(live_hub)]

    ids = analyst.page.evaluate(CHART_IDS)

    assert ids == [
        f"histogram-{column}-{priority}"
        for priority in priorities
        for column in ("first-response-hours", "resolution-hours")
    ]
    for chart_id in ids:
        chart = read_chart(analyst.page, chart_id)
        assert chart["labels"] == LABELS, chart_id
        assert len(chart["series"]) == 1, chart_id
        assert chart["series"][0]["drawn"] == len(LABELS), chart_id


def test_histogram_lines_equal_api_percentiles(analyst, live_hub):
    analyst.open("/variability?period=2016-05")

    for row in priority_rows(live_hub):
        for column, prefix in (("first-response-hours", "first_response_hours"), ("resolution-hours", "resolution_hours")):
            chart = read_chart(analyst.page, f"histogram-{column}-{row['priority']}")
            expected = [
                {"key": key, "label": key, "value": row[f"{prefix}_{key}"]}
                for key in ("p50", "p90") if row[f"{prefix}_{key}"] is not None
            ]
            assert chart["markers"] == expected, (row["priority"], column)


def test_resolution_histogram_counts_ticket_durations(analyst, live_hub):
    # A second method: read each high-priority ticket opened in May 2016 through the API,
    # take opened to resolved in hours, and bin the durations here.
    analyst.open("/variability?period=2016-05")
    since, until = (datetime.fromisoformat(MAY_2016[name]) for name in ("since", "until"))
    summaries = live_hub.api_items("/api/v1/tickets", priority="high")
    durations = []
    for summary in summaries:
        if not since <= datetime.fromisoformat(summary["opened_at"]) < until:
            continue
        ticket = live_hub.api("GET", f"/api/v1/tickets/{summary['id']}")
        if ticket["resolved_at"] is not None:
            opened = datetime.fromisoformat(ticket["opened_at"])
            resolved = datetime.fromisoformat(ticket["resolved_at"])
            durations.append((resolved - opened).total_seconds() / 3600)
    expected = [0] * len(EDGES)
    for hours in durations:
        index = max(position for position, edge in enumerate(EDGES) if hours >= edge or position == 0)
        expected[index] += 1

    chart = read_chart(analyst.page, "histogram-resolution-hours-high")

    assert len(durations) > 3
    assert chart["series"][0]["data"] == expected
