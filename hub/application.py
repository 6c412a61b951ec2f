"""The hub's application service: use cases over the event store, and audit replay."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.persistence import IntegrityError

from hub.domain import (
    ClientAccount,
    Context,
    Improvement,
    KnowledgeArticle,
    Problem,
    ServiceAggregate,
    SlaPolicy,
    Ticket,
    external_uuid,
)
from hub.domain.base import require_aware
from hub.domain.errors import DomainError
from hub.events import AGGREGATE_KINDS, describe_event
from hub.settings import Settings, ensure_sqlite_folder, load_settings

logger = logging.getLogger(__name__)

TAggregate = TypeVar("TAggregate", bound=ServiceAggregate)

# How many times a command is re-run on fresh state after losing a race with
# another writer, when the caller did not request a specific version. Each
# re-run waits a random pause of up to CONFLICT_BACKOFF_SECONDS times the
# attempt number, which spreads the colliding writers apart.
CONFLICT_RETRIES = 20
CONFLICT_BACKOFF_SECONDS = 0.02


class NotFoundError(DomainError, LookupError):
    """No aggregate of the requested kind has this id."""

    def __init__(self, kind: str, aggregate_id: object, detail: str = "") -> None:
        self.kind = kind
        self.aggregate_id = aggregate_id
        super().__init__(detail or f"{kind} {aggregate_id} not found")


class VersionMismatchError(DomainError):
    """The caller expected another version of the aggregate (a failed If-Match)."""

    def __init__(self, aggregate_id: object, expected: int, actual: int) -> None:
        self.aggregate_id = aggregate_id
        self.expected = expected
        self.actual = actual
        super().__init__(
            f"{aggregate_id} is at version {actual}, not the expected version {expected}; "
            "read it again and retry"
        )


class ConcurrentWriteError(DomainError):
    """Another writer changed the aggregate between our read and our write."""


@dataclass
class Outcome:
    """The result of a command: the aggregate after it, and whether it was a duplicate."""

    aggregate: Any
    duplicate: bool = False
    positions: list[int] = field(default_factory=list)

    @property
    def last_position(self) -> int | None:
        return self.positions[-1] if self.positions else None


class HubApplication(Application[UUID]):
    """Records service interactions as events and rebuilds any past state from them."""

    name = "hub"
    # Tickets can collect thousands of events (long escalations, chatty requesters);
    # a snapshot every 50 versions bounds the events replayed on each load.
    snapshotting_intervals = {Ticket: 50}

    # Creating and updating aggregates.

    def open_ticket(
        self, ctx: Context, *, ticket_id: UUID | None = None, **fields: Any
    ) -> Outcome:
        """Record a new ticket; a ticket from an external record is recorded once only."""
        external = fields.get("external")
        if ticket_id is None and external:
            ticket_id = external_uuid("ticket", external["source"], str(external["id"]))
        ticket_id = ticket_id or uuid4()
        return self._create(
            Ticket, ticket_id, lambda: Ticket.open(ctx, ticket_id=ticket_id, **fields)
        )

    def register_client_account(self, ctx: Context, *, account_id: UUID | None = None, **fields: Any) -> Outcome:
        external = fields.get("external")
        if account_id is None and external:
            account_id = external_uuid("client_account", external["source"], str(external["id"]))
        account_id = account_id or uuid4()
        return self._create(
            ClientAccount, account_id,
            lambda: ClientAccount.register(ctx, account_id=account_id, **fields),
        )

    def define_sla_policy(self, ctx: Context, *, policy_id: UUID | None = None, **terms: Any) -> Outcome:
        policy_id = policy_id or uuid4()
        return self._create(
            SlaPolicy, policy_id, lambda: SlaPolicy.define(ctx, policy_id=policy_id, **terms)
        )

    def define_problem(self, ctx: Context, *, problem_id: UUID | None = None, **fields: Any) -> Outcome:
        problem_id = problem_id or uuid4()
        return self._create(
            Problem, problem_id, lambda: Problem.define(ctx, problem_id=problem_id, **fields)
        )

    def plan_improvement(self, ctx: Context, *, improvement_id: UUID | None = None, **fields: Any) -> Outcome:
        improvement_id = improvement_id or uuid4()
        return self._create(
            Improvement, improvement_id,
            lambda: Improvement.plan(ctx, improvement_id=improvement_id, **fields),
        )

    def publish_article(self, ctx: Context, *, article_id: UUID | None = None, **fields: Any) -> Outcome:
        article_id = article_id or uuid4()
        return self._create(
            KnowledgeArticle, article_id,
            lambda: KnowledgeArticle.publish(ctx, article_id=article_id, **fields),
        )

    def execute(
        self,
        aggregate_class: type[TAggregate],
        aggregate_id: UUID,
        command: str,
        ctx: Context,
        *,
        expected_version: int | None = None,
        **arguments: Any,
    ) -> Outcome:
        """Run one command method on an aggregate and save what it records.

        A command whose external event id is already on the aggregate records
        nothing and comes back as a duplicate. With ``expected_version`` the
        command runs only against that version (VersionMismatchError otherwise);
        without it, a lost race with another writer is retried on fresh state.
        """
        attempts = 1 if expected_version is not None else CONFLICT_RETRIES
        for attempt in range(1, attempts + 1):
            aggregate = self.get(aggregate_class, aggregate_id)
            if ctx.external_event_id and aggregate.has_recorded(ctx.external_event_id):
                return Outcome(aggregate, duplicate=True)
            if expected_version is not None and aggregate.version != expected_version:
                raise VersionMismatchError(aggregate_id, expected_version, aggregate.version)

            getattr(aggregate, command)(ctx, **arguments)
            try:
                recordings = self.save(aggregate)
            except IntegrityError:
                if attempt == attempts:
                    msg = (
                        f"{AGGREGATE_KINDS[aggregate_class]} {aggregate_id} was changed by another "
                        "writer at the same time; read it again and retry"
                    )
                    raise ConcurrentWriteError(msg) from None
                logger.info(
                    "Concurrent write on %s %s, retrying %s (attempt %d of %d)",
                    aggregate_class.__name__, aggregate_id, command, attempt + 1, attempts,
                )
                time.sleep(random.uniform(0, CONFLICT_BACKOFF_SECONDS * attempt))
                continue
            return Outcome(aggregate, positions=[r.notification.id for r in recordings])
        raise AssertionError("unreachable")  # pragma: no cover

    def save_batch(self, aggregates: Iterable[ServiceAggregate]) -> list[int]:
        """Save several aggregates in one transaction: all of their events or none."""
        recordings = self.save(*aggregates)
        return [recording.notification.id for recording in recordings]

    def _create(self, aggregate_class: type, aggregate_id: UUID, build: Callable[[], Any]) -> Outcome:
        # Insert first and let the store's unique (id, version) key detect an
        # existing aggregate: it costs no read on the common path, and it is the
        # only check that holds when two writers create the same id at once.
        aggregate = build()
        try:
            recordings = self.save(aggregate)
        except IntegrityError:
            return Outcome(self.get(aggregate_class, aggregate_id), duplicate=True)
        return Outcome(aggregate, positions=[r.notification.id for r in recordings])

    # Reading and audit replay.

    def get(self, aggregate_class: type[TAggregate], aggregate_id: UUID, version: int | None = None) -> TAggregate:
        kind = AGGREGATE_KINDS[aggregate_class]
        try:
            aggregate = self.repository.get(aggregate_id, version=version)
        except AggregateNotFoundError:
            raise NotFoundError(kind, aggregate_id) from None
        if not isinstance(aggregate, aggregate_class):
            raise NotFoundError(kind, aggregate_id)
        if version is not None and aggregate.version != version:
            detail = f"{kind} {aggregate_id} has no version {version}; its latest is {aggregate.version}"
            raise NotFoundError(kind, aggregate_id, detail)
        return aggregate

    def get_as_of(self, aggregate_class: type[TAggregate], aggregate_id: UUID, as_of: datetime) -> TAggregate:
        """Return the state after the last change that had occurred at ``as_of``.

        "Occurred" is the source's ``occurred_at``, not the recording time, so an
        import of old history replays as it happened.
        """
        require_aware("as_of", as_of)
        kind = AGGREGATE_KINDS[aggregate_class]
        version = None
        for event in self.events.get(aggregate_id):
            if event.occurred_at <= as_of:
                version = event.originator_version
        if version is None:
            if aggregate_id not in self.repository:
                raise NotFoundError(kind, aggregate_id)
            detail = f"{kind} {aggregate_id} did not exist yet at {as_of.isoformat()}"
            raise NotFoundError(kind, aggregate_id, detail)
        return self.get(aggregate_class, aggregate_id, version=version)

    def history(self, aggregate_class: type, aggregate_id: UUID) -> list[dict[str, Any]]:
        """Return every event of an aggregate in order, with actor, source, times and global position."""
        events = list(self.events.get(aggregate_id))
        if not events or AGGREGATE_KINDS.get(aggregate_class) != describe_event(events[0], None)["aggregate_kind"]:
            raise NotFoundError(AGGREGATE_KINDS[aggregate_class], aggregate_id)
        positions = self.positions(aggregate_id)
        return [describe_event(event, positions.get(event.originator_version)) for event in events]

    def positions(self, aggregate_id: UUID) -> dict[int, int]:
        """Map each version of an aggregate to its position in the global event stream."""
        recorder: Any = self.recorder
        table = recorder.events_table_name
        with recorder.datastore.transaction(commit=False) as cursor:
            if self.factory.__class__.__module__.startswith("eventsourcing.postgres"):
                from psycopg.sql import SQL, Identifier

                statement = SQL(
                    "SELECT originator_version, notification_id FROM {schema}.{table} "
                    "WHERE originator_id = %s"
                ).format(schema=Identifier(recorder.datastore.schema), table=Identifier(table))
                cursor.execute(statement, (aggregate_id,))
                rows = cursor.fetchall()
                return {row["originator_version"]: row["notification_id"] for row in rows}
            cursor.execute(
                f"SELECT originator_version, rowid FROM {table} WHERE originator_id = ?",  # noqa: S608
                (aggregate_id.hex,),
            )
            return {row[0]: row[1] for row in cursor.fetchall()}

    def max_position(self) -> int:
        return self.recorder.max_notification_id() or 0


def create_application(settings: Settings | None = None, **env: str) -> HubApplication:
    """Build the application for the configured store; extra keyword settings override."""
    settings = settings or load_settings()
    ensure_sqlite_folder(settings)
    logger.info("Opening the %s event store at %s", settings.store, settings.masked_database_url())
    # The library reads "<APP NAME>_<KEY>" settings from the environment. It
    # would take HUB_CIPHER_KEY, the key for field-level secrets, as a key for
    # encrypting every event, so an explicit empty value keeps it from doing so.
    # HUB_CREATE_TABLE is passed on as parsed, so that settings loaded from a
    # mapping other than os.environ decide it too.
    library_env = {
        "HUB_CIPHER_KEY": "", "CIPHER_KEY": "",
        "HUB_CREATE_TABLE": "y" if settings.create_tables else "n",
        **settings.persistence_env, **env,
    }
    return HubApplication(env=library_env)
