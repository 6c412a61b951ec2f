"""How the dashboard prints figures and bins durations (no browser needed)."""

from __future__ import annotations

import pytest

from hub.web.pages.charts import HISTOGRAM_LABELS, histogram_counts
from hub.web.pages.formatting import (
    change_direction,
    format_change,
    format_hours,
    format_minutes,
    format_nps,
    format_ratio,
    format_time,
)


@pytest.mark.parametrize(
    ("hours", "text"),
    [(None, "\u2014"), (0.25, "15 min"), (0.99, "59 min"), (0.999, "1.0 h"), (1.0, "1.0 h"), (47.94, "47.9 h"), (48.0, "2.0 d"), (300.0, "12.5 d")],
)
def test_hours_print_in_minutes_hours_or_days(hours, text):
    assert format_hours(hours) == text


def test_ratio_prints_as_percent():
    assert format_ratio(0.62148) == "62.1%"


def test_nps_prints_sign():
    assert (format_nps(12.5), format_nps(-3.25), format_nps(0.0)) == ("+12.5", "\u22123.2", "+0.0")


def test_ratio_change_prints_percentage_points():
    assert format_change(0.775, 0.754, "ratio") == "+2.1 pp"


def test_change_that_rounds_to_zero_has_no_sign():
    assert format_change(0.00901, 0.00903, "ratio") == "+0.0 pp"
    assert change_direction(0.00901, 0.00903, "lower", "ratio") == "same"


def test_count_change_uses_minus_sign():
    assert format_change(7508, 7934, "count") == "\u2212426"


@pytest.mark.parametrize(
    ("current", "previous", "better", "direction"),
    [(2.0, 2.7, "lower", "better"), (2.7, 2.0, "lower", "worse"), (0.8, 0.7, "higher", "better"), (None, 1.0, "higher", "same")],
)
def test_change_direction_follows_better(current, previous, better, direction):
    assert change_direction(current, previous, better, "hours") == direction


def test_time_prints_in_utc():
    assert format_time("2016-03-02T15:05:00+01:00") == "2016-03-02 14:05:00 UTC"


def test_minutes_print_signed_days_and_hours():
    assert (format_minutes(-600), format_minutes(125), format_minutes(3000)) == ("\u221210 h 0 min", "2 h 5 min", "2 d 2 h")


def test_histogram_bins_are_half_open():
    # 0.25 h opens the second bin, 2048 h the last one; a negative duration counts in the first.
    counts = histogram_counts([-1.0, 0.1, 0.25, 0.49, 3.0, 2047.9, 2048.0, 90000.0])

    assert counts == [2, 2, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 2]
    assert len(HISTOGRAM_LABELS) == len(counts)
    assert (HISTOGRAM_LABELS[0], HISTOGRAM_LABELS[1], HISTOGRAM_LABELS[-1]) == ("< 15 min", "15 min\u201330 min", "\u2265 2048 h")
