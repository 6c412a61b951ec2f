"""Query functions over the views, returning plain dicts and lists.

The HTTP API, the dashboard and the CLI call these. Each takes a
:class:`~projections.db.Database` and reads committed view rows only, so a
query never replays events. Signatures are stable:

- ``kpis(db, group_by=None, since=None, until=None, filters=None, fcr_definition="default",
  repeat_window_days=30) -> list[dict]``
- ``backlog(db, period="day", since=None, until=None, filters=None) -> list[dict]``
- ``backlog_at(db, until=None) -> int``
- ``ticket_facts(db, ticket_id) -> dict | None``
- ``escalations(db, state="open", owner=None, level=None, overdue=None, cursor=None, limit=100,
  now=None) -> {"items": [...], "next_cursor": str | None}``
- ``escalation_summary(db, now=None) -> list[dict]``
- ``escalation_history(db, ticket_id) -> list[dict]``
- ``improvements(db, phase=None, kpi=None, measure=True) -> list[dict]``
- ``projection_status(db) -> list[dict]`` (positions only; the runner adds the lag)

Times in results are ISO 8601 UTC text, and time arguments are aware
datetimes. Ticket ids in results are hyphenated UUID strings. A ticket id
argument may be a UUID, its hyphenated form or its 32 hex digits. An invalid
argument raises ``KpiQueryError`` or ``EscalationQueryError`` (both
``ValueError``) with a message that names the argument and the accepted values.
``improvements`` raises ``ValueError`` for an unknown phase.
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
from projections.kpis import DIMENSIONS, PERIODS, KpiQueryError, check_filter_value, kpis
from projections.tickets import FACT_COLUMNS, iso_utc

__all__ = [
    "EscalationQueryError", "KpiQueryError", "backlog", "backlog_at", "escalation_history", "escalation_summary", "escalations", "improvements",
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


# The backlog lists every period from the first with changes to the last,
# zeros included, so a stray date far from the rest would make it list
# millions. Longer walks are rejected: 40,000 periods are about 110 years of days.
MAX_BACKLOG_PERIODS = 40_000


def _period_start(day: date, period: str) -> date:
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _period_label(start: date, period: str) -> str:
    return start.isoformat()[:7] if period == "month" else start.isoformat()


def _periods_from(first: date, last: date, period: str) -> int:
    """Return how many periods ``last`` starts after ``first``; both are period starts."""
    if period == "day":
        return (last - first).days
    if period == "week":
        return (last - first).days // 7
    return (last.year - first.year) * 12 + last.month - first.month


def _next_start(start: date, period: str) -> date:
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return date(start.year + start.month // 12, start.month % 12 + 1, 1)


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
    day, and the day containing ``until`` ends at ``until``. Raises
    KpiQueryError when the periods from the first change to the last number
    more than ``MAX_BACKLOG_PERIODS``.
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
        check_filter_value(name, value)
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
    totals: dict[date, list[int]] = {}
    for day, opened, resolved, change in days:
        if since_text is not None and day < since_text[:10]:
            open_before += int(change)
            continue
        start = _period_start(date.fromisoformat(day), period)
        counts = totals.setdefault(start, [0, 0, 0])
        counts[0] += int(opened)
        counts[1] += int(resolved)
        counts[2] += int(change)

    rows: list[dict[str, Any]] = []
    if not totals:
        return rows
    first = min(totals)
    last = max(totals)
    count = _periods_from(first, last, period) + 1
    if count > MAX_BACKLOG_PERIODS:
        msg = (
            f"backlog would list {count} periods of a {period} from {_period_label(first, period)} "
            f"to {_period_label(last, period)}, more than the {MAX_BACKLOG_PERIODS} allowed; "
            "narrow it with since and until, or use a longer period"
        )
        raise KpiQueryError(msg)

    running = open_before
    start = first
    for index in range(count):
        # The start after the last period is never computed: after 9999-12 it does not exist.
        if index:
            start = _next_start(start, period)
        opened, resolved, change = totals.get(start, (0, 0, 0))
        running += change
        rows.append({"period": _period_label(start, period), "opened": opened, "resolved": resolved, "backlog": running})
    return rows


def backlog_at(db: Database, until: datetime | None = None) -> int:
    """Return the number of tickets open (not resolved or closed) just before ``until``, or after every change."""
    sql = "SELECT COALESCE(SUM(change), 0) FROM ticket_backlog_changes"
    params: list[Any] = []
    if until is not None:
        sql += " WHERE occurred_at < ?"
        params.append(iso_utc(until))
    with db.transaction(readonly=True) as cursor:
        row = cursor.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def projection_status(db: Database) -> list[dict[str, Any]]:
    """Return each view's stored position."""
    with db.transaction(readonly=True) as cursor:
        cursor.execute("SELECT name, position, version FROM projection_positions ORDER BY name")
        return [{"name": name, "position": position, "version": version} for name, position, version in cursor.fetchall()]
