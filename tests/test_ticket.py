"""Ticket behaviour: one behaviour per test, exact error messages pinned."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pytest

from hub.domain import Context, InvalidValueError, StateConflictError, Ticket

T0 = datetime(2024, 3, 4, 9, 0, tzinfo=timezone.utc)
TICKET_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")


def at(minutes: int = 0, **fields) -> Context:
    fields = {"actor_kind": "agent", "actor_id": "agent-1", **fields}
    return Context(occurred_at=T0 + timedelta(minutes=minutes), **fields)


def new_ticket(**fields) -> Ticket:
    defaults = {"subject": "Cannot log in", "channel": "web", "requester": {"id": "req-1"}}
    return Ticket.open(at(), ticket_id=TICKET_ID, **{**defaults, **fields})


def closed_ticket() -> Ticket:
    ticket = new_ticket()
    ticket.resolve(at(10), resolution_code="password reset")
    ticket.close(at(20))
    return ticket


def test_open_flags_missing_intake():
    ticket = new_ticket()

    assert ticket.status == "new"
    assert ticket.opened_at == T0
    assert ticket.missing_fields == ["client_account_id", "description"]


def test_completing_intake_clears_missing_fields():
    ticket = new_ticket()

    ticket.complete_intake(at(1), {"client_account_id": "acme", "description": "SSO loop"})

    assert ticket.missing_fields == []


def test_unknown_channel_is_rejected():
    with pytest.raises(InvalidValueError, match="channel 'fax' is invalid; use one of email, web, phone, chat, api, social, other"):
        new_ticket(channel="fax")


def test_empty_subject_is_rejected():
    with pytest.raises(InvalidValueError, match="subject must be a non-empty string"):
        new_ticket(subject="  ")


def test_naive_occurred_at_is_rejected():
    with pytest.raises(InvalidValueError, match="occurred_at must be timezone-aware, got the naive value 2024-03-04T09:00:00; add an offset such as"):
        Context(occurred_at=datetime(2024, 3, 4, 9, 0))


def test_unknown_actor_kind_is_rejected():
    with pytest.raises(InvalidValueError, match="actor kind 'robot' is invalid; use one of agent, requester, system, integration"):
        Context(actor_kind="robot")


def test_priority_outside_fixed_set_is_rejected():
    ticket = new_ticket()

    with pytest.raises(InvalidValueError, match="priority 'urgent' is invalid; use one of critical, high, medium, low"):
        ticket.prioritize(at(1), "urgent")


def test_priority_criterion_defaults_to_business_impact():
    ticket = new_ticket()

    ticket.prioritize(at(1), "high")

    assert ticket.priority_criterion == "revenue impact"


def test_first_assignment_then_reassignment_counts_once():
    ticket = new_ticket()

    ticket.assign(at(1), group="Service Desk", agent=None)
    ticket.assign(at(2), group="Network", agent="agent-9")

    assert [type(e).__name__ for e in ticket.pending_events[1:]] == ["Assigned", "Reassigned"]
    assert ticket.reassignment_count == 1
    assert ticket.pending_events[2].previous_group == "Service Desk"


def test_closed_ticket_reply_names_state():
    ticket = closed_ticket()

    with pytest.raises(StateConflictError, match=f"cannot reply on ticket {TICKET_ID}: it is closed; reopen it first"):
        ticket.reply(at(30), "Any news?")


def test_validation_before_resolution_is_rejected():
    ticket = new_ticket()

    with pytest.raises(StateConflictError, match=f"cannot confirm the resolution on ticket {TICKET_ID}: it is new; only a resolved ticket can be validated"):
        ticket.confirm_resolution(at(1))


def test_rejected_resolution_reopens_work():
    ticket = new_ticket()
    ticket.resolve(at(10))

    ticket.reject_resolution(at(11), "Still broken")

    assert ticket.status == "open"
    assert ticket.validation == "rejected"


def test_reopen_only_from_resolved_or_closed():
    ticket = new_ticket()

    with pytest.raises(StateConflictError, match=f"cannot reopen ticket {TICKET_ID}: it is new; only a resolved or closed ticket can be reopened"):
        ticket.reopen(at(1))


def test_reopen_clears_resolution_time():
    ticket = closed_ticket()

    ticket.reopen(at(40), "Same error again")

    assert ticket.status == "open"
    assert ticket.reopen_count == 1
    assert ticket.resolved_at is None
    assert ticket.first_resolved_at == T0 + timedelta(minutes=10)


def test_status_change_rejects_resolved():
    ticket = new_ticket()

    with pytest.raises(InvalidValueError, match="status 'resolved' is set by the resolve command, not by a status change"):
        ticket.change_status(at(1), "resolved")


def test_unchanged_status_is_a_conflict():
    ticket = new_ticket()

    with pytest.raises(StateConflictError, match=f"ticket {TICKET_ID} is already new"):
        ticket.change_status(at(1), "new")


@pytest.mark.parametrize(
    ("scale", "score", "message"),
    [
        ("1-5", 6, "score 6 is outside the 1-5 scale; use a whole number from 1 to 5"),
        ("1-5", 0, "score 0 is outside the 1-5 scale; use a whole number from 1 to 5"),
        ("good_bad", "great", "score 'great' is invalid; use one of good, bad"),
    ],
)
def test_satisfaction_score_outside_scale_is_rejected(scale, score, message):
    ticket = closed_ticket()

    with pytest.raises(InvalidValueError, match=message):
        ticket.rate_satisfaction(at(30), score, scale)


def test_effort_score_outside_scale_is_rejected():
    ticket = closed_ticket()

    with pytest.raises(InvalidValueError, match="score 8 is outside the 1-7 scale; use a whole number from 1 to 7"):
        ticket.score_effort(at(30), 8)


def test_satisfaction_may_be_rated_after_closure():
    ticket = closed_ticket()

    ticket.rate_satisfaction(at(30), 5)

    assert ticket.satisfaction == {"score": 5, "scale": "1-5"}


def test_second_escalation_must_be_an_update():
    ticket = new_ticket()
    ticket.escalate(at(1), 1, "VIP client", "lead-1", T0 + timedelta(hours=2))

    with pytest.raises(StateConflictError, match=f"ticket {TICKET_ID} is already escalated at level 1; update the escalation instead"):
        ticket.escalate(at(2), 2, "Still down", "lead-2", T0 + timedelta(hours=3))


def test_escalation_update_needs_an_escalation():
    ticket = new_ticket()

    with pytest.raises(StateConflictError, match=f"cannot update the escalation on ticket {TICKET_ID}: it is not escalated"):
        ticket.update_escalation(at(1), "Vendor engaged")


def test_naive_promise_time_is_rejected():
    ticket = new_ticket()

    with pytest.raises(InvalidValueError, match="promised_by must be timezone-aware"):
        ticket.escalate(at(1), 1, "VIP client", "lead-1", datetime(2024, 3, 4, 12, 0))


def test_sla_alert_once_per_cycle():
    ticket = new_ticket()
    due = T0 + timedelta(hours=1)

    first = ticket.flag_sla(at(60), "breached", "first_response", 1, due)
    second = ticket.flag_sla(at(61), "breached", "first_response", 1, due)

    assert first is True
    assert second is False
    assert ticket.version == 2


def test_rejected_command_records_nothing():
    ticket = new_ticket()

    with pytest.raises(InvalidValueError):
        ticket.prioritize(at(1), "urgent")

    assert len(ticket.pending_events) == 1
    assert ticket.priority is None


def test_external_event_id_is_remembered():
    ticket = new_ticket()

    ticket.reply(at(1, external_event_id="zd-audit-77"), "Hello")

    assert ticket.has_recorded("zd-audit-77") is True
    assert ticket.has_recorded("zd-audit-78") is False
    assert ticket.external_event_ids == {"zd-audit-77": 2}


def test_ticket_lifecycle():
    # Intake by email from a client with missing data.
    ticket = Ticket.open(
        at(0, source_name="email"), ticket_id=TICKET_ID, subject="Invoices fail to export",
        channel="email", requester={"id": "req-5", "email": "ana@example.com"},
    )
    assert ticket.missing_fields == ["client_account_id", "description"]

    # Classification, prioritization and allocation.
    ticket.complete_intake(at(2), {"client_account_id": "acme", "description": "CSV export returns 500"})
    ticket.classify(at(3), "billing", "export", "error page")
    ticket.prioritize(at(4), "high", impact="2 - Medium", urgency="1 - High")
    ticket.assign(at(5), group="Billing", agent="agent-3")

    # Acknowledge, ask for clarification and receive the requester's reply. A note stays internal.
    ticket.reply(at(10), "We are looking into it.")
    ticket.request_clarification(at(12), "Which date range fails?")
    ticket.change_status(at(12), "pending")
    ticket.receive_requester_reply(at(40, actor_kind="requester", actor_id="req-5"), "March 2024")
    ticket.change_status(at(41), "open")
    ticket.add_note(at(45), "Reproduced on staging")
    assert ticket.public_reply_count == 2
    assert ticket.awaiting_agent_reply is True

    # Escalated to the vendor team with a promised update, updated, then de-escalated.
    ticket.escalate(at(50), 2, "Export bug blocks month-end close", "lead-7", T0 + timedelta(hours=3))
    ticket.update_escalation(at(90), "Fix in review", promised_by=T0 + timedelta(hours=5))
    ticket.resolve_escalation(at(200), "Hotfix deployed")
    assert ticket.escalation is None
    assert ticket.escalation_count == 1

    # Resolved with a knowledge article, confirmed by the requester, closed.
    ticket.resolve(at(210), resolution_code="fixed", knowledge_article_id="KB-12", sop="hotfix")
    ticket.confirm_resolution(at(300, actor_kind="requester", actor_id="req-5"))
    ticket.close(at(301))
    assert ticket.status == "closed"
    assert ticket.validation == "confirmed"

    # Feedback after closure, then the issue comes back.
    ticket.rate_satisfaction(at(400, actor_kind="requester", actor_id="req-5"), 4)
    ticket.score_effort(at(401, actor_kind="requester", actor_id="req-5"), 2)
    ticket.reopen(at(5000), "Export fails again for April")
    assert ticket.status == "open"
    assert ticket.reopen_count == 1
    assert ticket.version == len(ticket.pending_events) == 20

    # Replaying the recorded events rebuilds exactly the same state.
    replayed = None
    for event in ticket.pending_events:
        replayed = event.mutate(replayed)
    assert replayed.state() == ticket.state()


def test_assignment_within_group_not_reassignment():
    ticket = new_ticket()
    ticket.assign(at(1), group="Service Desk", agent=None)

    ticket.assign(at(2), group="Service Desk", agent="agent-4", reassignment=False)

    assert [type(e).__name__ for e in ticket.pending_events[1:]] == ["Assigned", "Assigned"]
    assert ticket.reassignment_count == 0
    assert ticket.agent == "agent-4"


def test_change_before_opening_is_rejected():
    ticket = new_ticket()

    with pytest.raises(InvalidValueError, match=f"occurred_at 2024-03-04T08:00:00\\+00:00 is before ticket {TICKET_ID} was opened at 2024-03-04T09:00:00\\+00:00"):
        ticket.reply(at(-60), "Answer from the past")


def test_far_future_occurred_at_is_rejected():
    ctx = Context(occurred_at=datetime(2024, 3, 6, 9, 1, tzinfo=timezone.utc))

    with pytest.raises(InvalidValueError, match="occurred_at 2024-03-06T09:01:00\\+00:00 lies in the future"):
        ctx.check_not_in_future(now=T0 + timedelta(days=1))


def test_closed_ticket_awaits_no_reply():
    ticket = new_ticket()
    ticket.receive_requester_reply(at(5), "Any news?")

    ticket.close(at(10))

    assert ticket.awaiting_agent_reply is False
