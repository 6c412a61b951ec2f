"""The base of the hub's aggregates and events: who acted, when, and from where.

Every event carries three facts beside the library's recording timestamp:

- ``occurred_at``: when the change happened at its source (timezone-aware; an
  import may set it in the past),
- ``actor``: ``{"kind": "agent" | "requester" | "system" | "integration", "id": ...}``,
- ``source``: ``{"name": channel or connector, "external_id": ..., "external_event_id": ...}``.

An auditor can therefore tell who made every change, when and from where.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

from eventsourcing.domain import Aggregate

from hub.domain.errors import InvalidValueError

ACTOR_KINDS = ("agent", "requester", "system", "integration")

# Namespace for ids derived from external records, so that importing or syncing
# the same record twice addresses the same aggregate.
EXTERNAL_ID_NAMESPACE = uuid.UUID("5d1f3c3e-7a0b-4a39-9a43-5b2f0c6f9e11")


def external_uuid(kind: str, source: str, external_id: str) -> uuid.UUID:
    """Derive the id of an aggregate of `kind` created from `external_id` in `source`."""
    return uuid.uuid5(EXTERNAL_ID_NAMESPACE, f"{kind}:{source}:{external_id}")


# Clocks of connected tools drift, so a change may claim to have happened a
# little after the hub's "now". A day covers that without admitting typos.
# Writers that take times from outside (the HTTP API) call check_not_in_future,
# but scheduled jobs that run on clocks of their own do not.
MAX_FUTURE_SKEW = timedelta(days=1)
EARLIEST_OCCURRED_AT = datetime(1970, 1, 1, tzinfo=timezone.utc)


def utc_now() -> datetime:
    return datetime.now(tz=timezone.utc)


def require_aware(name: str, value: datetime) -> datetime:
    """Reject naive datetimes, because a wall-clock time without an offset is ambiguous."""
    if not isinstance(value, datetime):
        msg = f"{name} must be a datetime, got {type(value).__name__}"
        raise InvalidValueError(name, msg)
    if value.tzinfo is None or value.utcoffset() is None:
        msg = (
            f"{name} must be timezone-aware, got the naive value {value.isoformat()}; "
            "add an offset such as +00:00"
        )
        raise InvalidValueError(name, msg)
    return value


@dataclass(frozen=True)
class Context:
    """The actor, the source and the source time of one command."""

    actor_kind: str = "system"
    actor_id: str = "hub"
    source_name: str = "api"
    occurred_at: datetime | None = None
    external_id: str | None = None
    external_event_id: str | None = None
    # The authenticated caller that recorded the change (an API token's name),
    # kept beside the actor because a caller may record on behalf of someone else.
    recorded_by: str | None = None

    def __post_init__(self) -> None:
        if self.actor_kind not in ACTOR_KINDS:
            msg = (
                f"actor kind {self.actor_kind!r} is invalid; "
                f"use one of {', '.join(ACTOR_KINDS)}"
            )
            raise InvalidValueError("actor.kind", msg)
        if not self.actor_id:
            raise InvalidValueError("actor.id", "actor id must not be empty")
        if self.occurred_at is not None:
            require_aware("occurred_at", self.occurred_at)
            if self.occurred_at < EARLIEST_OCCURRED_AT:
                msg = f"occurred_at {self.occurred_at.isoformat()} is before 1970; send the time the change happened"
                raise InvalidValueError("occurred_at", msg)

    def check_not_in_future(self, now: datetime | None = None) -> None:
        """Reject an ``occurred_at`` more than a day after ``now``: a typo or a broken clock."""
        if self.occurred_at is not None and self.occurred_at > (now or utc_now()) + MAX_FUTURE_SKEW:
            msg = (
                f"occurred_at {self.occurred_at.isoformat()} lies in the future; "
                "send the time the change happened at its source"
            )
            raise InvalidValueError("occurred_at", msg)

    def event_fields(self) -> dict[str, Any]:
        """Return the keyword arguments every event takes."""
        source = {
            "name": self.source_name,
            "external_id": self.external_id,
            "external_event_id": self.external_event_id,
        }
        if self.recorded_by:
            source["recorded_by"] = self.recorded_by
        return {
            "occurred_at": self.occurred_at or utc_now(),
            "actor": {"kind": self.actor_kind, "id": self.actor_id},
            "source": source,
        }


def note_metadata(aggregate: Any, event: Any) -> None:
    """Keep what every aggregate tracks for idempotency and auditing."""
    if "external_event_ids" not in aggregate.__dict__:
        aggregate.external_event_ids = {}
        aggregate.updated_at = None
        aggregate.created_at = event.occurred_at
    external_event_id = event.source.get("external_event_id")
    if external_event_id:
        aggregate.external_event_ids[external_event_id] = event.originator_version
    if aggregate.updated_at is None or event.occurred_at > aggregate.updated_at:
        aggregate.updated_at = event.occurred_at


class ServiceAggregate(Aggregate):
    """Base class of the hub's aggregates.

    Every instance has ``external_event_ids`` (external event id to version),
    ``created_at`` and ``updated_at`` (the latest ``occurred_at``).
    """

    class Event(Aggregate.Event):
        occurred_at: datetime
        actor: dict[str, Any]
        source: dict[str, Any]

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            note_metadata(aggregate, self)
            return aggregate

    class Created(Aggregate.Created):
        occurred_at: datetime
        actor: dict[str, Any]
        source: dict[str, Any]

        def mutate(self, aggregate: Any) -> Any:
            aggregate = super().mutate(aggregate)
            note_metadata(aggregate, self)
            return aggregate

    def has_recorded(self, external_event_id: str | None) -> bool:
        """Tell whether an event with this external event id is already on the stream."""
        return bool(external_event_id) and external_event_id in self.external_event_ids

    def _record(self, event_class: type, ctx: Context, **fields: Any) -> None:
        self.trigger_event(event_class, **ctx.event_fields(), **fields)
