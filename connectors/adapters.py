"""Per-vendor pull and push for the sync engine, over the HTTP clients.

An adapter reads a tool's changes since the connection's cursor and yields them
in `Batch`es, each with the cursor to store once the batch is saved. It also
sends the hub's changes back: public replies and the status, priority and
assignment of tickets that came from the tool. The clients in `connectors.zendesk`,
`connectors.freshdesk` and `connectors.servicenow` carry the shared HTTP policy.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from itertools import islice
from typing import Any

import requests

from connectors import mapping_freshdesk, mapping_zendesk, servicenow_mapping
from connectors.changes import (
    AccountUpdate,
    DeferredTicketUpdate,
    FieldChange,
    Origin,
    PolicyUpdate,
    TicketChange,
    TicketEvent,
    TicketOpening,
    TicketUpdate,
)
from connectors.connection import Connection
from connectors.freshdesk import FreshdeskClient
from connectors.http import Clock, RetryPolicy
from connectors.servicenow import INCIDENT_PATH, ServiceNowClient
from connectors.zendesk import ZendeskClient

logger = logging.getLogger(__name__)

# Organizations and users per committed batch.
DIRECTORY_BATCH_SIZE = 100

# The start of the first Freshdesk sync when options.updated_since is not set.
FRESHDESK_EPOCH = "1970-01-01T00:00:00+00:00"


@dataclass
class Batch:
    """Tool records to apply and save together, and the cursor reached after them."""

    stream: str
    cursor: dict[str, Any]
    records: int = 0
    tickets: list[TicketUpdate | DeferredTicketUpdate] = field(default_factory=list)
    ticket_events: list[tuple[str, TicketEvent]] = field(default_factory=list)
    accounts: list[AccountUpdate] = field(default_factory=list)
    contacts: list[tuple[str, dict[str, Any], Origin]] = field(default_factory=list)
    policies: list[PolicyUpdate] = field(default_factory=list)


class UnmappedValueError(ValueError):
    """A hub value that the tool has no equivalent for; the push of that field is skipped."""


class Adapter:
    """Base class: the connection, its options and the vendor client."""

    client: Any

    def __init__(self, connection: Connection, credentials: dict[str, str], **client_options: Any) -> None:
        self.connection = connection
        self.options = connection.options
        self.source = connection.source_name
        self.include = set(self.options.get("include", []))
        self.client = self.build_client(credentials, connection_id=str(connection.id), connection_name=connection.name, **client_options)

    def build_client(self, credentials: dict[str, str], **client_options: Any) -> Any:
        raise NotImplementedError

    def pull(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        """Yield batches of changes since `cursor`; each carries the whole cursor after it."""
        raise NotImplementedError

    def push_reply(self, external: dict[str, Any], body: str) -> str | None:
        """Send a public reply and return the key of the tool record it created, or None if the response has no id."""
        raise NotImplementedError

    def tool_fields(self, field_name: str, value: Any) -> dict[str, Any]:
        """Return the tool's fields for a hub field value; raise UnmappedValueError if it has none."""
        raise NotImplementedError

    def push_fields(self, external: dict[str, Any], fields: dict[str, Any]) -> None:
        raise NotImplementedError

    # The pattern of the tool's own agent and group ids.
    id_pattern: re.Pattern[str]

    def assignment_fields(
        self, assignment: dict[str, Any], group_field: str, agent_field: str, convert: Any
    ) -> dict[str, Any]:
        """Return the tool's group and agent fields for a hub assignment.

        An empty group or agent is left out rather than sent as null, because the
        hub never clears one and a null would unassign it in the tool.
        """
        fields = {}
        for kind, tool_field in (("group", group_field), ("agent", agent_field)):
            tool_id = self.tool_id(kind, assignment.get(kind), self.id_pattern)
            if tool_id is not None:
                fields[tool_field] = convert(tool_id)
        return fields

    def tool_id(self, kind: str, hub_id: str | None, pattern: re.Pattern[str]) -> str | None:
        """Translate a hub agent or group id to the tool's id: the same id, or one from options."""
        if hub_id is None:
            return None
        mapped = self.options.get(f"{kind}_ids", {}).get(hub_id)
        if mapped is not None:
            return str(mapped)
        if pattern.fullmatch(hub_id):
            return hub_id
        msg = f"{kind} {hub_id!r} has no id in {self.connection.kind}; add it to options.{kind}_ids"
        raise UnmappedValueError(msg)


def chunked(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    iterator = iter(items)
    while chunk := list(islice(iterator, size)):
        yield chunk


# Zendesk and Freshdesk number their agents and groups.
_NUMERIC_ID = re.compile(r"[0-9]+")


# Zendesk.


def newest_copies(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Keep one copy of each ticket on an export page: the one generated last.

    A ticket changed while the export runs can appear twice; the later copy
    contains everything the earlier one does.
    """
    newest: dict[Any, dict[str, Any]] = {}
    for record in records:
        kept = newest.get(record["id"])
        if kept is None or _generation(record) >= _generation(kept):
            newest[record["id"]] = record
    return list(newest.values())


def _generation(record: dict[str, Any]) -> tuple[int, str]:
    return int(record.get("generated_timestamp") or 0), str(record.get("updated_at") or "")


class ZendeskAdapter(Adapter):
    client: ZendeskClient
    id_pattern = _NUMERIC_ID

    def build_client(self, credentials: dict[str, str], **client_options: Any) -> ZendeskClient:
        return ZendeskClient(self.connection.base_url, credentials, **client_options)

    def pull(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        cursor = dict(cursor)
        # NOTE: organizations and users are listed in full on every sync. Large
        # accounts would need Zendesk's incremental user and organization exports.
        if "organizations" in self.include:
            for chunk in chunked(self.client.iter_organizations(), DIRECTORY_BATCH_SIZE):
                accounts = [mapping_zendesk.organization_account(item, source=self.source) for item in chunk]
                yield Batch("organizations", cursor, records=len(chunk), accounts=accounts)
        if "users" in self.include:
            for chunk in chunked(self.client.iter_users(), DIRECTORY_BATCH_SIZE):
                yield Batch("users", cursor, records=len(chunk), contacts=list(self._contacts(chunk)))
        if "sla_policies" in self.include:
            policies = self.client.list_sla_policies()
            mapped = [update for item in policies if (update := mapping_zendesk.sla_policy(item)) is not None]
            yield Batch("sla_policies", cursor, records=len(policies), policies=mapped)

        ticket_cursor = cursor.get("tickets")
        start_time = None if ticket_cursor else int(self.options.get("start_time", 0))
        pages = self.client.iter_ticket_pages(
            cursor=ticket_cursor, start_time=start_time, per_page=self.options.get("page_size")
        )
        for page in pages:
            updates: list[TicketUpdate | DeferredTicketUpdate] = []
            for record in newest_copies(page.tickets):
                audits = list(self.client.iter_ticket_audits(record["id"])) if "audits" in self.include else []
                updates.append(mapping_zendesk.ticket_update(record, audits, source=self.source))
            cursor = {**cursor, "tickets": page.after_cursor or ticket_cursor}
            yield Batch("tickets", cursor, records=len(page.tickets), tickets=updates)

        if "satisfaction_ratings" in self.include:
            since = int(cursor.get("satisfaction_ratings", self.options.get("start_time", 0)))
            ratings = self.client.list_satisfaction_ratings(start_time=since)
            events = []
            newest = since
            for rating in ratings:
                event = mapping_zendesk.satisfaction_event(rating)
                if event is not None:
                    events.append((str(rating["ticket_id"]), event))
                    newest = max(newest, int(event.origin.occurred_at.timestamp()))
            # The next sync requests ratings again from the newest rating's second.
            # Their keys keep the ratings it returns again from being recorded twice.
            cursor = {**cursor, "satisfaction_ratings": newest}
            yield Batch("satisfaction_ratings", cursor, records=len(ratings), ticket_events=events)

    def _contacts(self, users: list[dict[str, Any]]) -> Iterator[tuple[str, dict[str, Any], Origin]]:
        for user in users:
            found = mapping_zendesk.user_contact(user)
            if found is None:
                continue
            organization_id, contact = found
            when = user.get("updated_at") or user["created_at"]
            origin = Origin(mapping_zendesk.parse_time(when), "system", "zendesk", f"zendesk:user:{user['id']}:contact")
            yield organization_id, contact, origin

    def push_reply(self, external: dict[str, Any], body: str) -> str | None:
        response = self.client.add_comment(int(external["id"]), body, public=True)
        audit = response.get("audit") or {}
        for event in audit.get("events") or []:
            if event.get("type") == "Comment":
                return f"zendesk:audit:{audit['id']}:{event['id']}"
        return None

    def tool_fields(self, field_name: str, value: Any) -> dict[str, Any]:
        if field_name == "status":
            return {"status": mapping_zendesk.ZENDESK_STATUSES[value]}
        if field_name == "priority":
            if value is None:
                raise UnmappedValueError("an empty priority is not pushed")
            return {"priority": mapping_zendesk.ZENDESK_PRIORITIES[value]}
        if field_name == "assignment":
            return self.assignment_fields(value, "group_id", "assignee_id", int)
        raise UnmappedValueError(f"{field_name} is not pushed to Zendesk")

    def push_fields(self, external: dict[str, Any], fields: dict[str, Any]) -> None:
        self.client.update_ticket(int(external["id"]), fields)


# Freshdesk.


class FreshdeskAdapter(Adapter):
    client: FreshdeskClient
    id_pattern = _NUMERIC_ID

    def build_client(self, credentials: dict[str, str], **client_options: Any) -> FreshdeskClient:
        return FreshdeskClient(
            self.connection.base_url,
            credentials["api_key"],
            per_page=self.options.get("page_size", 100),
            max_pages=self.options.get("max_pages", 300),
            **client_options,
        )

    @property
    def custom_statuses(self) -> dict[int, str]:
        return mapping_freshdesk.custom_status_codes(self.options.get("custom_statuses"))

    def pull(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        cursor = dict(cursor)
        # Freshdesk returns only the last 30 days without updated_since, so the
        # first sync sends it too.
        since_text = cursor.get("tickets") or self.options.get("updated_since") or FRESHDESK_EPOCH
        since = datetime.fromisoformat(since_text)
        for page in self.client.iter_ticket_pages(since):
            updates: list[TicketUpdate | DeferredTicketUpdate] = []
            for record in page.tickets:
                conversations = (
                    self.client.list_conversations(record["id"]) if "conversations" in self.include else []
                )
                updates.append(mapping_freshdesk.ticket_update(
                    record, conversations, source=self.source, custom_statuses=self.custom_statuses
                ))
            cursor = {**cursor, "tickets": page.checkpoint.isoformat()}
            yield Batch("tickets", cursor, records=len(page.tickets), tickets=updates)

    def push_reply(self, external: dict[str, Any], body: str) -> str | None:
        conversation = self.client.reply(int(external["id"]), body)
        if conversation.get("id") is None:
            return None
        return f"freshdesk:conversation:{conversation['id']}"

    def tool_fields(self, field_name: str, value: Any) -> dict[str, Any]:
        if field_name == "status":
            code = mapping_freshdesk.status_code(value, self.custom_statuses)
            if code is None:
                msg = f"status {value!r} has no Freshdesk code; map a custom status to it in options.custom_statuses"
                raise UnmappedValueError(msg)
            return {"status": code}
        if field_name == "priority":
            if value is None:
                raise UnmappedValueError("an empty priority is not pushed")
            return {"priority": mapping_freshdesk.FRESHDESK_PRIORITIES[value]}
        if field_name == "assignment":
            return self.assignment_fields(value, "group_id", "responder_id", int)
        raise UnmappedValueError(f"{field_name} is not pushed to Freshdesk")

    def push_fields(self, external: dict[str, Any], fields: dict[str, Any]) -> None:
        self.client.update_ticket(int(external["id"]), fields)


# ServiceNow.

_SYS_ID = re.compile(r"[0-9a-f]{32}")

# `incident_state` codes of the Table API and their labels, which the shared
# mapping reads. Releases before Istanbul label 2 "Active" and 3 "Awaiting Problem";
# both map to the same hub statuses as the newer labels.
INCIDENT_STATE_LABELS = {
    "1": "New",
    "2": "In Progress",
    "3": "On Hold",
    "4": "Awaiting User Info",
    "5": "Awaiting Evidence",
    "6": "Resolved",
    "7": "Closed",
    "8": "Canceled",
}

# On Hold (3) names what it waits for in `hold_reason`. These reasons have their
# own labels in the shared mapping, so that pending reads back as pending.
HOLD_REASON_LABELS = {"1": "Awaiting User Info", "3": "Awaiting Problem", "4": "Awaiting Vendor"}

# The labels and priority codes that describe a hub ticket as an incident record.
STATE_LABEL_BY_STATUS = {
    "new": "New",
    "open": "In Progress",
    "pending": "Awaiting User Info",
    "on_hold": "On Hold",
    "resolved": "Resolved",
    "closed": "Closed",
}
PRIORITY_CODE_BY_PRIORITY = {"critical": "1", "high": "2", "medium": "3", "low": "4"}

# Hub values as incident fields. Priority follows from impact and urgency in
# ServiceNow's default lookup, so a push sets those two. On hold takes a reason:
# 1 is "Awaiting Caller", 4 "Awaiting Vendor".
SERVICENOW_STATES = {
    "new": {"state": "1"},
    "open": {"state": "2"},
    "pending": {"state": "3", "hold_reason": "1"},
    "on_hold": {"state": "3", "hold_reason": "4"},
    "resolved": {"state": "6", "close_code": "Solved (Permanently)", "close_notes": "Resolved in the service hub."},
    "closed": {"state": "7"},
}
SERVICENOW_IMPACT_URGENCY = {
    "critical": {"impact": "1", "urgency": "1"},
    "high": {"impact": "1", "urgency": "2"},
    "medium": {"impact": "2", "urgency": "2"},
    "low": {"impact": "2", "urgency": "3"},
}

_COUNTERS = ("reopen_count", "sys_mod_count")
_FLAGS = ("knowledge", "made_sla")
_TIMES = ("sys_updated_on", "opened_at", "resolved_at", "closed_at")


def parse_table_record(raw: dict[str, Any]) -> dict[str, Any]:
    """Turn a Table API incident (every value a string) into the shared mapping's record.

    References become their sys_id, times aware UTC datetimes, counters ints,
    flags bools, and `incident_state` its label. Empty strings become None.
    """
    record: dict[str, Any] = {}
    for name, value in raw.items():
        if isinstance(value, dict):
            value = value.get("value")
        record[name] = None if value == "" else value
    for name in _COUNTERS:
        if record.get(name) is not None:
            record[name] = int(record[name])
    for name in _FLAGS:
        if record.get(name) is not None:
            record[name] = str(record[name]).lower() == "true"
    for name in _TIMES:
        if record.get(name) is not None:
            record[name] = datetime.strptime(record[name], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    state = str(record.get("incident_state") or record.get("state"))
    if state == "3" and record.get("hold_reason") in HOLD_REASON_LABELS:
        record["incident_state"] = HOLD_REASON_LABELS[record["hold_reason"]]
    else:
        record["incident_state"] = INCIDENT_STATE_LABELS.get(state, state)
    return record


def ticket_as_incident(ticket: Any, number: str) -> dict[str, Any]:
    """Describe a hub ticket as the incident record whose changes it last took.

    The shared mapping compares each new record with the previous one. The live
    connector keeps no records, so the ticket's state is used as the previous record.
    """
    requester = ticket.requester or {}
    return {
        "number": number,
        "incident_state": STATE_LABEL_BY_STATUS[ticket.status],
        "reopen_count": ticket.reopen_count,
        "reassignment_count": ticket.reassignment_count,
        "caller_id": requester.get("id"),
        "category": ticket.category,
        "subcategory": ticket.subcategory,
        "u_symptom": ticket.symptom,
        "priority": PRIORITY_CODE_BY_PRIORITY.get(ticket.priority) if ticket.priority else None,
        "impact": ticket.impact,
        "urgency": ticket.urgency,
        "assignment_group": ticket.group,
        "assigned_to": ticket.agent,
        "knowledge": servicenow_mapping.UNNAMED_KNOWLEDGE_ARTICLE in ticket.knowledge_article_ids,
        "made_sla": ticket.facts.get(servicenow_mapping.MADE_SLA_FACT),
    }


def incident_update(record: dict[str, Any], ticket: Any) -> TicketUpdate | None:
    """Map one incident record against the ticket's state; None when it cannot apply.

    Keys come from the audit-log import's `external_event_id` with tie 0, so a
    version seen by both the import and the connector is recorded once.
    """
    number = str(record["number"])
    previous = ticket_as_incident(ticket, number) if ticket is not None else None
    try:
        changes = servicenow_mapping.map_incident_update(previous, record)
    except servicenow_mapping.MappingError as error:
        logger.warning("ServiceNow incident %s cannot be applied (%s): %s", number, error.reason, error)
        return None

    opening: TicketOpening | None = None
    converted: list[TicketChange] = []
    for change in changes:
        key = servicenow_mapping.external_event_id(number, record.get("sys_mod_count") or 0, 0, change)
        actor_id = servicenow_mapping.change_actor_id(record, change)
        origin = Origin(change.occurred_at, "agent", actor_id, key)
        arguments = change.arguments
        if change.command == "open":
            extra = {"sys_id": record["sys_id"]} if record.get("sys_id") else {}
            opening = TicketOpening(
                subject=arguments["subject"], channel=arguments["channel"], requester=arguments["requester"],
                client_account_id=None, description=arguments["description"], origin=origin, external=extra,
            )
        elif change.command in ("reopen", "change_status", "resolve", "close"):
            status = {"reopen": "open", "resolve": "resolved", "close": "closed"}.get(
                change.command, arguments.get("status")
            )
            details = {"resolution_code": arguments.get("resolution_code")} if change.command == "resolve" else {}
            converted.append(FieldChange("status", status, origin, details=details))
        elif change.command == "prioritize":
            details = {"impact": arguments.get("impact"), "urgency": arguments.get("urgency")}
            converted.append(FieldChange("priority", arguments["priority"], origin, details=details))
        elif change.command == "assign":
            assignment = {"group": arguments["group"], "agent": arguments["agent"]}
            details = {"reassignment": arguments.get("reassignment")}
            converted.append(FieldChange("assignment", assignment, origin, details=details))
        elif change.command == "classify":
            details = {"subcategory": arguments.get("subcategory"), "symptom": arguments.get("symptom")}
            converted.append(FieldChange("category", arguments["category"], origin, details=details))
        else:
            converted.append(TicketEvent(change.command, arguments, origin))

    if opening is None:
        # The ticket exists, so the opening is never used; it only completes the update.
        opening = TicketOpening(number, "other", None, None, None, Origin(
            record["sys_updated_on"], "agent", servicenow_mapping.DEFAULT_ACTOR_ID, f"{number}:open"
        ))
    return TicketUpdate(number, opening, converted)


class ServiceNowAdapter(Adapter):
    client: ServiceNowClient
    id_pattern = _SYS_ID

    def build_client(self, credentials: dict[str, str], **client_options: Any) -> ServiceNowClient:
        return ServiceNowClient(self.connection.base_url, credentials, **client_options)

    def pull(self, cursor: dict[str, Any]) -> Iterator[Batch]:
        cursor = dict(cursor)
        stored = cursor.get("incidents")
        after = (str(stored[0]), str(stored[1])) if stored else None
        for page in self.client.iter_incident_pages(after, page_size=self.options.get("page_size", 100)):
            updates: list[TicketUpdate | DeferredTicketUpdate] = [self._deferred(raw) for raw in page.incidents]
            cursor = {**cursor, "incidents": list(page.cursor)}
            yield Batch("incidents", cursor, records=len(page.incidents), tickets=updates)

    @staticmethod
    def _deferred(raw: dict[str, Any]) -> DeferredTicketUpdate:
        record = parse_table_record(raw)
        return DeferredTicketUpdate(str(record["number"]), lambda ticket: incident_update(record, ticket))

    def push_reply(self, external: dict[str, Any], body: str) -> str | None:
        sys_id = _external_sys_id(external)
        # `comments` appends a customer-visible journal entry, so a failed
        # request that may have reached ServiceNow is not repeated.
        self.client.send_json("PATCH", f"{INCIDENT_PATH}/{sys_id}", {"comments": body}, idempotent=False)
        return None

    def tool_fields(self, field_name: str, value: Any) -> dict[str, Any]:
        if field_name == "status":
            return dict(SERVICENOW_STATES[value])
        if field_name == "priority":
            if value is None:
                raise UnmappedValueError("an empty priority is not pushed")
            return dict(SERVICENOW_IMPACT_URGENCY[value])
        if field_name == "assignment":
            return self.assignment_fields(value, "assignment_group", "assigned_to", str)
        raise UnmappedValueError(f"{field_name} is not pushed to ServiceNow")

    def push_fields(self, external: dict[str, Any], fields: dict[str, Any]) -> None:
        self.client.update_incident(_external_sys_id(external), fields)


def _external_sys_id(external: dict[str, Any]) -> str:
    sys_id = external.get("sys_id")
    if not sys_id:
        msg = f"incident {external.get('id')} has no sys_id on its ticket, so it cannot be updated"
        raise UnmappedValueError(msg)
    return str(sys_id)


ADAPTERS: dict[str, type[Adapter]] = {
    "zendesk": ZendeskAdapter,
    "freshdesk": FreshdeskAdapter,
    "servicenow": ServiceNowAdapter,
}


def build_adapter(
    connection: Connection,
    credentials: dict[str, str],
    *,
    session: requests.Session,
    clock: Clock | None = None,
    retry_policy: RetryPolicy | None = None,
) -> Adapter:
    """Return the adapter for the connection's kind, with a client on `session`."""
    adapter_class = ADAPTERS[connection.kind]
    return adapter_class(connection, credentials, session=session, clock=clock, retry_policy=retry_policy)
