"""The webhook outbox: messages to deliver, their attempts, and the view that creates them.

``WebhookDispatchView`` follows the global event stream through the projection
runner. It keeps ``webhook_endpoints`` (the endpoints as of the position it has
reached) and turns every event that an enabled endpoint subscribes to into one
row of ``webhook_messages``, in the same transaction as its position. A
message's id is ``message_id_for(endpoint_id, position)`` and the table's
primary key, so applying a page twice (after a rebuild) inserts nothing twice.
An endpoint is never sent events about itself, and it only receives events
recorded after it was created: ``Outbox.replay`` reaches older ones.

The body bytes are stored with the message, so every attempt sends the same
bytes. ``Outbox`` holds the SQL that workers and the API run on these tables:
claiming due messages under a lease, recording attempts, listing deliveries,
replaying a time window and queueing test messages.

Times are stored as Unix seconds (``DOUBLE PRECISION``), read from the clock
the caller passes, so tests can move time forward without sleeping.

Disabling or deleting an endpoint cancels its pending messages: after days of
failures they are stale, and ``replay`` re-sends a chosen window once the
endpoint is enabled again.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from hub.events import aggregate_kind, event_data, event_type, to_plain
from projections.db import Cursor, Database
from projections.runner import POSITIONS_TABLE, EventPage, View
from webhooks.endpoint import WebhookEndpoint, matches
from webhooks.signing import message_id_for, new_message_id

logger = logging.getLogger(__name__)

Clock = Callable[[], datetime]

DISPATCH_VIEW_NAME = "webhook_dispatch"

ENDPOINTS_TABLE = "webhook_endpoints"
EVENT_LOG_TABLE = "webhook_event_log"
MESSAGES_TABLE = "webhook_messages"
ATTEMPTS_TABLE = "webhook_attempts"
HEALTH_TABLE = "webhook_endpoint_health"

PENDING, DELIVERING, DELIVERED, FAILED, CANCELLED = "pending", "delivering", "delivered", "failed", "cancelled"
MESSAGE_STATES = (PENDING, DELIVERING, DELIVERED, FAILED, CANCELLED)

# Outcome recorded for an attempt whose worker stopped before recording it.
ABANDONED = "abandoned"

TEST_EVENT_TYPE = "endpoint.test"

# Replaying more events than this in one request is rejected; narrow the window.
MAX_REPLAY_EVENTS = 10_000

# Fields of endpoint events that subscribers may see. URLs often carry access
# tokens and secrets are never sent, so everything else is left out.
_ENDPOINT_PAYLOAD_FIELDS = {
    "Created": ("event_types", "description"),
    "Updated": (),
    "SecretRotated": ("previous_secret_expires_at",),
    "Disabled": ("reason",),
    "Enabled": (),
    "Deleted": (),
}


def utc_now() -> datetime:
    return datetime.now(tz=timezone.utc)


def to_seconds(moment: datetime) -> float:
    return moment.timestamp()


def from_seconds(seconds: float | None) -> datetime | None:
    if seconds is None:
        return None
    return datetime.fromtimestamp(seconds, tz=timezone.utc)


# Tables.


def create_tables(cursor: Cursor) -> None:
    """Create the webhook tables and their indexes if they do not exist."""
    blob = "BYTEA" if cursor.dialect == "postgresql" else "BLOB"
    statements = (
        f"CREATE TABLE IF NOT EXISTS {ENDPOINTS_TABLE} ("
        " id TEXT PRIMARY KEY,"
        " version INTEGER NOT NULL,"
        " url TEXT NOT NULL,"
        " event_types TEXT NOT NULL,"
        " description TEXT NOT NULL,"
        " status TEXT NOT NULL,"
        " disabled_reason TEXT,"
        " secret TEXT NOT NULL,"
        " previous_secret TEXT,"
        " previous_secret_expires_at DOUBLE PRECISION,"
        " created_at DOUBLE PRECISION NOT NULL,"
        " updated_at DOUBLE PRECISION NOT NULL,"
        " created_position BIGINT NOT NULL)",
        f"CREATE TABLE IF NOT EXISTS {EVENT_LOG_TABLE} ("
        " position BIGINT PRIMARY KEY,"
        " event_type TEXT NOT NULL,"
        " recorded_at DOUBLE PRECISION NOT NULL)",
        f"CREATE INDEX IF NOT EXISTS {EVENT_LOG_TABLE}_recorded ON {EVENT_LOG_TABLE} (recorded_at)",
        f"CREATE TABLE IF NOT EXISTS {MESSAGES_TABLE} ("
        " id TEXT PRIMARY KEY,"
        " endpoint_id TEXT NOT NULL,"
        " position BIGINT,"
        " event_type TEXT NOT NULL,"
        f" body {blob} NOT NULL,"
        " state TEXT NOT NULL,"
        " attempts INTEGER NOT NULL DEFAULT 0,"
        " retry_step INTEGER NOT NULL DEFAULT 0,"
        " created_at DOUBLE PRECISION NOT NULL,"
        # The dispatch position when the message was queued. Disabling an
        # endpoint cancels only messages queued before the Disabled event, so
        # a rebuild of the view does not cancel messages replayed later.
        " created_position BIGINT NOT NULL,"
        " next_attempt_at DOUBLE PRECISION,"
        " lease_until DOUBLE PRECISION,"
        " lease_token TEXT,"
        " last_status INTEGER,"
        " last_error TEXT,"
        " finished_at DOUBLE PRECISION)",
        # NOTE: nothing deletes old messages or attempts yet, so both tables grow
        # with every delivery until a retention job is added.
        f"CREATE INDEX IF NOT EXISTS {MESSAGES_TABLE}_due ON {MESSAGES_TABLE} (state, next_attempt_at)",
        f"CREATE INDEX IF NOT EXISTS {MESSAGES_TABLE}_endpoint ON {MESSAGES_TABLE} (endpoint_id, created_at)",
        f"CREATE TABLE IF NOT EXISTS {ATTEMPTS_TABLE} ("
        " message_id TEXT NOT NULL,"
        " attempt_number INTEGER NOT NULL,"
        " endpoint_id TEXT NOT NULL,"
        " attempted_at DOUBLE PRECISION NOT NULL,"
        " webhook_timestamp BIGINT,"
        " status INTEGER,"
        " latency_ms DOUBLE PRECISION,"
        " response_body TEXT,"
        " error TEXT,"
        " outcome TEXT NOT NULL,"
        " worker TEXT,"
        " PRIMARY KEY (message_id, attempt_number))",
        f"CREATE TABLE IF NOT EXISTS {HEALTH_TABLE} ("
        " endpoint_id TEXT PRIMARY KEY,"
        " failing_since DOUBLE PRECISION,"
        " last_success_at DOUBLE PRECISION)",
    )
    for statement in statements:
        cursor.execute(statement)


# Message bodies.


def payload_data(event: Any, position: int) -> dict[str, Any]:
    """Return the ``data`` object of a message: the aggregate id, the position and the event's fields."""
    kind = aggregate_kind(event)
    data: dict[str, Any] = {f"{kind}_id": str(event.originator_id), "position": position}
    if isinstance(event, WebhookEndpoint.Event):
        fields = _ENDPOINT_PAYLOAD_FIELDS.get(type(event).__name__, ())
        own = {name: to_plain(getattr(event, name)) for name in fields}
        if isinstance(event, WebhookEndpoint.Updated):
            own["changed"] = sorted(event.changes)
    else:
        own = event_data(event)
    data.update(own)
    data["actor"] = to_plain(event.actor)
    data["source"] = to_plain(event.source)
    return data


def message_body(event: Any, position: int) -> bytes:
    """Encode the Standard Webhooks payload ``{"type", "timestamp", "data"}`` of one event."""
    payload = {
        "type": event_type(event),
        "timestamp": event.occurred_at.isoformat(),
        "data": payload_data(event, position),
    }
    return encode_payload(payload)


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# The dispatch view.


@dataclass
class _Subscriber:
    endpoint_id: str
    status: str
    event_types: list[str]


_INSERT_MESSAGE = (
    f"INSERT INTO {MESSAGES_TABLE} (id, endpoint_id, position, event_type, body, state, attempts,"
    " retry_step, created_at, created_position, next_attempt_at)"
    " VALUES (?, ?, ?, ?, ?, 'pending', 0, 0, ?, ?, ?) ON CONFLICT (id) DO NOTHING"
)


class WebhookDispatchView(View):
    """Turns each event into one message per endpoint subscribed to it at that point of the stream."""

    name = DISPATCH_VIEW_NAME
    # Messages, attempts and endpoint health are never dropped: a rebuild
    # re-inserts nothing for messages that exist, and keeps delivery history.
    tables = (ENDPOINTS_TABLE, EVENT_LOG_TABLE)
    version = 1

    def __init__(self, clock: Clock = utc_now, *, queue_messages: bool = True) -> None:
        self.clock = clock
        # False rebuilds the endpoints and the event log from events that were
        # already dispatched elsewhere (after "hub db copy"), without queuing them again.
        self.queue_messages = queue_messages

    def create(self, cursor: Cursor) -> None:
        create_tables(cursor)

    def apply_page(self, cursor: Cursor, events: EventPage) -> None:
        subscribers = self._load_subscribers(cursor)
        now = to_seconds(self.clock())
        log_rows: list[tuple[Any, ...]] = []
        message_rows: list[tuple[Any, ...]] = []
        for position, event in events:
            type_name = event_type(event)
            log_rows.append((position, type_name, to_seconds(event.timestamp)))
            origin = str(event.originator_id)
            if isinstance(event, WebhookEndpoint.Event):
                if isinstance(event, (WebhookEndpoint.Disabled, WebhookEndpoint.Deleted)):
                    # Messages queued earlier in this page must exist before they are cancelled.
                    cursor.executemany(_INSERT_MESSAGE, message_rows)
                    message_rows = []
                self._apply_endpoint_event(cursor, subscribers, position, event)
            if not self.queue_messages:
                continue

            body: bytes | None = None
            for subscriber in subscribers.values():
                if subscriber.status != "enabled" or subscriber.endpoint_id == origin:
                    continue
                if not matches(subscriber.event_types, type_name):
                    continue
                if body is None:
                    body = message_body(event, position)
                message_id = message_id_for(subscriber.endpoint_id, position)
                message_rows.append(
                    (message_id, subscriber.endpoint_id, position, type_name, body, now, position, now)
                )
        cursor.executemany(
            f"INSERT INTO {EVENT_LOG_TABLE} (position, event_type, recorded_at) VALUES (?, ?, ?)"
            " ON CONFLICT (position) DO NOTHING",
            log_rows,
        )
        cursor.executemany(_INSERT_MESSAGE, message_rows)
        if message_rows:
            logger.debug("Webhook dispatch queued %d messages up to position %d", len(message_rows), events[-1][0])

    def _load_subscribers(self, cursor: Cursor) -> dict[str, _Subscriber]:
        cursor.execute(f"SELECT id, status, event_types FROM {ENDPOINTS_TABLE} WHERE status <> 'deleted'")
        return {
            endpoint_id: _Subscriber(endpoint_id, status, json.loads(event_types))
            for endpoint_id, status, event_types in cursor.fetchall()
        }

    def _apply_endpoint_event(
        self, cursor: Cursor, subscribers: dict[str, _Subscriber], position: int, event: Any
    ) -> None:
        endpoint_id = str(event.originator_id)
        version = event.originator_version
        changed_at = to_seconds(event.occurred_at)
        if isinstance(event, WebhookEndpoint.Created):
            cursor.execute(
                f"INSERT INTO {ENDPOINTS_TABLE} (id, version, url, event_types, description, status,"
                " secret, created_at, updated_at, created_position)"
                " VALUES (?, ?, ?, ?, ?, 'enabled', ?, ?, ?, ?)",
                (
                    endpoint_id, version, event.url, json.dumps(event.event_types), event.description,
                    event.secret_ciphertext, changed_at, changed_at, position,
                ),
            )
            subscribers[endpoint_id] = _Subscriber(endpoint_id, "enabled", list(event.event_types))
            return

        subscriber = subscribers.get(endpoint_id)
        if isinstance(event, WebhookEndpoint.Updated):
            changes = dict(event.changes)
            if "event_types" in changes:
                changes["event_types"] = json.dumps(changes["event_types"])
                if subscriber is not None:
                    subscriber.event_types = list(event.changes["event_types"])
            assignments = ", ".join(f"{name} = ?" for name in changes)
            self._update_endpoint(cursor, endpoint_id, version, changed_at, assignments, tuple(changes.values()))
        elif isinstance(event, WebhookEndpoint.SecretRotated):
            self._update_endpoint(
                cursor, endpoint_id, version, changed_at,
                "secret = ?, previous_secret = ?, previous_secret_expires_at = ?",
                (
                    event.secret_ciphertext, event.previous_secret_ciphertext,
                    to_seconds(event.previous_secret_expires_at),
                ),
            )
        elif isinstance(event, (WebhookEndpoint.Disabled, WebhookEndpoint.Deleted)):
            status = "disabled" if isinstance(event, WebhookEndpoint.Disabled) else "deleted"
            reason = getattr(event, "reason", None)
            self._update_endpoint(
                cursor, endpoint_id, version, changed_at, "status = ?, disabled_reason = ?", (status, reason)
            )
            if subscriber is not None:
                subscriber.status = status
            cancelled = cancel_queued(cursor, endpoint_id, position, f"endpoint {status}")
            logger.info(
                "Webhook endpoint %s %s at position %d; cancelled %d queued messages",
                endpoint_id, status, position, cancelled,
            )
        elif isinstance(event, WebhookEndpoint.Enabled):
            self._update_endpoint(
                cursor, endpoint_id, version, changed_at, "status = 'enabled', disabled_reason = NULL", ()
            )
            if subscriber is not None:
                subscriber.status = "enabled"

    @staticmethod
    def _update_endpoint(
        cursor: Cursor, endpoint_id: str, version: int, changed_at: float, assignments: str,
        values: tuple[Any, ...],
    ) -> None:
        cursor.execute(
            f"UPDATE {ENDPOINTS_TABLE} SET {assignments}, version = ?, updated_at = ? WHERE id = ?",
            (*values, version, changed_at, endpoint_id),
        )


def cancel_queued(cursor: Cursor, endpoint_id: str, before_position: int, reason: str) -> int:
    """Cancel an endpoint's pending and in-flight messages queued before ``before_position``."""
    cursor.execute(
        f"UPDATE {MESSAGES_TABLE} SET state = 'cancelled', next_attempt_at = NULL, last_error = ?"
        " WHERE endpoint_id = ? AND state IN ('pending', 'delivering') AND created_position < ?",
        (reason, endpoint_id, before_position),
    )
    return cursor.rowcount


# Delivery: claims and attempts.


@dataclass(frozen=True)
class Claim:
    """A message leased to one worker for one attempt, with what the attempt needs."""

    message_id: str
    endpoint_id: str
    position: int | None
    event_type: str
    body: bytes
    attempt_number: int
    retry_step: int
    lease_token: str
    url: str
    secret_ciphertexts: tuple[str, ...]


@dataclass(frozen=True)
class AttemptRecord:
    """The result of one attempt, as stored in ``webhook_attempts``."""

    attempted_at: float
    webhook_timestamp: int | None
    status: int | None
    latency_ms: float | None
    response_body: str
    error: str | None
    outcome: str
    worker: str


@dataclass(frozen=True)
class Decision:
    """The message's state after an attempt."""

    state: str
    retry_step: int
    next_attempt_at: float | None


# A late result replaces the "abandoned" row that another worker wrote when
# the attempt's lease ran out.
_UPSERT_ATTEMPT = (
    f"INSERT INTO {ATTEMPTS_TABLE} (message_id, attempt_number, endpoint_id, attempted_at,"
    " webhook_timestamp, status, latency_ms, response_body, error, outcome, worker)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    " ON CONFLICT (message_id, attempt_number) DO UPDATE SET"
    " attempted_at = excluded.attempted_at, webhook_timestamp = excluded.webhook_timestamp,"
    " status = excluded.status, latency_ms = excluded.latency_ms,"
    " response_body = excluded.response_body, error = excluded.error,"
    " outcome = excluded.outcome, worker = excluded.worker"
    f" WHERE {ATTEMPTS_TABLE}.outcome = 'abandoned' AND excluded.outcome <> 'abandoned'"
)


def _attempt_row(claim: Claim, attempt: AttemptRecord) -> tuple[Any, ...]:
    return (
        claim.message_id, claim.attempt_number, claim.endpoint_id, attempt.attempted_at,
        attempt.webhook_timestamp, attempt.status, attempt.latency_ms, attempt.response_body,
        attempt.error, attempt.outcome, attempt.worker,
    )


_CLAIM_COLUMNS = (
    "m.id, m.endpoint_id, m.position, m.event_type, m.body, m.attempts, m.retry_step, m.lease_token,"
    " e.url, e.secret, e.previous_secret, e.previous_secret_expires_at"
)


class Outbox:
    """SQL over the webhook tables, shared by the delivery workers and the API."""

    def __init__(self, app: Any, db: Database) -> None:
        self.app = app
        self.db = db

    def setup(self) -> None:
        with self.db.transaction() as cursor:
            create_tables(cursor)

    def claim(self, now: float, limit: int, lease_seconds: float) -> list[Claim]:
        """Lease up to ``limit`` due messages of enabled endpoints to the caller.

        On PostgreSQL the rows are locked with ``FOR UPDATE SKIP LOCKED``, so
        concurrent workers take different messages; on SQLite the write
        transaction holds the database lock. Each claim counts as an attempt.
        """
        lock = " FOR UPDATE OF m SKIP LOCKED" if self.db.dialect == "postgresql" else ""
        token = uuid.uuid4().hex
        with self.db.transaction() as cursor:
            cursor.execute(
                f"SELECT m.id FROM {MESSAGES_TABLE} m JOIN {ENDPOINTS_TABLE} e ON e.id = m.endpoint_id"
                " WHERE m.state = 'pending' AND m.next_attempt_at <= ? AND e.status = 'enabled'"
                f" ORDER BY m.next_attempt_at LIMIT ?{lock}",
                (now, limit),
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return []
            placeholders = ", ".join("?" for _ in ids)
            cursor.execute(
                f"UPDATE {MESSAGES_TABLE} SET state = 'delivering', attempts = attempts + 1,"
                f" lease_until = ?, lease_token = ? WHERE id IN ({placeholders})",
                (now + lease_seconds, token, *ids),
            )
            return self._read_claims(cursor, ids, now)

    def expired_leases(self, now: float, limit: int) -> list[Claim]:
        """Return in-flight messages whose lease ran out: their worker stopped or hung.

        Nothing is locked here: ``complete`` applies only while the lease
        token is unchanged, so two workers recovering the same lease record it once.
        """
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(
                f"SELECT m.id FROM {MESSAGES_TABLE} m JOIN {ENDPOINTS_TABLE} e ON e.id = m.endpoint_id"
                " WHERE m.state = 'delivering' AND m.lease_until <= ? ORDER BY m.lease_until LIMIT ?",
                (now, limit),
            )
            ids = [row[0] for row in cursor.fetchall()]
            if not ids:
                return []
            return self._read_claims(cursor, ids, now)

    def _read_claims(self, cursor: Cursor, ids: Sequence[str], now: float) -> list[Claim]:
        placeholders = ", ".join("?" for _ in ids)
        cursor.execute(
            f"SELECT {_CLAIM_COLUMNS} FROM {MESSAGES_TABLE} m JOIN {ENDPOINTS_TABLE} e ON e.id = m.endpoint_id"
            f" WHERE m.id IN ({placeholders}) ORDER BY m.next_attempt_at, m.id",
            tuple(ids),
        )
        claims = []
        for row in cursor.fetchall():
            (message_id, endpoint_id, position, type_name, body, attempts, retry_step, token,
             url, secret, previous_secret, previous_expires_at) = row
            secrets = [secret]
            if previous_secret and previous_expires_at is not None and now < previous_expires_at:
                secrets.append(previous_secret)
            claims.append(Claim(
                message_id=message_id, endpoint_id=endpoint_id, position=position, event_type=type_name,
                body=bytes(body), attempt_number=attempts, retry_step=retry_step, lease_token=token,
                url=url, secret_ciphertexts=tuple(secrets),
            ))
        return claims

    def complete(
        self, outcomes: Sequence[tuple[Claim, AttemptRecord, Decision]]
    ) -> dict[str, float | None]:
        """Record attempts and move their messages to the decided states, in one transaction.

        A success always marks the message delivered. Any other decision
        applies only while the caller still holds the lease, so a worker that
        overran its lease cannot overwrite a newer attempt's schedule. Returns,
        per endpoint with a known outcome, when its current run of failures
        began (None after a success).
        """
        delivered = [(claim, attempt) for claim, attempt, decision in outcomes if decision.state == DELIVERED]
        others = [item for item in outcomes if item[2].state != DELIVERED]
        recorded: list[tuple[Claim, AttemptRecord]] = list(delivered)
        with self.db.transaction() as cursor:
            # executemany runs in one round trip per batch on PostgreSQL (psycopg pipelines it).
            cursor.executemany(
                f"UPDATE {MESSAGES_TABLE} SET state = 'delivered', next_attempt_at = NULL,"
                " lease_until = NULL, lease_token = NULL, last_status = ?, last_error = NULL,"
                " finished_at = ? WHERE id = ?",
                [(attempt.status, attempt.attempted_at, claim.message_id) for claim, attempt in delivered],
            )
            for claim, attempt, decision in others:
                if self._apply_decision(cursor, claim, attempt, decision):
                    recorded.append((claim, attempt))
            cursor.executemany(_UPSERT_ATTEMPT, [_attempt_row(claim, attempt) for claim, attempt in recorded])
            # An abandoned attempt may or may not have reached the receiver, so
            # it leaves the endpoint's health as it was.
            recorded_ids = {claim.message_id for claim, _ in recorded}
            known = [
                (claim.endpoint_id, attempt) for claim, attempt, _ in outcomes
                if claim.message_id in recorded_ids and attempt.outcome != ABANDONED
            ]
            return self._update_health(cursor, known)

    @staticmethod
    def _apply_decision(cursor: Cursor, claim: Claim, attempt: AttemptRecord, decision: Decision) -> bool:
        finished_at = attempt.attempted_at if decision.state in (FAILED, CANCELLED) else None
        cursor.execute(
            f"UPDATE {MESSAGES_TABLE} SET state = ?, retry_step = ?, next_attempt_at = ?,"
            " lease_until = NULL, lease_token = NULL, last_status = ?, last_error = ?, finished_at = ?"
            " WHERE id = ? AND lease_token = ? AND state = 'delivering'",
            (
                decision.state, decision.retry_step, decision.next_attempt_at, attempt.status,
                attempt.error, finished_at, claim.message_id, claim.lease_token,
            ),
        )
        # A real attempt is recorded even when the message has moved on, because
        # it was cancelled or taken over after the lease ran out. A lease
        # recovery is recorded once, by the worker whose update matched.
        return cursor.rowcount > 0 or attempt.outcome != ABANDONED

    @staticmethod
    def _update_health(cursor: Cursor, attempts: list[tuple[str, AttemptRecord]]) -> dict[str, float | None]:
        """Update each endpoint's failure run from a batch of attempts, in batch order.

        An endpoint's run of failures starts at its first failed attempt after
        its last success. Returns that start per endpoint, or None when the
        endpoint's last attempt in the batch succeeded.
        """
        by_endpoint: dict[str, list[AttemptRecord]] = {}
        for endpoint_id, attempt in attempts:
            by_endpoint.setdefault(endpoint_id, []).append(attempt)
        failing_since: dict[str, float | None] = {}
        for endpoint_id, records in by_endpoint.items():
            successes = [index for index, record in enumerate(records) if record.outcome == "success"]
            if successes:
                last = successes[-1]
                failures_after = records[last + 1:]
                started = failures_after[0].attempted_at if failures_after else None
                cursor.execute(
                    f"INSERT INTO {HEALTH_TABLE} (endpoint_id, failing_since, last_success_at) VALUES (?, ?, ?)"
                    " ON CONFLICT (endpoint_id) DO UPDATE SET failing_since = excluded.failing_since,"
                    " last_success_at = excluded.last_success_at",
                    (endpoint_id, started, records[last].attempted_at),
                )
                failing_since[endpoint_id] = started
                continue
            cursor.execute(
                f"INSERT INTO {HEALTH_TABLE} (endpoint_id, failing_since, last_success_at) VALUES (?, ?, NULL)"
                f" ON CONFLICT (endpoint_id) DO UPDATE SET"
                f" failing_since = COALESCE({HEALTH_TABLE}.failing_since, excluded.failing_since)",
                (endpoint_id, records[0].attempted_at),
            )
            cursor.execute(f"SELECT failing_since FROM {HEALTH_TABLE} WHERE endpoint_id = ?", (endpoint_id,))
            row = cursor.fetchone()
            failing_since[endpoint_id] = None if row is None else row[0]
        return failing_since

    def next_due(self) -> float | None:
        """Return when the earliest pending message of an enabled endpoint is due, or None."""
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(
                f"SELECT MIN(m.next_attempt_at) FROM {MESSAGES_TABLE} m"
                f" JOIN {ENDPOINTS_TABLE} e ON e.id = m.endpoint_id"
                " WHERE m.state = 'pending' AND e.status = 'enabled'"
            )
            row = cursor.fetchone()
        return None if row is None else row[0]

    # Reading for the API and the CLI.

    def endpoint_rows(self, include_deleted: bool = False) -> list[dict[str, Any]]:
        """Return the endpoints as the dispatch view last saw them, without secrets."""
        where = "" if include_deleted else " WHERE status <> 'deleted'"
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(
                "SELECT id, version, url, event_types, description, status, disabled_reason,"
                f" previous_secret_expires_at, created_at, updated_at FROM {ENDPOINTS_TABLE}{where}"
                " ORDER BY created_position"
            )
            rows = cursor.fetchall()
        return [
            {
                "id": row[0], "version": row[1], "url": row[2], "event_types": json.loads(row[3]),
                "description": row[4], "status": row[5], "disabled_reason": row[6],
                "previous_secret_expires_at": from_seconds(row[7]),
                "created_at": from_seconds(row[8]), "updated_at": from_seconds(row[9]),
            }
            for row in rows
        ]

    def deliveries(
        self, endpoint_id: str, *, limit: int = 50, offset: int = 0, state: str | None = None
    ) -> list[dict[str, Any]]:
        """Return an endpoint's messages, newest first, each with its attempts in order."""
        where = "endpoint_id = ?"
        params: list[Any] = [endpoint_id]
        if state is not None:
            where += " AND state = ?"
            params.append(state)
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(
                "SELECT id, position, event_type, state, attempts, created_at, next_attempt_at,"
                f" last_status, last_error, finished_at FROM {MESSAGES_TABLE} WHERE {where}"
                " ORDER BY created_at DESC, COALESCE(position, -1) DESC, id DESC LIMIT ? OFFSET ?",
                (*params, limit, offset),
            )
            messages = [
                {
                    "id": row[0], "position": row[1], "event_type": row[2], "state": row[3],
                    "attempt_count": row[4], "created_at": from_seconds(row[5]),
                    "next_attempt_at": from_seconds(row[6]) if row[3] == PENDING else None,
                    "last_status": row[7], "last_error": row[8], "finished_at": from_seconds(row[9]),
                    "attempts": [],
                }
                for row in cursor.fetchall()
            ]
            if not messages:
                return []
            by_id = {message["id"]: message for message in messages}
            placeholders = ", ".join("?" for _ in by_id)
            cursor.execute(
                "SELECT message_id, attempt_number, attempted_at, webhook_timestamp, status, latency_ms,"
                f" response_body, error, outcome FROM {ATTEMPTS_TABLE} WHERE message_id IN ({placeholders})"
                " ORDER BY message_id, attempt_number",
                tuple(by_id),
            )
            for row in cursor.fetchall():
                by_id[row[0]]["attempts"].append({
                    "number": row[1], "attempted_at": from_seconds(row[2]), "webhook_timestamp": row[3],
                    "status": row[4], "latency_ms": row[5], "response_body": row[6], "error": row[7],
                    "outcome": row[8],
                })
        return messages

    def message_body(self, message_id: str) -> bytes | None:
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(f"SELECT body FROM {MESSAGES_TABLE} WHERE id = ?", (message_id,))
            row = cursor.fetchone()
        return None if row is None else bytes(row[0])

    def health(self, endpoint_id: str) -> dict[str, datetime | None]:
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(
                f"SELECT failing_since, last_success_at FROM {HEALTH_TABLE} WHERE endpoint_id = ?", (endpoint_id,)
            )
            row = cursor.fetchone()
        if row is None:
            return {"failing_since": None, "last_success_at": None}
        return {"failing_since": from_seconds(row[0]), "last_success_at": from_seconds(row[1])}

    # Queueing outside the stream: replays and test messages.

    def replay(
        self, endpoint_id: str, patterns: Iterable[str], since: datetime, until: datetime, now: float
    ) -> dict[str, int]:
        """Queue again every event recorded in ``[since, until]`` that ``patterns`` select.

        An event that already has a message for this endpoint keeps its
        message id, so receivers can still drop duplicates: a finished message
        (delivered, failed or cancelled) goes back to pending with a fresh
        retry schedule, and a pending one is left alone. Other events get a
        new message. Events about the endpoint itself are skipped, as in the
        live dispatch. Returns the counts of ``queued`` (new) and
        ``requeued`` messages and of ``unchanged`` ones still in flight.
        """
        patterns = list(patterns)
        with self.db.transaction(readonly=True) as cursor:
            cursor.execute(
                f"SELECT position, event_type FROM {EVENT_LOG_TABLE}"
                " WHERE recorded_at >= ? AND recorded_at <= ? ORDER BY position",
                (to_seconds(since), to_seconds(until)),
            )
            selected = [position for position, type_name in cursor.fetchall() if matches(patterns, type_name)]
        if len(selected) > MAX_REPLAY_EVENTS:
            msg = (
                f"the window selects {len(selected)} events; the maximum per replay is {MAX_REPLAY_EVENTS}. "
                "Narrow since and until"
            )
            raise ReplayTooLargeError(msg)

        counts = {"queued": 0, "requeued": 0, "unchanged": 0}
        for chunk_start in range(0, len(selected), 500):
            chunk = selected[chunk_start:chunk_start + 500]
            events = self._load_events(chunk)
            with self.db.transaction() as cursor:
                created_position = self._dispatch_position(cursor)
                for position in chunk:
                    event = events[position]
                    if str(event.originator_id) == endpoint_id:
                        continue
                    outcome = self._replay_one(cursor, endpoint_id, position, event, now, created_position)
                    counts[outcome] += 1
        logger.info(
            "Webhook endpoint %s replay of %s to %s: %d queued, %d requeued, %d in flight",
            endpoint_id, since.isoformat(), until.isoformat(), counts["queued"], counts["requeued"],
            counts["unchanged"],
        )
        return counts

    def _replay_one(
        self, cursor: Cursor, endpoint_id: str, position: int, event: Any, now: float, created_position: int
    ) -> str:
        message_id = message_id_for(endpoint_id, position)
        cursor.execute(
            f"UPDATE {MESSAGES_TABLE} SET state = 'pending', retry_step = 0, next_attempt_at = ?,"
            " created_position = ?, last_error = NULL, finished_at = NULL"
            " WHERE id = ? AND state IN ('delivered', 'failed', 'cancelled')",
            (now, created_position, message_id),
        )
        if cursor.rowcount:
            return "requeued"
        cursor.execute(
            _INSERT_MESSAGE,
            (message_id, endpoint_id, position, event_type(event), message_body(event, position), now,
             created_position, now),
        )
        return "queued" if cursor.rowcount else "unchanged"

    def _load_events(self, positions: Sequence[int]) -> dict[int, Any]:
        wanted = set(positions)
        found: dict[int, Any] = {}
        start = positions[0]
        stop = positions[-1]
        while start <= stop:
            notifications = self.app.recorder.select_notifications(start=start, limit=500, stop=stop)
            if not notifications:
                break
            for notification in notifications:
                if notification.id in wanted:
                    found[notification.id] = self.app.mapper.to_domain_event(notification)
            start = notifications[-1].id + 1
        return found

    def dispatch_position(self) -> int:
        """Return the last event position the dispatch view has applied."""
        with self.db.transaction(readonly=True) as cursor:
            return self._dispatch_position(cursor)

    @staticmethod
    def _dispatch_position(cursor: Cursor) -> int:
        cursor.execute(f"SELECT position FROM {POSITIONS_TABLE} WHERE name = ?", (DISPATCH_VIEW_NAME,))
        row = cursor.fetchone()
        return 0 if row is None else int(row[0])

    def queue_test(self, endpoint_id: str, now: float) -> str:
        """Queue a test message (type ``endpoint.test``) for one endpoint and return its id."""
        message_id = new_message_id()
        created = from_seconds(now)
        assert created is not None
        body = encode_payload({
            "type": TEST_EVENT_TYPE,
            "timestamp": created.isoformat(),
            "data": {"endpoint_id": endpoint_id, "message": "Test message from the service hub."},
        })
        with self.db.transaction() as cursor:
            created_position = self._dispatch_position(cursor)
            cursor.execute(
                _INSERT_MESSAGE,
                (message_id, endpoint_id, None, TEST_EVENT_TYPE, body, now, created_position, now),
            )
        logger.info("Webhook endpoint %s: queued test message %s", endpoint_id, message_id)
        return message_id


class ReplayTooLargeError(ValueError):
    """A replay window selects more events than one request may queue."""
