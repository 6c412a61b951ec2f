"""Property: any valid command sequence replays to the same state, at every version."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub.application import create_application
from hub.domain import Context, DomainError, Ticket
from hub.settings import load_settings

T0 = datetime(2024, 1, 1, tzinfo=timezone.utc)

COMMANDS = st.one_of(
    st.tuples(st.just("classify"), st.fixed_dictionaries({"category": st.sampled_from(["network", "access", "billing"])})),
    st.tuples(st.just("prioritize"), st.fixed_dictionaries({"priority": st.sampled_from(["critical", "high", "medium", "low", "urgent"])})),
    st.tuples(st.just("assign"), st.fixed_dictionaries({"group": st.sampled_from(["L1", "L2", None]), "agent": st.sampled_from(["a1", "a2", None])})),
    st.tuples(st.just("reply"), st.fixed_dictionaries({"body": st.text(min_size=1, max_size=20)})),
    st.tuples(st.just("add_note"), st.fixed_dictionaries({"body": st.just("note"), "public": st.booleans()})),
    st.tuples(st.just("receive_requester_reply"), st.fixed_dictionaries({"body": st.just("more info")})),
    st.tuples(st.just("change_status"), st.fixed_dictionaries({"status": st.sampled_from(["new", "open", "pending", "on_hold", "closed"])})),
    st.tuples(st.just("escalate"), st.fixed_dictionaries({
        "level": st.integers(0, 3), "reason": st.just("VIP"), "owner": st.just("lead"),
        "promised_by": st.just(T0 + timedelta(days=1)),
    })),
    st.tuples(st.just("resolve_escalation"), st.just({})),
    st.tuples(st.just("resolve"), st.fixed_dictionaries({"resolution_code": st.sampled_from(["fixed", None])})),
    st.tuples(st.just("confirm_resolution"), st.just({})),
    st.tuples(st.just("reject_resolution"), st.fixed_dictionaries({"reason": st.just("still broken")})),
    st.tuples(st.just("close"), st.just({})),
    st.tuples(st.just("reopen"), st.just({})),
    st.tuples(st.just("rate_satisfaction"), st.fixed_dictionaries({"score": st.integers(0, 6)})),
    st.tuples(st.just("score_effort"), st.fixed_dictionaries({"score": st.integers(0, 8)})),
)


def build_ticket(commands: list[tuple[str, dict]]) -> Ticket:
    """Apply the commands in order, skipping those the ticket's guards reject."""
    ticket = Ticket.open(Context(occurred_at=T0), ticket_id=uuid.uuid4(), subject="Property", channel="api")
    for minute, (name, arguments) in enumerate(commands, start=1):
        try:
            getattr(ticket, name)(Context(occurred_at=T0 + timedelta(minutes=minute)), **arguments)
        except DomainError:
            continue
    return ticket


def fold(events) -> Ticket:
    ticket = None
    for event in events:
        ticket = event.mutate(ticket)
    return ticket


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(COMMANDS, max_size=25))
def test_replay_matches_every_version(commands):
    ticket = build_ticket(commands)
    events = list(ticket.pending_events)
    app = create_application(load_settings({"HUB_DATABASE_URL": "sqlite:///:memory:"}))
    try:
        app.save(ticket)

        assert app.get(Ticket, ticket.id).state() == ticket.state()
        for version in range(1, len(events) + 1):
            from_store = app.get(Ticket, ticket.id, version=version).state()
            from_prefix = fold(events[:version]).state()
            assert from_store == from_prefix
    finally:
        app.close()
