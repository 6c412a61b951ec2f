"""The SLA view: one row per ticket, target and cycle, and queries with a live clock.

Times are stored as ISO 8601 text in UTC with microseconds, such as
``2024-03-01T14:00:00.000000+00:00``, so text order is time order on both
backends. Ticket and policy ids are stored as UUID hex without dashes, as in the
other views, and the query functions return them in the usual dashed form.
The tables:

- ``sla_policy_revisions``: every revision of every SLA policy with its full
  terms and the instant it came into force, so an auditor can see which
  revision measured a ticket. ``invalid_reason`` is the reason the clocks
  cannot use a revision (its calendar is invalid), and tickets it governs get
  no clocks.
- ``sla_tickets``: per ticket, the policy revision that governs it (none when
  the ticket was opened before any policy existed) and the state the engine
  needs between events.
- ``sla_targets``: per ticket, target (``first_response``, ``next_reply``,
  ``resolution``) and cycle, the clock as of ``as_of``, the time of the last
  event applied to it. ``state`` is one of active, paused, at_risk, breached,
  met and missed. :func:`sla_rows` recomputes the running values for any later
  instant without writing.

The rules for the clocks are in :mod:`projections.sla_engine`.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone
from typing import Any
from uuid import UUID

from hub.domain import SlaPolicy, Ticket
from hub.domain.errors import InvalidValueError
from projections.calendar import BusinessCalendar
from projections.db import Cursor, Database
from projections.runner import EventPage, View
from projections.sla_engine import (
    HANDLED_EVENTS,
    STATES,
    PolicyBook,
    SlaEngine,
    TargetClock,
    TicketSla,
)

logger = logging.getLogger(__name__)

UTC = timezone.utc

# Number of keys per ``IN (...)`` query. SQLite allows 32766 parameters per
# statement since 3.32 (999 before), so 500 fits both limits.
SELECT_CHUNK = 500

MAX_LIMIT = 1000

POLICY_EVENTS = (SlaPolicy.Defined, SlaPolicy.Revised)

# Sort key of a row without a due time (a paused clock), after every real time.
NO_DUE_TIME = "9999-12-31T23:59:59.999999+00:00"

POLICY_COLUMNS = (
    "policy_id", "revision", "name", "targets", "calendar", "pause_statuses",
    "public_notes_count_as_response", "at_risk_ratio", "defined_at", "effective_at", "position",
    "invalid_reason",
)

TICKET_COLUMNS = (
    "ticket_id", "opened_at", "policy_id", "policy_revision", "priority", "status", "status_log",
    "channel", "group_name", "agent", "client_account_id", "first_response_done",
    "next_reply_cycle", "next_reply_started_at", "resolution_cycle", "resolution_started_at",
    "last_event_at", "last_position",
)

TARGET_COLUMNS = (
    "ticket_id", "target", "cycle", "priority", "policy_id", "policy_revision", "target_minutes",
    "at_risk_ratio", "started_at", "due_at", "at_risk_at", "fulfilled_at", "fulfilled_by",
    "paused_since", "paused_minutes", "elapsed_business_minutes", "remaining_business_minutes",
    "state", "breached_at", "as_of", "at_risk_flagged", "breach_flagged",
    "channel", "group_name", "agent", "client_account_id",
)

CREATE_STATEMENTS = (
    """
    CREATE TABLE IF NOT EXISTS sla_policy_revisions (
        policy_id TEXT NOT NULL,
        revision INTEGER NOT NULL,
        name TEXT NOT NULL,
        targets TEXT NOT NULL,
        calendar TEXT,
        pause_statuses TEXT NOT NULL,
        public_notes_count_as_response INTEGER NOT NULL,
        at_risk_ratio DOUBLE PRECISION NOT NULL,
        defined_at TEXT NOT NULL,
        effective_at TEXT NOT NULL,
        position BIGINT NOT NULL,
        invalid_reason TEXT,
        PRIMARY KEY (policy_id, revision)
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS sla_tickets (
        ticket_id TEXT PRIMARY KEY,
        opened_at TEXT NOT NULL,
        policy_id TEXT,
        policy_revision INTEGER,
        priority TEXT,
        status TEXT NOT NULL,
        status_log TEXT NOT NULL,
        channel TEXT,
        group_name TEXT,
        agent TEXT,
        client_account_id TEXT,
        first_response_done INTEGER NOT NULL,
        next_reply_cycle INTEGER NOT NULL,
        next_reply_started_at TEXT,
        resolution_cycle INTEGER NOT NULL,
        resolution_started_at TEXT,
        last_event_at TEXT,
        last_position BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS sla_targets (
        ticket_id TEXT NOT NULL,
        target TEXT NOT NULL,
        cycle INTEGER NOT NULL,
        priority TEXT NOT NULL,
        policy_id TEXT NOT NULL,
        policy_revision INTEGER NOT NULL,
        target_minutes DOUBLE PRECISION NOT NULL,
        at_risk_ratio DOUBLE PRECISION NOT NULL,
        started_at TEXT NOT NULL,
        due_at TEXT,
        at_risk_at TEXT,
        fulfilled_at TEXT,
        fulfilled_by TEXT,
        paused_since TEXT,
        paused_minutes DOUBLE PRECISION NOT NULL,
        elapsed_business_minutes DOUBLE PRECISION NOT NULL,
        remaining_business_minutes DOUBLE PRECISION NOT NULL,
        state TEXT NOT NULL,
        breached_at TEXT,
        as_of TEXT NOT NULL,
        at_risk_flagged INTEGER NOT NULL,
        breach_flagged INTEGER NOT NULL,
        channel TEXT,
        group_name TEXT,
        agent TEXT,
        client_account_id TEXT,
        PRIMARY KEY (ticket_id, target, cycle)
    )
    """,
    "CREATE INDEX IF NOT EXISTS sla_targets_running ON sla_targets (fulfilled_at, due_at)",
    "CREATE INDEX IF NOT EXISTS sla_targets_state ON sla_targets (state, target, priority)",
)


def _upsert(table: str, columns: Sequence[str], key: Sequence[str]) -> str:
    updates = ", ".join(f"{column} = excluded.{column}" for column in columns if column not in key)
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)}) "
        f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {updates}"
    )


INSERT_POLICY = (
    f"INSERT INTO sla_policy_revisions ({', '.join(POLICY_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in POLICY_COLUMNS)})"
)
UPSERT_TICKET = _upsert("sla_tickets", TICKET_COLUMNS, ("ticket_id",))
UPSERT_TARGET = _upsert("sla_targets", TARGET_COLUMNS, ("ticket_id", "target", "cycle"))
DELETE_TARGET = "DELETE FROM sla_targets WHERE ticket_id = ? AND target = ? AND cycle = ?"
MARK_AT_RISK = "UPDATE sla_targets SET at_risk_flagged = 1 WHERE ticket_id = ? AND target = ? AND cycle = ?"
MARK_BREACHED = "UPDATE sla_targets SET breach_flagged = 1 WHERE ticket_id = ? AND target = ? AND cycle = ?"


# Conversions between engine values and column values.


def iso_utc(moment: datetime | None) -> str | None:
    """Format an aware datetime as fixed-width UTC text, so that text order is time order."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def parse_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def ticket_key(ticket_id: UUID | str) -> str:
    """Return the stored form of a ticket id (UUID hex), or raise InvalidValueError."""
    if isinstance(ticket_id, UUID):
        return ticket_id.hex
    try:
        return UUID(str(ticket_id)).hex
    except ValueError:
        msg = f"ticket id {ticket_id!r} is not a UUID such as 0f8fad5b-d9cb-469f-a165-70867728950e"
        raise InvalidValueError("ticket_id", msg) from None


def _clock_values(clock: TargetClock) -> tuple[Any, ...]:
    values = {
        "ticket_id": clock.ticket_id,
        "target": clock.target,
        "cycle": clock.cycle,
        "priority": clock.priority,
        "policy_id": clock.policy_id,
        "policy_revision": clock.policy_revision,
        "target_minutes": clock.target_minutes,
        "at_risk_ratio": clock.at_risk_ratio,
        "started_at": iso_utc(clock.started_at),
        "due_at": iso_utc(clock.due_at),
        "at_risk_at": iso_utc(clock.at_risk_at),
        "fulfilled_at": iso_utc(clock.fulfilled_at),
        "fulfilled_by": clock.fulfilled_by,
        "paused_since": iso_utc(clock.paused_since),
        "paused_minutes": clock.paused_minutes,
        "elapsed_business_minutes": clock.elapsed_minutes,
        "remaining_business_minutes": clock.remaining_minutes,
        "state": clock.state,
        "breached_at": iso_utc(clock.breached_at),
        "as_of": iso_utc(clock.as_of),
        "at_risk_flagged": int(clock.at_risk_flagged),
        "breach_flagged": int(clock.breach_flagged),
        "channel": clock.channel,
        "group_name": clock.group,
        "agent": clock.agent,
        "client_account_id": clock.client_account_id,
    }
    return tuple(values[column] for column in TARGET_COLUMNS)


def _clock_from_row(row: dict[str, Any]) -> TargetClock:
    return TargetClock(
        ticket_id=row["ticket_id"],
        target=row["target"],
        cycle=int(row["cycle"]),
        priority=row["priority"],
        policy_id=row["policy_id"],
        policy_revision=int(row["policy_revision"]),
        target_minutes=float(row["target_minutes"]),
        at_risk_ratio=float(row["at_risk_ratio"]),
        started_at=parse_time(row["started_at"]),  # type: ignore[arg-type]
        as_of=parse_time(row["as_of"]),  # type: ignore[arg-type]
        elapsed_minutes=float(row["elapsed_business_minutes"]),
        paused_minutes=float(row["paused_minutes"]),
        paused_since=parse_time(row["paused_since"]),
        due_at=parse_time(row["due_at"]),
        at_risk_at=parse_time(row["at_risk_at"]),
        fulfilled_at=parse_time(row["fulfilled_at"]),
        fulfilled_by=row["fulfilled_by"],
        at_risk_flagged=bool(row["at_risk_flagged"]),
        breach_flagged=bool(row["breach_flagged"]),
        channel=row["channel"],
        group=row["group_name"],
        agent=row["agent"],
        client_account_id=row["client_account_id"],
    )


def _ticket_values(ticket: TicketSla, position: int) -> tuple[Any, ...]:
    values = {
        "ticket_id": ticket.ticket_id,
        "opened_at": iso_utc(ticket.opened_at),
        "policy_id": ticket.policy_id,
        "policy_revision": ticket.policy_revision,
        "priority": ticket.priority,
        "status": ticket.status,
        "status_log": json.dumps([[iso_utc(moment), status] for moment, status in ticket.status_log]),
        "channel": ticket.channel,
        "group_name": ticket.group,
        "agent": ticket.agent,
        "client_account_id": ticket.client_account_id,
        "first_response_done": int(ticket.first_response_done),
        "next_reply_cycle": ticket.next_reply_cycle,
        "next_reply_started_at": iso_utc(ticket.next_reply_started_at),
        "resolution_cycle": ticket.resolution_cycle,
        "resolution_started_at": iso_utc(ticket.resolution_started_at),
        "last_event_at": iso_utc(ticket.last_event_at),
        "last_position": position,
    }
    return tuple(values[column] for column in TICKET_COLUMNS)


def _ticket_from_row(row: dict[str, Any]) -> TicketSla:
    return TicketSla(
        ticket_id=row["ticket_id"],
        opened_at=parse_time(row["opened_at"]),  # type: ignore[arg-type]
        policy_id=row["policy_id"],
        policy_revision=int(row["policy_revision"]) if row["policy_revision"] is not None else None,
        status=row["status"],
        priority=row["priority"],
        status_log=[(parse_time(moment), status) for moment, status in json.loads(row["status_log"])],  # type: ignore[misc]
        channel=row["channel"],
        group=row["group_name"],
        agent=row["agent"],
        client_account_id=row["client_account_id"],
        first_response_done=bool(row["first_response_done"]),
        next_reply_cycle=int(row["next_reply_cycle"]),
        next_reply_started_at=parse_time(row["next_reply_started_at"]),
        resolution_cycle=int(row["resolution_cycle"]),
        resolution_started_at=parse_time(row["resolution_started_at"]),
        last_event_at=parse_time(row["last_event_at"]),
    )


def load_policy_book(cursor: Cursor, calendars: dict[str, BusinessCalendar] | None = None) -> PolicyBook:
    """Read every stored policy revision into a :class:`PolicyBook`."""
    book = PolicyBook(calendars)
    cursor.execute(f"SELECT {', '.join(POLICY_COLUMNS)} FROM sla_policy_revisions ORDER BY position")
    for values in cursor.fetchall():
        row = dict(zip(POLICY_COLUMNS, values))
        book.add(
            policy_id=row["policy_id"],
            revision=int(row["revision"]),
            terms={
                "name": row["name"],
                "targets": json.loads(row["targets"]),
                "calendar": json.loads(row["calendar"]) if row["calendar"] is not None else None,
                "pause_statuses": json.loads(row["pause_statuses"]),
                "public_notes_count_as_response": bool(row["public_notes_count_as_response"]),
                "at_risk_ratio": float(row["at_risk_ratio"]),
            },
            defined_at=parse_time(row["defined_at"]),  # type: ignore[arg-type]
            effective_at=parse_time(row["effective_at"]),  # type: ignore[arg-type]
        )
    return book


def _select_in(cursor: Cursor, sql: str, keys: Sequence[str]) -> list[tuple[Any, ...]]:
    """Run ``sql``, which ends with ``IN ({keys})``, over ``keys`` in chunks."""
    rows: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), SELECT_CHUNK):
        chunk = keys[start:start + SELECT_CHUNK]
        cursor.execute(sql.format(keys=", ".join("?" for _ in chunk)), chunk)
        rows.extend(cursor.fetchall())
    return rows


class SlaView(View):
    """SLA clocks per ticket, target and cycle, and the policy revisions that set them."""

    name = "sla"
    # Version 2 added sla_policy_revisions.invalid_reason.
    version = 2
    tables = ("sla_targets", "sla_tickets", "sla_policy_revisions")
    topics = (
        SlaPolicy.Defined,
        SlaPolicy.Revised,
        Ticket.Opened,
        *(getattr(Ticket, kind) for kind in sorted(HANDLED_EVENTS)),
    )

    def __init__(self) -> None:
        # Calendars outlive a page, so each keeps its converted days between pages.
        self._calendars: dict[str, BusinessCalendar] = {}

    def create(self, cursor: Cursor) -> None:
        for statement in CREATE_STATEMENTS:
            cursor.execute(statement)

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        book = load_policy_book(cursor, self._calendars)
        engine = SlaEngine(book)
        ticket_ids = list(dict.fromkeys(
            event.originator_id.hex for _, event in events if not isinstance(event, POLICY_EVENTS)
        ))
        tickets = self._load_tickets(cursor, ticket_ids)
        touched: dict[str, int] = {}
        new_policies: list[tuple[Any, ...]] = []

        for position, event in events:
            if isinstance(event, POLICY_EVENTS):
                new_policies.append(self._add_policy(book, position, event))
                continue
            ticket_id = event.originator_id.hex
            if isinstance(event, Ticket.Opened):
                # NOTE: the policy comes from the revisions recorded before this event.
                # A revision recorded later with an earlier occurred_at (an import of
                # old policy history) does not re-measure tickets already opened.
                tickets[ticket_id] = engine.open_ticket(
                    ticket_id, event.occurred_at,
                    channel=event.channel, client_account_id=event.client_account_id,
                )
            else:
                ticket = tickets.get(ticket_id)
                if ticket is None:
                    continue
                engine.apply(ticket, type(event).__name__, event.occurred_at, event.__dict__)
            touched[ticket_id] = position

        self._write(cursor, tickets, touched, new_policies)

    @staticmethod
    def _add_policy(book: PolicyBook, position: int, event: Any) -> tuple[Any, ...]:
        policy_id = event.originator_id.hex
        revision = book.next_revision_number(policy_id)
        defined_at = book.defined_at(policy_id) or event.occurred_at
        terms = {
            "name": event.name,
            "targets": event.targets,
            "calendar": event.calendar,
            "pause_statuses": event.pause_statuses,
            "public_notes_count_as_response": event.public_notes_count_as_response,
            "at_risk_ratio": event.at_risk_ratio,
        }
        entry = book.add(
            policy_id=policy_id, revision=revision, terms=terms,
            defined_at=defined_at, effective_at=event.occurred_at,
        )
        if not entry.usable:
            logger.error(
                "SLA policy %s revision %d is unusable and measures no ticket (position %d): %s; "
                "revise the policy with a valid calendar",
                policy_id, revision, position, entry.invalid_reason,
            )
        return (
            policy_id, revision, event.name, json.dumps(event.targets, sort_keys=True),
            json.dumps(event.calendar, sort_keys=True) if event.calendar is not None else None,
            json.dumps(event.pause_statuses, sort_keys=True), int(event.public_notes_count_as_response),
            float(event.at_risk_ratio), iso_utc(defined_at), iso_utc(event.occurred_at), position,
            entry.invalid_reason,
        )

    @staticmethod
    def _load_tickets(cursor: Cursor, ticket_ids: list[str]) -> dict[str, TicketSla]:
        """Load the state of these tickets and their running clocks."""
        tickets: dict[str, TicketSla] = {}
        rows = _select_in(
            cursor, f"SELECT {', '.join(TICKET_COLUMNS)} FROM sla_tickets WHERE ticket_id IN ({{keys}})",
            ticket_ids,
        )
        for values in rows:
            ticket = _ticket_from_row(dict(zip(TICKET_COLUMNS, values)))
            tickets[ticket.ticket_id] = ticket
        with_policy = [ticket_id for ticket_id, ticket in tickets.items() if ticket.has_policy]
        rows = _select_in(
            cursor,
            f"SELECT {', '.join(TARGET_COLUMNS)} FROM sla_targets "
            "WHERE fulfilled_at IS NULL AND ticket_id IN ({keys})",
            with_policy,
        )
        for values in rows:
            clock = _clock_from_row(dict(zip(TARGET_COLUMNS, values)))
            tickets[clock.ticket_id].running[clock.target] = clock
        return tickets

    @staticmethod
    def _write(
        cursor: Cursor,
        tickets: dict[str, TicketSla],
        touched: dict[str, int],
        new_policies: list[tuple[Any, ...]],
    ) -> None:
        cursor.executemany(INSERT_POLICY, new_policies)
        ticket_rows = []
        target_rows = []
        deleted = []
        at_risk_marks = []
        breach_marks = []
        for ticket_id, position in touched.items():
            ticket = tickets[ticket_id]
            ticket_rows.append(_ticket_values(ticket, position))
            changed, removed = ticket.take_changes()
            target_rows.extend(_clock_values(clock) for clock in changed)
            deleted.extend(removed)
            for kind, target, cycle in ticket.take_flags():
                marks = at_risk_marks if kind == "at_risk" else breach_marks
                marks.append((ticket_id, target, cycle))
        cursor.executemany(UPSERT_TICKET, ticket_rows)
        cursor.executemany(DELETE_TARGET, deleted)
        cursor.executemany(UPSERT_TARGET, target_rows)
        # After the upserts, because a flagged clock may have finished in an earlier page.
        cursor.executemany(MARK_AT_RISK, at_risk_marks)
        cursor.executemany(MARK_BREACHED, breach_marks)


# Queries.


def _state_condition(state: str, now_text: str) -> tuple[str, list[Any]]:
    """Return the SQL condition and parameters for rows that are in ``state`` at ``now_text``.

    These conditions match ``TargetClock.state_at`` for the instant ``now_text``.
    """
    if state in ("met", "missed"):
        return "fulfilled_at IS NOT NULL AND state = ?", [state]
    if state == "breached":
        return "fulfilled_at IS NULL AND due_at < ?", [now_text]
    if state == "paused":
        return (
            "fulfilled_at IS NULL AND paused_since IS NOT NULL AND (due_at IS NULL OR due_at >= ?)",
            [now_text],
        )
    if state == "at_risk":
        return (
            "fulfilled_at IS NULL AND paused_since IS NULL AND at_risk_at <= ? AND due_at >= ?",
            [now_text, now_text],
        )
    return (
        "fulfilled_at IS NULL AND paused_since IS NULL AND (at_risk_at IS NULL OR at_risk_at > ?) "
        "AND (due_at IS NULL OR due_at >= ?)",
        [now_text, now_text],
    )


def encode_cursor(values: Sequence[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode().rstrip("=")


def decode_cursor(text: str) -> list[Any]:
    try:
        padded = text + "=" * (-len(text) % 4)
        values = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        values = None
    if not isinstance(values, list) or len(values) != 4:
        msg = f"cursor {text!r} is invalid; pass the next_cursor of the previous page unchanged"
        raise InvalidValueError("cursor", msg)
    return values


def _calendars_for(db_cursor: Cursor, keys: Iterable[tuple[str, int]]) -> dict[tuple[str, int], BusinessCalendar]:
    calendars: dict[tuple[str, int], BusinessCalendar] = {}
    by_spec: dict[str | None, BusinessCalendar] = {}
    for policy_id, revision in set(keys):
        db_cursor.execute(
            "SELECT calendar FROM sla_policy_revisions WHERE policy_id = ? AND revision = ?",
            (policy_id, revision),
        )
        found = db_cursor.fetchone()
        spec_text = found[0] if found else None
        if spec_text not in by_spec:
            by_spec[spec_text] = BusinessCalendar.from_dict(json.loads(spec_text) if spec_text else None)
        calendars[(policy_id, revision)] = by_spec[spec_text]
    return calendars


def _live_item(row: dict[str, Any], calendar: BusinessCalendar, now: datetime) -> dict[str, Any]:
    clock = _clock_from_row(row)
    live = clock.live(calendar, now)
    item = {column: row[column] for column in TARGET_COLUMNS}
    item.update(
        ticket_id=str(UUID(row["ticket_id"])),
        policy_id=str(UUID(row["policy_id"])),
        at_risk_flagged=bool(row["at_risk_flagged"]),
        breach_flagged=bool(row["breach_flagged"]),
        as_of=iso_utc(live["as_of"]),
        elapsed_business_minutes=live["elapsed_business_minutes"],
        paused_minutes=live["paused_minutes"],
        remaining_business_minutes=live["remaining_business_minutes"],
        state=live["state"],
        breached_at=iso_utc(live["breached_at"]),
    )
    return item


def sla_rows(
    db: Database,
    state: str | None = None,
    ticket_id: UUID | str | None = None,
    now: datetime | None = None,
    cursor: str | None = None,
    limit: int = 100,
) -> dict[str, Any]:
    """Return one page of SLA rows as of ``now`` (the current time by default).

    Rows are ordered by due time, earliest first. At-risk rows therefore come
    with the least time left first and breached rows with the longest overdue
    first. Rows without a due time (paused clocks) come last. Pass
    ``next_cursor`` back as ``cursor`` for the next page; it is None on the
    last page.

    NOTE: a ``now`` earlier than a row's ``as_of`` gives that row's stored
    values, because a clock cannot be wound back without its history, while the
    state filter still uses ``now``.
    """
    if state is not None and state not in STATES:
        msg = f"state {state!r} is invalid; use one of {', '.join(STATES)}"
        raise InvalidValueError("state", msg)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        msg = f"limit {limit!r} is invalid; use a whole number from 1 to {MAX_LIMIT}"
        raise InvalidValueError("limit", msg)
    moment = now or datetime.now(tz=UTC)
    if moment.tzinfo is None or moment.utcoffset() is None:
        msg = f"now must be timezone-aware, got the naive value {moment.isoformat()}; add an offset such as +00:00"
        raise InvalidValueError("now", msg)
    now_text = iso_utc(moment)

    sort_key = f"COALESCE(due_at, '{NO_DUE_TIME}')"
    conditions: list[str] = []
    params: list[Any] = []
    if state is not None:
        condition, condition_params = _state_condition(state, now_text)
        conditions.append(condition)
        params.extend(condition_params)
    if ticket_id is not None:
        conditions.append("ticket_id = ?")
        params.append(ticket_key(ticket_id))
    if cursor is not None:
        conditions.append(f"({sort_key}, ticket_id, target, cycle) > (?, ?, ?, ?)")
        params.extend(decode_cursor(cursor))
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT {', '.join(TARGET_COLUMNS)}, {sort_key} FROM sla_targets {where} "
        f"ORDER BY {sort_key}, ticket_id, target, cycle LIMIT ?"
    )
    params.append(limit + 1)

    with db.transaction(readonly=True) as db_cursor:
        db_cursor.execute(sql, params)
        fetched = db_cursor.fetchall()
        page = fetched[:limit]
        rows = [dict(zip(TARGET_COLUMNS, values)) for values in page]
        calendars = _calendars_for(db_cursor, ((row["policy_id"], row["policy_revision"]) for row in rows))

    items = [
        _live_item(row, calendars[(row["policy_id"], row["policy_revision"])], moment) for row in rows
    ]
    next_cursor = None
    if len(fetched) > limit:
        last = page[-1]
        last_row = rows[-1]
        next_cursor = encode_cursor([last[-1], last_row["ticket_id"], last_row["target"], last_row["cycle"]])
    return {"items": items, "next_cursor": next_cursor}


def sla_ticket(db: Database, ticket_id: UUID | str) -> dict[str, Any] | None:
    """Return which policy revision governs a ticket, or None when the view has no such ticket.

    ``policy_id`` is None for a ticket opened before any SLA policy existed.
    """
    key = ticket_key(ticket_id)
    with db.transaction(readonly=True) as cursor:
        cursor.execute(
            "SELECT t.ticket_id, t.opened_at, t.policy_id, t.policy_revision, p.name, t.priority, t.status "
            "FROM sla_tickets t LEFT JOIN sla_policy_revisions p "
            "ON p.policy_id = t.policy_id AND p.revision = t.policy_revision WHERE t.ticket_id = ?",
            (key,),
        )
        found = cursor.fetchone()
    if found is None:
        return None
    names = ("ticket_id", "opened_at", "policy_id", "policy_revision", "policy_name", "priority", "status")
    summary = dict(zip(names, found))
    summary["ticket_id"] = str(UUID(summary["ticket_id"]))
    if summary["policy_id"] is not None:
        summary["policy_id"] = str(UUID(summary["policy_id"]))
    return summary


def policy_revisions(db: Database, policy_id: UUID | str | None = None) -> list[dict[str, Any]]:
    """Return the stored policy revisions, oldest first, with their terms decoded."""
    sql = f"SELECT {', '.join(POLICY_COLUMNS)} FROM sla_policy_revisions"
    params: tuple[Any, ...] = ()
    if policy_id is not None:
        sql += " WHERE policy_id = ?"
        params = (UUID(str(policy_id)).hex,)
    with db.transaction(readonly=True) as cursor:
        cursor.execute(sql + " ORDER BY position", params)
        fetched = cursor.fetchall()
    revisions = []
    for values in fetched:
        row = dict(zip(POLICY_COLUMNS, values))
        row["policy_id"] = str(UUID(row["policy_id"]))
        for column in ("targets", "calendar", "pause_statuses"):
            row[column] = json.loads(row[column]) if row[column] is not None else None
        row["public_notes_count_as_response"] = bool(row["public_notes_count_as_response"])
        revisions.append(row)
    return revisions
