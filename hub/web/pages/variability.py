"""Variability: how spread out response and resolution times are, per priority.

The p50, p90, standard deviation and coefficient of variation are the KPI
rows of ``projections.queries.kpis`` grouped by priority. The histograms count
the durations of the same tickets: the rows ``projections.kpis.load_inputs``
reads for that KPI query, so a histogram and its p50 and p90 lines always
describe one set of tickets.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template

from hub.web.pages.charts import HISTOGRAM_EDGES, HISTOGRAM_LABELS, Chart, Series, histogram_counts
from hub.web.pages.data import view_database
from hub.web.pages.formatting import COUNT
from hub.web.pages.overview import select_period
from hub.web.pages.periods import Period
from hub.web.pages.session import viewer_required
from projections.db import Database
from projections.kpis import TICKET_COLUMNS, load_inputs
from projections.queries import kpis

# The durations shown, as (KPI field prefix, ticket column, heading).
DURATIONS = (
    ("first_response_hours", "first_response_hours", "First response"),
    ("resolution_hours", "resolution_hours", "Resolution"),
)

PRIORITY_INDEX = TICKET_COLUMNS.index("priority")


def add_routes(blueprint: Blueprint) -> None:
    blueprint.add_url_rule("/variability", "variability", viewer_required(variability_page))


def durations_by_priority(db: Database, period: Period) -> dict[str | None, dict[str, list[float]]]:
    """Return each priority's durations in hours, per ticket column of ``DURATIONS``."""
    with db.transaction(readonly=True) as cursor:
        inputs = load_inputs(cursor, period.since_time, period.until_time)
    samples: dict[str | None, dict[str, list[float]]] = {}
    for row in inputs.tickets:
        by_column = samples.setdefault(row[PRIORITY_INDEX], {column: [] for _, column, _ in DURATIONS})
        for _, column, _ in DURATIONS:
            value = row[TICKET_COLUMNS.index(column)]
            if value is not None:
                by_column[column].append(value)
    return samples


def priority_label(priority: str | None) -> str:
    return "No priority" if priority is None else priority.capitalize()


def variability_page() -> Any:
    db = view_database()
    period, months, error = select_period(db)
    if period is None:
        return render_template("variability.html", period=None, months=months, error=error), 400

    rows = kpis(db, group_by="priority", since=period.since_time, until=period.until_time)
    samples = durations_by_priority(db, period)
    sections = []
    for row in rows:
        priority = row["priority"]
        slug = priority or "none"
        charts = []
        for prefix, column, heading in DURATIONS:
            values = samples.get(priority, {}).get(column, [])
            markers = [
                {"key": "p50", "label": "p50", "value": row[f"{prefix}_p50"]},
                {"key": "p90", "label": "p90", "value": row[f"{prefix}_p90"]},
            ]
            charts.append(Chart(
                f"histogram-{column.replace('_', '-')}-{slug}",
                f"{heading} time, {priority_label(priority).lower()} priority",
                "histogram", COUNT, list(HISTOGRAM_LABELS),
                [Series("tickets", "Tickets", histogram_counts(values), COUNT, "bar")],
                markers=[marker for marker in markers if marker["value"] is not None],
                edges=list(HISTOGRAM_EDGES),
                description=f"{len(values)} tickets with a {heading.lower()} time, by duration in hours.",
            ))
        sections.append({"priority": priority, "label": priority_label(priority), "row": row, "charts": charts})

    return render_template(
        "variability.html", period=period, months=months, error=None, sections=sections, durations=DURATIONS,
    )
