"""Escalations: each episode's level, owner and promised update time, and its history.

``escalations`` has one row per escalation episode, keyed by ticket and a
sequence number (a ticket escalated, de-escalated and escalated again has
episodes 1 and 2). ``promised_by`` follows the ticket: an update that sets no
new promised time clears it, so only a pending promise can be overdue.
``escalation_events`` keeps every escalation event, for a ticket's history.
Times are ISO 8601 UTC text as in :mod:`projections.tickets`.
"""

from __future__ import annotations

import base64
import json
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from hub.domain import Ticket
from projections.db import Cursor, Database, table_exists
from projections.runner import EventPage, View
from projections.tickets import iso_utc

COLUMNS = (
    "ticket_id", "seq", "level", "owner", "reason", "escalated_at", "promised_by",
    "last_update_at", "update_count", "state", "resolved_at", "last_position",
)

UPSERT = (
    f"INSERT INTO escalations ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (ticket_id, seq) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in COLUMNS[2:])
)

HISTORY_COLUMNS = (
    "position", "ticket_id", "seq", "kind", "occurred_at", "level", "owner", "promised_by",
    "note", "actor_kind", "actor_id",
)


class EscalationView(View):
    """Escalation episodes per ticket and the events that shaped them."""

    name = "escalations"
    tables = ("escalations", "escalation_events")
    topics = (Ticket.Escalated, Ticket.EscalationUpdated, Ticket.EscalationResolved)

    def create(self, cursor: Cursor) -> None:
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS escalations ("
            "ticket_id TEXT NOT NULL, seq INTEGER NOT NULL, level INTEGER NOT NULL, owner TEXT NOT NULL, "
            "reason TEXT, escalated_at TEXT NOT NULL, promised_by TEXT, last_update_at TEXT, "
            "update_count INTEGER NOT NULL, state TEXT NOT NULL, resolved_at TEXT, "
            "last_position BIGINT NOT NULL, PRIMARY KEY (ticket_id, seq))"
        )
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS escalations_state ON escalations (state, escalated_at)"
        )
        cursor.execute(
            "CREATE TABLE IF NOT EXISTS escalation_events ("
            "position BIGINT PRIMARY KEY, ticket_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, "
            "occurred_at TEXT NOT NULL, level INTEGER, owner TEXT, promised_by TEXT, note TEXT, "
            "actor_kind TEXT, actor_id TEXT)"
        )
        cursor.execute(
            "CREATE INDEX IF NOT EXISTS escalation_events_ticket ON escalation_events (ticket_id, position)"
        )

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        latest = self._load_latest(cursor, list(dict.fromkeys(str(event.originator_id) for _, event in events)))
        changed: dict[tuple[str, int], dict[str, Any]] = {}
        history: list[tuple[Any, ...]] = []

        for position, event in events:
            ticket_id = str(event.originator_id)
            episode = latest.get(ticket_id)
            if isinstance(event, Ticket.Escalated):
                seq = episode["seq"] + 1 if episode else 1
                episode = latest[ticket_id] = {
                    "ticket_id": ticket_id, "seq": seq, "level": event.level, "owner": event.owner,
                    "reason": event.reason, "escalated_at": iso_utc(event.occurred_at),
                    "promised_by": iso_utc(event.promised_by), "last_update_at": None,
                    "update_count": 0, "state": "open", "resolved_at": None,
                }
                kind, note = "escalated", event.reason
            elif episode is None or episode["state"] != "open":
                # The ticket guards against this; an import could still produce it.
                continue
            elif isinstance(event, Ticket.EscalationUpdated):
                episode["level"] = event.level
                episode["owner"] = event.owner
                episode["promised_by"] = iso_utc(event.promised_by) if event.promised_by else None
                episode["last_update_at"] = iso_utc(event.occurred_at)
                episode["update_count"] += 1
                kind, note = "updated", event.note
            else:
                episode["state"] = "resolved"
                episode["promised_by"] = None
                episode["resolved_at"] = iso_utc(event.occurred_at)
                kind, note = "resolved", event.note
            episode["last_position"] = position
            changed[(ticket_id, episode["seq"])] = episode
            history.append((
                position, ticket_id, episode["seq"], kind, iso_utc(event.occurred_at), episode["level"],
                episode["owner"], episode["promised_by"], note, event.actor.get("kind"), event.actor.get("id"),
            ))

        cursor.executemany(UPSERT, [tuple(episode[column] for column in COLUMNS) for episode in changed.values()])
        cursor.executemany(
            f"INSERT INTO escalation_events ({', '.join(HISTORY_COLUMNS)}) "
            f"VALUES ({', '.join('?' for _ in HISTORY_COLUMNS)})",
            history,
        )

    @staticmethod
    def _load_latest(cursor: Cursor, ticket_ids: list[str]) -> dict[str, dict[str, Any]]:
        latest: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ticket_ids), 500):
            chunk = ticket_ids[start:start + 500]
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM escalations WHERE ticket_id IN ({', '.join('?' for _ in chunk)}) "
                "ORDER BY seq",
                chunk,
            )
            for row in cursor.fetchall():
                latest[row[0]] = dict(zip(COLUMNS, row))
        return latest


# Queries.

ESCALATION_STATES = ("open", "resolved", "all")


class EscalationQueryError(ValueError):
    """An escalation query argument is invalid; the message names it."""


def _encode_cursor(row: dict[str, Any]) -> str:
    key = [row["escalated_at"], row["ticket_id"], row["seq"]]
    return base64.urlsafe_b64encode(json.dumps(key).encode()).decode()


def _decode_cursor(cursor: str) -> list[Any]:
    try:
        key = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, list) or len(key) != 3:
        msg = f"cursor {cursor!r} is invalid; pass the next_cursor of a previous page"
        raise EscalationQueryError(msg)
    return key


def _item(row: tuple[Any, ...], now_text: str, now: datetime) -> dict[str, Any]:
    item = dict(zip((*COLUMNS[:-1], "ticket_status", "priority"), row))
    promised = item["promised_by"]
    overdue = item["state"] == "open" and promised is not None and promised < now_text
    item["overdue"] = overdue
    item["overdue_hours"] = (
        (now - datetime.fromisoformat(promised)).total_seconds() / 3600.0 if overdue else None
    )
    return item


def escalations(
    db: Database,
    state: str = "open",
    owner: str | None = None,
    level: int | None = None,
    overdue: bool | None = None,
    cursor: str | None = None,
    limit: int = 100,
    now: datetime | None = None,
) -> dict[str, Any]:
    """Return escalation episodes, oldest first, a page at a time.

    ``state`` is ``open``, ``resolved`` or ``all``; ``overdue=True`` keeps the open
    episodes whose promised update time has passed at ``now`` (default: the
    current time). Each item has the episode's columns, the ticket's status and
    priority, ``overdue`` and ``overdue_hours``. Returns ``{"items", "next_cursor"}``;
    pass ``next_cursor`` back for the next page (None on the last page).
    """
    if state not in ESCALATION_STATES:
        msg = f"state {state!r} is invalid; use one of {', '.join(ESCALATION_STATES)}"
        raise EscalationQueryError(msg)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
        msg = f"limit {limit!r} is invalid; use a whole number from 1 to 1000"
        raise EscalationQueryError(msg)
    now = now or datetime.now(timezone.utc)
    now_text = iso_utc(now)

    conditions: list[str] = []
    params: list[Any] = []
    if state != "all":
        conditions.append("e.state = ?")
        params.append(state)
    if owner is not None:
        conditions.append("e.owner = ?")
        params.append(owner)
    if level is not None:
        conditions.append("e.level = ?")
        params.append(level)
    if overdue is True:
        conditions.append("e.state = 'open' AND e.promised_by IS NOT NULL AND e.promised_by < ?")
        params.append(now_text)
    elif overdue is False:
        conditions.append("NOT (e.state = 'open' AND e.promised_by IS NOT NULL AND e.promised_by < ?)")
        params.append(now_text)
    if cursor is not None:
        escalated_at, ticket_id, seq = _decode_cursor(cursor)
        conditions.append(
            "(e.escalated_at > ? OR (e.escalated_at = ? AND (e.ticket_id > ? OR (e.ticket_id = ? AND e.seq > ?))))"
        )
        params.extend([escalated_at, escalated_at, ticket_id, ticket_id, seq])
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    selected = ", ".join(f"e.{column}" for column in COLUMNS[:-1])

    with db.transaction(readonly=True) as sql:
        facts = _has_ticket_facts(sql)
        join = "LEFT JOIN ticket_facts f ON f.ticket_id = e.ticket_id" if facts else ""
        extra = "f.status, f.priority" if facts else "NULL, NULL"
        sql.execute(
            f"SELECT {selected}, {extra} FROM escalations e {join} {where} "
            "ORDER BY e.escalated_at, e.ticket_id, e.seq LIMIT ?",
            [*params, limit + 1],
        )
        rows = sql.fetchall()
    items = [_item(row, now_text, now) for row in rows[:limit]]
    next_cursor = _encode_cursor(items[-1]) if len(rows) > limit else None
    return {"items": items, "next_cursor": next_cursor}


def escalation_summary(db: Database, now: datetime | None = None) -> list[dict[str, Any]]:
    """Count open escalations and overdue updates by level and owner, highest level first."""
    now_text = iso_utc(now or datetime.now(timezone.utc))
    with db.transaction(readonly=True) as sql:
        sql.execute(
            "SELECT level, owner, COUNT(*), "
            "SUM(CASE WHEN promised_by IS NOT NULL AND promised_by < ? THEN 1 ELSE 0 END), "
            "MIN(promised_by) "
            "FROM escalations WHERE state = 'open' GROUP BY level, owner ORDER BY level DESC, owner",
            (now_text,),
        )
        rows = sql.fetchall()
    return [
        {"level": level, "owner": owner, "open": count, "overdue": int(overdue or 0), "next_promised_by": earliest}
        for level, owner, count, overdue, earliest in rows
    ]


def canonical_ticket_id(ticket_id: UUID | str) -> str:
    """Return a ticket id in the hyphenated form the views store; accept a UUID, hex digits or the hyphenated form."""
    try:
        return str(ticket_id if isinstance(ticket_id, UUID) else UUID(str(ticket_id)))
    except ValueError:
        msg = f"ticket id {ticket_id!r} is invalid; use a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e"
        raise EscalationQueryError(msg) from None


def escalation_history(db: Database, ticket_id: UUID | str) -> list[dict[str, Any]]:
    """Return a ticket's escalation events in stream order (empty if it was never escalated)."""
    with db.transaction(readonly=True) as sql:
        sql.execute(
            f"SELECT {', '.join(HISTORY_COLUMNS)} FROM escalation_events WHERE ticket_id = ? ORDER BY position",
            (canonical_ticket_id(ticket_id),),
        )
        rows = sql.fetchall()
    return [dict(zip(HISTORY_COLUMNS, row)) for row in rows]


def _has_ticket_facts(cursor: Cursor) -> bool:
    return table_exists(cursor, "ticket_facts")
