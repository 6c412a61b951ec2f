"""Map ServiceNow incident records onto ticket commands.

A record is one version of an incident, keyed by Table API field names, with
values already parsed: ``None`` for a missing value, ``int`` for counters, ``bool``
for flags and timezone-aware ``datetime`` for times. Both the CSV import and the
live connector compare each record with the incident's previous record and apply
the commands that `map_incident_update` returns, in order.

Fields read (the rest are ignored):

- ``number`` (required), ``sys_id``, ``short_description``, ``description``;
- ``incident_state`` (required): the display label, such as ``"Awaiting User Info"``;
- ``sys_updated_on`` (required) and ``sys_updated_by``: when this version was
  written, and which user wrote it;
- ``opened_at`` (required on the first record), ``opened_by``, ``caller_id``,
  ``contact_type``;
- ``category``, ``subcategory``, ``u_symptom``;
- ``priority``, ``impact``, ``urgency``: ``"1 - Critical"`` or the bare code ``"1"``;
- ``assignment_group``, ``assigned_to``;
- ``reassignment_count``, ``reopen_count``, ``made_sla``, ``knowledge``;
- ``close_code``, ``resolved_at``, ``closed_at``: the values of the incident's
  current resolution and closure.

Within one record the commands run in this order, so that every domain guard passes
for consistent input: open (first record only), reopen, intake, classify,
prioritize, assign, knowledge, status (change, resolve or close), then the source's
own SLA verdict.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, NamedTuple

SOURCE_NAME = "servicenow"

# The actor of changes whose record names no user.
DEFAULT_ACTOR_ID = "servicenow-import"

# The name under which the source's own SLA verdict is kept on the ticket, apart
# from the hub's own SLA computation.
MADE_SLA_FACT = "made_sla"

# ServiceNow's `knowledge` flag means that a knowledge article was used, but it
# does not name the article, so the hub records this placeholder article id.
UNNAMED_KNOWLEDGE_ARTICLE = "servicenow:unnamed"

# `incident_state` display labels (lowercase) and the hub status each one means.
# "In Progress" and "On Hold" are the labels of newer ServiceNow releases;
# "Canceled" ends an incident without a resolution.
STATUS_BY_STATE = {
    "new": "new",
    "active": "open",
    "in progress": "open",
    "awaiting user info": "pending",
    "awaiting vendor": "on_hold",
    "awaiting problem": "on_hold",
    "awaiting evidence": "on_hold",
    "on hold": "on_hold",
    "resolved": "resolved",
    "closed": "closed",
    "canceled": "closed",
    "cancelled": "closed",
}

# ServiceNow derives priority from impact and urgency. Priority 5 ("Planning") is
# scheduled work, which the hub ranks low.
PRIORITY_BY_CODE = {1: "critical", 2: "high", 3: "medium", 4: "low", 5: "low"}

# `contact_type` values (lowercase) and the hub channel each one means; any other
# value becomes "other".
CHANNEL_BY_CONTACT_TYPE = {
    "phone": "phone",
    "ivr": "phone",
    "email": "email",
    "self service": "web",
    "self-service": "web",
    "web": "web",
    "chat": "chat",
    "virtual agent": "chat",
    "direct opening": "other",
    "walk-in": "other",
}

OPEN_STATUSES = ("new", "open", "pending", "on_hold")


class Change(NamedTuple):
    """One ticket command derived from a record: its name, keyword arguments and source time."""

    command: str
    arguments: dict[str, Any]
    occurred_at: datetime

    @property
    def kind(self) -> str:
        """A name for the change that is unique within one record; part of its external event id."""
        if self.command == "record_fact":
            return f"record_fact.{self.arguments['name']}"
        return self.command


class MappingError(ValueError):
    """A record cannot be applied to the ticket; `reason` is a short key for counting."""

    def __init__(self, reason: str, message: str) -> None:
        self.reason = reason
        super().__init__(message)


def ticket_status(state: str | None) -> str:
    """Return the hub status of an ``incident_state`` label; raise MappingError if unknown."""
    status = STATUS_BY_STATE.get((state or "").strip().lower())
    if status is None:
        known = ", ".join(sorted({label.title() for label in STATUS_BY_STATE}))
        msg = f"incident_state {state!r} is unknown; expected one of {known}"
        raise MappingError("unknown incident_state", msg)
    return status


def ticket_priority(priority: str) -> str:
    """Return the hub priority of a ServiceNow priority such as ``"2 - High"`` or ``"2"``."""
    code_text = priority.split("-", 1)[0].strip()
    code = int(code_text) if code_text.isascii() and code_text.isdigit() else None
    if code not in PRIORITY_BY_CODE:
        msg = f"priority {priority!r} is unknown; expected '1 - Critical' to '5 - Planning'"
        raise MappingError("unknown priority", msg)
    return PRIORITY_BY_CODE[code]


def ticket_channel(contact_type: str | None) -> str:
    return CHANNEL_BY_CONTACT_TYPE.get((contact_type or "").strip().lower(), "other")


def external_event_id(number: str, sys_mod_count: int, tie: int, change: Change) -> str:
    """Return the external event id of a change: ``{number}:{sys_mod_count}:{tie}:{kind}``.

    `tie` counts the incident's earlier records with the same ``sys_mod_count``,
    so that every record of an incident gives distinct ids.
    """
    return f"{number}:{sys_mod_count}:{tie}:{change.kind}"


def change_actor_id(record: Mapping[str, Any], change: Change) -> str:
    """Return the id of the user behind a change: the opener for the opening, else the updater."""
    if change.command == "open" and record.get("opened_by"):
        return str(record["opened_by"])
    return str(record.get("sys_updated_by") or DEFAULT_ACTOR_ID)


def map_incident_update(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any]
) -> list[Change]:
    """Return the ticket commands that turn the incident at `previous` into `current`.

    `previous` is None for the first record of an incident, which opens the ticket.
    Otherwise it must be the last record whose commands were applied, so that the
    ticket's status is the one its ``incident_state`` maps to. An empty list means
    that nothing the hub records has changed.

    Raises MappingError when `current` cannot be applied: an unknown state or
    priority, a missing time, a reopen of a ticket that is neither resolved nor
    closed, or a closed incident edited without being reopened.
    """
    number = current.get("number")
    if not number:
        raise MappingError("missing number", "number is missing; every record needs its incident number")
    updated_at = _require_time(current, "sys_updated_on")
    opened_at = current.get("opened_at")
    if isinstance(opened_at, datetime) and updated_at < opened_at:
        # A few records were written before the time the caller reported the
        # incident (opened_at was set later); the hub dates their changes at
        # the opening, because no change can precede the ticket it changes.
        updated_at = opened_at
    status = ticket_status(current.get("incident_state"))

    changes: list[Change] = []
    if previous is None:
        changes.append(_open(current))
        previous_status = "new"
    else:
        previous_status = ticket_status(previous.get("incident_state"))

    # Reopen first, because a closed ticket accepts no other change.
    status_now = previous_status
    if previous is not None and _reopened(previous, current, previous_status, status):
        if previous_status not in ("resolved", "closed"):
            msg = (
                f"incident {number}: reopen_count rose from {previous.get('reopen_count')} to "
                f"{current.get('reopen_count')} while the incident was {previous.get('incident_state')}; "
                "only a resolved or closed incident can be reopened"
            )
            raise MappingError("reopened while not resolved", msg)
        changes.append(Change("reopen", {"reason": None}, updated_at))
        status_now = "open"

    edits = _field_edits(previous, current, updated_at)
    if status_now == "closed" and edits:
        fields = ", ".join(change.command for change in edits)
        msg = (
            f"incident {number} is closed and this record changes it ({fields}) "
            "without reopening it"
        )
        raise MappingError("edited after close", msg)
    changes.extend(edits)

    knowledge_used = current.get("knowledge") is True
    if knowledge_used and (previous is None or previous.get("knowledge") is not True):
        changes.append(Change("use_knowledge", {"article_id": UNNAMED_KNOWLEDGE_ARTICLE}, updated_at))

    changes.extend(_status_changes(current, status_now, status, updated_at))

    made_sla = current.get("made_sla")
    if made_sla is not None and (previous is None or previous.get("made_sla") != made_sla):
        changes.append(Change("record_fact", {"name": MADE_SLA_FACT, "value": made_sla}, updated_at))
    return changes


def _open(record: Mapping[str, Any]) -> Change:
    opened_at = _require_time(record, "opened_at")
    number = str(record["number"])
    caller = record.get("caller_id")
    external = {"source": SOURCE_NAME, "id": number}
    if record.get("sys_id"):
        external["sys_id"] = str(record["sys_id"])
    arguments = {
        "subject": record.get("short_description") or f"ServiceNow incident {number}",
        "channel": ticket_channel(record.get("contact_type")),
        "requester": {"id": str(caller)} if caller else None,
        "description": record.get("description"),
        "external": external,
    }
    return Change("open", arguments, opened_at)


def _reopened(
    previous: Mapping[str, Any], current: Mapping[str, Any], previous_status: str, status: str
) -> bool:
    # A closed ticket that the source brings back to an open state is reopened even
    # when reopen_count did not rise, because the hub cannot change it otherwise.
    if (current.get("reopen_count") or 0) > (previous.get("reopen_count") or 0):
        return True
    return previous_status == "closed" and status in OPEN_STATUSES


def _field_edits(
    previous: Mapping[str, Any] | None, current: Mapping[str, Any], updated_at: datetime
) -> list[Change]:
    """Return the intake, classification, priority and assignment changes of a record."""
    edits: list[Change] = []
    old = previous or {}

    caller = current.get("caller_id")
    if previous is not None and caller and not previous.get("caller_id"):
        edits.append(Change("complete_intake", {"fields": {"requester": {"id": str(caller)}}}, updated_at))

    # NOTE: the domain has no command to clear a category or an assignment, so a
    # record that only empties these fields changes nothing on the ticket.
    classification = ("category", "subcategory", "u_symptom")
    if current.get("category") and _differs(old, current, classification):
        arguments = {
            "category": current["category"],
            "subcategory": current.get("subcategory"),
            "symptom": current.get("u_symptom"),
        }
        edits.append(Change("classify", arguments, updated_at))

    if current.get("priority") and _differs(old, current, ("priority", "impact", "urgency")):
        arguments = {
            "priority": ticket_priority(str(current["priority"])),
            "impact": current.get("impact"),
            "urgency": current.get("urgency"),
        }
        edits.append(Change("prioritize", arguments, updated_at))

    # A reassignment is what ServiceNow counts as one (its reassignment_count
    # goes up); picking an agent within the group is an assignment.
    group, agent = current.get("assignment_group"), current.get("assigned_to")
    if (group or agent) and _differs(old, current, ("assignment_group", "assigned_to")):
        counted = _count(current.get("reassignment_count")) > _count(old.get("reassignment_count"))
        arguments = {"group": group, "agent": agent, "reassignment": previous is not None and counted}
        edits.append(Change("assign", arguments, updated_at))
    return edits


def _status_changes(
    current: Mapping[str, Any], status_now: str, status: str, updated_at: datetime
) -> list[Change]:
    if status == status_now:
        return []
    if status == "resolved":
        # resolved_at and closed_at carry the time of the incident's current
        # resolution and closure, which may be later than this record.
        occurred_at = current.get("resolved_at") or updated_at
        return [Change("resolve", {"resolution_code": current.get("close_code")}, occurred_at)]
    if status == "closed":
        occurred_at = current.get("closed_at") or updated_at
        return [Change("close", {}, occurred_at)]
    return [Change("change_status", {"status": status}, updated_at)]


def _count(value: Any) -> int:
    """Read a counter that the Table API may return as text ("2") and the CSV import as an int."""
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value)
    return 0


def _differs(old: Mapping[str, Any], new: Mapping[str, Any], fields: tuple[str, ...]) -> bool:
    for name in fields:
        if old.get(name) != new.get(name):
            return True
    return False


def _require_time(record: Mapping[str, Any], name: str) -> datetime:
    value = record.get(name)
    if not isinstance(value, datetime):
        msg = f"{name} is missing on incident {record.get('number')}; it is needed to date the change"
        raise MappingError(f"missing {name}", msg)
    return value
