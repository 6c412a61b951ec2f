"""Chart specifications: the JSON a page embeds and ``static/hub.js`` turns into Chart.js charts.

A specification lists the x labels and, per series, the values as the query
functions returned them: hours as hours, rates as fractions from 0 to 1. So
what a chart draws can be compared one for one with the API's JSON. The
script only chooses colours and formats the axis ticks.

    {"id": "trend-volume", "title": "...", "type": "line", "unit": "count",
     "labels": ["2016-03-07", ...],
     "series": [{"key": "tickets", "label": "Opened", "style": "bar", "axis": "y",
                 "unit": "count", "data": [12, 0, null, ...]}],
     "markers": [{"key": "p50", "label": "p50", "value": 3.5}], "edges": [0.0, 0.25, ...]}

``markers`` (histograms only) are vertical lines at a value on the x axis,
placed with ``edges``, the lower edge of each bin.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Series:
    key: str
    label: str
    data: list[Any]
    unit: str
    style: str = "line"
    axis: str = "y"


@dataclass
class Chart:
    id: str
    title: str
    type: str
    unit: str
    labels: list[str]
    series: list[Series]
    markers: list[dict[str, Any]] = field(default_factory=list)
    # Histograms: the lower edge of each bin, in hours, for placing the markers.
    edges: list[float] = field(default_factory=list)
    description: str = ""

    def spec(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "type": self.type,
            "unit": self.unit,
            "labels": self.labels,
            "series": [series.__dict__ for series in self.series],
            "markers": self.markers,
            "edges": self.edges,
        }

    @property
    def is_empty(self) -> bool:
        return not any(value not in (None, 0) for series in self.series for value in series.data)


def values_by_label(
    labels: Sequence[str], rows: Mapping[str, Mapping[str, Any]], key: str, missing: Any = None
) -> list[Any]:
    """Return ``rows[label][key]`` for each label, or ``missing`` where a label has no row."""
    return [rows[label][key] if label in rows else missing for label in labels]


# Histograms of durations.

# Bin edges in hours. Service times are skewed (minutes for most tickets, weeks
# for a few), so each bin is twice as wide as the one before. The last bin is open.
HISTOGRAM_EDGES = (0.0, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 2048.0)


def bin_label(lower: float, upper: float | None) -> str:
    def text(hours: float) -> str:
        if hours < 1:
            return f"{hours * 60:.0f} min"
        return f"{hours:g} h"

    if upper is None:
        return f"\u2265 {text(lower)}"
    if lower == 0:
        return f"< {text(upper)}"
    return f"{text(lower)}\u2013{text(upper)}"


HISTOGRAM_LABELS = [
    bin_label(lower, upper)
    for lower, upper in zip(HISTOGRAM_EDGES, (*HISTOGRAM_EDGES[1:], None))
]


def histogram_counts(values: Iterable[float]) -> list[int]:
    """Count values per bin of ``HISTOGRAM_EDGES``, where a bin contains ``lower <= value < upper``.

    Negative durations (a source clock that ran backwards) go to the first bin.
    """
    counts = [0] * len(HISTOGRAM_EDGES)
    for value in values:
        if value is None or math.isnan(value):
            continue
        index = 0
        while index + 1 < len(HISTOGRAM_EDGES) and value >= HISTOGRAM_EDGES[index + 1]:
            index += 1
        counts[index] += 1
    return counts
