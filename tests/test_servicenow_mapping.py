"""The pure mapping from ServiceNow incident records to ticket commands."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from connectors.servicenow_mapping import (
    MADE_SLA_FACT,
    UNNAMED_KNOWLEDGE_ARTICLE,
    Change,
    MappingError,
    change_actor_id,
    map_incident_update,
)
from hub.domain import Context, Ticket

OPENED = datetime(2016, 2, 29, 1, 16, tzinfo=timezone.utc)
UPDATED = datetime(2016, 2, 29, 1, 23, tzinfo=timezone.utc)


def record(**overrides: Any) -> dict[str, Any]:
    """A parsed incident record as the export's first row of INC0000045 has it, with overrides."""
    values: dict[str, Any] = {
        "number": "INC0000045",
        "incident_state": "New",
        "sys_mod_count": 0,
        "reassignment_count": 0,
        "reopen_count": 0,
        "made_sla": True,
        "knowledge": False,
        "caller_id": "Caller 2403",
        "opened_by": "Opened by 8",
        "opened_at": OPENED,
        "sys_updated_by": "Updated by 21",
        "sys_updated_on": UPDATED,
        "contact_type": "Phone",
        "category": "Category 55",
        "subcategory": "Subcategory 170",
        "u_symptom": "Symptom 72",
        "impact": "2 - Medium",
        "urgency": "2 - Medium",
        "priority": "3 - Moderate",
        "assignment_group": "Group 56",
        "assigned_to": None,
        "close_code": "code 5",
        "resolved_at": None,
        "closed_at": None,
    }
    values.update(overrides)
    return values


def later(minutes: int) -> datetime:
    return UPDATED + timedelta(minutes=minutes)


def commands(changes: list[Change]) -> list[str]:
    return [change.command for change in changes]


def test_first_record_opens_the_ticket_at_opened_at():
    changes = map_incident_update(None, record())

    assert changes[0] == Change(
        "open",
        {
            "subject": "ServiceNow incident INC0000045",
            "channel": "phone",
            "requester": {"id": "Caller 2403"},
            "description": None,
            "external": {"source": "servicenow", "id": "INC0000045"},
        },
        OPENED,
    )


def test_first_record_sets_fields_at_its_update_time():
    changes = map_incident_update(None, record())

    assert changes[1:] == [
        Change("classify", {"category": "Category 55", "subcategory": "Subcategory 170", "symptom": "Symptom 72"}, UPDATED),
        Change("prioritize", {"priority": "medium", "impact": "2 - Medium", "urgency": "2 - Medium"}, UPDATED),
        Change("assign", {"group": "Group 56", "agent": None, "reassignment": False}, UPDATED),
        Change("record_fact", {"name": MADE_SLA_FACT, "value": True}, UPDATED),
    ]


def test_first_record_keeps_sys_id_and_short_description():
    changes = map_incident_update(None, record(sys_id="a" * 32, short_description="Printer jammed"))

    assert changes[0].arguments["subject"] == "Printer jammed"
    assert changes[0].arguments["external"] == {"source": "servicenow", "id": "INC0000045", "sys_id": "a" * 32}


def test_first_record_without_caller_has_no_requester():
    changes = map_incident_update(None, record(caller_id=None))

    assert changes[0].arguments["requester"] is None


@pytest.mark.parametrize(
    ("contact_type", "channel"),
    [
        ("Phone", "phone"),
        ("Email", "email"),
        ("Self service", "web"),
        ("IVR", "phone"),
        ("Direct opening", "other"),
        ("Carrier pigeon", "other"),
        (None, "other"),
    ],
)
def test_contact_type_maps_to_channel(contact_type, channel):
    changes = map_incident_update(None, record(contact_type=contact_type))

    assert changes[0].arguments["channel"] == channel


@pytest.mark.parametrize(
    ("priority", "expected"),
    [
        ("1 - Critical", "critical"),
        ("2 - High", "high"),
        ("3 - Moderate", "medium"),
        ("4 - Low", "low"),
        ("5 - Planning", "low"),
        ("1", "critical"),
    ],
)
def test_priority_maps_to_hub_priority(priority, expected):
    changes = map_incident_update(None, record(priority=priority, impact="1 - High", urgency="3 - Low"))

    prioritized = next(change for change in changes if change.command == "prioritize")
    assert prioritized.arguments == {"priority": expected, "impact": "1 - High", "urgency": "3 - Low"}


def test_unknown_priority_raises_mapping_error():
    with pytest.raises(MappingError, match="priority '9 - Someday' is unknown") as caught:
        map_incident_update(None, record(priority="9 - Someday"))

    assert caught.value.reason == "unknown priority"


# Superscript two passes str.isdigit() but int() rejects it; int() reads Arabic-Indic two as 2.
@pytest.mark.parametrize("priority", ["\u00b2 - High", "\u0662 - High"])
def test_priority_of_non_ascii_digit_is_unknown(priority):
    with pytest.raises(MappingError, match="is unknown; expected '1 - Critical' to '5 - Planning'") as caught:
        map_incident_update(None, record(priority=priority))

    assert caught.value.reason == "unknown priority"


def test_non_ascii_reassignment_count_ignored():
    current = record(assigned_to="Resolver 31", assignment_group="Group 70", reassignment_count="\u00b2", sys_updated_on=later(5))

    changes = map_incident_update(record(assigned_to="Resolver 12"), current)

    assigned = next(change for change in changes if change.command == "assign")
    assert assigned.arguments["reassignment"] is False


def test_unknown_state_raises_mapping_error():
    with pytest.raises(MappingError, match="incident_state '-100' is unknown") as caught:
        map_incident_update(record(), record(incident_state="-100", sys_updated_on=later(5)))

    assert caught.value.reason == "unknown incident_state"


def test_missing_update_time_raises_mapping_error():
    with pytest.raises(MappingError, match="sys_updated_on is missing on incident INC0000045") as caught:
        map_incident_update(None, record(sys_updated_on=None))

    assert caught.value.reason == "missing sys_updated_on"


@pytest.mark.parametrize(
    ("state", "status"),
    [
        ("Active", "open"),
        ("Awaiting User Info", "pending"),
        ("Awaiting Vendor", "on_hold"),
        ("Awaiting Problem", "on_hold"),
        ("Awaiting Evidence", "on_hold"),
    ],
)
def test_state_change_maps_to_status(state, status):
    changes = map_incident_update(record(), record(incident_state=state, sys_updated_on=later(5)))

    assert changes == [Change("change_status", {"status": status}, later(5))]


def test_active_back_to_new_changes_status():
    active = record(incident_state="Active")

    changes = map_incident_update(active, record(incident_state="New", sys_updated_on=later(5)))

    assert changes == [Change("change_status", {"status": "new"}, later(5))]


def test_states_with_the_same_status_change_nothing():
    vendor = record(incident_state="Awaiting Vendor")

    changes = map_incident_update(vendor, record(incident_state="Awaiting Problem", sys_updated_on=later(5)))

    assert changes == []


def test_unchanged_record_changes_nothing():
    changes = map_incident_update(record(), record(sys_mod_count=1, sys_updated_on=later(5), sys_updated_by="Updated by 9"))

    assert changes == []


def test_resolution_happens_at_resolved_at():
    resolved_at = later(90)
    current = record(incident_state="Resolved", sys_updated_on=later(30), resolved_at=resolved_at)

    changes = map_incident_update(record(incident_state="Active"), current)

    assert changes == [Change("resolve", {"resolution_code": "code 5"}, resolved_at)]


def test_resolution_without_resolved_at_happens_at_update_time():
    current = record(incident_state="Resolved", sys_updated_on=later(30), close_code=None)

    changes = map_incident_update(record(incident_state="Active"), current)

    assert changes == [Change("resolve", {"resolution_code": None}, later(30))]


def test_closure_happens_at_closed_at():
    closed_at = later(7 * 24 * 60)
    resolved = record(incident_state="Resolved")

    changes = map_incident_update(resolved, record(incident_state="Closed", sys_updated_on=later(60), closed_at=closed_at))

    assert changes == [Change("close", {}, closed_at)]


def test_open_incident_closed_directly_is_closed_without_resolution():
    changes = map_incident_update(record(), record(incident_state="Closed", sys_updated_on=later(60)))

    assert changes == [Change("close", {}, later(60))]


def test_resolved_to_resolved_changes_nothing():
    resolved = record(incident_state="Resolved")

    changes = map_incident_update(resolved, record(incident_state="Resolved", sys_updated_on=later(60)))

    assert changes == []


def test_reopen_count_rise_reopens_a_resolved_incident():
    resolved = record(incident_state="Resolved")

    changes = map_incident_update(resolved, record(incident_state="Active", reopen_count=1, sys_updated_on=later(60)))

    assert changes == [Change("reopen", {"reason": None}, later(60))]


def test_reopen_to_awaiting_user_info_also_changes_status():
    resolved = record(incident_state="Resolved")

    current = record(incident_state="Awaiting User Info", reopen_count=1, sys_updated_on=later(60))
    changes = map_incident_update(resolved, current)

    assert changes == [
        Change("reopen", {"reason": None}, later(60)),
        Change("change_status", {"status": "pending"}, later(60)),
    ]


def test_closed_incident_back_to_active_is_reopened():
    closed = record(incident_state="Closed")

    changes = map_incident_update(closed, record(incident_state="Active", sys_updated_on=later(60)))

    assert changes == [Change("reopen", {"reason": None}, later(60))]


def test_resolved_back_to_active_without_reopen_changes_status():
    resolved = record(incident_state="Resolved")

    changes = map_incident_update(resolved, record(incident_state="Active", sys_updated_on=later(60)))

    assert changes == [Change("change_status", {"status": "open"}, later(60))]


def test_reopen_count_rise_on_an_open_incident_raises():
    active = record(incident_state="Active")

    with pytest.raises(MappingError, match="reopen_count rose from 0 to 1 while the incident was Active") as caught:
        map_incident_update(active, record(incident_state="Active", reopen_count=1, sys_updated_on=later(5)))

    assert caught.value.reason == "reopened while not resolved"


def test_reopen_and_resolve_in_one_record():
    resolved = record(incident_state="Resolved")

    current = record(incident_state="Resolved", reopen_count=1, sys_updated_on=later(60))
    changes = map_incident_update(resolved, current)

    assert commands(changes) == ["reopen", "resolve"]


def test_closed_incident_edited_without_reopen_raises():
    closed = record(incident_state="Closed")

    current = record(incident_state="Closed", category="Category 9", sys_updated_on=later(60))
    with pytest.raises(MappingError, match="incident INC0000045 is closed and this record changes it") as caught:
        map_incident_update(closed, current)

    assert caught.value.reason == "edited after close"


def test_closed_incident_keeps_taking_sla_verdicts():
    closed = record(incident_state="Closed")

    changes = map_incident_update(closed, record(incident_state="Closed", made_sla=False, sys_updated_on=later(60)))

    assert changes == [Change("record_fact", {"name": MADE_SLA_FACT, "value": False}, later(60))]


def test_field_edits_come_before_the_closure():
    resolved = record(incident_state="Resolved")

    current = record(incident_state="Closed", category="Category 9", sys_updated_on=later(60), closed_at=later(61))
    changes = map_incident_update(resolved, current)

    assert commands(changes) == ["classify", "close"]


def test_counted_group_change_reassigns():
    current = record(
        assignment_group="Group 24", assigned_to="Resolver 31", reassignment_count=1, sys_updated_on=later(5)
    )

    changes = map_incident_update(record(), current)

    assert changes == [
        Change("assign", {"group": "Group 24", "agent": "Resolver 31", "reassignment": True}, later(5))
    ]


def test_uncounted_assignee_change_assigns():
    current = record(assigned_to="Resolver 31", sys_updated_on=later(5))

    changes = map_incident_update(record(), current)

    assert changes == [
        Change("assign", {"group": "Group 56", "agent": "Resolver 31", "reassignment": False}, later(5))
    ]


def test_table_api_text_counter_is_read_as_number():
    current = record(assigned_to="Resolver 31", reassignment_count="2", sys_updated_on=later(5))

    changes = map_incident_update(record(reassignment_count="1"), current)

    assert changes[0].arguments["reassignment"] is True


def test_cleared_assignment_changes_nothing():
    current = record(assignment_group=None, assigned_to=None, sys_updated_on=later(5))

    assert map_incident_update(record(), current) == []


def test_classification_change_reclassifies():
    current = record(u_symptom=None, sys_updated_on=later(5))

    changes = map_incident_update(record(), current)

    assert changes == [
        Change("classify", {"category": "Category 55", "subcategory": "Subcategory 170", "symptom": None}, later(5))
    ]


def test_missing_category_does_not_classify():
    changes = map_incident_update(None, record(category=None))

    assert "classify" not in commands(changes)


def test_knowledge_flag_records_knowledge_use_once():
    with_knowledge = record(knowledge=True, sys_updated_on=later(5))

    first = map_incident_update(record(), with_knowledge)
    again = map_incident_update(with_knowledge, record(knowledge=True, sys_updated_on=later(9)))

    assert first == [Change("use_knowledge", {"article_id": UNNAMED_KNOWLEDGE_ARTICLE}, later(5))]
    assert again == []


def test_sla_verdict_change_records_a_fact():
    changes = map_incident_update(record(), record(made_sla=False, sys_updated_on=later(5)))

    assert changes == [Change("record_fact", {"name": MADE_SLA_FACT, "value": False}, later(5))]
    assert changes[0].kind == "record_fact.made_sla"


def test_caller_filled_in_later_completes_intake():
    changes = map_incident_update(record(caller_id=None), record(sys_updated_on=later(5)))

    assert changes == [Change("complete_intake", {"fields": {"requester": {"id": "Caller 2403"}}}, later(5))]


def test_change_actor_ids():
    current = record()
    opening, classification = map_incident_update(None, current)[:2]

    assert change_actor_id(current, opening) == "Opened by 8"
    assert change_actor_id(current, classification) == "Updated by 21"
    assert change_actor_id(record(sys_updated_by=None), classification) == "servicenow-import"


def apply(ticket: Ticket | None, changes: list[Change]) -> Ticket:
    for change in changes:
        ctx = Context(actor_kind="integration", actor_id="test", source_name="servicenow", occurred_at=change.occurred_at)
        if change.command == "open":
            ticket = Ticket.open(ctx, ticket_id=uuid.uuid4(), **change.arguments)
        else:
            assert ticket is not None
            getattr(ticket, change.command)(ctx, **change.arguments)
    assert ticket is not None
    return ticket


def test_lifecycle_applies_to_a_ticket_without_tripping_guards():
    # An incident that is worked, resolved, reopened, resolved again and closed.
    rows = [
        record(),
        record(incident_state="Active", assigned_to="Resolver 89", sys_updated_on=later(10)),
        record(incident_state="Awaiting User Info", assigned_to="Resolver 89", sys_updated_on=later(20)),
        record(incident_state="Resolved", assigned_to="Resolver 89", sys_updated_on=later(30)),
        record(incident_state="Active", assigned_to="Resolver 89", reopen_count=1, sys_updated_on=later(40)),
        record(
            incident_state="Resolved", assigned_to="Resolver 89", reopen_count=1, made_sla=False,
            sys_updated_on=later(50), resolved_at=later(55),
        ),
        record(
            incident_state="Closed", assigned_to="Resolver 89", reopen_count=1, made_sla=False,
            sys_updated_on=later(60), resolved_at=later(55), closed_at=later(70),
        ),
    ]

    ticket = None
    previous = None
    for row in rows:
        ticket = apply(ticket, map_incident_update(previous, row))
        previous = row

    state = ticket.state()
    assert state["status"] == "closed"
    assert state["priority"] == "medium"
    assert state["group"] == "Group 56"
    assert state["agent"] == "Resolver 89"
    assert state["reopen_count"] == 1
    assert state["first_resolved_at"] == later(30)
    assert state["resolved_at"] == later(55)
    assert state["closed_at"] == later(70)
    assert state["facts"] == {MADE_SLA_FACT: False}


def test_record_written_before_opening_is_dated_at_opening():
    current = record(sys_updated_on=OPENED - timedelta(hours=2), assigned_to="Resolver 31")

    changes = map_incident_update(record(sys_updated_on=OPENED - timedelta(hours=3)), current)

    assert [change.occurred_at for change in changes] == [OPENED]
