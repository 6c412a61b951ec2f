"""Apply mapped tool changes to the hub's aggregates, with the conflict policy.

A `PageWriter` collects the aggregates that one page of tool records changes, so
that the sync engine saves them together with the connection's new cursor in
one transaction. Reading the same records again changes nothing:

* a ticket is opened once, under `external_uuid("ticket", source, tool id)`;
* a reply, note, rating or fact is recorded once per `Origin.key`, which
  becomes the event's `source.external_event_id`;
* a field value is compared with the ticket's field history before it is applied.

A tool's value for a field (status, priority, assignment, category) is applied
only if the tool changed it since the last sync:

1. A synced change of the field (one that came from the tool, or a hub change
   already pushed to it) that is newer than the tool's value supersedes it.
2. A value equal to the last synced value is no change by the tool. This is
   also how the tool's copy of a change the hub pushed is recognized.
3. A value equal to the hub's current value changes nothing.
4. When the hub changed the field too and that change is not pushed yet (its
   position is after the connection's outbound position), both sides changed
   it: a `SyncConflictRecorded` event keeps both values, and the connection's
   `conflict_policy` for the field picks the winner, the tool by default.
5. Otherwise the tool's value is applied.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.application import AggregateNotFoundError

from connectors.changes import (
    AccountUpdate,
    DeferredTicketUpdate,
    FieldChange,
    Origin,
    PolicyUpdate,
    TicketEvent,
    TicketUpdate,
)
from hub.domain import ClientAccount, Context, SlaPolicy, Ticket, external_uuid
from hub.domain.errors import DomainError

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class InboundSettings:
    """Settings of the connection that a writer records changes for."""

    connection_id: str
    source_name: str
    outbound_position: int
    conflict_policy: dict[str, str]

    @property
    def integration_actor(self) -> str:
        return f"connection:{self.connection_id}"


@dataclass(frozen=True)
class FieldEntry:
    """One change of a synced field on a ticket's stream."""

    field: str
    value: Any
    occurred_at: datetime
    from_tool: bool
    # The event's global position; None while it is not saved yet.
    position: int | None


def event_field_values(event: Any) -> dict[str, Any]:
    """Return the synced fields that a ticket event sets, and their values."""
    if isinstance(event, Ticket.Opened):
        return {"status": "new", "priority": None, "assignment": {"group": None, "agent": None}, "category": None}
    if isinstance(event, Ticket.StatusChanged):
        return {"status": event.status}
    if isinstance(event, Ticket.Resolved):
        return {"status": "resolved"}
    if isinstance(event, Ticket.Closed):
        return {"status": "closed"}
    if isinstance(event, (Ticket.Reopened, Ticket.ResolutionRejected)):
        return {"status": "open"}
    if isinstance(event, Ticket.Prioritized):
        return {"priority": event.priority}
    if isinstance(event, (Ticket.Assigned, Ticket.Reassigned)):
        return {"assignment": {"group": event.group, "agent": event.agent}}
    if isinstance(event, Ticket.Classified):
        return {"category": event.category}
    return {}


def current_value(ticket: Ticket, field: str) -> Any:
    if field == "assignment":
        return {"group": ticket.group, "agent": ticket.agent}
    return getattr(ticket, field)


def value_matches(field: str, value: Any, other: Any) -> bool:
    """Tell whether a tool value equals another; a partial assignment compares its keys only."""
    if field == "assignment" and isinstance(value, dict):
        other = other if isinstance(other, dict) else {}
        return all(other.get(key) == item for key, item in value.items())
    return bool(value == other)


def status_steps(current: str, target: str) -> list[tuple[str, dict[str, Any]]]:
    """Return the ticket commands that take a ticket from status `current` to `target`.

    Resolving and closing have their own commands, and a resolved or closed
    ticket is reopened before it can take an open status.
    """
    if target == current:
        return []
    if target == "closed":
        return [("close", {})]
    steps: list[tuple[str, dict[str, Any]]] = []
    if target == "resolved":
        if current == "closed":
            steps.append(("reopen", {}))
        steps.append(("resolve", {}))
        return steps
    if current in ("resolved", "closed"):
        steps.append(("reopen", {}))
        current = "open"
    if target != current:
        steps.append(("change_status", {"status": target}))
    return steps


class PageWriter:
    """Applies one page of tool records to aggregates held in memory until they are saved."""

    def __init__(self, app: Any, settings: InboundSettings) -> None:
        self.app = app
        self.settings = settings
        self.counts: Counter[str] = Counter()
        self._aggregates: dict[UUID, Any] = {}
        self._created: set[UUID] = set()
        self._history: dict[UUID, list[FieldEntry]] = {}

    # Results.

    def changed_aggregates(self) -> list[Any]:
        """Return the aggregates with events to save, in the order they were first touched."""
        return [aggregate for aggregate in self._aggregates.values() if aggregate.pending_events]

    def new_event_count(self) -> int:
        return sum(len(aggregate.pending_events) for aggregate in self._aggregates.values())

    # Tickets.

    def apply_ticket(self, update: TicketUpdate | DeferredTicketUpdate) -> None:
        """Open the ticket if the hub has none, then apply the update's changes in order."""
        source = self.settings.source_name
        ticket_id = external_uuid("ticket", source, update.external_id)
        ticket: Ticket | None = self._load(ticket_id)
        if isinstance(update, DeferredTicketUpdate):
            built = update.build(ticket)
            if built is None:
                # The mapping logged why the record cannot apply.
                self.counts["rejected"] += 1
                return
            update = built
        if ticket is None:
            ticket = self._open(ticket_id, update)
            if ticket is None:
                return
        events_before = len(ticket.pending_events)
        for change in update.changes:
            if isinstance(change, FieldChange):
                self._apply_field(ticket, update.external_id, change)
            else:
                self._apply_event(ticket, update.external_id, change)
        if ticket_id not in self._created and len(ticket.pending_events) > events_before:
            self.counts["tickets_updated"] += 1

    def apply_ticket_event(self, external_id: str, event: TicketEvent) -> None:
        """Record a change on a ticket the hub may already have, such as a rating read on its own."""
        ticket = self._load(external_uuid("ticket", self.settings.source_name, external_id))
        if ticket is None:
            # NOTE: a rating of a ticket changed before the export's start time has no
            # ticket to go on; it is counted, not kept.
            self.counts["no_ticket"] += 1
            logger.debug(
                "Connection %s: %s %s has no ticket %s in the hub; skipped",
                self.settings.connection_id, event.command, event.origin.key, external_id,
            )
            return
        self._apply_event(ticket, external_id, event)

    def _open(self, ticket_id: UUID, update: TicketUpdate) -> Ticket | None:
        opening = update.opening
        external = {
            **opening.external,
            "source": self.settings.source_name,
            "id": update.external_id,
            "connection_id": self.settings.connection_id,
        }
        ctx = self._context(opening.origin, update.external_id)
        try:
            ticket = Ticket.open(
                ctx,
                ticket_id=ticket_id,
                subject=opening.subject[:1000],
                channel=opening.channel,
                requester=opening.requester,
                client_account_id=opening.client_account_id,
                description=opening.description,
                external=external,
            )
        except DomainError as error:
            self._reject("open", update.external_id, opening.origin.key, error)
            return None
        self._aggregates[ticket_id] = ticket
        self._created.add(ticket_id)
        self._history[ticket_id] = []
        self.counts["tickets_created"] += 1
        return ticket

    def _apply_event(self, ticket: Ticket, external_id: str, change: TicketEvent) -> None:
        if ticket.has_recorded(change.origin.key):
            self.counts["duplicates"] += 1
            return
        command: Callable[..., Any] = getattr(ticket, change.command)
        try:
            command(self._context(change.origin, external_id), **change.arguments)
        except DomainError as error:
            self._reject(change.command, external_id, change.origin.key, error)

    def _apply_field(self, ticket: Ticket, external_id: str, change: FieldChange) -> None:
        if ticket.has_recorded(change.origin.key):
            self.counts["duplicates"] += 1
            return
        field = change.field
        entries = [entry for entry in self._field_history(ticket) if entry.field == field]
        outbound = self.settings.outbound_position
        synced = [
            entry for entry in entries
            if entry.from_tool or (entry.position is not None and entry.position <= outbound)
        ]

        # Rules 1 to 3 of the module docstring: superseded, unchanged by the tool, or already so.
        if any(entry.occurred_at > change.origin.occurred_at for entry in synced):
            self.counts["superseded"] += 1
            return
        if synced and value_matches(field, change.value, synced[-1].value):
            self.counts["unchanged"] += 1
            return
        hub_value = current_value(ticket, field)
        if value_matches(field, change.value, hub_value):
            self.counts["unchanged"] += 1
            return

        # Rule 4: the hub changed the field too, and that change has not reached the tool.
        unpushed = [
            entry for entry in entries
            if not entry.from_tool and entry.position is not None and entry.position > outbound
        ]
        if unpushed:
            tool_value = {**hub_value, **change.value} if field == "assignment" else change.value
            winner = self.settings.conflict_policy.get(field, "tool")
            conflict_ctx = self._context(change.origin, external_id, integration=True)
            ticket.record_conflict(conflict_ctx, field, hub_value=hub_value, tool_value=tool_value, winner=winner)
            self.counts["conflicts"] += 1
            logger.info(
                "Connection %s: ticket %s field %s changed in the hub (%r) and in the tool (%r, was %r); %s wins",
                self.settings.connection_id, ticket.id, field, hub_value, tool_value, change.previous, winner,
            )
            if winner == "hub":
                return
        self._set_field(ticket, external_id, change)

    def _set_field(self, ticket: Ticket, external_id: str, change: FieldChange) -> None:
        ctx = self._context(change.origin, external_id)
        field, value, details = change.field, change.value, change.details
        try:
            if field == "status":
                for command, arguments in status_steps(ticket.status, value):
                    if command == "resolve":
                        arguments = {"resolution_code": details.get("resolution_code")}
                    getattr(ticket, command)(ctx, **arguments)
            elif field == "priority":
                if value is None:
                    self._unsupported(ticket, field, change)
                    return
                ticket.prioritize(ctx, value, impact=details.get("impact"), urgency=details.get("urgency"))
            elif field == "assignment":
                merged = {"group": ticket.group, "agent": ticket.agent, **value}
                if not merged["group"] and not merged["agent"]:
                    self._unsupported(ticket, field, change)
                    return
                ticket.assign(
                    ctx, group=merged["group"], agent=merged["agent"], reassignment=details.get("reassignment")
                )
            elif field == "category":
                if not value:
                    self._unsupported(ticket, field, change)
                    return
                ticket.classify(
                    ctx, value, subcategory=details.get("subcategory"), symptom=details.get("symptom")
                )
        except DomainError as error:
            self._reject(f"set {field}", external_id, change.origin.key, error)

    def _field_history(self, ticket: Ticket) -> list[FieldEntry]:
        """Return the ticket's synced-field changes: stored ones first, then those not saved yet."""
        stored = self._history.get(ticket.id)
        if stored is None:
            positions = self.app.positions(ticket.id)
            stored = self._entries(self.app.events.get(ticket.id), positions)
            self._history[ticket.id] = stored
        return stored + self._entries(ticket.pending_events, {})

    def _entries(self, events: Any, positions: dict[int, int]) -> list[FieldEntry]:
        source = self.settings.source_name
        entries = []
        for event in events:
            for field, value in event_field_values(event).items():
                entries.append(FieldEntry(
                    field, value, event.occurred_at, event.source.get("name") == source,
                    positions.get(event.originator_version),
                ))
        return entries

    # Client accounts and SLA policies.

    def apply_account(self, update: AccountUpdate) -> None:
        account_id = external_uuid("client_account", self.settings.source_name, update.external_id)
        account: ClientAccount | None = self._load(account_id)
        ctx = self._context(update.origin, update.external_id)
        if account is None:
            external = {"source": self.settings.source_name, "id": update.external_id}
            account = ClientAccount.register(ctx, account_id=account_id, organization=update.organization, external=external)
            self._aggregates[account_id] = account
            self._created.add(account_id)
            self.counts["accounts_created"] += 1
        elif account.organization != update.organization and not account.has_recorded(update.origin.key):
            account.rename(ctx, update.organization)
            self.counts["accounts_renamed"] += 1

    def add_contact(self, organization_external_id: str, contact: dict[str, Any], origin: Origin) -> None:
        account_id = external_uuid("client_account", self.settings.source_name, organization_external_id)
        account: ClientAccount | None = self._load(account_id)
        if account is None:
            self.counts["no_account"] += 1
            return
        if any(existing.get("id") == contact["id"] for existing in account.contacts):
            self.counts["duplicates"] += 1
            return
        try:
            account.add_contact(self._context(origin, organization_external_id), contact)
        except DomainError as error:
            self._reject("add_contact", organization_external_id, origin.key, error)
            return
        self.counts["contacts_added"] += 1

    def apply_policy(self, update: PolicyUpdate) -> None:
        policy_id = external_uuid("sla_policy", self.settings.source_name, update.external_id)
        policy: SlaPolicy | None = self._load(policy_id)
        ctx = self._context(update.origin, update.external_id)
        try:
            if policy is None:
                policy = SlaPolicy.define(ctx, policy_id=policy_id, **update.terms)
                self._aggregates[policy_id] = policy
                self._created.add(policy_id)
                self.counts["policies_defined"] += 1
            elif policy.name != update.terms["name"] or policy.targets != update.terms["targets"]:
                policy.revise(ctx, name=update.terms["name"], targets=update.terms["targets"])
                self.counts["policies_revised"] += 1
        except DomainError as error:
            self._reject("define SLA policy", update.external_id, update.origin.key, error)

    # Helpers.

    def _load(self, aggregate_id: UUID) -> Any:
        if aggregate_id in self._aggregates:
            return self._aggregates[aggregate_id]
        try:
            aggregate = self.app.repository.get(aggregate_id)
        except AggregateNotFoundError:
            return None
        self._aggregates[aggregate_id] = aggregate
        return aggregate

    def _context(self, origin: Origin, external_id: str, *, integration: bool = False) -> Context:
        # The actor is often the tool's agent, so the connection that wrote the change goes beside it.
        return Context(
            actor_kind="integration" if integration else origin.actor_kind,
            actor_id=self.settings.integration_actor if integration else origin.actor_id,
            source_name=self.settings.source_name,
            occurred_at=origin.occurred_at,
            external_id=external_id,
            external_event_id=origin.key,
            recorded_by=self.settings.integration_actor,
        )

    def _unsupported(self, ticket: Ticket, field: str, change: FieldChange) -> None:
        # The domain has no command that clears a priority, an assignment or a category.
        self.counts["unsupported"] += 1
        logger.debug(
            "Connection %s: ticket %s cannot take %s=%r from %s; kept %r",
            self.settings.connection_id, ticket.id, field, change.value, change.origin.key,
            current_value(ticket, field),
        )

    def _reject(self, action: str, external_id: str, key: str, error: Exception) -> None:
        self.counts["rejected"] += 1
        logger.warning(
            "Connection %s: %s for tool record %s (%s) was rejected by the hub: %s",
            self.settings.connection_id, action, external_id, key, error,
        )
