"""Pure mapping of Zendesk Support records to hub changes, and of hub values back.

Input shapes are those of the Zendesk Support API: ticket records of the
incremental export, ticket audits with their `events`, satisfaction ratings,
SLA policies, organizations and users. Nothing here sends a request.

Keys (`Origin.key`, stored as `source.external_event_id`) are built from
Zendesk's own ids, such as `zendesk:audit:<audit id>:<event id>`, so a record
read twice maps to the same keys.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import Any

from connectors.changes import (
    AccountUpdate,
    FieldChange,
    Origin,
    PolicyUpdate,
    TicketChange,
    TicketEvent,
    TicketOpening,
    TicketUpdate,
)
from hub.domain.base import external_uuid

# Zendesk ticket statuses and priorities in the hub's terms.
STATUS_TERMS = {
    "new": "new",
    "open": "open",
    "pending": "pending",
    "hold": "on_hold",
    "solved": "resolved",
    "closed": "closed",
}
PRIORITY_TERMS = {"urgent": "critical", "high": "high", "normal": "medium", "low": "low"}

# The reverse maps, for changes pushed from the hub to Zendesk.
ZENDESK_STATUSES = {term: status for status, term in STATUS_TERMS.items()}
ZENDESK_PRIORITIES = {term: priority for priority, term in PRIORITY_TERMS.items()}

# `via.channel` values and the hub channel each belongs to; others map to "other".
CHANNELS = {
    "email": "email",
    "web": "web",
    "web_form": "web",
    "web_widget": "web",
    "help_center": "web",
    "mobile": "web",
    "mobile_sdk": "web",
    "api": "api",
    "voice": "phone",
    "phone": "phone",
    "chat": "chat",
    "chat_transcript": "chat",
    "native_messaging": "chat",
    "messaging": "chat",
    "sms": "chat",
    "whatsapp": "chat",
    "line": "chat",
    "wechat": "chat",
    "twitter": "social",
    "facebook": "social",
    "instagram_dm": "social",
    "facebook_messenger": "social",
}

# Audit field names and the synced hub field each sets; a group or assignee
# change sets one key of the assignment.
AUDIT_FIELDS = {
    "status": "status",
    "priority": "priority",
    "group_id": "assignment",
    "assignee_id": "assignment",
    "type": "category",
}
ASSIGNMENT_KEYS = {"group_id": "group", "assignee_id": "agent"}

# SLA metrics and the hub target each becomes.
SLA_METRICS = {
    "first_reply_time": "first_response",
    "next_reply_time": "next_reply",
    "full_resolution_time": "resolution",
}
# Requester wait time excludes time in pending, like the hub's resolution clock,
# so it is used as the resolution target when a policy has no full resolution target.
SLA_FALLBACK_METRICS = {"requester_wait_time": "resolution"}

# Zendesk's author id for changes made by the system (triggers, automations).
SYSTEM_AUTHOR_ID = -1


def parse_time(value: str) -> datetime:
    """Parse a Zendesk timestamp such as 2023-09-18T15:57:42Z into an aware datetime."""
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def channel_term(via: Mapping[str, Any] | None) -> str:
    channel = (via or {}).get("channel")
    return CHANNELS.get(str(channel), "other")


def ticket_update(
    record: Mapping[str, Any],
    audits: Iterable[Mapping[str, Any]] = (),
    *,
    source: str = "zendesk",
) -> TicketUpdate:
    """Map one exported ticket record, and its audits if read, to a `TicketUpdate`.

    Audit events come first, oldest first. The record's current field values
    follow as observed values, and its satisfaction rating last.
    """
    ticket_id = str(record["id"])
    requester_id = record.get("requester_id")
    changes: list[TicketChange] = []
    for audit in sorted(audits, key=lambda item: (item["created_at"], item["id"])):
        changes.extend(audit_changes(audit, requester_id))
    changes.extend(observed_fields(record))
    rating = record.get("satisfaction_rating")
    if isinstance(rating, Mapping):
        event = satisfaction_event({**rating, "ticket_id": record["id"]}, fallback_time=record["updated_at"])
        if event is not None:
            changes.append(event)
    return TicketUpdate(ticket_id, ticket_opening(record, source=source), changes)


def ticket_opening(record: Mapping[str, Any], *, source: str = "zendesk") -> TicketOpening:
    requester_id = record.get("requester_id")
    submitter_id = record.get("submitter_id")
    organization_id = record.get("organization_id")
    subject = (record.get("raw_subject") or record.get("subject") or "").strip()
    creator_is_requester = submitter_id is None or submitter_id == requester_id
    return TicketOpening(
        subject=subject or f"Zendesk ticket {record['id']}",
        channel=channel_term(record.get("via")),
        requester={"id": str(requester_id), "source": source} if requester_id is not None else None,
        client_account_id=(
            str(external_uuid("client_account", source, str(organization_id)))
            if organization_id is not None else None
        ),
        description=record.get("description") or None,
        origin=Origin(
            occurred_at=parse_time(record["created_at"]),
            actor_kind="requester" if creator_is_requester else "agent",
            actor_id=str(submitter_id if submitter_id is not None else requester_id),
            key=f"zendesk:ticket:{record['id']}:created",
        ),
    )


def audit_changes(audit: Mapping[str, Any], requester_id: object) -> list[TicketChange]:
    """Map the events of one ticket audit to field changes, comments and notes.

    The comment of the audit that created the ticket is its description, which
    the opening already carries, so it is left out. Notifications and other
    event types record nothing.
    """
    occurred_at = parse_time(audit["created_at"])
    events = audit.get("events") or []
    creates_ticket = any(event.get("type") == "Create" for event in events)
    changes: list[TicketChange] = []
    assignment: FieldChange | None = None
    for event in events:
        event_type = event.get("type")
        key = f"zendesk:audit:{audit['id']}:{event['id']}"
        if event_type in ("Create", "Change"):
            change = _field_change(event, audit, occurred_at, key, requester_id)
            if change is None:
                continue
            if change.field != "assignment":
                changes.append(change)
            elif assignment is None:
                assignment = change
                changes.append(change)
            else:
                # A group and an assignee set by one audit are one assignment, not a
                # reassignment; the merged change keeps the first event's key.
                merged = replace(
                    assignment,
                    value={**assignment.value, **change.value},
                    previous={**assignment.previous, **change.previous},
                )
                changes[changes.index(assignment)] = merged
                assignment = merged
        elif event_type in ("Comment", "VoiceComment") and not creates_ticket:
            author_id = event.get("author_id", audit.get("author_id"))
            changes.append(_comment(event, author_id, requester_id, occurred_at, key))
    return changes


def _field_change(
    event: Mapping[str, Any], audit: Mapping[str, Any], occurred_at: datetime, key: str, requester_id: object
) -> FieldChange | None:
    field_name = str(event.get("field_name"))
    field = AUDIT_FIELDS.get(field_name)
    if field is None:
        return None
    value = _field_value(field, event.get("value"))
    previous = _field_value(field, event.get("previous_value"))
    if field == "status" and value is None:
        # A status outside the documented six (such as "deleted") has no hub term.
        return None
    if field == "assignment":
        part = ASSIGNMENT_KEYS[field_name]
        value = {part: value}
        previous = {part: previous}
    actor_kind, actor_id = _actor(audit.get("author_id"), requester_id)
    return FieldChange(field, value, Origin(occurred_at, actor_kind, actor_id, key), previous=previous)


def _field_value(field: str, raw: object) -> Any:
    if raw is None or raw == "":
        return None
    if field == "status":
        return STATUS_TERMS.get(str(raw))
    if field == "priority":
        return PRIORITY_TERMS.get(str(raw))
    return str(raw)


def _comment(
    event: Mapping[str, Any], author_id: object, requester_id: object, occurred_at: datetime, key: str
) -> TicketEvent:
    body = event.get("body") or event.get("plain_body") or ""
    if not body.strip():
        attachments = len(event.get("attachments") or [])
        body = f"(no text; {attachments} attachment(s))"
    actor_kind, actor_id = _actor(author_id, requester_id)
    origin = Origin(occurred_at, actor_kind, actor_id, key)
    if not event.get("public", True):
        return TicketEvent("add_note", {"body": body, "public": False}, origin)
    if actor_kind == "requester":
        return TicketEvent("receive_requester_reply", {"body": body}, origin)
    return TicketEvent("reply", {"body": body}, origin)


def _actor(author_id: object, requester_id: object) -> tuple[str, str]:
    if author_id is None or author_id == SYSTEM_AUTHOR_ID:
        return "system", "zendesk"
    if author_id == requester_id:
        return "requester", str(author_id)
    # NOTE: any author other than the requester counts as an agent. Telling an
    # end user copied on the ticket apart would need a users lookup.
    return "agent", str(author_id)


def observed_fields(record: Mapping[str, Any]) -> list[FieldChange]:
    """Map a ticket record's current status, priority, group, assignee and type."""
    updated_at = parse_time(record["updated_at"])
    values = {
        "status": STATUS_TERMS.get(str(record.get("status"))),
        "priority": _field_value("priority", record.get("priority")),
        "assignment": {
            "group": _field_value("assignment", record.get("group_id")),
            "agent": _field_value("assignment", record.get("assignee_id")),
        },
        "category": _field_value("category", record.get("type")),
    }
    changes = []
    for field, value in values.items():
        if field == "status" and value is None:
            continue
        key = f"zendesk:ticket:{record['id']}:{record['updated_at']}:{field}"
        changes.append(FieldChange(field, value, Origin(updated_at, "system", "zendesk", key)))
    return changes


def satisfaction_event(rating: Mapping[str, Any], *, fallback_time: str | None = None) -> TicketEvent | None:
    """Map a satisfaction rating ("good" or "bad") to `rate_satisfaction`; others map to None.

    Ratings that were only offered, or never offered, carry no score.
    """
    score = rating.get("score")
    if score not in ("good", "bad"):
        return None
    rating_id = rating.get("id") or f"ticket-{rating.get('ticket_id')}"
    when = rating.get("updated_at") or rating.get("created_at") or fallback_time
    if when is None:
        return None
    requester_id = rating.get("requester_id")
    origin = Origin(
        occurred_at=parse_time(when),
        actor_kind="requester",
        actor_id=str(requester_id) if requester_id is not None else "zendesk",
        key=f"zendesk:satisfaction:{rating_id}:{score}",
    )
    return TicketEvent(
        "rate_satisfaction", {"score": score, "scale": "good_bad", "comment": rating.get("comment") or None}, origin
    )


def organization_account(organization: Mapping[str, Any], *, source: str = "zendesk") -> AccountUpdate:
    when = organization.get("updated_at") or organization["created_at"]
    name = (organization.get("name") or "").strip() or f"Zendesk organization {organization['id']}"
    return AccountUpdate(
        external_id=str(organization["id"]),
        organization=name,
        origin=Origin(
            parse_time(when), "system", "zendesk", f"zendesk:organization:{organization['id']}:{when}"
        ),
    )


def user_contact(user: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """Return (organization id, contact) for an end user who belongs to an organization.

    Agents and admins are staff, not contacts of a client, and map to None.
    """
    organization_id = user.get("organization_id")
    if organization_id is None or user.get("role") not in (None, "end-user"):
        return None
    contact = {
        "id": str(user["id"]),
        "name": user.get("name"),
        "email": user.get("email"),
        "phone": user.get("phone"),
    }
    return str(organization_id), contact


def sla_policy(policy: Mapping[str, Any]) -> PolicyUpdate | None:
    """Map an SLA policy's `policy_metrics` (targets in minutes) to hub SLA terms.

    Returns None when no metric has a hub target.
    """
    targets: dict[str, dict[str, float]] = {}
    fallbacks: dict[str, dict[str, float]] = {}
    for metric in policy.get("policy_metrics") or []:
        priority = PRIORITY_TERMS.get(str(metric.get("priority")))
        minutes = metric.get("target")
        if priority is None or not isinstance(minutes, (int, float)) or minutes <= 0:
            continue
        name = metric.get("metric")
        if name in SLA_METRICS:
            targets.setdefault(priority, {})[SLA_METRICS[name]] = minutes
        elif name in SLA_FALLBACK_METRICS:
            fallbacks.setdefault(priority, {})[SLA_FALLBACK_METRICS[name]] = minutes
    for priority, per_target in fallbacks.items():
        for target, minutes in per_target.items():
            targets.setdefault(priority, {}).setdefault(target, minutes)
    if not targets:
        return None
    when = policy.get("updated_at") or policy["created_at"]
    # NOTE: targets in business hours follow a Zendesk schedule, which the
    # policy record does not contain, so the hub measures them around the clock.
    terms = {
        "name": (policy.get("title") or "").strip() or f"Zendesk SLA policy {policy['id']}",
        "targets": targets,
        "calendar": None,
    }
    return PolicyUpdate(
        external_id=str(policy["id"]),
        terms=terms,
        origin=Origin(parse_time(when), "system", "zendesk", f"zendesk:sla_policy:{policy['id']}:{when}"),
    )
