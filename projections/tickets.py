"""Per-ticket facts: one row per ticket with what the KPIs are computed from.

``ticket_facts`` keeps each ticket's current dimensions (channel, priority,
category, group, agent, client) and the times and counts behind the metric
definitions. It also keeps the subject, the latest ``occurred_at`` of any of the
ticket's events (``updated_at``) and the aggregate version of the last event, so
``GET /api/v1/tickets`` lists tickets from this table. Times are ISO 8601 text
in UTC with microseconds (``2024-03-01T14:00:00.000000+00:00``), so text order
is time order on both backends, and durations are calendar hours.
``ticket_backlog_changes`` has one row per event that moves a ticket into or
out of the backlog (+1 or -1), so the backlog at any time is a running sum. Its ``kind`` names the event: opened,
resolved, closed, reopened, rejected or status_changed.

Definitions, matching the events:

- first response: the earliest public agent message (``AgentReplied`` or
  ``ClarificationRequested``). A reply by a ``system`` actor is an automatic
  acknowledgement and does not count, and neither do notes.
- first resolution: the earliest ``Resolved``. Final resolution: the latest
  ``Resolved`` that no ``Reopened``, ``ResolutionRejected`` or status change
  followed; a ticket that is open again has none.
- backlog: a ticket is in the backlog from opening until it is resolved or
  closed, and again after it is reopened, its resolution is rejected or its
  status is changed from resolved to an open status.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

from hub.domain import Ticket
from projections.db import Cursor
from projections.runner import EventPage, View

UTC = timezone.utc
ZERO = timedelta(0)

FACT_COLUMNS = (
    "ticket_id", "opened_at", "opened_epoch", "opened_day", "opened_week", "opened_month",
    "channel", "client_account_id", "requester_id", "category", "priority", "impact", "urgency",
    "group_name", "agent", "status",
    "first_response_at", "first_response_hours", "public_reply_count",
    "first_resolved_at", "first_resolved_epoch", "first_resolution_hours",
    "resolved_at", "resolution_hours", "closed_at",
    "reopen_count", "rejection_count", "reassignment_count", "escalation_count",
    "csat_score", "csat_scale", "csat_satisfied", "ces_score", "ces_scale", "made_sla",
    "subject", "updated_at", "version", "last_position",
)

CREATE_FACTS = """
CREATE TABLE IF NOT EXISTS ticket_facts (
    ticket_id TEXT PRIMARY KEY,
    opened_at TEXT,
    opened_epoch DOUBLE PRECISION,
    opened_day TEXT,
    opened_week TEXT,
    opened_month TEXT,
    channel TEXT,
    client_account_id TEXT,
    requester_id TEXT,
    category TEXT,
    priority TEXT,
    impact TEXT,
    urgency TEXT,
    group_name TEXT,
    agent TEXT,
    status TEXT,
    first_response_at TEXT,
    first_response_hours DOUBLE PRECISION,
    public_reply_count INTEGER NOT NULL,
    first_resolved_at TEXT,
    first_resolved_epoch DOUBLE PRECISION,
    first_resolution_hours DOUBLE PRECISION,
    resolved_at TEXT,
    resolution_hours DOUBLE PRECISION,
    closed_at TEXT,
    reopen_count INTEGER NOT NULL,
    rejection_count INTEGER NOT NULL,
    reassignment_count INTEGER NOT NULL,
    escalation_count INTEGER NOT NULL,
    csat_score TEXT,
    csat_scale TEXT,
    csat_satisfied INTEGER,
    ces_score INTEGER,
    ces_scale TEXT,
    made_sla INTEGER,
    subject TEXT,
    updated_at TEXT,
    version INTEGER,
    last_position BIGINT NOT NULL
)
"""

CREATE_BACKLOG = """
CREATE TABLE IF NOT EXISTS ticket_backlog_changes (
    position BIGINT PRIMARY KEY,
    ticket_id TEXT NOT NULL,
    occurred_at TEXT NOT NULL,
    kind TEXT NOT NULL,
    change INTEGER NOT NULL
)
"""

INDEXES = (
    "CREATE INDEX IF NOT EXISTS ticket_facts_opened ON ticket_facts (opened_at)",
    # The ticket list pages through this order, newest change first.
    "CREATE INDEX IF NOT EXISTS ticket_facts_updated ON ticket_facts (updated_at, ticket_id)",
    "CREATE INDEX IF NOT EXISTS ticket_backlog_changes_time ON ticket_backlog_changes (occurred_at)",
)

UPSERT_FACTS = (
    f"INSERT INTO ticket_facts ({', '.join(FACT_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in FACT_COLUMNS)}) "
    "ON CONFLICT (ticket_id) DO UPDATE SET "
    + ", ".join(f"{column} = excluded.{column}" for column in FACT_COLUMNS[1:])
)

INSERT_BACKLOG_CHANGE = (
    "INSERT INTO ticket_backlog_changes (position, ticket_id, occurred_at, kind, change) VALUES (?, ?, ?, ?, ?)"
)

OPEN_STATUSES = ("new", "open", "pending", "on_hold")

# SQLite accepts up to 32766 parameters per statement since 3.32; stay well below.
SELECT_CHUNK = 500


def iso_utc(moment: datetime) -> str:
    """Format an aware datetime as fixed-width UTC text, so that text order is time order."""
    if moment.tzinfo is UTC:
        return moment.isoformat(timespec="microseconds")
    if moment.utcoffset() != ZERO:
        moment = moment.astimezone(UTC)
    return moment.replace(tzinfo=UTC).isoformat(timespec="microseconds")


def period_labels(moment: datetime) -> tuple[str, str, str]:
    """Return the UTC day, week (the date of its Monday) and month of a moment."""
    utc = moment.astimezone(UTC)
    day = utc.date()
    monday = day - timedelta(days=day.weekday())
    return day.isoformat(), monday.isoformat(), day.isoformat()[:7]


def hours_between(start_epoch: float | None, end: datetime) -> float | None:
    if start_epoch is None:
        return None
    return (end.timestamp() - start_epoch) / 3600.0


def csat_is_satisfied(score: Any, scale: str) -> int:
    """Tell whether a CSAT rating is satisfied: 4 or 5 on the 1-5 scale, or "good"."""
    if scale == "good_bad":
        return 1 if score == "good" else 0
    return 1 if int(score) >= 4 else 0


def new_facts(ticket_id: str) -> dict[str, Any]:
    facts: dict[str, Any] = dict.fromkeys(FACT_COLUMNS)
    facts.update(
        ticket_id=ticket_id, public_reply_count=0, reopen_count=0, rejection_count=0,
        reassignment_count=0, escalation_count=0, last_position=0,
    )
    return facts


def ticket_event_classes() -> tuple[type, ...]:
    """Return every event class nested on ``Ticket``."""
    return tuple(
        value for value in vars(Ticket).values()
        if isinstance(value, type) and issubclass(value, (Ticket.Event, Ticket.Created))
        and value not in (Ticket.Event, Ticket.Created)
    )


class TicketFactsView(View):
    """One row of KPI facts per ticket, and the ticket's moves into and out of the backlog."""

    name = "tickets"
    tables = ("ticket_facts", "ticket_backlog_changes")
    # Every ticket event moves updated_at and version, so the view takes them all.
    # HANDLERS lists the events that change other facts too.
    topics = ticket_event_classes()
    # Version 2 added subject, updated_at, version and the ticket_facts_updated index.
    version = 2

    def create(self, cursor: Cursor) -> None:
        cursor.execute(CREATE_FACTS)
        cursor.execute(CREATE_BACKLOG)
        for statement in INDEXES:
            cursor.execute(statement)

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        keyed = [(position, str(event.originator_id), event) for position, event in events]
        rows = self._load(cursor, list(dict.fromkeys(ticket_id for _, ticket_id, _ in keyed)))
        changed: dict[str, dict[str, Any]] = {}
        backlog_changes: list[tuple[int, str, str, str, int]] = []

        for position, ticket_id, event in keyed:
            facts = rows.get(ticket_id)
            if facts is None:
                facts = rows[ticket_id] = new_facts(ticket_id)
            occurred_at = iso_utc(event.occurred_at)
            handler = HANDLERS.get(type(event))
            change = handler(facts, event) if handler is not None else 0
            if facts["updated_at"] is None or occurred_at > facts["updated_at"]:
                facts["updated_at"] = occurred_at
            facts["version"] = event.originator_version
            facts["last_position"] = position
            changed[ticket_id] = facts
            if change:
                kind = BACKLOG_KINDS[type(event)]
                backlog_changes.append((position, ticket_id, occurred_at, kind, change))

        cursor.executemany(
            UPSERT_FACTS, [tuple(facts[column] for column in FACT_COLUMNS) for facts in changed.values()]
        )
        cursor.executemany(INSERT_BACKLOG_CHANGE, backlog_changes)

    @staticmethod
    def _load(cursor: Cursor, ticket_ids: list[str]) -> dict[str, dict[str, Any]]:
        rows: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ticket_ids), SELECT_CHUNK):
            chunk = ticket_ids[start:start + SELECT_CHUNK]
            cursor.execute(
                f"SELECT {', '.join(FACT_COLUMNS)} FROM ticket_facts "
                f"WHERE ticket_id IN ({', '.join('?' for _ in chunk)})",
                chunk,
            )
            for row in cursor.fetchall():
                rows[row[0]] = dict(zip(FACT_COLUMNS, row))
        return rows


# Event handlers: each updates the facts in place and returns the backlog change
# (+1 into the backlog, -1 out of it, 0 none).

def _opened(facts: dict[str, Any], event: Any) -> int:
    opened = event.occurred_at
    facts["opened_at"] = iso_utc(opened)
    facts["opened_epoch"] = opened.timestamp()
    facts["opened_day"], facts["opened_week"], facts["opened_month"] = period_labels(opened)
    facts["subject"] = event.subject
    facts["channel"] = event.channel
    facts["client_account_id"] = event.client_account_id
    facts["requester_id"] = (event.requester or {}).get("id")
    facts["status"] = "new"
    return 1


def _intake_completed(facts: dict[str, Any], event: Any) -> int:
    if "subject" in event.fields:
        facts["subject"] = event.fields["subject"]
    if "client_account_id" in event.fields:
        facts["client_account_id"] = event.fields["client_account_id"]
    if "requester" in event.fields:
        facts["requester_id"] = (event.fields["requester"] or {}).get("id")
    return 0


def _classified(facts: dict[str, Any], event: Any) -> int:
    facts["category"] = event.category
    return 0


def _prioritized(facts: dict[str, Any], event: Any) -> int:
    facts["priority"] = event.priority
    facts["impact"] = event.impact
    facts["urgency"] = event.urgency
    return 0


def _assigned(facts: dict[str, Any], event: Any) -> int:
    facts["group_name"] = event.group
    facts["agent"] = event.agent
    return 0


def _reassigned(facts: dict[str, Any], event: Any) -> int:
    _assigned(facts, event)
    facts["reassignment_count"] += 1
    return 0


def _public_reply(facts: dict[str, Any], event: Any) -> int:
    if event.actor.get("kind") == "system":
        return 0
    facts["public_reply_count"] += 1
    replied = iso_utc(event.occurred_at)
    if facts["first_response_at"] is None or replied < facts["first_response_at"]:
        facts["first_response_at"] = replied
        facts["first_response_hours"] = hours_between(facts["opened_epoch"], event.occurred_at)
    return 0


def _status_changed(facts: dict[str, Any], event: Any) -> int:
    # A status change can take a resolved ticket back to work without a reopen.
    if facts["status"] == "resolved":
        change = _no_longer_resolved(facts)
        facts["status"] = event.status
        return change
    facts["status"] = event.status
    return 0


def _escalated(facts: dict[str, Any], event: Any) -> int:
    facts["escalation_count"] += 1
    return 0


def _resolved(facts: dict[str, Any], event: Any) -> int:
    was_open = facts["status"] in OPEN_STATUSES
    resolved = event.occurred_at
    facts["status"] = "resolved"
    facts["resolved_at"] = iso_utc(resolved)
    facts["resolution_hours"] = hours_between(facts["opened_epoch"], resolved)
    if facts["first_resolved_epoch"] is None or resolved.timestamp() < facts["first_resolved_epoch"]:
        facts["first_resolved_at"] = facts["resolved_at"]
        facts["first_resolved_epoch"] = resolved.timestamp()
        facts["first_resolution_hours"] = facts["resolution_hours"]
    return -1 if was_open else 0


def _no_longer_resolved(facts: dict[str, Any]) -> int:
    was_open = facts["status"] in OPEN_STATUSES
    facts["status"] = "open"
    facts["resolved_at"] = None
    facts["resolution_hours"] = None
    facts["closed_at"] = None
    return 0 if was_open else 1


def _rejected(facts: dict[str, Any], event: Any) -> int:
    facts["rejection_count"] += 1
    return _no_longer_resolved(facts)


def _reopened(facts: dict[str, Any], event: Any) -> int:
    facts["reopen_count"] += 1
    return _no_longer_resolved(facts)


def _closed(facts: dict[str, Any], event: Any) -> int:
    was_open = facts["status"] in OPEN_STATUSES
    facts["status"] = "closed"
    facts["closed_at"] = iso_utc(event.occurred_at)
    return -1 if was_open else 0


def _rated(facts: dict[str, Any], event: Any) -> int:
    facts["csat_score"] = str(event.score)
    facts["csat_scale"] = event.scale
    facts["csat_satisfied"] = csat_is_satisfied(event.score, event.scale)
    return 0


def _effort_scored(facts: dict[str, Any], event: Any) -> int:
    facts["ces_score"] = event.score
    facts["ces_scale"] = event.scale
    return 0


def _fact_recorded(facts: dict[str, Any], event: Any) -> int:
    if event.name == "made_sla":
        facts["made_sla"] = as_flag(event.value)
    return 0


def as_flag(value: Any) -> int | None:
    """Read a source system's yes/no verdict, which may arrive as a bool, a number or text."""
    if value is None or isinstance(value, bool):
        return None if value is None else int(value)
    if isinstance(value, (int, float)):
        return int(value != 0)
    text = str(value).strip().lower()
    if text in ("true", "t", "yes", "y", "1"):
        return 1
    if text in ("false", "f", "no", "n", "0"):
        return 0
    return None


# The backlog change kind of each event that can move a ticket into or out of the backlog.
BACKLOG_KINDS = {
    Ticket.Opened: "opened",
    Ticket.Resolved: "resolved",
    Ticket.Closed: "closed",
    Ticket.Reopened: "reopened",
    Ticket.ResolutionRejected: "rejected",
    Ticket.StatusChanged: "status_changed",
}

HANDLERS = {
    Ticket.Opened: _opened,
    Ticket.IntakeDataCompleted: _intake_completed,
    Ticket.Classified: _classified,
    Ticket.Prioritized: _prioritized,
    Ticket.Assigned: _assigned,
    Ticket.Reassigned: _reassigned,
    Ticket.AgentReplied: _public_reply,
    Ticket.ClarificationRequested: _public_reply,
    Ticket.StatusChanged: _status_changed,
    Ticket.Escalated: _escalated,
    Ticket.Resolved: _resolved,
    Ticket.ResolutionRejected: _rejected,
    Ticket.Closed: _closed,
    Ticket.Reopened: _reopened,
    Ticket.SatisfactionRated: _rated,
    Ticket.EffortScored: _effort_scored,
    Ticket.ExternalFactRecorded: _fact_recorded,
}
