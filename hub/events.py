"""Names and plain payloads of domain events, shared by the API, audit replay and webhooks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any
from uuid import UUID

from hub.domain import ClientAccount, Improvement, KnowledgeArticle, Problem, Report, SlaPolicy, Ticket
from webhooks.endpoint import WebhookEndpoint

# Fields every event has; the rest are the event's own payload.
ENVELOPE_FIELDS = (
    "originator_id", "originator_version", "timestamp", "originator_topic",
    "occurred_at", "actor", "source",
)

AGGREGATE_KINDS: dict[type, str] = {
    Ticket: "ticket",
    ClientAccount: "client_account",
    SlaPolicy: "sla_policy",
    Problem: "problem",
    Improvement: "improvement",
    KnowledgeArticle: "knowledge_article",
    Report: "report",
    WebhookEndpoint: "endpoint",
}

# Event types that subscribers know under a name of their own.
SPECIAL_TYPES = {
    "ticket.sla_at_risk": "sla.at_risk",
    "ticket.sla_breached": "sla.breached",
}

_CAMEL_BOUNDARY = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def snake_case(name: str) -> str:
    return _CAMEL_BOUNDARY.sub("_", name).lower()


def aggregate_kind(event: Any) -> str:
    qualname = type(event).__qualname__
    owner_name = qualname.split(".")[0]
    for aggregate_class, kind in AGGREGATE_KINDS.items():
        if aggregate_class.__name__ == owner_name:
            return kind
    return snake_case(owner_name)


def event_type(event: Any) -> str:
    """Return the public name of an event, such as ``ticket.escalated``."""
    name = f"{aggregate_kind(event)}.{snake_case(type(event).__name__)}"
    return SPECIAL_TYPES.get(name, name)


def to_plain(value: Any) -> Any:
    """Convert a value to JSON-compatible primitives (ISO 8601 datetimes, string UUIDs)."""
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(key): to_plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_plain(item) for item in value]
    return value


def event_data(event: Any) -> dict[str, Any]:
    """Return an event's own fields, without the envelope, as plain values."""
    return {
        name: to_plain(value)
        for name, value in event.__dict__.items()
        if name not in ENVELOPE_FIELDS
    }


def describe_event(event: Any, position: int | None) -> dict[str, Any]:
    """Return one history entry: what happened, who did it, when, from where, and where it sits."""
    return {
        "aggregate_id": str(event.originator_id),
        "aggregate_kind": aggregate_kind(event),
        "version": event.originator_version,
        "type": event_type(event),
        "occurred_at": event.occurred_at.isoformat(),
        "recorded_at": event.timestamp.isoformat(),
        "actor": dict(event.actor),
        "source": dict(event.source),
        "position": position,
        "data": event_data(event),
    }
