"""Query functions over the views, returning plain dicts and lists.

The HTTP API, the dashboard and the CLI call these; each takes a
:class:`~projections.db.Database` and reads committed view rows only, so a
query never replays events. Signatures are stable:

- ``kpis(db, group_by=None, since=None, until=None, filters=None, fcr_definition="default",
  repeat_window_days=30) -> list[dict]``
- ``backlog(db, period="day", since=None, until=None, filters=None) -> list[dict]``
- ``ticket_facts(db, ticket_id) -> dict | None``
- ``escalations(db, state="open", owner=None, level=None, overdue=None, cursor=None, limit=100,
  now=None) -> {"items": [...], "next_cursor": str | None}``
- ``escalation_summary(db, now=None) -> list[dict]``
- ``escalation_history(db, ticket_id) -> list[dict]``
- ``improvements(db, phase=None, kpi=None, measure=True) -> list[dict]``
- ``projection_status(db) -> list[dict]`` (positions only; the runner adds the lag)

Times in results are ISO 8601 UTC text, and time arguments are aware
datetimes. Ticket ids in results are hyphenated UUID strings; a ticket id
argument may be a UUID, its hyphenated form or its 32 hex digits. An invalid argument raises ``KpiQueryError`` or
``EscalationQueryError`` (both ``ValueError``) with a message that names it and
the accepted values; ``improvements`` raises ``ValueError`` for an unknown phase.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any
from uuid import UUID

from projections.db import Database
from projections.escalations import (
    EscalationQueryError,
    canonical_ticket_id,
    escalation_history,
    escalation_summary,
    escalations,
)
from projections.improvements import improvements
from projections.kpis import DIMENSIONS, PERIODS, KpiQueryError, kpis
from projections.tickets import FACT_COLUMNS, iso_utc

__all__ = [
    "EscalationQueryError", "KpiQueryError", "backlog", "escalation_history", "escalation_summary", "escalations", "improvements",
    "kpis", "projection_status", "ticket_facts",
]


def ticket_facts(db: Database, ticket_id: UUID | str) -> dict[str, Any] | None:
    """Return one ticket's KPI facts, or None if the view has no such ticket."""
    with db.transaction(readonly=True) as cursor:
        cursor.execute(
            f"SELECT {', '.join(FACT_COLUMNS)} FROM ticket_facts WHERE ticket_id = ?",
            (canonical_ticket_id(ticket_id),),
        )
        row = cursor.fetchone()
    return None if row is None else dict(zip(FACT_COLUMNS, row))


def _period_of(day: str, period: str) -> str:
    if period == "day":
        return day
    if period == "month":
        return day[:7]
    parsed = date.fromisoformat(day)
    return (parsed - timedelta(days=parsed.weekday())).isoformat()


def _next_period(label: str, period: str) -> str:
    if period == "day":
        return (date.fromisoformat(label) + timedelta(days=1)).isoformat()
    if period == "week":
        return (date.fromisoformat(label) + timedelta(days=7)).isoformat()
    year, month = int(label[:4]), int(label[5:7])
    return f"{year + month // 12:04d}-{month % 12 + 1:02d}"


def backlog(
    db: Database,
    period: str = "day",
    since: datetime | None = None,
    until: datetime | None = None,
    filters: dict[str, Any] | None = None,
) -> list[dict[str, Any]]:
    """Return, per UTC period, tickets opened, resolutions recorded and the backlog at the period's end.

    ``resolved`` is the throughput: resolutions recorded in the period, so a
    ticket resolved again after a reopen counts again. ``backlog`` is the
    number of tickets open (not resolved or closed) at the end of the period,
    counting every change before ``since`` too. ``filters`` selects tickets by
    their current dimensions, as in :func:`kpis`. Periods without changes
    between the first and the last are included with zeros. Periods are whole
    UTC days, weeks or months, so a ``since`` inside a day includes that whole
    day, and the day containing ``until`` ends at ``until``.
    """
    if period not in PERIODS:
        msg = f"period {period!r} is invalid; use one of {', '.join(PERIODS)}"
        raise KpiQueryError(msg)
    conditions: list[str] = []
    params: list[Any] = []
    join = ""
    for name, value in (filters or {}).items():
        if name not in DIMENSIONS:
            msg = f"filter {name!r} is invalid; use one of {', '.join(DIMENSIONS)}"
            raise KpiQueryError(msg)
        join = "JOIN ticket_facts f ON f.ticket_id = c.ticket_id"
        if value is None:
            conditions.append(f"f.{DIMENSIONS[name]} IS NULL")
        else:
            conditions.append(f"f.{DIMENSIONS[name]} = ?")
            params.append(value)
    if until is not None:
        conditions.append("c.occurred_at < ?")
        params.append(iso_utc(until))
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""

    with db.transaction(readonly=True) as cursor:
        cursor.execute(
            "SELECT substr(c.occurred_at, 1, 10), "
            "SUM(CASE WHEN c.kind = 'opened' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN c.kind = 'resolved' THEN 1 ELSE 0 END), "
            f"SUM(c.change) FROM ticket_backlog_changes c {join} {where} "
            "GROUP BY substr(c.occurred_at, 1, 10) ORDER BY 1",
            params,
        )
        days = cursor.fetchall()

    since_text = iso_utc(since) if since is not None else None
    open_before = 0
    totals: dict[str, list[int]] = {}
    for day, opened, resolved, change in days:
        if since_text is not None and day < since_text[:10]:
            open_before += int(change)
            continue
        label = _period_of(day, period)
        counts = totals.setdefault(label, [0, 0, 0])
        counts[0] += int(opened)
        counts[1] += int(resolved)
        counts[2] += int(change)

    rows: list[dict[str, Any]] = []
    if not totals:
        return rows
    label = min(totals)
    last = max(totals)
    running = open_before
    while label <= last:
        opened, resolved, change = totals.get(label, (0, 0, 0))
        running += change
        rows.append({"period": label, "opened": opened, "resolved": resolved, "backlog": running})
        label = _next_period(label, period)
    return rows


def projection_status(db: Database) -> list[dict[str, Any]]:
    """Return each view's stored position."""
    with db.transaction(readonly=True) as cursor:
        cursor.execute("SELECT name, position, version FROM projection_positions ORDER BY name")
        return [{"name": name, "position": position, "version": version} for name, position, version in cursor.fetchall()]
