"""Client accounts, SLA policies, problems, improvements and knowledge articles."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub.domain import (
    ClientAccount,
    Context,
    Improvement,
    InvalidValueError,
    KnowledgeArticle,
    Problem,
    SlaPolicy,
    StateConflictError,
)

T0 = datetime(2024, 5, 6, 8, 0, tzinfo=timezone.utc)
AGGREGATE_ID = uuid.UUID("00000000-0000-4000-8000-0000000000aa")
TARGETS = {"high": {"first_response": 60, "resolution": 480}, "low": {"first_response": 480, "resolution": 2400}}
OFFICE = {"timezone": "Europe/Berlin", "hours": {"mon": [["08:00", "18:00"]]}, "holidays": ["2024-12-25"]}


def at(minutes: int = 0) -> Context:
    return Context(actor_kind="agent", actor_id="lead-1", occurred_at=T0 + timedelta(minutes=minutes))


def test_client_account_lifecycle():
    # Registered, renamed, contacts added, NPS collected.
    account = ClientAccount.register(at(), account_id=AGGREGATE_ID, organization="Acme GmbH")
    account.rename(at(1), "Acme Group")
    account.add_contact(at(2), {"id": "c-1", "name": "Ana", "email": "ana@acme.example"})
    account.record_nps(at(3), 9, contact_id="c-1")
    account.record_nps(at(4), 3)

    assert account.organization == "Acme Group"
    assert [contact["id"] for contact in account.contacts] == ["c-1"]
    assert [response["score"] for response in account.nps_responses] == [9, 3]
    assert account.version == 5


def test_nps_outside_zero_to_ten_is_rejected():
    account = ClientAccount.register(at(), account_id=AGGREGATE_ID, organization="Acme")

    with pytest.raises(InvalidValueError, match="score 11 is outside the NPS scale; use a whole number from 0 to 10"):
        account.record_nps(at(1), 11)


def test_duplicate_contact_is_a_conflict():
    account = ClientAccount.register(at(), account_id=AGGREGATE_ID, organization="Acme")
    account.add_contact(at(1), {"id": "c-1"})

    with pytest.raises(StateConflictError, match=f"client account {AGGREGATE_ID} already has a contact with id 'c-1'"):
        account.add_contact(at(2), {"id": "c-1"})


def test_sla_policy_lifecycle_keeps_revisions():
    # Defined 24x7, then revised to office hours with a tighter target.
    policy = SlaPolicy.define(at(), policy_id=AGGREGATE_ID, name="Standard", targets=TARGETS, calendar=None)
    assert policy.revision == 1
    assert policy.pause_statuses == {"first_response": [], "next_reply": ["pending", "on_hold"], "resolution": ["pending", "on_hold"]}
    assert policy.at_risk_ratio == 0.75

    policy.revise(at(60), calendar=OFFICE, targets={"high": {"first_response": 30, "resolution": 480}})

    assert policy.revision == 2
    assert policy.calendar == OFFICE
    assert policy.targets == {"high": {"first_response": 30, "resolution": 480}}
    assert policy.name == "Standard"


@pytest.mark.parametrize(
    ("terms", "field", "message"),
    [
        ({"targets": {"urgent": {"first_response": 5}}}, "targets.urgent", "targets.urgent is not a priority; use one of critical, high, medium, low"),
        ({"targets": {"high": {"first_reply": 5}}}, "targets.high.first_reply", "targets.high.first_reply is not a target; use one of first_response, next_reply, resolution"),
        ({"targets": {"high": {"resolution": -5}}}, "targets.high.resolution", "targets.high.resolution must be a positive number of minutes, got -5"),
        ({"calendar": {"timezone": "Mars/Olympus", "hours": {"mon": [["08:00", "18:00"]]}}}, "calendar.timezone", "calendar.timezone 'Mars/Olympus' is not an IANA time zone such as 'Europe/Berlin'"),
        ({"calendar": {"timezone": "UTC", "hours": {"mon": [["18:00", "08:00"]]}}}, "calendar.hours.mon", "calendar.hours.mon has the invalid interval"),
        ({"calendar": {"timezone": "UTC", "hours": {}}}, "calendar.hours", "calendar.hours must contain at least one interval"),
        ({"at_risk_ratio": 1.5}, "at_risk_ratio", "at_risk_ratio must be a number between 0 and 1 (exclusive), got 1.5"),
        ({"pause_statuses": {"resolution": ["closed"]}}, "pause_statuses.resolution", "pause_statuses.resolution must list statuses from new, open, pending, on_hold"),
    ],
)
def test_invalid_sla_policy_names_the_field(terms, field, message):
    arguments = {"name": "Standard", "targets": TARGETS, "calendar": None, **terms}

    with pytest.raises(InvalidValueError, match=message.replace("(", r"\(").replace(")", r"\)")) as raised:
        SlaPolicy.define(at(), policy_id=AGGREGATE_ID, **arguments)

    assert raised.value.field == field


def test_problem_lifecycle():
    ticket_ids = [uuid.UUID(int=1), uuid.UUID(int=2)]

    # Define, gather evidence, find the cause, fix it, watch it, close it.
    problem = Problem.define(at(), problem_id=AGGREGATE_ID, title="VPN drops hourly")
    problem.add_evidence(at(10), "Two clients, same gateway", ticket_ids)
    problem.add_evidence(at(20), "Third report", [ticket_ids[0]])
    assert problem.stage == "investigating"
    assert problem.ticket_ids == ticket_ids

    problem.identify_root_cause(at(30), "DHCP lease of 60 minutes on gateway 3")
    problem.implement_corrective_action(at(40), "Lease raised to 24 h")
    problem.monitor_outcome(at(10_000), "No drops in a week", recurrences=0)
    problem.close(at(10_001))

    assert problem.stage == "closed"
    assert problem.version == 7


def test_corrective_action_needs_a_root_cause():
    problem = Problem.define(at(), problem_id=AGGREGATE_ID, title="VPN drops hourly")

    with pytest.raises(StateConflictError, match=f"cannot implement a corrective action on problem {AGGREGATE_ID}: it is defined; identify the root cause first"):
        problem.implement_corrective_action(at(1), "Reboot")


def test_improvement_lifecycle():
    # Plan against a KPI baseline, do the change, check the measured value, act.
    improvement = Improvement.plan(
        at(), improvement_id=AGGREGATE_ID, title="Macros for password resets",
        kpi="first_response_hours_p50", baseline=4.0, target=2.0, filters={"category": "access"},
    )
    improvement.do(at(60), "Added three macros")
    improvement.check_result(at(50_000), 1.5, T0 + timedelta(days=7), T0 + timedelta(days=30))
    improvement.act(at(50_001), "standardized", "Rolled out to all groups")

    assert improvement.phase == "act"
    assert improvement.check["measured"] == 1.5
    assert improvement.decision == "standardized"


def test_improvement_phases_cannot_be_skipped():
    improvement = Improvement.plan(
        at(), improvement_id=AGGREGATE_ID, title="Macros", kpi="csat", baseline=0.8, target=0.9,
    )

    with pytest.raises(StateConflictError, match=f"cannot check the result on improvement {AGGREGATE_ID}: it is in phase plan, expected do"):
        improvement.check_result(at(1), 0.85, T0, T0 + timedelta(days=1))


def test_improvement_decision_from_fixed_set():
    improvement = Improvement.plan(at(), improvement_id=AGGREGATE_ID, title="Macros", kpi="csat", baseline=0.8, target=0.9)
    improvement.do(at(1), "Macros")
    improvement.check_result(at(2), 0.85, T0, T0 + timedelta(days=1))

    with pytest.raises(InvalidValueError, match="decision 'keep' is invalid; use one of standardized, abandoned"):
        improvement.act(at(3), "keep")


def test_knowledge_article_lifecycle():
    article = KnowledgeArticle.publish(at(), article_id=AGGREGATE_ID, title="Reset a password", body="Open the portal.", tags=["access"])
    article.revise(at(1), body="Open the self-service portal and choose Reset.")
    article.retire(at(2), "Replaced by SSO")

    assert article.revision == 2
    assert article.title == "Reset a password"
    assert article.retired is True
    with pytest.raises(StateConflictError, match=f"cannot revise knowledge article {AGGREGATE_ID}: it is retired"):
        article.revise(at(3), body="New text")


def test_sla_policy_revision_can_return_to_24x7():
    policy = SlaPolicy.define(at(), policy_id=AGGREGATE_ID, name="Standard", targets=TARGETS, calendar=OFFICE)

    policy.revise(at(1), calendar=None)

    assert policy.calendar is None
    assert policy.targets == TARGETS


def test_overlapping_business_hours_are_rejected():
    calendar = {"timezone": "UTC", "hours": {"mon": [["09:00", "17:00"], ["12:00", "13:00"]]}}

    with pytest.raises(InvalidValueError, match="calendar is invalid: .*overlaps") as raised:
        SlaPolicy.define(at(), policy_id=AGGREGATE_ID, name="Standard", targets=TARGETS, calendar=calendar)

    assert raised.value.field == "calendar"
