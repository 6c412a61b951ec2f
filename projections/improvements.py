"""The PDCA log: each improvement cycle with its baseline, change, measured result and decision."""

from __future__ import annotations

import json
import logging
from datetime import datetime
from typing import Any

from hub.domain import Improvement
from projections.db import Cursor, Database
from projections.kpis import KpiQueryError, kpis
from projections.runner import EventPage, View
from projections.tickets import iso_utc

logger = logging.getLogger(__name__)

COLUMNS = (
    "improvement_id", "title", "kpi", "baseline", "target", "filters", "phase", "planned_at",
    "change", "done_at", "measured", "window_start", "window_end", "checked_at", "decision",
    "decision_note", "acted_at", "last_position",
)

UPSERT = (
    f"INSERT INTO improvements ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (improvement_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in COLUMNS[1:])
)

PHASES = ("plan", "do", "check", "act")


class ImprovementView(View):
    """One row per improvement cycle, in its latest phase."""

    name = "improvements"
    tables = ("improvements",)
    topics = (Improvement.Planned, Improvement.Done, Improvement.Checked, Improvement.Acted)

    def create(self, cursor: Cursor) -> None:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS improvements ("
            "improvement_id TEXT PRIMARY KEY, title TEXT NOT NULL, kpi TEXT NOT NULL, "
            "baseline DOUBLE PRECISION NOT NULL, target DOUBLE PRECISION NOT NULL, filters TEXT NOT NULL, "
            "phase TEXT NOT NULL, planned_at TEXT NOT NULL, change TEXT, done_at TEXT, "
            "measured DOUBLE PRECISION, window_start TEXT, window_end TEXT, checked_at TEXT, "
            "decision TEXT, decision_note TEXT, acted_at TEXT, last_position BIGINT NOT NULL)"
        )

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        ids = list(dict.fromkeys(str(event.originator_id) for _, event in events))
        rows: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), 500):
            chunk = ids[start:start + 500]
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM improvements "
                f"WHERE improvement_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            rows.update({row[0]: dict(zip(COLUMNS, row)) for row in cursor.fetchall()})

        for position, event in events:
            improvement_id = str(event.originator_id)
            at = iso_utc(event.occurred_at)
            if isinstance(event, Improvement.Planned):
                row = rows[improvement_id] = dict.fromkeys(COLUMNS)
                row.update(
                    improvement_id=improvement_id, title=event.title, kpi=event.kpi,
                    baseline=event.baseline, target=event.target,
                    filters=json.dumps(event.filters, sort_keys=True), phase="plan", planned_at=at,
                )
            else:
                row = rows[improvement_id]
                if isinstance(event, Improvement.Done):
                    row.update(change=event.change, done_at=at, phase="do")
                elif isinstance(event, Improvement.Checked):
                    row.update(
                        measured=event.measured, window_start=iso_utc(event.window_start),
                        window_end=iso_utc(event.window_end), checked_at=at, phase="check",
                    )
                else:
                    row.update(decision=event.decision, decision_note=event.note, acted_at=at, phase="act")
            row["last_position"] = position

        cursor.executemany(UPSERT, [tuple(row[column] for column in COLUMNS) for row in rows.values()])


def improvements(
    db: Database, phase: str | None = None, kpi: str | None = None, measure: bool = True
) -> list[dict[str, Any]]:
    """Return the PDCA log, oldest plan first.

    Each entry has the plan (``kpi``, ``baseline``, ``target``, ``filters``), the
    change, the check window with the value recorded at check time
    (``measured``) and the decision. When ``measure`` is true and the cycle has
    a check window, ``measured_from_views`` is the KPI recomputed from the KPI
    views over the tickets opened in that window, with the cycle's filters.
    When that value cannot be computed, it is None and ``measure_error`` gives
    the reason.
    ``change_from_baseline`` is that value (or the recorded one) minus the
    baseline. ``target_met`` compares it with the target in the direction the
    plan implies: a target below the baseline means lower is better.
    """
    if phase is not None and phase not in PHASES:
        msg = f"phase {phase!r} is invalid; use one of {', '.join(PHASES)}"
        raise ValueError(msg)
    conditions: list[str] = []
    params: list[Any] = []
    if phase is not None:
        conditions.append("phase = ?")
        params.append(phase)
    if kpi is not None:
        conditions.append("kpi = ?")
        params.append(kpi)
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    with db.transaction(readonly=True) as cursor:
        cursor.execute(
            f"SELECT {', '.join(COLUMNS[:-1])} FROM improvements{where} ORDER BY planned_at, improvement_id",
            params,
        )
        rows = cursor.fetchall()

    entries = []
    for row in rows:
        entry = dict(zip(COLUMNS[:-1], row))
        entry["filters"] = json.loads(entry["filters"])
        entry["measured_from_views"] = None
        entry["measure_error"] = None
        if measure and entry["window_start"] and entry["window_end"]:
            entry["measured_from_views"], entry["measure_error"] = _measure(db, entry)
        result = entry["measured_from_views"]
        if result is None:
            result = entry["measured"]
        entry["change_from_baseline"] = None if result is None else result - entry["baseline"]
        entry["target_met"] = _target_met(entry["baseline"], entry["target"], result)
        entries.append(entry)
    return entries


def _measure(db: Database, entry: dict[str, Any]) -> tuple[float | None, str | None]:
    try:
        rows = kpis(
            db, since=datetime.fromisoformat(entry["window_start"]),
            until=datetime.fromisoformat(entry["window_end"]), filters=entry["filters"] or None,
        )
    except KpiQueryError as error:
        logger.warning("Improvement %s cannot be measured: %s", entry["improvement_id"], error)
        return None, str(error)
    if entry["kpi"] not in rows[0]:
        msg = f"kpi {entry['kpi']!r} is not a KPI the views compute"
        logger.warning("Improvement %s cannot be measured: %s", entry["improvement_id"], msg)
        return None, msg
    value = rows[0][entry["kpi"]]
    if value is not None and not isinstance(value, (int, float)):
        return None, f"kpi {entry['kpi']!r} is not numeric"
    return value, None


def _target_met(baseline: float, target: float, result: float | None) -> bool | None:
    if result is None:
        return None
    if target < baseline:
        return result <= target
    return result >= target
