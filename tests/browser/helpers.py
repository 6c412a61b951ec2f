"""Helpers of the browser tests: driving Chromium, reading pages, and the expected printed figures."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Driving Debian's Chromium; Playwright's own browser downloads are never used.

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}

# Seconds the browser waits for a page element before a test fails.
WAIT_SECONDS = 20


def quiet_request_handler() -> Any:
    """Return a werkzeug request handler that logs errors but not every request."""
    from werkzeug.serving import WSGIRequestHandler

    class QuietHandler(WSGIRequestHandler):
        def log_request(self, *args: Any, **kwargs: Any) -> None:
            pass

    return QuietHandler


@dataclass
class BrowserPage:
    """A signed-in page plus what the browser requested and reported while the test ran."""

    page: Any
    requests: list[str]
    errors: list[str]
    # The LiveHub the page belongs to.
    hub: Any

    def open(self, path: str) -> Any:
        response = self.page.goto(self.hub.base_url + path)
        self.page.wait_for_load_state("load")
        if self.page.locator("canvas[data-chart]").count():
            self.page.wait_for_selector("body[data-charts-ready='true']", timeout=WAIT_SECONDS * 1000)
        return response


def watch(page: Any, hub: Any) -> BrowserPage:
    recorded = BrowserPage(page, [], [], hub)
    page.on("request", lambda request: recorded.requests.append(request.url))
    page.on("pageerror", lambda error: recorded.errors.append(f"page error: {error}"))
    page.on(
        "console",
        lambda message: recorded.errors.append(f"console {message.type}: {message.text}")
        if message.type == "error" else None,
    )
    return recorded


def new_page(browser: Any, hub: Any, viewport: dict[str, int]) -> tuple[Any, BrowserPage]:
    """Open a page in a new browser context, which starts without cookies."""
    context = browser.new_context(viewport=viewport)
    context.set_default_timeout(WAIT_SECONDS * 1000)
    return context, watch(context.new_page(), hub)


def sign_in(recorded: BrowserPage, token: str, next_path: str = "/tickets") -> None:
    """Sign in through the form, then land on ``next_path`` (by default the light ticket search page)."""
    page = recorded.page
    page.goto(f"{recorded.hub.base_url}/signin?next={next_path}")
    page.fill("input[name=token]", token)
    page.click(".signin-card button[type=submit]")
    page.wait_for_load_state("load")


# Reading pages.

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
