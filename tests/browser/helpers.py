"""What the browser tests read from a page, and how they expect figures to be printed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

# Returns the data Chart.js contains and drew for the chart on <canvas data-chart=ID>.
READ_CHART = """(id) => {
  const canvas = document.querySelector(`canvas[data-chart="${id}"]`);
  const chart = Chart.getChart(canvas);
  if (!chart) { return null; }
  return {
    labels: chart.data.labels,
    series: chart.data.datasets.map((dataset, index) => ({
      key: dataset.hubKey,
      label: dataset.label,
      data: dataset.data,
      drawn: chart.getDatasetMeta(index).data.length,
      visible: chart.isDatasetVisible(index),
    })),
    markers: chart.options.plugins.hubMarkers.markers,
    width: canvas.width,
    height: canvas.height,
  };
}"""

CHART_IDS = "() => Array.from(document.querySelectorAll('canvas[data-chart]')).map(c => c.dataset.chart)"


# Returns {row key: {metric: value}} from the data attributes of a table's body rows.
READ_TABLE = """(selector) => {
  const rows = {};
  document.querySelectorAll(`${selector} tbody tr[data-key]`).forEach((row) => {
    const cells = {};
    row.querySelectorAll("td[data-metric]").forEach((cell) => {
      cells[cell.dataset.metric] = JSON.parse(cell.dataset.value);
    });
    rows[row.dataset.key] = cells;
  });
  return rows;
}"""


def read_table(page: Any, selector: str) -> dict[Any, dict[str, Any]]:
    """Return a table's figures by row key, the key decoded from its JSON data attribute."""
    return {json.loads(key): cells for key, cells in page.evaluate(READ_TABLE, selector).items()}


def read_chart(page: Any, chart_id: str) -> dict[str, Any]:
    chart = page.evaluate(READ_CHART, chart_id)
    assert chart is not None, f"no Chart.js chart on canvas {chart_id}"
    return chart


def json_attribute(locator: Any, name: str) -> Any:
    return json.loads(locator.get_attribute(name))


# The printed forms, restated from the dashboard's rules. Durations print in
# minutes below 1 h, in hours below 48 h and in days above. Rates print in
# percent with one decimal, counts with thousands separators, and a missing
# value as an em dash.

DASH = "\u2014"
MINUS = "\u2212"


def shown_hours(value: float | None) -> str:
    if value is None:
        return DASH
    if value * 60 < 59.5:
        return f"{round(value * 60)} min"
    if value < 48:
        return f"{value:.1f} h"
    return f"{value / 24:.1f} d"


def shown_ratio(value: float | None) -> str:
    return DASH if value is None else f"{100 * value:.1f}%"


def shown_count(value: int | None) -> str:
    return DASH if value is None else f"{value:,}"


def shown_score(value: float | None) -> str:
    return DASH if value is None else f"{value:.2f}"


def shown_nps(value: float | None) -> str:
    return DASH if value is None else f"{value:+.1f}".replace("-", MINUS)


SHOWN = {"hours": shown_hours, "ratio": shown_ratio, "count": shown_count, "score": shown_score, "nps": shown_nps}

# Each overview tile's KPI field and printed form.
TILE_KINDS = {
    "tickets": "count",
    "first_response_hours_p50": "hours",
    "resolution_hours_p50": "hours",
    "fcr": "ratio",
    "csat": "ratio",
    "nps": "nps",
    "ces": "score",
    "sla_adherence": "ratio",
    "source_sla_adherence": "ratio",
    "reopen_rate": "ratio",
    "escalation_rate": "ratio",
    "backlog": "count",
}


def screenshot(page: Any, folder: Path, name: str) -> Path:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"screenshot {path} is suspiciously small"
    return path
