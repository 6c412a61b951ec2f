"""Pure mapping of Zendesk records (recorded and documented payloads) to hub changes."""

from __future__ import annotations

import copy
from datetime import datetime, timezone

import pytest
from connector_helpers import load_fixture, recorded_zendesk_ticket

from connectors.changes import FieldChange, TicketEvent
from connectors.mapping_zendesk import (
    audit_changes,
    organization_account,
    satisfaction_event,
    sla_policy,
    ticket_opening,
    ticket_update,
    user_contact,
)
from hub.domain import external_uuid


def recorded_audits() -> list[dict]:
    return load_fixture("zendesk", "ticket_audits_cursor_pages.json")["interactions"][0]["response_body"]["audits"]


def audit_with_change() -> dict:
    """The recorded audit of ticket 1 that changes type and priority."""
    return next(a for a in recorded_audits() if any(e["type"] == "Change" for e in a["events"]))


def comment_audit(author_id: int, public: bool) -> dict:
    """The recorded creation audit of ticket 1 as a later audit holding one comment."""
    audit = copy.deepcopy(recorded_audits()[0])
    comment = next(e for e in audit["events"] if e["type"] == "Comment")
    comment.update(author_id=author_id, public=public)
    audit["events"] = [comment]
    audit["created_at"] = "2023-09-10T08:00:00Z"
    return audit


def test_opening_from_recorded_ticket():
    opening = ticket_opening(recorded_zendesk_ticket())

    assert opening.subject == "test"
    assert opening.channel == "api"
    assert opening.requester == {"id": "6130907993114", "source": "zendesk"}
    assert opening.client_account_id == str(external_uuid("client_account", "zendesk", "6130869157658"))
    assert opening.origin.occurred_at == datetime(2023, 9, 18, 15, 57, 42, tzinfo=timezone.utc)
    assert opening.origin.key == "zendesk:ticket:28:created"


def test_change_events_keep_previous_values():
    changes = audit_changes(audit_with_change(), requester_id=6130869168922)

    assert [(c.field, c.value, c.previous) for c in changes] == [
        ("category", "incident", None),
        ("priority", "medium", None),
    ]
    assert [c.origin.key for c in changes] == [
        "zendesk:audit:6130876540314:6130876540442",
        "zendesk:audit:6130876540314:6130876540570",
    ]


def test_creation_audit_comment_is_the_description():
    creation = recorded_audits()[0]

    changes = audit_changes(creation, requester_id=6130869168922)

    assert not any(isinstance(change, TicketEvent) for change in changes)
    assert ("status", "open") in [(c.field, c.value) for c in changes]
    assignments = [c for c in changes if c.field == "assignment"]
    assert [(c.value, c.origin.key) for c in assignments] == [
        ({"agent": "6130907993114", "group": "6130852536346"}, "zendesk:audit:6130852545178:6130852545562"),
    ]


@pytest.mark.parametrize(
    ("author_id", "public", "command", "actor_kind"),
    [
        (6130869168922, True, "receive_requester_reply", "requester"),
        (6130907993114, True, "reply", "agent"),
        (6130907993114, False, "add_note", "agent"),
    ],
)
def test_comment_kinds(author_id, public, command, actor_kind):
    (change,) = audit_changes(comment_audit(author_id, public), requester_id=6130869168922)

    assert change.command == command
    assert change.origin.actor_kind == actor_kind
    assert change.origin.actor_id == str(author_id)


def test_private_comment_is_internal_note():
    (change,) = audit_changes(comment_audit(6130907993114, public=False), requester_id=6130869168922)

    assert change.arguments["public"] is False
    assert change.arguments["body"].startswith("Hi there,")


@pytest.mark.parametrize(
    ("zendesk_status", "hub_status"),
    [("new", "new"), ("open", "open"), ("pending", "pending"), ("hold", "on_hold"), ("solved", "resolved"), ("closed", "closed")],
)
def test_observed_status(zendesk_status, hub_status):
    record = recorded_zendesk_ticket()
    record["status"] = zendesk_status

    update = ticket_update(record)

    status = next(c for c in update.changes if isinstance(c, FieldChange) and c.field == "status")
    assert status.value == hub_status
    assert status.origin.key == f"zendesk:ticket:28:{record['updated_at']}:status"


@pytest.mark.parametrize(("zendesk", "hub"), [("urgent", "critical"), ("high", "high"), ("normal", "medium"), ("low", "low")])
def test_observed_priority(zendesk, hub):
    record = recorded_zendesk_ticket()
    record["priority"] = zendesk

    update = ticket_update(record)

    priority = next(c for c in update.changes if isinstance(c, FieldChange) and c.field == "priority")
    assert priority.value == hub


def test_observed_assignment_has_both_keys():
    record = recorded_zendesk_ticket()
    record.update(group_id=360001, assignee_id=None)

    update = ticket_update(record)

    assignment = next(c for c in update.changes if isinstance(c, FieldChange) and c.field == "assignment")
    assert assignment.value == {"group": "360001", "agent": None}


def test_audits_come_before_observed_values():
    update = ticket_update(recorded_zendesk_ticket(), [audit_with_change()])

    keys = [change.origin.key for change in update.changes]
    assert keys[0].startswith("zendesk:audit:")
    assert keys[-1].startswith("zendesk:ticket:28:")


def test_satisfaction_rating_documented_record():
    event = satisfaction_event(load_fixture("zendesk", "satisfaction_rating.json"))

    assert event.command == "rate_satisfaction"
    assert event.arguments == {"score": "good", "scale": "good_bad", "comment": None}
    assert event.origin.key == "zendesk:satisfaction:35436:good"
    assert event.origin.actor_id == "7881"


@pytest.mark.parametrize("score", ["offered", "unoffered"])
def test_rating_without_score_maps_to_nothing(score):
    rating = {**load_fixture("zendesk", "satisfaction_rating.json"), "score": score}

    assert satisfaction_event(rating) is None


def test_rating_on_ticket_record_uses_ticket_time():
    record = recorded_zendesk_ticket()
    record["satisfaction_rating"] = {"score": "bad", "id": 77, "comment": "Too slow"}

    update = ticket_update(record)

    rating = update.changes[-1]
    assert rating.arguments == {"score": "bad", "scale": "good_bad", "comment": "Too slow"}
    assert rating.origin.key == "zendesk:satisfaction:77:bad"
    assert rating.origin.occurred_at == datetime(2023, 9, 18, 15, 57, 42, tzinfo=timezone.utc)


def test_sla_policy_targets_by_priority():
    update = sla_policy(load_fixture("zendesk", "sla_policy.json"))

    # Documented policy: first reply 30 (normal) and 10 (urgent) minutes. Requester
    # wait 180/160/140/120 minutes (low/normal/high/urgent) is the resolution target.
    assert update.terms["targets"] == {
        "medium": {"first_response": 30, "resolution": 160},
        "critical": {"first_response": 10, "resolution": 120},
        "low": {"resolution": 180},
        "high": {"resolution": 140},
    }
    assert update.terms["name"] == "Incidents"
    assert update.external_id == "230868"


def test_full_resolution_target_wins_over_requester_wait():
    policy = {
        "id": 5, "title": "Gold", "updated_at": "2024-01-01T00:00:00Z",
        "policy_metrics": [
            {"priority": "high", "metric": "requester_wait_time", "target": 300, "business_hours": False},
            {"priority": "high", "metric": "full_resolution_time", "target": 480, "business_hours": False},
        ],
    }

    assert sla_policy(policy).terms["targets"] == {"high": {"resolution": 480}}


def test_organization_account():
    organization = {"id": 6130869157658, "name": "Example Corp", "created_at": "2023-09-09T23:52:05Z",
                    "updated_at": "2023-09-10T10:00:00Z"}

    account = organization_account(organization)

    assert account.external_id == "6130869157658"
    assert account.organization == "Example Corp"
    assert account.origin.key == "zendesk:organization:6130869157658:2023-09-10T10:00:00Z"


def test_end_user_becomes_contact_and_agent_does_not():
    end_user = {"id": 6130869168922, "name": "User 0001", "email": "user0001@example.com", "role": "end-user",
                "organization_id": 6130869157658, "phone": None}
    agent = {**end_user, "id": 6130907993114, "role": "agent"}

    assert user_contact(end_user) == (
        "6130869157658",
        {"id": "6130869168922", "name": "User 0001", "email": "user0001@example.com", "phone": None},
    )
    assert user_contact(agent) is None
