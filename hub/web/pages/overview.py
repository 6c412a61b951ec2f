"""The overview: "how are we doing" for a period, against the period before, with weekly trends.

Tiles and breakdowns are rows of ``projections.queries.kpis``; the backlog and
the weekly flow of opened and resolved tickets come from
``projections.queries.backlog``. This module only selects rows and arranges them.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from flask import Blueprint, render_template, request

from hub.web.pages.charts import Chart, Series, values_by_label
from hub.web.pages.data import view_database
from hub.web.pages.formatting import COUNT, HOURS, RATIO
from hub.web.pages.metrics import (
    BACKLOG,
    BREAKDOWN_COLUMNS,
    BREAKDOWNS,
    ESCALATION_RATE,
    FCR,
    FIRST_RESPONSE_P50,
    REOPEN_RATE,
    RESOLUTION_P50,
    RESOLUTION_P90,
    SLA_ADHERENCE,
    SOURCE_SLA_ADHERENCE,
    CSAT,
    TILES,
)
from hub.web.pages.periods import EARLIEST, LATEST, UTC, Period, PeriodError, choose_period
from hub.web.pages.session import viewer_required
from projections.db import Database
from projections.queries import backlog, backlog_at, kpis


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/", "overview", viewer_required(overview_page))


def month_counts(db: Database) -> list[tuple[str, int]]:
    """Return ``(month, tickets opened)`` for every month with tickets in the years pages show, oldest first.

    The backlog query counts openings per month from a small table, where the
    KPI query grouped by month reads every ticket whenever its stored summary
    is behind the event stream.
    """
    rows = backlog(db, period="month", since=EARLIEST, until=LATEST)
    return [(row["period"], row["opened"]) for row in rows if row["opened"]]


def select_period(db: Database) -> tuple[Period | None, list[tuple[str, int]], str | None]:
    """Return the period the query string selects, the months with data, and an error message."""
    months = month_counts(db)
    try:
        return choose_period(request.args, months), months, None
    except PeriodError as error:
        return None, months, str(error)


def overview_page() -> Any:
    db = view_database()
    period, months, error = select_period(db)
    if period is None:
        return render_template("overview.html", period=None, months=months, error=error), 400

    previous = period.previous()
    current = kpis(db, since=period.since_time, until=period.until_time)[0]
    before = kpis(db, since=previous.since_time, until=previous.until_time)[0] if previous else None
    current = {**current, BACKLOG.key: backlog_at(db, period.until_time)}
    if previous is not None and before is not None:
        before = {**before, BACKLOG.key: backlog_at(db, previous.until_time)}

    breakdowns = []
    for dimension, heading in BREAKDOWNS:
        rows = kpis(db, group_by=dimension, since=period.since_time, until=period.until_time)
        if dimension == "group":
            # The group table is long, so the busiest groups come first.
            rows.sort(key=lambda row: (-row["tickets"], str(row["group"])))
        breakdowns.append({"dimension": dimension, "heading": heading, "rows": rows})

    return render_template(
        "overview.html",
        period=period,
        previous=previous,
        months=months,
        error=None,
        tiles=TILES,
        current=current,
        before=before,
        breakdowns=breakdowns,
        breakdown_columns=BREAKDOWN_COLUMNS,
        charts=trend_charts(db, period, months),
    )


def trend_charts(db: Database, period: Period, months: list[tuple[str, int]]) -> list[Chart]:
    """Build the weekly trend charts: volume and backlog, times, and rates."""
    first_week = last_week = None
    if months:
        first_week = date.fromisoformat(months[0][0] + "-01")
        following = date.fromisoformat(months[-1][0] + "-28") + timedelta(days=4)
        last_week = following.replace(day=1) - timedelta(days=1)
    weeks = period.trend_window(first_week, last_week)
    if not weeks:
        return []
    labels = [week.isoformat() for week in weeks]
    since = datetime.combine(weeks[0], time(), UTC)
    # For all data the charts end with the last week of the months shown, so the
    # backlog walk stops there too.
    until = period.until_time or datetime.combine(weeks[-1] + timedelta(weeks=1), time(), UTC)

    weekly = {row["week"]: row for row in kpis(db, group_by="week", since=since, until=until) if row["week"]}
    flows = {row["period"]: row for row in backlog(db, period="week", since=since, until=until)}

    volume = Chart(
        "trend-volume", "Tickets per week", "line", COUNT, labels,
        [
            Series("tickets", "Opened", values_by_label(labels, weekly, "tickets", 0), COUNT, "bar"),
            Series("resolved", "Resolved", values_by_label(labels, flows, "resolved"), COUNT, "bar"),
            Series(BACKLOG.key, "Backlog at week end", values_by_label(labels, flows, "backlog"), COUNT, "line", "y2"),
        ],
        description="Opened: tickets opened in the week. Resolved: resolutions recorded in the week. "
        "Backlog: tickets open at the end of the week (right axis).",
    )
    times = Chart(
        "trend-times", "Response and resolution times per week", "line", HOURS, labels,
        [
            Series(metric.key, metric.label, values_by_label(labels, weekly, metric.key), HOURS)
            for metric in (FIRST_RESPONSE_P50, RESOLUTION_P50, RESOLUTION_P90)
        ],
        description="Over the tickets opened in each week, in hours.",
    )
    rates = Chart(
        "trend-rates", "Rates per week", "line", RATIO, labels,
        [
            Series(metric.key, metric.label, values_by_label(labels, weekly, metric.key), RATIO)
            for metric in (FCR, CSAT, SLA_ADHERENCE, SOURCE_SLA_ADHERENCE, REOPEN_RATE, ESCALATION_RATE)
        ],
        description="Over the tickets opened in each week.",
    )
    return [volume, times, rates]
