"""Pure mapping of Freshdesk API v2 records to hub changes, and of hub values back.

Input shapes are those of `GET /api/v2/tickets` and
`GET /api/v2/tickets/{id}/conversations`. Status, priority and source are
numeric codes, and `connectors.freshdesk` contains their documented meanings.
Nothing here sends a request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from typing import Any

from connectors.changes import FieldChange, Origin, TicketChange, TicketEvent, TicketOpening, TicketUpdate
from connectors.freshdesk import PRIORITY_TERMS, STATUS_TERMS, priority_term, source_channel, status_term

# Hub values as the Freshdesk codes that a push sends. Freshdesk has no "new"
# status, so a new ticket is open there; "on_hold" needs a custom status code.
FRESHDESK_STATUSES = {term: code for code, term in STATUS_TERMS.items()} | {"new": 2}
FRESHDESK_PRIORITIES = {term: code for code, term in PRIORITY_TERMS.items()}


def parse_time(value: str) -> datetime:
    """Parse a Freshdesk timestamp (ISO 8601 with Z or an offset) into UTC."""
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(timezone.utc)


def ticket_update(
    record: Mapping[str, Any],
    conversations: Iterable[Mapping[str, Any]] = (),
    *,
    source: str = "freshdesk",
    custom_statuses: Mapping[int, str] | None = None,
) -> TicketUpdate:
    """Map a ticket record, and its conversations if read, to a `TicketUpdate`.

    The record's status, priority, group, agent and type are observed values at
    its `updated_at`; conversations follow, oldest first.
    """
    changes: list[TicketChange] = list(observed_fields(record, custom_statuses=custom_statuses))
    requester_id = record.get("requester_id")
    ordered = sorted(conversations, key=lambda item: (item["created_at"], item["id"]))
    changes.extend(conversation_event(item, requester_id) for item in ordered)
    return TicketUpdate(str(record["id"]), ticket_opening(record, source=source), changes)


def ticket_opening(record: Mapping[str, Any], *, source: str = "freshdesk") -> TicketOpening:
    requester_id = record.get("requester_id")
    subject = (record.get("subject") or "").strip()
    description = record.get("description_text") or record.get("description") or None
    return TicketOpening(
        subject=subject or f"Freshdesk ticket {record['id']}",
        channel=source_channel(int(record.get("source") or 0)),
        requester={"id": str(requester_id), "source": source} if requester_id is not None else None,
        # NOTE: Freshdesk companies are not read yet, so tickets carry no client account.
        client_account_id=None,
        description=description,
        origin=Origin(
            occurred_at=parse_time(record["created_at"]),
            actor_kind="requester",
            actor_id=str(requester_id) if requester_id is not None else "freshdesk",
            key=f"freshdesk:ticket:{record['id']}:created",
        ),
    )


def observed_fields(
    record: Mapping[str, Any], *, custom_statuses: Mapping[int, str] | None = None
) -> list[FieldChange]:
    """Map a ticket record's status, priority, group, responder and type.

    Raises ValueError for a custom status code that `custom_statuses` does not map.
    """
    updated_at = parse_time(record["updated_at"])
    values: dict[str, Any] = {
        "status": status_term(int(record["status"]), custom_statuses),
        "priority": priority_term(int(record["priority"])) if record.get("priority") is not None else None,
        "assignment": {"group": _text(record.get("group_id")), "agent": _text(record.get("responder_id"))},
        "category": _text(record.get("type")),
    }
    changes = []
    for field, value in values.items():
        key = f"freshdesk:ticket:{record['id']}:{record['updated_at']}:{field}"
        changes.append(FieldChange(field, value, Origin(updated_at, "system", "freshdesk", key)))
    return changes


def conversation_event(conversation: Mapping[str, Any], requester_id: object) -> TicketEvent:
    """Map one conversation: a private note, a requester's reply, or an agent's public reply."""
    body = conversation.get("body_text") or conversation.get("body") or ""
    if not body.strip():
        attachments = len(conversation.get("attachments") or [])
        body = f"(no text; {attachments} attachment(s))"
    user_id = conversation.get("user_id")
    key = f"freshdesk:conversation:{conversation['id']}"
    occurred_at = parse_time(conversation["created_at"])
    if conversation.get("private"):
        origin = Origin(occurred_at, "agent", str(user_id), key)
        return TicketEvent("add_note", {"body": body, "public": False}, origin)
    if conversation.get("incoming") or (user_id is not None and user_id == requester_id):
        origin = Origin(occurred_at, "requester", str(user_id), key)
        return TicketEvent("receive_requester_reply", {"body": body}, origin)
    origin = Origin(occurred_at, "agent", str(user_id), key)
    return TicketEvent("reply", {"body": body}, origin)


def custom_status_codes(option: Mapping[str, str] | None) -> dict[int, str]:
    """Turn the `custom_statuses` connection option ({"6": "on_hold"}) into code keys."""
    return {int(code): term for code, term in (option or {}).items()}


def status_code(status: str, custom_statuses: Mapping[int, str] | None = None) -> int | None:
    """Return the Freshdesk code for a hub status, or None when the account has none."""
    if status in FRESHDESK_STATUSES:
        return FRESHDESK_STATUSES[status]
    for code, term in (custom_statuses or {}).items():
        if term == status:
            return code
    return None


def _text(value: object) -> str | None:
    if value is None or value == "":
        return None
    return str(value)
