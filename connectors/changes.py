"""Values that the vendor mapping functions return: tool records as hub changes.

The mapping modules (`mapping_zendesk`, `mapping_freshdesk`) turn vendor JSON
into these values with pure functions. The sync engine applies them to the
hub's aggregates: it opens tickets, sets fields with the conflict policy, and
records messages, ratings and facts once each, keyed by `Origin.key`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class Origin:
    """The author, time and deterministic key of a change in the tool.

    `key` becomes the event's `source.external_event_id`, so the same tool
    change is recorded once however often it is read.
    """

    occurred_at: datetime
    actor_kind: str
    actor_id: str
    key: str


@dataclass(frozen=True)
class TicketOpening:
    """The arguments of `Ticket.open` for a ticket first seen in a tool."""

    subject: str
    channel: str
    requester: dict[str, Any] | None
    client_account_id: str | None
    description: str | None
    origin: Origin
    # Tool ids kept on the ticket's `external` beside source and id, such as a sys_id.
    external: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class FieldChange:
    """A tool's value for a synced ticket field.

    The fields and their values: `status` (a hub status, resolved and closed
    included), `priority` (a hub priority or None), `assignment` (a dict with
    `group`, `agent` or both) and `category`. A key missing from an assignment
    keeps the hub's value.
    `details` holds further arguments of the command that sets the field, such
    as `resolution_code`, `impact` and `urgency`, or `subcategory`. `previous`
    is the tool's value before the change when the tool reports one (an audit),
    else None; it is logged with conflicts.
    """

    field: str
    value: Any
    origin: Origin
    previous: Any = None
    details: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclass(frozen=True)
class TicketEvent:
    """An append-only ticket command (a reply, a note, a rating, a fact) and its arguments."""

    command: str
    arguments: dict[str, Any]
    origin: Origin


TicketChange = FieldChange | TicketEvent

# The fields a FieldChange may set.
SYNCED_FIELDS = ("status", "priority", "assignment", "category")


@dataclass
class TicketUpdate:
    """The changes that one tool record reports about one ticket, oldest first."""

    external_id: str
    opening: TicketOpening
    changes: list[TicketChange] = dataclasses.field(default_factory=list)


@dataclass(frozen=True)
class DeferredTicketUpdate:
    """A tool record whose mapping needs the ticket's current state, as ServiceNow's does.

    `build` receives the ticket (None when the hub has none yet) and returns the update.
    """

    external_id: str
    build: Callable[[Any], TicketUpdate | None]


@dataclass(frozen=True)
class AccountUpdate:
    """A tool's organization as a client account, with the contacts seen for it."""

    external_id: str
    organization: str
    origin: Origin
    contacts: tuple[dict[str, Any], ...] = ()


@dataclass(frozen=True)
class PolicyUpdate:
    """A tool's SLA policy as the terms of `SlaPolicy.define`."""

    external_id: str
    terms: dict[str, Any]
    origin: Origin
