"""Queries of the ticket list behind ``GET /api/v1/tickets``.

The rows come from ``ticket_facts``, the table of
:class:`projections.tickets.TicketFactsView`, which follows the event stream like
every other view, so a ticket appears in the list once a projection runner has
applied its events. Its index on ``(updated_at, ticket_id)`` serves the order
and the cursor.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from hub.domain.errors import InvalidValueError
from projections.db import Database
from projections.tickets import iso_utc

# The ticket_facts columns that the list shows or pages by.
COLUMNS = (
    "ticket_id", "subject", "status", "priority", "channel", "group_name", "agent",
    "client_account_id", "opened_at", "updated_at", "version",
)

# Query parameter -> column.
FILTER_COLUMNS = {
    "status": "status",
    "priority": "priority",
    "group": "group_name",
    "assignee": "agent",
    "client": "client_account_id",
}


def encode_cursor(updated_at: str, ticket_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([updated_at, ticket_id]).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> tuple[str, str]:
    try:
        padded = text + "=" * (-len(text) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != 2 or not all(isinstance(v, str) for v in values):
        message = f"cursor {text!r} is invalid; pass the next_cursor of the previous page unchanged"
        raise InvalidValueError("cursor", message)
    return values[0], values[1]


def query_tickets(
    db: Database,
    filters: dict[str, Any],
    updated_since: datetime | None,
    cursor: str | None,
    limit: int,
) -> dict[str, Any]:
    """Return a page of tickets, most recently updated first."""
    conditions: list[str] = []
    params: list[Any] = []
    for name, column in FILTER_COLUMNS.items():
        if filters.get(name) is not None:
            conditions.append(f"{column} = ?")
            params.append(filters[name])

    if updated_since is not None:
        conditions.append("updated_at >= ?")
        params.append(iso_utc(updated_since))

    if cursor is not None:
        updated_at, ticket_id = decode_cursor(cursor)
        conditions.append("(updated_at < ? OR (updated_at = ? AND ticket_id < ?))")
        params.extend([updated_at, updated_at, ticket_id])

    # One row more than the page size shows whether another page follows.
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    with db.transaction(readonly=True) as sql:
        sql.execute(
            f"SELECT {', '.join(COLUMNS)} FROM ticket_facts {where} "
            "ORDER BY updated_at DESC, ticket_id DESC LIMIT ?",
            [*params, limit + 1],
        )
        fetched = sql.fetchall()

    rows = [dict(zip(COLUMNS, values)) for values in fetched[:limit]]
    items = [
        {
            "id": row["ticket_id"], "subject": row["subject"], "status": row["status"],
            "priority": row["priority"], "channel": row["channel"], "group": row["group_name"],
            "agent": row["agent"], "client_account_id": row["client_account_id"],
            "opened_at": row["opened_at"], "updated_at": row["updated_at"], "version": row["version"],
        }
        for row in rows
    ]

    next_cursor = encode_cursor(rows[-1]["updated_at"], rows[-1]["ticket_id"]) if len(fetched) > limit else None
    return {"items": items, "next_cursor": next_cursor}
