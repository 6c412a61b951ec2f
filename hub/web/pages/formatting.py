"""Printed forms of the pages' figures: durations, rates, scores, counts, times and changes.

Every metric has a kind, and each kind has one format, so a tile, a table cell
and a change badge print the same value the same way. A missing value (no
ticket in the group had the data) prints as an em dash.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from flask.sansio.app import App

MISSING = "\u2014"
MINUS = "\u2212"

# Metric kinds: how a value is printed and how its change is printed.
HOURS = "hours"
RATIO = "ratio"
COUNT = "count"
SCORE = "score"
NPS = "nps"


def format_hours(value: float | None) -> str:
    """Print a duration given in hours: minutes below 1 h, hours below 48 h, days above."""
    if value is None:
        return MISSING
    # Below 59.5 minutes the minutes round to at most 59; from there on, hours read better.
    if value * 60 < 59.5:
        return f"{value * 60:.0f} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def format_ratio(value: float | None) -> str:
    return MISSING if value is None else f"{value * 100:.1f}%"


def format_count(value: int | float | None) -> str:
    return MISSING if value is None else f"{value:,.0f}"


def format_score(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}"


def format_nps(value: float | None) -> str:
    return MISSING if value is None else f"{value:+.1f}".replace("-", MINUS)


FORMATS = {
    HOURS: format_hours,
    RATIO: format_ratio,
    COUNT: format_count,
    SCORE: format_score,
    NPS: format_nps,
}


def format_value(value: Any, kind: str) -> str:
    return FORMATS[kind](value)


# Decimal places of a change as printed, per kind; ratios change in percentage points.
CHANGE_DIGITS = {HOURS: 1, RATIO: 1, COUNT: 0, SCORE: 2, NPS: 1}


def rounded_change(current: float | None, previous: float | None, kind: str) -> float | None:
    """Return current minus previous as printed: ratios in percentage points, rounded like the text."""
    if current is None or previous is None:
        return None
    change = current - previous
    if kind == RATIO:
        change *= 100
    # Adding 0.0 turns a rounded -0.0 into 0.0, which prints without a sign.
    return round(change, CHANGE_DIGITS[kind]) + 0.0


def format_change(current: float | None, previous: float | None, kind: str) -> str:
    """Print current minus previous: hours in h, ratios in percentage points, others as numbers."""
    change = rounded_change(current, previous, kind)
    if change is None:
        return MISSING
    if kind == HOURS:
        text = f"{change:+.1f} h"
    elif kind == RATIO:
        text = f"{change:+.1f} pp"
    elif kind == COUNT:
        text = f"{change:+,.0f}"
    elif kind == SCORE:
        text = f"{change:+.2f}"
    else:
        text = f"{change:+.1f}"
    return text.replace("-", MINUS)


def change_direction(current: float | None, previous: float | None, better: str, kind: str) -> str:
    """Return "better", "worse" or "same" for a change, given whether "higher" or "lower" is better.

    A change that prints as zero is "same".
    """
    change = rounded_change(current, previous, kind)
    if not change:
        return "same"
    return "better" if (change > 0) == (better == "higher") else "worse"


def format_time(value: str | datetime | None) -> str:
    """Print an ISO 8601 time as UTC to the second, such as ``2016-03-02 14:05:00 UTC``."""
    if value is None or value == "":
        return MISSING
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is None:
        return moment.strftime("%Y-%m-%d %H:%M:%S")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def format_day(value: str | datetime | None) -> str:
    """Print the UTC day of an ISO 8601 time, such as ``2016-03-02``."""
    if value is None or value == "":
        return MISSING
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    if moment.tzinfo is not None:
        moment = moment.astimezone(timezone.utc)
    return moment.strftime("%Y-%m-%d")


def format_minutes(value: float | None) -> str:
    """Print a signed duration given in minutes, such as ``-3 d 4 h`` or ``25 min``."""
    if value is None:
        return MISSING
    sign = MINUS if value < 0 else ""
    minutes = round(abs(value))
    days, rest = divmod(minutes, 1440)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{sign}{days} d {hours} h"
    if hours:
        return f"{sign}{hours} h {minutes} min"
    return f"{sign}{minutes} min"


def register_filters(app: App) -> None:
    app.add_template_filter(format_hours, "hours")
    app.add_template_filter(format_ratio, "ratio")
    app.add_template_filter(format_count, "count")
    app.add_template_filter(format_score, "score")
    app.add_template_filter(format_nps, "nps")
    app.add_template_filter(format_time, "utc")
    app.add_template_filter(format_day, "utc_day")
    app.add_template_filter(format_minutes, "minutes")
    app.add_template_global(format_value, "format_value")
    app.add_template_global(format_change, "format_change")
    app.add_template_global(change_direction, "change_direction")
