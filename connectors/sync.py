"""The sync engine: pull a tool's changes page by page, then push the hub's back.

One sync of a connection runs under a cross-process lock (`connectors.locks`),
so the same connection never syncs twice at once. It records `SyncStarted`, then:

1. Pull. The vendor adapter reads the changes since the stored cursor. Each
   page's ticket, account and policy events are saved in one transaction
   together with `PageCommitted` and the cursor after the page, so a crash
   never leaves a cursor ahead of its events or events without their cursor.
   Running a page again records nothing twice (see `connectors.inbound`).
2. Push. The engine reads the global event stream after the connection's
   outbound position and sends each public reply, and the latest status,
   priority and assignment, of tickets that came from this tool. Events whose
   `source.name` is the connection's own are the tool's changes and are never
   sent back. A reply is recorded as `ChangePushed` right after it is sent,
   with the tool's id for it on the ticket, so it is neither sent twice nor
   read back as a new reply.
3. `SyncCompleted` with the counts, or `SyncFailed` with the error.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID, uuid4

import requests
from eventsourcing.persistence import IntegrityError
from eventsourcing.utils import get_topic

from connectors.adapters import Adapter, Batch, UnmappedValueError, build_adapter
from connectors.connection import Connection, decrypt_credentials, get_connection
from connectors.http import Clock, ConnectorAuthError, ConnectorError, FatalAPIError, RetriableAPIError, RetryPolicy
from connectors.inbound import InboundSettings, PageWriter, event_field_values
from connectors.locks import exclusive
from hub.domain import Context, Ticket
from hub.settings import ConfigurationError, Settings
from webhooks.guard import CONNECTORS, UnsafeURLError, guarded_session

logger = logging.getLogger(__name__)

# How often a page or a push record is rebuilt on fresh state after another
# writer changed one of its aggregates in the meantime.
SAVE_ATTEMPTS = 5

# Events read from the global stream per query during the push.
PUSH_READ_LIMIT = 500

# A connection's stream grows with every sync; a snapshot this often bounds replays.
SNAPSHOT_INTERVAL = 50

REPLY_EVENTS = (Ticket.AgentReplied, Ticket.ClarificationRequested)
FIELD_EVENTS = (
    Ticket.StatusChanged, Ticket.Resolved, Ticket.Closed, Ticket.Reopened, Ticket.ResolutionRejected,
    Ticket.Prioritized, Ticket.Assigned, Ticket.Reassigned,
)
PUSHED_FIELDS = ("status", "priority", "assignment")



class ConcurrentSyncWriteError(Exception):
    """Other writers changed the aggregates of a page every time it was saved."""


# Failures that end a sync with SyncFailed and a message for the operator.
EXPECTED_ERRORS = (ConnectorError, ConfigurationError, UnsafeURLError, ValueError, ConcurrentSyncWriteError)


class SyncBusyError(Exception):
    """Another thread or process is syncing this connection right now."""

    def __init__(self, connection_id: UUID) -> None:
        self.connection_id = connection_id
        super().__init__(f"connection {connection_id} is already syncing; wait for that sync to finish")


class SyncError(Exception):
    """A sync failed. `result` contains its counts and the error recorded in `SyncFailed`."""

    def __init__(self, result: SyncResult) -> None:
        self.result = result
        super().__init__(result.error or "the sync failed")


@dataclass
class SyncResult:
    """The outcome of one sync: its counts, times and error."""

    connection_id: UUID
    sync_id: str
    trigger: str
    status: str
    started_at: datetime
    finished_at: datetime
    counts: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    error_type: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "connection_id": str(self.connection_id),
            "sync_id": self.sync_id,
            "trigger": self.trigger,
            "status": self.status,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "counts": dict(self.counts),
            "error": self.error,
        }


def connector_session(allow_private: bool) -> requests.Session:
    """Create a session that checks every address it connects to, as a connector's."""
    return guarded_session(allow_private, CONNECTORS)


class SyncEngine:
    """Runs syncs of the connections stored in `app`.

    `clock` and `retry_policy` go to the vendor clients (a test clock makes
    `Retry-After` waits instant). `session_factory(allow_private)` returns the
    HTTP session; by default a session that checks every address it connects to
    and names HUB_CONNECTORS_ALLOW_PRIVATE when it rejects one.
    """

    def __init__(
        self,
        app: Any,
        settings: Settings,
        *,
        clock: Clock | None = None,
        retry_policy: RetryPolicy | None = None,
        session_factory: Callable[[bool], requests.Session] | None = None,
    ) -> None:
        self.app = app
        self.settings = settings
        self.clock = clock
        self.retry_policy = retry_policy
        self.session_factory = session_factory or connector_session

    def sync(self, connection_id: UUID, trigger: str = "manual") -> SyncResult:
        """Run one sync of a connection to its end and return what it did.

        Raises SyncBusyError when the connection is syncing elsewhere, and
        SyncError (with the result) when the sync fails.
        """
        with exclusive(self.app, f"connection-sync:{connection_id}") as acquired:
            if not acquired:
                raise SyncBusyError(connection_id)
            return self._sync_locked(connection_id, trigger)

    def _sync_locked(self, connection_id: UUID, trigger: str) -> SyncResult:
        connection = get_connection(self.app, connection_id)
        ctx = self._context(connection)
        sync_id = uuid4().hex

        def start(current: Connection) -> None:
            if current.current_sync is not None:
                # This process holds the lock, so the sync still marked open
                # belongs to a process that stopped before recording its end.
                current.fail_sync(
                    ctx, current.current_sync["sync_id"],
                    "the sync stopped before it finished; the pages it committed are kept",
                    "Interrupted", {},
                )
            current.start_sync(ctx, sync_id, trigger)

        connection = self._update_connection(connection_id, start)
        first_version = connection.version
        started_at = connection.current_sync["started_at"]
        logger.info(
            "Sync %s of %s connection %s started (trigger %s, cursor %s)",
            sync_id, connection.kind, connection_id, trigger, connection.cursor,
        )

        counts: Counter[str] = Counter()
        session = self.session_factory(self.settings.connectors_allow_private)
        try:
            adapter = build_adapter(
                connection,
                decrypt_credentials(self.settings, connection.credentials_encrypted, connection_id),
                session=session,
                clock=self.clock,
                retry_policy=self.retry_policy,
            )
            self._pull(connection, sync_id, adapter, counts)
            head = self._push(connection_id, sync_id, adapter, counts)
        except EXPECTED_ERRORS as error:
            result = self._fail(connection_id, sync_id, trigger, started_at, counts, error, str(error))
            raise SyncError(result) from error
        except Exception as error:
            message = f"the sync failed with an unexpected {type(error).__name__}; see the log of the process"
            self._fail(connection_id, sync_id, trigger, started_at, counts, error, message, unexpected=True)
            raise
        finally:
            session.close()

        final = dict(counts)
        connection = self._update_connection(
            connection_id, lambda current: current.complete_sync(ctx, sync_id, final, head)
        )
        if first_version // SNAPSHOT_INTERVAL != connection.version // SNAPSHOT_INTERVAL:
            self.app.take_snapshot(connection.id)
        logger.info("Sync %s of connection %s completed: %s", sync_id, connection_id, _format_counts(final))
        assert connection.last_sync is not None
        return SyncResult(
            connection_id, sync_id, trigger, "completed", started_at, connection.last_sync["finished_at"], final
        )

    # Pull.

    def _pull(self, connection: Connection, sync_id: str, adapter: Adapter, counts: Counter[str]) -> None:
        inbound = InboundSettings(
            connection_id=str(connection.id),
            source_name=connection.source_name,
            # Hub changes after this position have not reached the tool yet, so a
            # tool change to the same field during this sync is a conflict.
            outbound_position=connection.outbound_position,
            conflict_policy=dict(connection.options.get("conflict_policy", {})),
        )
        for batch in adapter.pull(dict(connection.cursor)):
            self._commit_batch(connection.id, sync_id, inbound, batch, counts)

    def _commit_batch(
        self, connection_id: UUID, sync_id: str, inbound: InboundSettings, batch: Batch, counts: Counter[str]
    ) -> None:
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            writer = PageWriter(self.app, inbound)
            for account in batch.accounts:
                writer.apply_account(account)
            for organization_id, contact, origin in batch.contacts:
                writer.add_contact(organization_id, contact, origin)
            for policy in batch.policies:
                writer.apply_policy(policy)
            for update in batch.tickets:
                writer.apply_ticket(update)
            for external_id, event in batch.ticket_events:
                writer.apply_ticket_event(external_id, event)

            aggregates = writer.changed_aggregates()
            page_counts = {"records": batch.records, "events": writer.new_event_count(), **writer.counts}
            connection = get_connection(self.app, connection_id)
            if not aggregates and batch.cursor == connection.cursor:
                # Nothing new and no cursor to move: the page leaves no event.
                counts.update(page_counts)
                return
            connection.commit_page(self._context(connection), sync_id, batch.stream, batch.cursor, page_counts)
            try:
                self.app.save_batch([*aggregates, connection])
            except IntegrityError:
                logger.info(
                    "Sync %s of connection %s: a %s page met a concurrent write; applying it again (attempt %d of %d)",
                    sync_id, connection_id, batch.stream, attempt + 1, SAVE_ATTEMPTS,
                )
                continue
            counts.update(page_counts)
            logger.debug(
                "Sync %s of connection %s committed a %s page: %s",
                sync_id, connection_id, batch.stream, _format_counts(page_counts),
            )
            return
        msg = (
            f"a {batch.stream} page of connection {connection_id} met concurrent writes "
            f"{SAVE_ATTEMPTS} times; run the sync again"
        )
        raise ConcurrentSyncWriteError(msg)

    # Push.

    def _push(self, connection_id: UUID, sync_id: str, adapter: Adapter, counts: Counter[str]) -> int:
        """Send the hub's changes on this tool's tickets; return the position read up to."""
        connection = get_connection(self.app, connection_id)
        start = connection.outbound_position
        head = self.app.max_position()
        if head <= start:
            return head
        events = self._read_stream(start, head)

        # Only the last change of each field in the window is sent.
        last_change: dict[tuple[UUID, str], int] = {}
        for position, event in events:
            for field_name in event_field_values(event):
                last_change[(event.originator_id, field_name)] = position

        source = connection.source_name
        tickets: dict[UUID, Ticket | None] = {}
        for position, event in events:
            if event.source.get("name") == source:
                continue
            if event.originator_id not in tickets:
                tickets[event.originator_id] = self._tool_ticket(event.originator_id, source)
            ticket = tickets[event.originator_id]
            if ticket is None:
                continue
            if isinstance(event, REPLY_EVENTS):
                self._push_reply(connection_id, sync_id, adapter, ticket, position, event, counts)
                continue
            values = {
                name: value for name, value in event_field_values(event).items()
                if name in PUSHED_FIELDS and last_change[(event.originator_id, name)] == position
            }
            if values:
                self._push_fields(connection_id, sync_id, adapter, ticket, position, values, counts)
        return head

    def _read_stream(self, start: int, head: int) -> list[tuple[int, Any]]:
        topics = [get_topic(event_class) for event_class in (*REPLY_EVENTS, *FIELD_EVENTS)]
        events: list[tuple[int, Any]] = []
        position = start
        while True:
            notifications = self.app.recorder.select_notifications(
                start=position, limit=PUSH_READ_LIMIT, stop=head, topics=topics, inclusive_of_start=False
            )
            for notification in notifications:
                events.append((notification.id, self.app.mapper.to_domain_event(notification)))
            if len(notifications) < PUSH_READ_LIMIT:
                return events
            position = notifications[-1].id

    def _tool_ticket(self, ticket_id: UUID, source: str) -> Ticket | None:
        ticket: Ticket = self.app.repository.get(ticket_id)
        external = ticket.external or {}
        return ticket if external.get("source") == source else None

    def _push_reply(
        self, connection_id: UUID, sync_id: str, adapter: Adapter, ticket: Ticket,
        position: int, event: Any, counts: Counter[str],
    ) -> None:
        external = ticket.external or {}
        try:
            tool_key = adapter.push_reply(external, event.body)
        except (FatalAPIError, UnmappedValueError, RetriableAPIError) as error:
            if isinstance(error, ConnectorAuthError) or (
                isinstance(error, RetriableAPIError) and not _may_have_been_applied(error)
            ):
                raise
            # A reply the tool may already have posted is not sent again, so that
            # it never appears twice; the rejection tells the operator to check.
            self._record_rejection(connection_id, sync_id, ticket.id, position, "reply", error, counts)
            return

        def record(connection: Connection) -> list[Any]:
            ctx = self._context(connection)
            connection.record_push(ctx, sync_id, position, str(ticket.id), "reply")
            if tool_key is None:
                return [connection]
            # The tool's id for the reply, under the key its copy will be read back with.
            fresh: Ticket = self.app.repository.get(ticket.id)
            if fresh.has_recorded(tool_key):
                return [connection]
            fact_ctx = Context(
                actor_kind="integration", actor_id=f"connection:{connection_id}",
                source_name=connection.source_name, external_id=str(external.get("id")),
                external_event_id=tool_key,
            )
            fresh.record_fact(
                fact_ctx, f"{connection.source_name}_reply",
                {"tool_record": tool_key, "hub_version": event.originator_version},
            )
            return [fresh, connection]

        self._save_push(connection_id, record)
        counts["pushed"] += 1
        logger.info(
            "Sync %s of connection %s sent the reply at position %d of ticket %s (tool record %s)",
            sync_id, connection_id, position, ticket.id, tool_key,
        )

    def _push_fields(
        self, connection_id: UUID, sync_id: str, adapter: Adapter, ticket: Ticket,
        position: int, values: dict[str, Any], counts: Counter[str],
    ) -> None:
        action = "fields:" + ",".join(sorted(values))
        try:
            tool_fields: dict[str, Any] = {}
            for name, value in values.items():
                tool_fields.update(adapter.tool_fields(name, value))
            adapter.push_fields(ticket.external or {}, tool_fields)
        except (FatalAPIError, UnmappedValueError) as error:
            if isinstance(error, ConnectorAuthError):
                raise
            self._record_rejection(connection_id, sync_id, ticket.id, position, action, error, counts)
            return

        def record(connection: Connection) -> list[Any]:
            connection.record_push(self._context(connection), sync_id, position, str(ticket.id), action)
            return [connection]

        self._save_push(connection_id, record)
        counts["pushed"] += 1
        logger.info(
            "Sync %s of connection %s sent %s of ticket %s (position %d)",
            sync_id, connection_id, action, ticket.id, position,
        )

    def _record_rejection(
        self, connection_id: UUID, sync_id: str, ticket_id: UUID, position: int, action: str,
        error: Exception, counts: Counter[str],
    ) -> None:
        logger.warning(
            "Sync %s of connection %s could not send %s of ticket %s (position %d): %s",
            sync_id, connection_id, action, ticket_id, position, error,
        )

        def record(connection: Connection) -> list[Any]:
            connection.reject_push(self._context(connection), sync_id, position, str(ticket_id), action, str(error))
            return [connection]

        self._save_push(connection_id, record)
        counts["push_rejected"] += 1

    def _save_push(self, connection_id: UUID, build: Callable[[Connection], list[Any]]) -> None:
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            aggregates = build(get_connection(self.app, connection_id))
            try:
                self.app.save_batch(aggregates)
                return
            except IntegrityError:
                logger.info(
                    "Recording a push of connection %s met a concurrent write; retrying (attempt %d of %d)",
                    connection_id, attempt + 1, SAVE_ATTEMPTS,
                )
        # NOTE: the change reached the tool but its record did not; the next sync
        # sends it again, which repeats a reply.
        msg = f"recording a push of connection {connection_id} met concurrent writes {SAVE_ATTEMPTS} times"
        raise ConcurrentSyncWriteError(msg)

    # Connection bookkeeping.

    def _fail(
        self, connection_id: UUID, sync_id: str, trigger: str, started_at: datetime,
        counts: Counter[str], error: Exception, message: str, *, unexpected: bool = False,
    ) -> SyncResult:
        error_type = type(error).__name__
        # An unexpected error gets its traceback in the log, because the message hides its details.
        logger.error(
            "Sync %s of connection %s failed (%s): %s", sync_id, connection_id, error_type, message,
            exc_info=error if unexpected else None,
        )
        final = dict(counts)
        connection = self._update_connection(
            connection_id,
            lambda current: current.fail_sync(self._context(current), sync_id, message, error_type, final),
        )
        finished_at = connection.last_sync["finished_at"] if connection.last_sync else started_at
        return SyncResult(
            connection_id, sync_id, trigger, "failed", started_at, finished_at, final, message, error_type
        )

    def _update_connection(self, connection_id: UUID, change: Callable[[Connection], None]) -> Connection:
        """Apply `change` to the latest connection and save it, again if an admin edit raced it."""
        for attempt in range(1, SAVE_ATTEMPTS + 1):
            connection = get_connection(self.app, connection_id)
            change(connection)
            try:
                self.app.save(connection)
                return connection
            except IntegrityError:
                logger.info(
                    "Connection %s changed while a sync recorded its progress; retrying (attempt %d of %d)",
                    connection_id, attempt + 1, SAVE_ATTEMPTS,
                )
        msg = f"connection {connection_id} kept changing while a sync recorded its progress"
        raise ConcurrentSyncWriteError(msg)

    @staticmethod
    def _context(connection: Connection) -> Context:
        return Context(
            actor_kind="integration", actor_id=f"connection:{connection.id}", source_name=connection.source_name
        )


def _may_have_been_applied(error: RetriableAPIError) -> bool:
    """Tell whether a failed request that was not repeated may still have reached the tool.

    The HTTP policy repeats safe requests until they run out of tries
    (RetriesExhaustedError), and a 429 means the tool did not act on the request.
    Any other transient failure of a request that changes something in the tool
    is ambiguous.
    """
    return type(error) is RetriableAPIError and error.status != 429


def _format_counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{name}={value}" for name, value in sorted(counts.items()) if value) or "nothing"
