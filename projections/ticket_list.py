"""The ticket list view: one row per ticket, behind ``GET /api/v1/tickets``.

The KPI facts view has no subject, version or last-change time, which a list
needs, so the API reads this small view of its own. It is registered with the
other views, so ``hub worker`` keeps it current and ``hub db init`` creates it.
"""

from __future__ import annotations

from typing import Any

from hub.domain import Ticket
from projections.db import Cursor
from projections.runner import EventPage, View
from projections.tickets import iso_utc

COLUMNS = (
    "ticket_id", "subject", "status", "priority", "channel", "group_name", "agent",
    "client_account_id", "opened_at", "updated_at", "version", "last_position",
)

CREATE_TABLE = """
CREATE TABLE IF NOT EXISTS api_ticket_list (
    ticket_id TEXT PRIMARY KEY,
    subject TEXT NOT NULL,
    status TEXT NOT NULL,
    priority TEXT,
    channel TEXT NOT NULL,
    group_name TEXT,
    agent TEXT,
    client_account_id TEXT,
    opened_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    version INTEGER NOT NULL,
    last_position BIGINT NOT NULL
)
"""

CREATE_INDEX = "CREATE INDEX IF NOT EXISTS api_ticket_list_updated ON api_ticket_list (updated_at, ticket_id)"

UPSERT = (
    f"INSERT INTO api_ticket_list ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)}) "
    "ON CONFLICT (ticket_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in COLUMNS[1:])
)

SELECT_CHUNK = 500

# Events that set the status, beside StatusChanged.
STATUS_AFTER = {
    Ticket.Resolved: "resolved",
    Ticket.ResolutionRejected: "open",
    Ticket.Closed: "closed",
    Ticket.Reopened: "open",
}


def ticket_event_classes() -> tuple[type, ...]:
    return tuple(
        value for value in vars(Ticket).values()
        if isinstance(value, type) and issubclass(value, (Ticket.Event, Ticket.Created))
        and value not in (Ticket.Event, Ticket.Created)
    )


class TicketListView(View):
    """One row per ticket with what the list filters and shows."""

    name = "api_ticket_list"
    tables = ("api_ticket_list",)
    topics = ticket_event_classes()

    def create(self, cursor: Cursor) -> None:
        cursor.execute(CREATE_TABLE)
        cursor.execute(CREATE_INDEX)

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        ticket_ids = list(dict.fromkeys(str(event.originator_id) for _, event in events))
        rows = self._load(cursor, ticket_ids)
        changed: dict[str, dict[str, Any]] = {}
        for position, event in events:
            ticket_id = str(event.originator_id)
            row = rows.get(ticket_id)
            if isinstance(event, Ticket.Opened):
                row = rows[ticket_id] = {
                    "ticket_id": ticket_id, "subject": event.subject, "status": "new", "priority": None,
                    "channel": event.channel, "group_name": None, "agent": None,
                    "client_account_id": event.client_account_id, "opened_at": iso_utc(event.occurred_at),
                    "updated_at": iso_utc(event.occurred_at),
                }
            elif row is None:
                # A ticket whose Opened event came before this view existed cannot
                # happen after a rebuild from position 0; skip rather than invent a row.
                continue
            apply_event(row, event)
            row["version"] = event.originator_version
            row["last_position"] = position
            row["updated_at"] = max(row["updated_at"], iso_utc(event.occurred_at))
            changed[ticket_id] = row
        cursor.executemany(UPSERT, [tuple(row[column] for column in COLUMNS) for row in changed.values()])

    @staticmethod
    def _load(cursor: Cursor, ticket_ids: list[str]) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ticket_ids), SELECT_CHUNK):
            chunk = ticket_ids[start:start + SELECT_CHUNK]
            cursor.execute(
                f"SELECT {', '.join(COLUMNS)} FROM api_ticket_list "
                f"WHERE ticket_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            for values in cursor.fetchall():
                rows[values[0]] = dict(zip(COLUMNS, values))
        return rows


def apply_event(row: dict[str, Any], event: Any) -> None:
    if isinstance(event, Ticket.IntakeDataCompleted):
        for name in ("subject", "client_account_id"):
            if name in event.fields:
                row[name] = event.fields[name]
    elif isinstance(event, Ticket.Prioritized):
        row["priority"] = event.priority
    elif isinstance(event, (Ticket.Assigned, Ticket.Reassigned)):
        row["group_name"] = event.group
        row["agent"] = event.agent
    elif isinstance(event, Ticket.StatusChanged):
        row["status"] = event.status
    elif type(event) in STATUS_AFTER:
        row["status"] = STATUS_AFTER[type(event)]
